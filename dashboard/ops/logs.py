"""One logging setup for the web app, gunicorn and the queue workers.

Human-readable lines by default, JSON lines with LOG_FORMAT=json (python-json-logger), at
LOG_LEVEL. Every line carries the request id of the request (or queued task) it belongs to, and
passes through a filter that blanks anything shaped like a secret (bearer tokens, the
dashboard's API tokens, OAuth parameters in URLs) as a last line of defence: the code itself
never logs a secret.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import os
import re
from contextlib import contextmanager

# The id of the request or queued task this thread is working for; "-" outside both.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-Id"
# A client's id is kept only when it is short and plain (it ends up in every log line).
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

TEXT_FORMAT = "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s"

_SECRET_PATTERNS = (
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), r"\1 [redacted]"),
    (re.compile(r"\bsdb_[A-Za-z0-9_-]+"), "sdb_[redacted]"),
    # OAuth parameters in a URL or a form body
    (re.compile(r"(?i)([?&](?:access_token|refresh_token|client_secret|code|token|password)=)"
                r"[^&\s\"']+"), r"\1[redacted]"),
    # "access_token": "..." in a JSON body or a repr
    (re.compile(r"(?i)([\"']?(?:access_token|refresh_token|client_secret|password)[\"']?\s*[:=]\s*)"
                r"[\"']?[^\s&\"',;}]+[\"']?"), r"\1[redacted]"),
)


def _fresh_id() -> str:
    """32 random hex digits, as a UUID4's hex would be (without building the UUID)."""
    return os.urandom(16).hex()


def new_request_id(client_value: str | None = None) -> str:
    """The client's X-Request-Id when it is plain enough to log, else a fresh one."""
    if client_value and _CLIENT_ID.match(client_value):
        return client_value
    return _fresh_id()


def current_request_id() -> str | None:
    """The id of the request or task being handled, if any."""
    return REQUEST_ID.get()


@contextmanager
def request_id_context(request_id: str | None):
    """Run a block (a queued task, say) under `request_id`, or a fresh id when None."""
    token = REQUEST_ID.set(request_id or _fresh_id())
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


# Every pattern above needs one of these in the text, case-folded as the patterns' (?i) folds
# it: most lines have none, and looking for them costs far less than the four substitutions.
_SECRET_HINTS = ("bearer", "sdb_", "token", "secret", "password", "code=")


def redact(text: str) -> str:
    """`text` with anything shaped like a secret replaced by [redacted]."""
    folded = text.casefold()
    for hint in _SECRET_HINTS:
        if hint in folded:
            break
    else:
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record a handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = REQUEST_ID.get() or "-"
        return True


class RedactSecretsFilter(logging.Filter):
    """Blanks secret-shaped values in the message and the exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def logging_config(level: str = "INFO", fmt: str = "text") -> dict:
    """The dictConfig mapping: one stderr handler for every logger, gunicorn's included."""
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "timestamp": "time",  # ISO 8601, UTC
            "rename_fields": {"levelname": "level", "name": "logger"},
        }
    else:
        formatter = {"format": TEXT_FORMAT}
    handler = ["console"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": RequestIdFilter},
            "redact": {"()": RedactSecretsFilter},
        },
        "formatters": {"default": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id", "redact"],
            },
        },
        "root": {"level": level, "handlers": handler},
        "loggers": {
            # gunicorn's own loggers do not propagate: give them the same handler.
            "gunicorn.error": {"level": level, "handlers": handler, "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": handler, "propagate": False},
            # httpx logs every URL at INFO; a URL may carry a platform's parameters.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


_applied: tuple[str, str] | None = None


def configure_logging(level: str, fmt: str, *, force: bool = False) -> None:
    """Apply the logging setup once per process (create_app runs many times in tests)."""
    global _applied
    if _applied == (level, fmt) and not force:
        return
    logging.config.dictConfig(logging_config(level, fmt))
    _applied = (level, fmt)


class RequestIdMiddleware:
    """WSGI middleware: every request gets an id, logged on each line and echoed back."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        request_id = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        environ["HTTP_X_REQUEST_ID"] = request_id

        def start_with_id(status, headers, exc_info=None):
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, exc_info)

        token = REQUEST_ID.set(request_id)
        try:
            return self.wsgi_app(environ, start_with_id)
        finally:
            REQUEST_ID.reset(token)
