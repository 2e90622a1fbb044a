"""What an operator needs: logs with request ids, /metrics, /readyz, worker heartbeats, CLI,
and optional error tracking (Sentry)."""

from __future__ import annotations

import time

from flask import Flask, g, request

from . import error_tracking
from .logs import RequestIdMiddleware, configure_logging


def init_app(app: Flask) -> None:
    """Logging, error tracking, request ids, request metrics, the ops endpoints and the
    `flask queue` commands."""
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    error_tracking.init_app(app)
    app.wsgi_app = RequestIdMiddleware(app.wsgi_app)  # type: ignore[method-assign]

    from .metrics import observe_request

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe_request(response):
        started = g.pop("request_started", None)
        if started is not None:
            observe_request(request.endpoint or "unmatched", request.method,
                            response.status_code, time.perf_counter() - started)
        return response

    from .cli import metrics_cli, queue_cli
    from .views import bp

    app.register_blueprint(bp)
    app.cli.add_command(queue_cli)
    app.cli.add_command(metrics_cli)
