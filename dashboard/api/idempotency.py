"""The Idempotency-Key header on JSON endpoints that create work."""

from __future__ import annotations

from functools import wraps

from flask import g, make_response, request

from .. import idempotency
from ..extensions import db


def idempotent(view=None, *, answer_in_flight=None):
    """Replay the first answer to a repeated request with the same Idempotency-Key and body;
    409 for the same key with another body. Without the header the view runs as usual.

    `answer_in_flight(InFlight) -> (body, status[, headers])` answers a repeat whose first request
    created its publish log or batch but never answered (it was killed, or is still in its
    platform call), from that work's state; without it such a repeat is a 409. Only 2xx answers
    are kept: an error releases the key (idempotency.submit_once).
    """
    if view is None:
        return lambda wrapped: idempotent(wrapped, answer_in_flight=answer_in_flight)

    def replayed(response):
        response.headers["Idempotent-Replayed"] = "true"
        return response

    @wraps(view)
    def wrapper(*args, **kwargs):
        def kept(response):
            return (response.status_code, response.get_json()) if 200 <= response.status_code < 300 else None

        in_flight = None
        if answer_in_flight is not None:
            def in_flight(reserved):
                return replayed(make_response(answer_in_flight(reserved)))

        outcome = idempotency.submit_once(
            db, g.api_user.id, request.headers.get("Idempotency-Key"), request.path,
            request.get_json(silent=True), lambda: make_response(view(*args, **kwargs)), kept,
            in_flight)
        if isinstance(outcome, idempotency.Replay):
            return replayed(make_response(outcome.body, outcome.status))
        return outcome

    return wrapper
