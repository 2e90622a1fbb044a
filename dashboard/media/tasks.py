"""The queue's media task: sweep what stale uploads and orphan storage objects left behind,
every 15 minutes."""

from __future__ import annotations

import logging

from flask import Flask
from huey import crontab

from ..extensions import db
from .uploads import sweep_uploads

log = logging.getLogger(__name__)


def register_media_tasks(huey, app: Flask):
    """Register the periodic media sweep on `huey`; it runs inside `app`'s context."""

    @huey.periodic_task(crontab(minute="*/15"), name="sweep_media_uploads")
    def sweep_media_task():
        with app.app_context():
            try:
                removed = sweep_uploads(db)
                if any(removed.values()):  # counts only: no key, no setting
                    log.info("media sweep: %s", removed)
            finally:
                db.session.remove()

    return sweep_media_task
