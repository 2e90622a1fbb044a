"""Destructive buttons ask first, the same way everywhere.

A destructive POST (Cancel, Deactivate, Remove credentials, Revoke, Revoke all, Disconnect)
acts only when its form carries `confirm=yes`. Without it the view answers `ask_first`'s page,
which says what will happen and repeats the POST with `confirm=yes`: that is the whole
mechanism without JavaScript. With htmx, the button's form carries the question as
`hx-confirm` and the field as `hx-vals` (see `confirm_attrs` in _form_fields.html), so the
browser asks and the page is never needed.
"""

from __future__ import annotations

from flask import abort, render_template, request

CONFIRM_FIELD = "confirm"


def confirmed() -> bool:
    """True when the submitted form says the user already agreed."""
    return request.form.get(CONFIRM_FIELD) == "yes"


def ask_first(question: str, consequence: str, action_label: str, keep_url: str):
    """The page that asks before a destructive POST: `question` as its heading, what will
    happen, a button that repeats the POST (with the form's other fields) and a way back.

    An htmx request swaps a fragment, never a page: one that comes unconfirmed (a form without
    `confirm_attrs`) is refused with the question, which the page's error handler shows."""
    if request.headers.get("HX-Request"):
        abort(400, f"{question} Confirm first: this cannot be undone.")
    carried = {key: value for key, value in request.form.items()
               if key not in ("csrf_token", CONFIRM_FIELD)}
    return render_template("confirm/ask.html", question=question, consequence=consequence,
                           action_label=action_label, action_url=request.path, carried=carried,
                           keep_url=keep_url)
