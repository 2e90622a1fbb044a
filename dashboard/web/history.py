"""Publish history page: every publish attempt, filtered, newest first; failed rows retry in place."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from pydantic import ValidationError

from ..clips import get_clip
from ..errors import Conflict, InvalidInput, NotFound
from ..extensions import db
from ..history import HistoryFilter, get_publish_log, list_publish_logs, retry_publish
from .access import role_required
from .clip_forms import EmptyForm, HistoryFilterForm, all_account_choices, uuid_or_none
from .clips import wants_fragment

bp = Blueprint("history", __name__, url_prefix="/history")

PAGE_SIZE = 50


def filters_of(form: HistoryFilterForm) -> HistoryFilter:
    """The validated filters; a field with an error filters nothing (its message shows inline)."""

    def value(field):
        return field.data if field.data and not field.errors else None

    return HistoryFilter(
        status=value(form.status),
        platform=value(form.platform),
        social_account_id=uuid_or_none(value(form.account)),
        clip_id=uuid_or_none(value(form.clip)),
        since=form.since(),
        until=form.until(),
    )


def _clip_or_none(clip_id: uuid.UUID | None):
    if clip_id is None:
        return None
    try:
        return get_clip(db, clip_id)
    except NotFound:
        return None


@bp.get("")
@role_required("viewer")
def index():
    """Publish logs newest first, filtered by status, platform, account, clip and UTC days."""
    form = HistoryFilterForm(request.args)
    form.account.choices = all_account_choices(db)
    form.validate()
    filters = filters_of(form)
    cursor = request.args.get("cursor") or None
    page = list_publish_logs(db, filters, cursor, PAGE_SIZE)
    context = dict(form=form, page=page, cursor=cursor, filters=filters,
                   clip=_clip_or_none(filters.clip_id))
    if wants_fragment():
        return render_template("history/_results.html", oob_errors=True, **context)
    return render_template("history/index.html", **context)


@bp.post("/<uuid:log_id>/retry")
@role_required("editor")
def retry(log_id: uuid.UUID):
    """Publish a failed attempt again with the same values; htmx gets the row with the new result."""
    form = EmptyForm()
    result = error = None
    if form.validate_on_submit():
        try:
            result = retry_publish(db, log_id)
        except (InvalidInput, Conflict) as exc:
            error = "; ".join(e.message for e in exc.errors) or exc.detail
        except ValidationError as exc:
            error = "; ".join(err["msg"] for err in exc.errors(include_url=False))
        except NotFound as exc:
            if "publish log" in exc.detail:
                raise
            error = exc.detail
    else:
        error = "The form expired; reload the page and try again."
    log_row = get_publish_log(db, log_id)
    if wants_fragment():
        return render_template("history/_row.html", log=log_row, retry_result=result,
                               retry_error=error)
    if result is not None and result.success:
        flash(f"Published again: {result.external_url}", "success")
    elif result is not None:
        flash(f"The retry failed too: {result.error_message}", "error")
    else:
        flash(f"Not retried: {error}", "error")
    return redirect(url_for("history.index"))
