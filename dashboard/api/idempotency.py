"""The Idempotency-Key header on JSON endpoints that create work."""

from __future__ import annotations

from functools import wraps

from flask import current_app, g, make_response, request

from .. import idempotency
from ..errors import Conflict
from ..extensions import db


def idempotent(view=None, *, answer_in_flight=None):
    """Replay the first answer to a repeated request with the same Idempotency-Key and body;
    409 for the same key with another body. Without the header the view runs as usual.

    `answer_in_flight(InFlight) -> (body, status[, headers])` answers a repeat whose first request created
    its publish log or batch but never answered (it was killed, or is still in its platform
    call), from that work's state; it may raise Conflict. Without it such a repeat is a 409.
    """
    if view is None:
        return lambda wrapped: idempotent(wrapped, answer_in_flight=answer_in_flight)

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        fingerprint = idempotency.request_fingerprint(request.path, request.get_json(silent=True))
        reserved = idempotency.reserve(db, g.api_user.id, key, request.path, fingerprint,
                                       current_app.config["IDEMPOTENCY_KEY_TTL_SECONDS"])
        if isinstance(reserved, idempotency.Replay):
            response = make_response(reserved.body, reserved.status)
            response.headers["Idempotent-Replayed"] = "true"
            return response
        if isinstance(reserved, idempotency.InFlight):
            if answer_in_flight is None:
                raise Conflict("the first request with this Idempotency-Key is still running; "
                               "repeat it in a moment")
            response = make_response(answer_in_flight(reserved))
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
