"""Sign-in and role checks for pages (templates ask `can(role)`, from web/filters.py)."""

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

