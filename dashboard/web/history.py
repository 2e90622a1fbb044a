"""Publish history page: every publish attempt, filtered, newest first, with row actions in place:
Retry (failed, unconfirmed), Mark as published (unconfirmed), Cancel (scheduled, queued)."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, URLField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import URL, Length, Optional, Regexp, ValidationError

from ..accounts import list_accounts
from ..clips import get_clip
from ..errors import Conflict, NotFound
from ..extensions import db
from ..history import HistoryFilter, get_publish_log, list_publish_logs
from ..models import PLATFORMS, PublishStatus, platform_name
from ..publishing import background
from .access import role_required
from .confirm import ask_first, confirmed
from .forms import FORM_EXPIRED, DateRangeForm, flash_retry, retry_button, run_button, uuid_or_none
from .htmx import wants_fragment

bp = Blueprint("history", __name__, url_prefix="/history")


class HistoryFilterForm(DateRangeForm):
    """Filters of the publish history page (GET)."""

    # default="": an absent parameter means "any", not an invalid choice.
    status = SelectField(
        "Status",
        default="",
        choices=[SelectChoice("", "Any status")]
        + [SelectChoice(s.value, s.label) for s in PublishStatus],
    )
    platform = SelectField(
        "Platform",
        default="",
        choices=[SelectChoice("", "Any platform")] + [SelectChoice(p, platform_name(p)) for p in PLATFORMS],
    )
    account = SelectField("Account", default="", validate_choice=False)
    clip = HiddenField()

    def validate_account(self, field):
        """An account id from the list (or none)."""
        if field.data and uuid_or_none(field.data) is None:
            raise ValidationError("choose an account from the list")

    def validate_clip(self, field):
        """The clip id the clip page links with."""
        if field.data and uuid_or_none(field.data) is None:
            raise ValidationError("is not a clip id")


def all_account_choices(db) -> list[SelectChoice]:
    """Any account, then every account (active or not) in an optgroup per platform: the history filter."""
    choices = [SelectChoice("", "Any account")]
    for account in list_accounts(db):
        label = f"@{account.handle}" + ("" if account.active else " (inactive)")
        group = platform_name(account.platform)
        choices.append(SelectChoice(str(account.id), label, optgroup=group))
    return choices


class MarkPublishedForm(FlaskForm):
    """A person confirms that an unconfirmed post went out, optionally with its address."""

    external_url = URLField("Post URL (optional)", validators=[
        Optional(), Length(max=500),
        URL(message="enter the post's address, e.g. https://www.instagram.com/reel/…"),
        Regexp(r"^https?://", message="enter an http(s) address"),
    ])

PAGE_SIZE = 50


def filters_of(form: HistoryFilterForm) -> HistoryFilter:
    """The validated filters; a field with an error filters nothing (its message shows inline)."""
    value = form.value
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
    queued, error = retry_button(log_id)
    log_row = get_publish_log(db, log_id)
    if wants_fragment():
        return render_template("history/_row.html", log=log_row, retry_queued=queued, retry_error=error)
    flash_retry(error)
    return redirect(url_for("history.index"))


@bp.post("/<uuid:log_id>/cancel")
@role_required("editor")
def cancel(log_id: uuid.UUID):
    """Cancel a scheduled or queued post before it starts; htmx gets the row in place."""
    log = get_publish_log(db, log_id)
    if not confirmed():
        return ask_first("Cancel this post?", f"“{log.clip.title}” will not go out.", "Cancel the post",
                         url_for("history.index"))
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
