"""The schedule: upcoming posts as a week (Monday first) on the user's clock, with Cancel and
Reschedule for editors.

A week is the user's Monday 00:00 to the next Monday 00:00 in their zone, turned into UTC for
the query (so a week across a daylight-saving change has 167 or 169 hours, as it should).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, DateTimeLocalField, HiddenField
from wtforms.validators import DataRequired, Optional, ValidationError

from ..errors import Conflict, InvalidInput
from ..extensions import db
from ..local_times import OUT_OF_RANGE, day_in_range, validate_local_field
from ..models import Clip, PublishLog, SocialAccount, utcnow
from ..publishing import background
from .access import role_required
from .confirm import ask_first, confirmed
from .filters import local_text, user_zone
from .forms import BAD_TIME, FORM_EXPIRED, LOCAL_FORMATS, refusal_message, run_button
from .htmx import wants_fragment

bp = Blueprint("schedule", __name__, url_prefix="/schedule")


class RescheduleForm(FlaskForm):
    """Move a scheduled post: a new time on the user's clock."""

    scheduled_at = DateTimeLocalField("New date and time", format=LOCAL_FORMATS, tz=user_zone,
                                      validators=[DataRequired(message="choose the new date and time")],
                                      invalid_value_message=BAD_TIME)
    week = HiddenField()

    def validate_scheduled_at(self, field):
        """A time that exists, once, on the user's clock (not in a daylight-saving change)."""
        validate_local_field(field, user_zone())


class ScheduleWeekForm(FlaskForm):
    """Which week the schedule shows (GET): any day of it."""

    class Meta:
        csrf = False

    week = DateField("Week of", validators=[Optional()])

    def validate_week(self, field):
        if field.data and not day_in_range(field.data):
            raise ValidationError(OUT_OF_RANGE)


@dataclass
class Day:
    """One day column of the week view."""

    day: date
    today: bool
    posts: list[PublishLog] = field(default_factory=list)


@dataclass
class Week:
    monday: date
    days: list[Day]
    start: datetime  # UTC
    end: datetime  # UTC, exclusive

    @property
    def previous(self) -> date:
        return self.monday - timedelta(days=7)

    @property
    def next(self) -> date:
        return self.monday + timedelta(days=7)

    @property
    def count(self) -> int:
        return sum(len(day.posts) for day in self.days)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_view(monday: date) -> Week:
    """The scheduled posts of the week starting `monday`, by day on the user's clock."""
    zone = user_zone()
    start = datetime.combine(monday, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(monday + timedelta(days=7), time.min, tzinfo=zone).astimezone(UTC)
    today = utcnow().astimezone(zone).date()
    days = [Day(monday + timedelta(days=i), monday + timedelta(days=i) == today) for i in range(7)]
    posts = background.upcoming(db, start, end)
    _load_clips_and_accounts(posts)
    for post in posts:
        assert post.next_attempt_at is not None  # upcoming() selects by it
        index = (post.next_attempt_at.astimezone(zone).date() - monday).days
        if 0 <= index < 7:
            days[index].posts.append(post)
    return Week(monday, days, start, end)


def _load_clips_and_accounts(posts: list[PublishLog]) -> None:
    """Two queries for every post's clip and account (lazy loads then find them in the session)."""
    clip_ids = {post.clip_id for post in posts}
    account_ids = {post.social_account_id for post in posts if post.social_account_id}
    if clip_ids:
        list(db.session.scalars(select(Clip).where(Clip.id.in_(clip_ids))))
    if account_ids:
        list(db.session.scalars(select(SocialAccount).where(SocialAccount.id.in_(account_ids))))


def _week_from(value: date | None) -> date:
    return monday_of(value or utcnow().astimezone(user_zone()).date())


def _render(week_form: ScheduleWeekForm, monday: date, **extra):
    week = week_view(monday)
    context: dict[str, Any] = {"week": week, "week_form": week_form, "now": utcnow(),
                               "post_errors": {}, "reschedule_values": {}, "moved": None} | extra
    # An error about a post this week does not show (it started meanwhile, say) goes on top.
    shown = {post.id for day in week.days for post in day.posts}
    context["week_errors"] = [message for log_id, message in context["post_errors"].items()
                              if log_id not in shown]
    if wants_fragment():
        return render_template("schedule/_week.html", **context)
    return render_template("schedule/index.html", **context)


@bp.get("")
@role_required("viewer")
def index():
    """The week of ?week=YYYY-MM-DD (any day of it; this week by default)."""
    form = ScheduleWeekForm(request.args)
    form.validate()
    return _render(form, _week_from(form.week.data if not form.week.errors else None))


@bp.post("/<uuid:log_id>/cancel")
@role_required("editor")
def cancel(log_id: uuid.UUID):
    """Cancel a scheduled post; htmx gets the post's item, saying so, in place."""
    post = background.get_log(db, log_id)  # NotFound for an unknown post
    if not confirmed():
        return ask_first("Cancel this scheduled post?",
                         f"“{post.clip.title}” will not go out at {local_text(post.next_attempt_at)}.",
                         "Cancel the post", url_for("schedule.index", week=request.form.get("week") or None))
    _, error = run_button(lambda: background.cancel(db, log_id))
    if not wants_fragment():
        flash(f"Not cancelled: {error}" if error else "Cancelled the scheduled post.",
              "error" if error else "info")
        return redirect(url_for("schedule.index", week=request.form.get("week") or None))
    return render_template("schedule/_post.html", post=background.get_log(db, log_id),
                           cancel_error=error, post_errors={}, reschedule_values={}, now=utcnow())


@bp.post("/<uuid:log_id>/reschedule")
@role_required("editor")
def reschedule(log_id: uuid.UUID):
    """Move a scheduled post to a time on the user's clock; htmx gets the week again, with the
    post where it now is (or a note when it left the week), or the error next to its input."""
    background.get_log(db, log_id)
    form = RescheduleForm()
    week_form = ScheduleWeekForm(formdata=None, week=_parse_day(form.week.data))
    monday = _week_from(week_form.week.data)
    error = moved = None
    if form.validate_on_submit():
        try:
            moved = background.reschedule(db, log_id, form.scheduled_at.data)
        except (Conflict, InvalidInput) as exc:
            error = refusal_message(exc)
    else:
        error = " ".join(form.scheduled_at.errors) or FORM_EXPIRED
    if moved is not None and not wants_fragment():
        flash("Rescheduled.", "success")
        assert moved.next_attempt_at is not None  # a scheduled post's time
        return redirect(url_for("schedule.index", week=moved.next_attempt_at.astimezone(user_zone()).date()))
    return _render(week_form, monday, moved=moved,
                   post_errors={log_id: error} if error else {},
                   reschedule_values={log_id: request.form.get("scheduled_at", "")} if error else {})


def _parse_day(value: str | None) -> date | None:
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day is not None and day_in_range(day) else None
