"""Sign-in and sign-out, with a throttle on failed sign-ins.

The throttle counts failures per (email, client IP) in a sliding window and, once the limit is
reached, refuses further attempts *without checking the password*, so a locked-out guesser
learns nothing. It lives in this process's memory, on purpose: no table, no migration, nothing
to clean up, and a restart forgets it. The price: with N gunicorn workers (2 by default) a
guesser who lands on every worker gets up to N x LOGIN_THROTTLE_MAX_FAILURES guesses per window;
that is still a handful per quarter hour. Move it to the database or Redis if that ever matters.
The client IP is `request.remote_addr`: behind a reverse proxy, wrap the app in werkzeug's
ProxyFix, or every client shares the proxy's address (the throttle then works per email only).
"""

from __future__ import annotations

import math
import uuid
import threading
import time
from collections import deque
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import db
from ..sessions import end_session, start_session
from ..users import check_password, normalise_email
from . import SESSION_ID_KEY
from .forms import EmptyForm, LoginForm

bp = Blueprint("auth", __name__)

# Beyond this many remembered (email, IP) pairs, expired ones are swept on the next failure.
_SWEEP_ABOVE = 10_000


class SignInThrottle:
    """Failed sign-ins per key in a sliding window, in memory, safe across threads."""

    def __init__(self, max_failures: int, window_seconds: float, clock=time.monotonic):
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        return failures

    def retry_after(self, key) -> float:
        """Seconds until `key` may try again; 0 when it may try now."""
        with self._lock:
            now = self.clock()
            failures = self._recent(key, now)
            if len(failures) < self.max_failures:
                return 0.0
            return max(0.0, self.window - (now - failures[-self.max_failures]))

    def record_failure(self, key) -> None:
        """Count one failed attempt for `key`."""
        with self._lock:
            now = self.clock()
            if len(self._failures) > _SWEEP_ABOVE:
                for other in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[other]
            failures = self._recent(key, now)
            failures.append(now)
            self._failures[key] = failures

    def reset(self, key) -> None:
        """Forget `key`'s failures (after a successful sign-in)."""
        with self._lock:
            self._failures.pop(key, None)


def sign_in_throttle() -> SignInThrottle:
    """This app's throttle, made on first use from LOGIN_THROTTLE_* settings."""
    throttle = current_app.extensions.get("sign_in_throttle")
    if throttle is None:
        throttle = SignInThrottle(
            current_app.config["LOGIN_THROTTLE_MAX_FAILURES"],
            current_app.config["LOGIN_THROTTLE_WINDOW_SECONDS"],
        )
        current_app.extensions["sign_in_throttle"] = throttle
    return throttle


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
    """A user deactivated by an admin loses a live session at their next request."""
    if current_user.is_authenticated and not current_user.is_active:
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
        key = (normalise_email(form.email.data), request.remote_addr or "")
        throttle = sign_in_throttle()
        wait = throttle.retry_after(key)
        if wait:
            minutes = max(1, math.ceil(wait / 60))
            form.form_errors.append(
                f"Too many failed sign-ins for this email. Wait {minutes} "
                f"minute{'s' if minutes != 1 else ''} and try again.")
            current_app.logger.warning("sign-in throttled for a client at %s", key[1])
            status = 429
        else:
            user = check_password(db, form.email.data, form.password.data)
            if user is None:
                throttle.record_failure(key)
                form.form_errors.append("Wrong email or password, or the account is deactivated.")
                status = 400
            else:
                throttle.reset(key)
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
