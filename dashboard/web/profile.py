"""The signed-in user's profile: the time zone pages show and take times in.

The database keeps UTC; `filters.py` shows every moment on every page in this zone, named.
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from ..errors import DomainError
from ..extensions import db
from ..models import utcnow
from ..users import change_own_password, set_timezone
from .access import role_required
from .filters import timezone_names, user_zone, zone_aliases, zone_label  # noqa: F401 (user_zone: clips.py imports it here)
from .forms import ChangePasswordForm, ProfileForm, apply_domain_error

bp = Blueprint("profile", __name__, url_prefix="/profile")


def timezone_choices(current: str | None) -> list[tuple[str, str]]:
    """The zone picker's options, each with its clock now (`Asia/Kolkata (IST, UTC+05:30)`);
    a saved alias (US/Pacific) stays selectable so saving other settings keeps it."""
    names = list(timezone_names())
    if current and current not in names:
        names.insert(0, current)
    now = utcnow()
    return [(name, f"{name} ({zone_label(now.astimezone(ZoneInfo(name)))})") for name in names]


@bp.route("", methods=["GET", "POST"])
@role_required("viewer")
def index():
    """Show the user's account details and save their time zone."""
    form = ProfileForm(timezone=current_user.timezone or "UTC")
    form.timezone.choices = timezone_choices(current_user.timezone)
    if form.validate_on_submit():
        try:
            set_timezone(db, current_user.id, form.timezone.data)
        except DomainError as exc:
            apply_domain_error(form, exc, default_field="timezone")
        else:
            flash(f"Saved: times are shown in {form.timezone.data}.", "success")
            return redirect(url_for("profile.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("profile/index.html", form=form, now=utcnow(),
                           zone_aliases=json.dumps(zone_aliases(), separators=(",", ":"))), status


def _current_session_id():
    import uuid

    from flask import session

    from . import SESSION_ID_KEY

    try:
        return uuid.UUID(str(session.get(SESSION_ID_KEY)))
    except ValueError:
        return None


@bp.route("/password", methods=["GET", "POST"])
@role_required("viewer")
def password():
    """Change one's own password (the current one proves it is you); every other session of
    yours is signed out."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            change_own_password(db, current_user.id, form.current_password.data,
                                form.new_password.data, keep_session_id=_current_session_id())
        except DomainError as exc:
            apply_domain_error(form, exc, default_field="new_password")
        else:
            flash("Password changed; your other sessions are signed out.", "success")
            return redirect(url_for("profile.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("profile/password.html", form=form), status
