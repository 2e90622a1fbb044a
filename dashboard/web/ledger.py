"""Ledger page: every event newest first, filtered; a row expands to show its metadata."""

from __future__ import annotations

import json
import uuid

from flask import Blueprint, render_template, request
from flask_login import current_user
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from ..extensions import db
from ..ledger import (
    ENTITY_TYPES,
    EVENT_TYPES,
    LedgerFilter,
    entity_names,
    event_label,
    get_event,
    list_events,
    visible_metadata,
)
from .access import role_required
from .forms import DateRangeForm, uuid_or_none
from .htmx import wants_fragment

bp = Blueprint("ledger", __name__, url_prefix="/ledger")


class LedgerFilterForm(DateRangeForm):
    """Filters of the ledger page (GET)."""

    event_type = SelectField(
        "Event type", default="",
        choices=[SelectChoice("", "Any event")] + [SelectChoice(t, event_label(t)) for t in EVENT_TYPES])
    entity_type = SelectField(
        "Entity type", default="",
        choices=[SelectChoice("", "Any entity")] + [SelectChoice(t) for t in ENTITY_TYPES])
    entity_id = StringField("Entity id", validators=[Optional(), Length(max=40)],
                            render_kw={"placeholder": "e.g. a clip id", "autocomplete": "off",
                                       "spellcheck": "false"})

    def validate_entity_id(self, field):
        """A UUID, with or without dashes."""
        if field.data and uuid_or_none(field.data) is None:
            raise ValidationError("is not an id (a UUID such as 3f2b…)")

PAGE_SIZE = 50


def filters_of(form: LedgerFilterForm) -> LedgerFilter:
    """The validated filters; a field with an error filters nothing (its message shows inline)."""
    value = form.value
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
    names = entity_names(db.session, page.items, show_emails=_shows_emails(), me=current_user.id)
    context = dict(form=form, page=page, cursor=cursor, names=names, event_label=event_label,
                   show_emails=_shows_emails())
    if wants_fragment():
        return render_template("ledger/_results.html", oob_errors=True, **context)
    return render_template("ledger/index.html", **context)


@bp.get("/<uuid:event_id>")
@role_required("viewer")
def event(event_id: uuid.UUID):
    """One event: htmx gets the detail row swapped in under the event's row, browsers a page."""
    entry = get_event(db.session, event_id)
    shown = visible_metadata(entry.event_metadata, show_emails=_shows_emails())
    metadata = json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False)
    names = entity_names(db.session, [entry], show_emails=_shows_emails(), me=current_user.id)
    template = "ledger/_detail_row.html" if wants_fragment() else "ledger/event.html"
    return render_template(template, event=entry, metadata=metadata, names=names, event_label=event_label)


def _shows_emails() -> bool:
    """Only admins, who manage users, see who a user is; the others see a role."""
    return current_user.has_role("admin")
