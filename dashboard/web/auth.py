"""Sign-in and sign-out.

Failed sign-ins are throttled in the database (dashboard/sign_in.py), per email and client
address and per email, across every process and machine; the client address is
`request.remote_addr` (set TRUSTED_PROXIES behind a reverse proxy). Every sign-in, success or
failure, is logged with the email and address, never the password.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from .. import sign_in
from ..extensions import db
from ..sessions import end_session, start_session
from ..users import check_password, normalise_email
from . import SESSION_ID_KEY
from .forms import EmptyForm, LoginForm

bp = Blueprint("auth", __name__)


def local_path(target: str | None) -> str | None:
    """`target` when it is a path on this site (safe to redirect to), else None."""
    if not target:
        return None
    # "//evil.example" and "/\\evil.example" are read by browsers as another host.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(char) < 32 or ord(char) == 127 for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def end_current_session() -> None:
    """End this browser's server-side session: a copy of its cookie signs nobody in any more."""
    try:
        end_session(db, uuid.UUID(str(session.pop(SESSION_ID_KEY, None))))
    except ValueError:
        pass


@bp.before_app_request
def sign_out_deactivated_users():
    """A user deactivated by an admin loses a live session at their next request.

    Only a cookie naming a server-side session can sign anyone in (web.load_user), so a
    request without one (an API call with a bearer token) has no user to load or sign out.
    """
    if SESSION_ID_KEY in session and current_user.is_authenticated and not current_user.is_active:
        logout_user()


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; on success, back to `next` when it is a local path, else home."""
    next_url = local_path(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("home.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email, client = normalise_email(form.email.data), request.remote_addr or ""
        attempt = sign_in.begin_attempt(db, email, client)
        if isinstance(attempt, sign_in.Throttled):
            minutes = attempt.minutes
            form.form_errors.append(
                f"Too many failed sign-ins for this email. Wait {minutes} "
                f"minute{'s' if minutes != 1 else ''} and try again.")
            current_app.logger.warning("sign-in throttled for %s from %s", email, client)
            status = 429
        else:
            user = check_password(db, form.email.data, form.password.data)
            if user is None:
                current_app.logger.warning("sign-in failed for %s from %s", email, client)
                form.form_errors.append("Wrong email or password, or the account is deactivated.")
                status = 400
            else:
                sign_in.attempt_succeeded(db, email, client)
                current_app.logger.info("sign-in succeeded for %s from %s", email, client)
                session.clear()  # nothing from before sign-in carries over
                login_user(user)
                session[SESSION_ID_KEY] = str(start_session(db, user.id))
                flash(f"Signed in as {user.email}.", "success")
                return redirect(next_url or url_for("home.index"))
    elif form.is_submitted():
        status = 400
    return render_template("auth/login.html", form=form, next_url=next_url), status


@bp.post("/logout")
@login_required
def logout():
    """Sign out (a POST with a CSRF token, so another site cannot sign a user out)."""
    form = EmptyForm()
    if form.validate_on_submit():
        end_current_session()
        logout_user()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
