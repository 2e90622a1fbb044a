"""Bearer-token authentication and role checks for the JSON API."""

from __future__ import annotations

from functools import wraps

from flask import g, request
from werkzeug.exceptions import Unauthorized

from ..errors import Forbidden, InvalidInput
from ..extensions import db
from ..media.http import is_upload_view
from ..models import Role
from ..users import user_for_token

BODY_METHODS = {"POST", "PUT", "PATCH"}


def authenticate() -> None:
    """before_request of every API blueprint: a valid Bearer token, and a JSON body if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API token as 'Authorization: Bearer <token>'")
    user = user_for_token(db, token.strip())
    if user is None:
        raise Unauthorized("the API token is unknown or revoked")
    g.api_user = user
    if request.method in BODY_METHODS and request.content_length:
        if is_upload_view(request.endpoint) and not request.is_json:
            return  # a file: the view reads (and checks) it
        if not request.is_json:
            raise InvalidInput.field("body", "must be JSON, sent with 'Content-Type: application/json'")
        if request.get_json(silent=True) is None and request.get_data():
            raise InvalidInput.field("body", "is not valid JSON")


def require_role(role: str):
    """Refuse (403) a token whose user's role lacks the rights of `role`."""
    needed = Role(role)

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not g.api_user.has_role(needed):
                raise Forbidden(f"this needs the {needed.value} role; your token acts as {g.api_user.role}")
            return view(*args, **kwargs)

        return wrapper

    return decorate
