"""Idempotent submits of the pages' forms: a double click, a resent POST or a second tab
publishes once.

Each render of a form that creates work carries a fresh key (`new_idempotency_key()` in the
templates); the POST goes through `submit_form_once`, the pages' side of
`idempotency.submit_once`, which the API's Idempotency-Key header uses too.
"""

from __future__ import annotations

import uuid

from flask import request

from .. import idempotency
from ..errors import AlreadySubmitted, InvalidInput
from ..extensions import db


def _already_sent(exc: AlreadySubmitted) -> str:
    if exc.still_running:
        return "This form was already sent and is still being published: its result will show here."
    return "This form was already sent with other values: reload the page to publish again."


def submit_form_once(user_id: uuid.UUID, key: str | None, body: dict, run, on_refused, in_flight=None):
    """Run `run()` at most once per (user, key, URL): a repeat with the same key gets the stored
    answer (an idempotency.Replay) and writes nothing.

    `run()` returns (outcome with .body(), extra) or (None, extra) when the input was refused,
    which releases the key so the corrected form can be sent again. A key already used, or
    still running, is refused with a sentence for `on_refused` and gives (None, None). Without
    a key (an old form, a script) `run()` simply runs. `in_flight(InFlight)` answers, like
    `run()` does, a repeat whose first sending created its work but never answered.
    """
    try:
        result = idempotency.submit_once(
            db, user_id, (key or "").strip() or None, request.path, body, run,
            lambda done: (200, done[0].body()) if done[0] is not None else None, in_flight)
    except (AlreadySubmitted, InvalidInput) as exc:
        on_refused(_already_sent(exc) if isinstance(exc, AlreadySubmitted) else exc.detail)
        return None, None
    if isinstance(result, idempotency.Replay):
        return result, None
    return result
