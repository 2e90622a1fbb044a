"""Server-rendered dashboard blueprints (one module per page family)."""

from __future__ import annotations

import uuid

from flask import Flask, session

from ..extensions import db, login_manager
from ..models import User
from ..sessions import user_of_session


def init_app(app: Flask) -> None:
    """Register the dashboard's blueprints, sign-in hooks and template helpers."""
    from . import (
        accounts,
        auth,
        batches,
        clips,
        filters,
        history,
        home,
        htmx,
        ledger,
        media,
        profile,
        schedule,
        tokens,
        users,
    )

    for module in (auth, home, accounts, clips, history, ledger, tokens, users, profile, schedule, batches,
                   media):
        app.register_blueprint(module.bp)

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    filters.init_app(app)
    htmx.init_app(app)


# Where the cookie keeps the id of its server-side session (dashboard/sessions.py).
SESSION_ID_KEY = "sid"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The signed-in user, only while their server-side session is live."""
    try:
        session_id = uuid.UUID(str(session.get(SESSION_ID_KEY)))
        return user_of_session(db, session_id, uuid.UUID(user_id))
    except ValueError:
        return None
