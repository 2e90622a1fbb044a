"""The sweep, run inside each web process too, so that nothing depends on a queue worker running.

A gunicorn worker killed in the middle of an immediate publish leaves its log `pending`; only a
sweep turns it `unconfirmed` after PUBLISH_TIMEOUT_SECONDS, and the platform answers a web
process journaled while the database was down are on that machine's disk. gunicorn.conf.py
starts this thread in every web worker (post_worker_init); WEB_SWEEP_INTERVAL_SECONDS sets its
pace (0 turns it off).
"""

from __future__ import annotations

import logging
import random
import threading

from flask import Flask

log = logging.getLogger(__name__)


def start(app: Flask) -> threading.Thread | None:
    """Run the sweep every WEB_SWEEP_INTERVAL_SECONDS in a daemon thread of this process."""
    interval = app.config["WEB_SWEEP_INTERVAL_SECONDS"]
    if not interval:
        return None

    def loop():
        from ..extensions import db
        from .worker import sweep

        # A random first wait, so the web processes of a deployment don't sweep in step.
        wait = random.uniform(0, interval)
        while not stopping.wait(wait):
            wait = interval
            with app.app_context():
                try:
                    report = sweep(db)
                    if report["interrupted"] or report["journaled"] or report["resumed"]:
                        log.info("web sweep: %s", report)
                except Exception as exc:  # the database may be away: try again next time
                    log.warning("web sweep failed (%s); retrying in %gs", type(exc).__name__, interval)
                finally:
                    db.session.remove()

    stopping = threading.Event()
    thread = threading.Thread(target=loop, name="web-sweep", daemon=True)
    thread.start()
    return thread
