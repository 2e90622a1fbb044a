"""App-wide template filters, globals and context processors (the one place for them).

Every moment on a page is on the user's clock.

The database keeps UTC. Pages show each moment in the signed-in user's profile zone, named by
its abbreviation and UTC offset at that moment (so summer and winter times each say which clock
they are on), and read the dates and times people type in that zone too.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import Flask
from flask_login import current_user
from markupsafe import Markup, escape

from ..linking import reconnect_warning as linking_reconnect_warning
from ..models import PublishStatus, platform_name

UTC = ZoneInfo("UTC")
# The IANA areas of real places; leaves out US/Pacific, Etc/GMT+5, EST5EDT, posix/* and the like.
ZONE_AREAS = ("Africa/", "America/", "Antarctica/", "Asia/", "Atlantic/", "Australia/", "Europe/",
              "Indian/", "Pacific/")


@lru_cache(maxsize=1)
def _tzdata() -> tuple[frozenset[str], dict[str, str]]:
    """The zones and the links (alias -> zone) of the system's tzdata.zi; without that file, every
    zone this machine knows and no links."""
    for folder in TZPATH:
        path = Path(folder) / "tzdata.zi"
        if path.is_file():
            zones, links = set(), {}
            for line in path.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "Z":
                    zones.add(parts[1])
                elif len(parts) == 3 and parts[0] == "L":
                    links[parts[2]] = parts[1]
            return frozenset(zones), links
    return frozenset(available_timezones()), {}


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    """The zones the profile offers: UTC, then every zone of a real place, sorted (no aliases)."""
    zones, _ = _tzdata()
    return ("UTC",) + tuple(sorted(name for name in zones if name.startswith(ZONE_AREAS)))


@lru_cache(maxsize=1)
def zone_aliases() -> dict[str, str]:
    """Old names of the offered zones (Asia/Calcutta -> Asia/Kolkata): browsers still report some."""
    offered = set(timezone_names())
    return {alias: zone for alias, zone in _tzdata()[1].items() if zone in offered}


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


def utc_offset(shown: datetime) -> str:
    """The offset of an aware moment as `UTC+05:30` (`UTC` itself for zero)."""
    offset = shown.utcoffset()
    assert offset is not None, "utc_offset() needs an aware datetime"
    minutes = round(offset.total_seconds() / 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def zone_label(shown: datetime) -> str:
    """What names the clock of an aware moment: `PDT, UTC-07:00`; `UTC` alone for UTC.

    Zones without a letter abbreviation (tzdata writes `+04`) are named by their offset only.
    """
    offset = utc_offset(shown)
    abbreviation = shown.tzname() or ""
    if abbreviation in ("", "UTC") or abbreviation[0] in "+-":
        return offset
    return f"{abbreviation}, {offset}"


def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M", label: bool = True) -> Markup:
    """`<time>` of a UTC moment on the user's clock, its zone named after it
    (`2026-11-26 09:00 CET, UTC+01:00`); the machine-readable value stays UTC and the title
    names the zone (`Europe/Paris`)."""
    if moment is None:
        return Markup('<span class="muted">&mdash;</span>')
    zone = user_zone()
    shown = moment.astimezone(zone)
    iso = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text = escape(shown.strftime(fmt))
    if label:
        text += Markup(' <span class="tz">') + escape(zone_label(shown)) + Markup("</span>")
    return Markup(f'<time datetime="{escape(iso)}" title="{escape(zone.key)}">') + text + Markup("</time>")


def local_text(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC moment as plain text on the user's clock, zone named (`2026-11-26 09:00 CET,
    UTC+01:00`): for sentences that are escaped as a whole, such as messages."""
    if moment is None:
        return "an unknown time"
    shown = moment.astimezone(user_zone())
    return f"{shown.strftime(fmt)} {zone_label(shown)}"


def local_date(moment: datetime | None) -> str | None:
    """The user's calendar day of a UTC moment, as YYYY-MM-DD (the schedule's ?week=)."""
    return moment.astimezone(user_zone()).date().isoformat() if moment else None


def local_input(moment: datetime | None) -> str:
    """A UTC moment as a datetime-local input's value on the user's clock."""
    return moment.astimezone(user_zone()).strftime("%Y-%m-%dT%H:%M") if moment else ""


def local_day_start(day: date, zone: ZoneInfo | None = None) -> datetime:
    """The moment the user's calendar day `day` begins (midnight on their clock, as UTC)."""
    return datetime.combine(day, time.min, tzinfo=zone or user_zone()).astimezone(UTC)


def local_day_end(day: date, zone: ZoneInfo | None = None) -> datetime:
    """The moment after the user's calendar day `day` (the next midnight on their clock, as UTC)."""
    return local_day_start(day + timedelta(days=1), zone)


def zone_context() -> dict:
    """`user_zone_name` (the IANA name) and `user_zone_label` (its clock now, `CET, UTC+01:00`)
    in every template, for headings such as "Times in Europe/Paris"."""
    zone = user_zone() if current_user and current_user.is_authenticated else UTC
    return {"user_zone_name": zone.key, "user_zone_label": zone_label(datetime.now(zone))}


def status_label(status: str) -> str:
    """A publish status as pages name it, the same in every badge and filter ("Published")."""
    try:
        return PublishStatus(status).label
    except ValueError:
        return status


def duration(delta) -> str:
    """A timedelta as '3 d 4 h', '52 min' or 'expired'."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "expired"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {rest // 60} min"
    return f"{max(rest // 60, 1)} min"


def reconnect_warning(account, when) -> str | None:
    """For every page: the warning on a post whose account must be reconnected before `when`."""
    return linking_reconnect_warning(account, when)


def ago(delta) -> str:
    """Elapsed time as '5 min ago', or 'just now' under a minute."""
    if delta.total_seconds() < 60:
        return "just now"
    return f"{duration(delta)} ago"


def new_idempotency_key() -> str:
    """A fresh idempotency key: one per render of a form that creates work (see web/submit.py)."""
    return uuid.uuid4().hex


def role_helpers() -> dict:
    """`can('editor')` in templates: show a button only to roles that may use it."""

    def can(role: str) -> bool:
        return bool(current_user.is_authenticated and current_user.has_role(role))

    return {"can": can}


def init_app(app: Flask) -> None:
    """Register the app-wide filters, globals and context processors (every page's templates)."""
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(local_date, "local_date")
    app.add_template_filter(local_text, "local_text")
    app.add_template_filter(local_input, "local_input")
    app.add_template_filter(status_label, "status_label")
    app.add_template_filter(platform_name, "platform_name")
    app.add_template_filter(duration, "duration")
    app.add_template_filter(ago, "ago")
    app.add_template_global(reconnect_warning, "reconnect_warning")
    app.add_template_global(new_idempotency_key, "new_idempotency_key")
    app.context_processor(zone_context)
    app.context_processor(role_helpers)
