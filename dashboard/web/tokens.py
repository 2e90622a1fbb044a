"""API tokens: each signed-in user lists, creates and revokes their own.

A new token's plaintext is on the response to the POST that made it, and nowhere else: it is
not stored, not flashed (flashes live in the session cookie) and the page is not cached.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from ..errors import DomainError
from ..extensions import db
from ..models import ApiToken
from ..users import create_token, list_tokens, revoke_all_tokens, revoke_token
from .access import role_required
from .confirm import ask_first, confirmed
from .forms import EmptyForm, TokenForm, apply_domain_error
from .htmx import wants_fragment

bp = Blueprint("tokens", __name__, url_prefix="/tokens")


def _page(form: TokenForm, new_token=None, status: int = 200):
    response = render_template(
        "tokens/index.html", form=form, tokens=list_tokens(db, current_user.id),
        new_token=new_token)
    return response, status, {"Cache-Control": "no-store"}


@bp.get("/")
@role_required("viewer")
def index():
    """The signed-in user's tokens and the form to make one."""
    return _page(TokenForm())


@bp.post("/")
@role_required("viewer")
def create():
    """Make a token; the response is the only time its plaintext is shown."""
    form = TokenForm()
    if form.validate_on_submit():
        try:
            new_token = create_token(db, current_user.id, form.name.data)
        except DomainError as exc:
            apply_domain_error(form, exc, default_field="name")
        else:
            return _page(TokenForm(formdata=None), new_token=new_token, status=201)
    return _page(form, status=400)


@bp.post("/<uuid:token_id>/revoke")
@role_required("viewer")
def revoke(token_id: uuid.UUID):
    """Revoke one of the user's own tokens; an htmx request gets the updated row."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404, "That token does not exist.")
    if not confirmed():
        return ask_first(f"Revoke the token “{token.name}”?",
                         "Scripts that use it stop working at once; a revoked token cannot be "
                         "turned back on.", "Revoke", url_for("tokens.index"))
    if not EmptyForm().validate_on_submit():
        abort(400, "The form has expired; reload the page and try again.")
    revoke_token(db, current_user.id, token_id)  # NotFound for someone else's token
    if wants_fragment():
        token = db.session.get(ApiToken, token_id)  # revoke_token checked it is the user's
        return render_template("tokens/_token_row.html", token=token)
    flash("Token revoked: it no longer works for API calls.", "info")
    return redirect(url_for("tokens.index"))


@bp.post("/revoke-all")
@role_required("viewer")
def revoke_all():
    """Revoke every active token of the signed-in user (after asking)."""
    if not confirmed():
        return ask_first("Revoke all your API tokens?",
                         "Every script that calls the API as you stops working at once; revoked "
                         "tokens cannot be turned back on.", "Revoke all", url_for("tokens.index"))
    if not EmptyForm().validate_on_submit():
        abort(400, "The form has expired; reload the page and try again.")
    count = revoke_all_tokens(db, current_user.id)
    flash(f"Revoked {count} token{'' if count == 1 else 's'}: they no longer work for API calls."
          if count else "You had no active token to revoke.", "info")
    return redirect(url_for("tokens.index"))
