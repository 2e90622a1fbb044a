"""The signed-in user's profile: the time zone pages show and take times in.

The database keeps UTC; every page that shows or asks for a scheduled time converts with
`user_zone()` and labels the time with the zone's name, so nobody has to guess which clock a
time is on.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from markupsafe import Markup, escape

from ..errors import DomainError
from ..extensions import db
from ..models import utcnow
from ..users import set_timezone
from .access import role_required
from .forms import ProfileForm, apply_domain_error

bp = Blueprint("profile", __name__, url_prefix="/profile")

UTC = ZoneInfo("UTC")


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows, sorted (the profile's select)."""
    return tuple(sorted(available_timezones() | {"UTC"}))


def zone_named(name: str | None) -> ZoneInfo:
    """The zone called `name`; UTC for a name this machine does not know."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def user_zone() -> ZoneInfo:
    """The signed-in user's time zone (UTC for anonymous users)."""
    return zone_named(getattr(current_user, "timezone", None) if current_user else None)


def local(moment: datetime | None, zone: ZoneInfo | None = None) -> datetime | None:
    """A UTC moment on the user's clock."""
    if moment is None:
        return None
    return moment.astimezone(zone or user_zone())


@bp.app_template_filter("local_time")
def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M", label: bool = True) -> Markup:
    """`<time>` of a UTC moment on the user's clock, labelled with the zone's name
    (`2026-11-26 09:00 (Europe/Paris)`); the machine-readable value stays UTC."""
    if moment is None:
        return Markup('<span class="muted">&mdash;</span>')
    zone = user_zone()
    shown = moment.astimezone(zone)
    text = shown.strftime(fmt) + (f" ({zone.key})" if label else "")
    iso = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return Markup(f'<time datetime="{escape(iso)}" title="{escape(shown.strftime("%Y-%m-%d %H:%M %Z"))}, '
                  f'{escape(zone.key)}">{escape(text)}</time>')


@bp.app_template_filter("local_date")
def local_date(moment: datetime | None) -> str | None:
    """The user's calendar day of a UTC moment, as YYYY-MM-DD (the schedule's ?week=)."""
    return moment.astimezone(user_zone()).date().isoformat() if moment else None


@bp.app_template_filter("local_input")
def local_input(moment: datetime | None) -> str:
    """A UTC moment as a datetime-local input's value on the user's clock."""
    return moment.astimezone(user_zone()).strftime("%Y-%m-%dT%H:%M") if moment else ""


@bp.app_context_processor
def zone_helpers() -> dict:
    """`user_zone_name` in every template, for headings such as "Times in Europe/Paris"."""
    return {"user_zone_name": user_zone().key if current_user and current_user.is_authenticated else "UTC"}


@bp.route("", methods=["GET", "POST"])
@role_required("viewer")
def index():
    """Show the user's account details and save their time zone."""
    form = ProfileForm(timezone=current_user.timezone or "UTC")
    form.timezone.choices = list(timezone_names())
    if form.validate_on_submit():
        try:
            set_timezone(db, current_user.id, form.timezone.data)
        except DomainError as exc:
            db.session.rollback()
            apply_domain_error(form, exc, default_field="timezone")
        else:
            flash(f"Saved: times are shown in {form.timezone.data}.", "success")
            return redirect(url_for("profile.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("profile/index.html", form=form, now=utcnow()), status
