"""Optional error tracking: Sentry (sentry-sdk) with its Flask and Huey integrations, on only when
SENTRY_DSN is set.

Nothing secret leaves the process. The SDK collects no personal data (`data_collection`, which
supersedes send_default_pii: no cookies, user ids or client addresses), no request bodies (a
credentials body names its secrets in platform-specific fields), no frame locals (a live
client's frame holds decrypted credentials) and no task arguments. Then `scrub` goes over every
event and transaction before it is sent: values under a credential-like key are replaced, query
parameters such as `code` and `access_token` are blanked, and every other string passes through
the log redaction (ops/logs.py).

Set SENTRY_DSN on the web and the worker processes alike: the Huey integration adds trace headers
to each queued task, which only a worker with Sentry on takes off again.
"""

from __future__ import annotations

import re
from typing import Any

import sentry_sdk
from flask import Flask
from sentry_sdk.integrations.flask import FlaskIntegration
from sentry_sdk.integrations.huey import HueyIntegration
from sentry_sdk.types import Event, Hint

from .logs import current_request_id, redact

REDACTED = "[redacted]"
# Keys whose values are secret wherever they appear: headers, cookies, extra data, breadcrumbs.
_SECRET_KEY = re.compile(
    r"(?i)password|passwd|secret|token|authori[sz]ation|cookie|credential|api[-_]?key|session|csrf"
    r"|signature|private[-_]?key|^code$|code_verifier|x-amz-")
# A secret in a query string (`http.query`, `query_string` and URLs): OAuth codes, platform
# tokens, signed-URL signatures.
_SECRET_PARAMETER = re.compile(
    r"(?i)(^|[?&;])((?:access_|refresh_|id_)?token|client_secret|code|code_verifier|password"
    r"|x-amz-(?:signature|credential|security-token))=[^&#\s\"']*")


def init_app(app: Flask) -> bool:
    """Start Sentry when SENTRY_DSN is set (once per process; each worker process calls it);
    True when it is on."""
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=app.config["SENTRY_ENVIRONMENT"],
        traces_sample_rate=app.config["SENTRY_TRACES_SAMPLE_RATE"],
        integrations=[FlaskIntegration(), HueyIntegration()],
        data_collection={
            "user_info": False,  # no user ids, emails or client addresses
            "cookies": {"mode": "off"},
            # The SDK's denylist (auth, token, secret, key, session, ...) plus these.
            "http_headers": {"request": {"mode": "denylist", "terms": [
                "cookie", "forwarded", "-ip", "remote-", "via", "-user"]}},
            "url_query_params": {"mode": "denylist", "terms": ["code", "signature", "credential"]},
            "http_bodies": [],
            "stack_frame_variables": False,
            "queues": False,  # task arguments
            "database_query_data": False,
            "graphql": {"document": False, "variables": False},
            "gen_ai": {"inputs": False, "outputs": False},
        },
        before_send=scrub,
        before_send_transaction=scrub,
    )
    return True


def report_exception(exc: BaseException) -> None:
    """Send an exception the app handled itself (the 500 page); a no-op when Sentry is off."""
    sentry_sdk.capture_exception(exc)


def scrub(event: Event, hint: Hint | None = None) -> Event:
    """The event with every secret blanked, tagged with the request id its log lines carry."""
    cleaned: Event = _scrub(event)
    request_id = current_request_id()
    if request_id:
        cleaned.setdefault("tags", {})["request_id"] = request_id
    return cleaned


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: REDACTED if isinstance(key, str) and _SECRET_KEY.search(key) and item
                else _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    if isinstance(value, str):
        return redact(_SECRET_PARAMETER.sub(rf"\1\2={REDACTED}", value))
    return value
