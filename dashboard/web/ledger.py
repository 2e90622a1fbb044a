"""Ledger page: every event newest first, filtered; a row expands to show its metadata."""

from __future__ import annotations

import json
import uuid

from flask import Blueprint, render_template, request

from ..extensions import db
from ..ledger import LedgerFilter, get_event, list_events
from .access import role_required
from .clip_forms import LedgerFilterForm, uuid_or_none
from .htmx import wants_fragment

bp = Blueprint("ledger", __name__, url_prefix="/ledger")

PAGE_SIZE = 50


def filters_of(form: LedgerFilterForm) -> LedgerFilter:
    """The validated filters; a field with an error filters nothing (its message shows inline)."""

    def value(field):
        return field.data if field.data and not field.errors else None

    return LedgerFilter(
        event_type=value(form.event_type),
        entity_type=value(form.entity_type),
        entity_id=uuid_or_none(value(form.entity_id)),
        since=form.since(),
        until=form.until(),
    )


@bp.get("")
@role_required("viewer")
def index():
    """Ledger events newest first, filtered by event type, entity and UTC days, keyset pages."""
    form = LedgerFilterForm(request.args)
    form.validate()
    filters = filters_of(form)
    cursor = request.args.get("cursor") or None
    page = list_events(db.session, filters, cursor, PAGE_SIZE)
    context = dict(form=form, page=page, cursor=cursor)
    if wants_fragment():
        return render_template("ledger/_results.html", oob_errors=True, **context)
    return render_template("ledger/index.html", **context)


@bp.get("/<uuid:event_id>")
@role_required("viewer")
def event(event_id: uuid.UUID):
    """One event: htmx gets the detail row swapped in under the event's row, browsers a page."""
    entry = get_event(db.session, event_id)
    metadata = json.dumps(entry.event_metadata or {}, indent=2, sort_keys=True, ensure_ascii=False)
    template = "ledger/_detail_row.html" if wants_fragment() else "ledger/event.html"
    return render_template(template, event=entry, metadata=metadata)
