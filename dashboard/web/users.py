"""Users (admins only): list and search, create, change a role, deactivate and reactivate."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from htmx_flask import request  # flask's request, typed with its .htmx

from .. import users as user_service
from ..errors import DomainError
from ..extensions import db
from .access import role_required
from .confirm import ask_first, confirmed
from .forms import (
    EmptyForm,
    ResetPasswordForm,
    SearchForm,
    UserCreateForm,
    UserRoleForm,
    apply_domain_error,
)
from .htmx import wants_fragment

bp = Blueprint("users", __name__, url_prefix="/users")


def role_form_for(user) -> UserRoleForm:
    """The role select of a user's row; the prefix keeps the ids unique on the page."""
    return UserRoleForm(formdata=None, data={"role": user.role}, prefix=f"u{user.id.hex}")


@bp.get("/")
@role_required("admin")
def index():
    """Every user; `q` filters by email (as-you-type through htmx, which gets the table only)."""
    search = SearchForm(request.args)
    query = (search.q.data or "").strip().lower() if search.validate() else ""
    users = user_service.list_users(db, query)
    context = {"users": users, "search": search, "query": query, "role_form_for": role_form_for}
    if wants_fragment():
        return render_template("users/_user_table.html", fragment=True, **context)
    return render_template("users/index.html", **context)


@bp.route("/new", methods=["GET", "POST"])
@role_required("admin")
def create():
    """Add a user with a role and an initial password."""
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            user = user_service.create_user(db, form.email.data, form.password.data, form.role.data)
        except DomainError as exc:
            apply_domain_error(form, exc, default_field="email")
        else:
            flash(f"Added {user.role} {user.email}.", "success")
            return redirect(url_for("users.index", _anchor=f"user-{user.id}"))
    status = 400 if form.is_submitted() else 200
    return render_template("users/new.html", form=form), status


def _row_response(user_id: uuid.UUID, error: str | None = None, done: str | None = None):
    """The user's row for htmx, else back to the list with a flash."""
    user = user_service.get_user(db, user_id)
    if wants_fragment():
        return render_template("users/_user_row.html", user=user, error=error, done=done,
                               role_form=role_form_for(user))
    if error:
        flash(error, "error")
    elif done:
        flash(done, "success")
    return redirect(url_for("users.index", _anchor=f"user-{user_id}"))


@bp.post("/<uuid:user_id>/role")
@role_required("admin")
def change_role(user_id: uuid.UUID):
    """Give a user another role."""
    user = user_service.get_user(db, user_id)
    form = UserRoleForm(prefix=f"u{user.id.hex}")
    if not form.validate_on_submit():
        return _row_response(user_id, error="Pick one of the roles.")
    try:
        user = user_service.change_role(db, user_id, form.role.data, actor_id=current_user.id)
    except DomainError as exc:
        return _row_response(user_id, error=_capitalised(exc.detail))
    return _row_response(user_id, done=f"{user.email} is now {user.role}.")


@bp.post("/<uuid:user_id>/deactivate")
@role_required("admin")
def deactivate(user_id: uuid.UUID):
    """Stop a user from signing in or using their API tokens (after asking)."""
    if not confirmed():
        user = user_service.get_user(db, user_id)
        return ask_first(f"Deactivate {user.email}?",
                         "They are signed out and can no longer sign in or use their API tokens, "
                         "until an admin reactivates them.", "Deactivate",
                         url_for("users.index", _anchor=f"user-{user_id}"))
    return _set_active(user_id, False)


@bp.post("/<uuid:user_id>/reactivate")
@role_required("admin")
def reactivate(user_id: uuid.UUID):
    """Let a deactivated user sign in again."""
    return _set_active(user_id, True)


def _set_active(user_id: uuid.UUID, active: bool):
    user_service.get_user(db, user_id)
    if not EmptyForm().validate_on_submit():
        abort(400, "The form has expired; reload the page and try again.")
    try:
        user = user_service.set_user_active(db, user_id, active, actor_id=current_user.id)
    except DomainError as exc:
        return _row_response(user_id, error=_capitalised(exc.detail))
    return _row_response(user_id, done=f"{user.email} is {'active again' if active else 'deactivated'}.")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@bp.route("/<uuid:user_id>/password", methods=["GET", "POST"])
@role_required("admin")
def reset_password(user_id: uuid.UUID):
    """An admin sets a new password for a user, who is signed out everywhere."""
    user = user_service.get_user(db, user_id)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        keep = None
        if user.id == current_user.id:
            from .profile import _current_session_id

            keep = _current_session_id()
        try:
            user_service.set_password(db, user_id, form.new_password.data, actor_id=current_user.id,
                                      keep_session_id=keep)
        except DomainError as exc:
            apply_domain_error(form, exc, default_field="new_password")
        else:
            flash(f"New password set for {user.email}; they are signed out everywhere.", "success")
            return redirect(url_for("users.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("users/password.html", form=form, user=user), status
