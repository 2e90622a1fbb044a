"""The Idempotency-Key header on JSON endpoints that create work."""

from __future__ import annotations

from functools import wraps

from flask import g, make_response, request

from .. import idempotency
from ..extensions import db


def idempotent(view):
    """Replay the first answer to a repeated request with the same Idempotency-Key and body;
    409 for the same key with another body. Without the header the view runs as usual."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        fingerprint = idempotency.request_fingerprint(request.path, request.get_json(silent=True))
        reserved = idempotency.reserve(db, g.api_user.id, key, request.path, fingerprint)
        if isinstance(reserved, idempotency.Replay):
            response = make_response(reserved.body, reserved.status)
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            response = make_response(view(*args, **kwargs))
        except BaseException:
            idempotency.release(db, reserved)
            raise
        if 200 <= response.status_code < 300:
            idempotency.finish(db, reserved, response.status_code, response.get_json())
        else:
            idempotency.release(db, reserved)
        return response

    return wrapper
