"""Publish history page: every publish attempt, filtered, newest first, with row actions in place:
Retry (failed, unconfirmed), Mark as published (unconfirmed), Cancel (scheduled, queued)."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for

from ..clips import get_clip
from ..errors import Conflict, InvalidInput, NotFound
from ..extensions import db
from ..history import HistoryFilter, get_publish_log, list_publish_logs
from ..publishing import background
from .access import role_required
from .clip_forms import HistoryFilterForm, MarkPublishedForm, all_account_choices, uuid_or_none
from .forms import FORM_EXPIRED, run_button
from .htmx import wants_fragment

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
    """Queue a new attempt of a failed or unconfirmed post, once (background.retry); htmx gets
    the row saying so, with a link to follow the new attempt."""
    get_publish_log(db, log_id)
    queued, error = run_button(lambda: background.retry(db, log_id), refused=(InvalidInput, Conflict))
    log_row = get_publish_log(db, log_id)
    if wants_fragment():
        return render_template("history/_row.html", log=log_row, retry_queued=queued, retry_error=error)
    if queued is not None:
        flash("Retry queued: a worker publishes it in a moment.", "info")
    else:
        flash(f"Not retried: {error}", "error")
    return redirect(url_for("history.index"))


@bp.post("/<uuid:log_id>/cancel")
@role_required("editor")
def cancel(log_id: uuid.UUID):
    """Cancel a scheduled or queued post before it starts; htmx gets the row in place."""
    get_publish_log(db, log_id)
    _, error = run_button(lambda: background.cancel(db, log_id))
    if wants_fragment():
        return render_template("history/_row.html", log=get_publish_log(db, log_id), action_error=error)
    flash(f"Not cancelled: {error}" if error else "Cancelled.", "error" if error else "info")
    return redirect(url_for("history.index"))


def mark_published_from_form(log_id: uuid.UUID) -> tuple[MarkPublishedForm, str | None]:
    """Validate the "mark as published" form and apply it; the form and the error to show."""
    form = MarkPublishedForm()
    if form.validate_on_submit():
        try:
            background.mark_published(db, log_id, form.external_url.data or None)
        except Conflict as exc:
            return form, exc.detail
        return form, None
    if form.external_url.errors:
        return form, " ".join(form.external_url.errors)
    return form, FORM_EXPIRED


@bp.post("/<uuid:log_id>/mark-published")
@role_required("editor")
def mark_published(log_id: uuid.UUID):
    """A person confirms an unconfirmed post went out, optionally with its URL (row in place)."""
    get_publish_log(db, log_id)
    form, error = mark_published_from_form(log_id)
    if wants_fragment():
        return render_template("history/_row.html", log=get_publish_log(db, log_id), action_error=error,
                               mark_form=form if error else None)
    flash(f"Not marked: {error}" if error else "Marked as published.", "error" if error else "success")
    return redirect(url_for("history.index"))
