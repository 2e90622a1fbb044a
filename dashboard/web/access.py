"""Sign-in and role checks for pages, and the helpers templates use to hide what a role can't do."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from ..models import Role


def role_required(role: str):
    """Signed-in users only (else the sign-in page); 403 when their role lacks `role`'s rights."""
    needed = Role(role)

    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not current_user.has_role(needed):
                abort(403, f"This page needs the {needed.value} role; you are signed in as {current_user.role}.")
            return view(*args, **kwargs)

        return wrapper

    return decorate


def template_helpers() -> dict:
    """`can('editor')` in templates: show a button only to roles that may use it."""

    def can(role: str) -> bool:
        return bool(current_user.is_authenticated and current_user.has_role(role))

    return {"can": can}
