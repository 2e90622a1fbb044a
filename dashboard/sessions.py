"""Signed-in sessions, kept on the server.

The browser's cookie (signed by SECRET_KEY) names a row here; the row decides whether the cookie
still signs anyone in. Signing out ends the row, so a copy of the cookie taken before stops
working; deactivating a user or resetting their password ends all of theirs; a session ends
after SESSION_IDLE_TIMEOUT_SECONDS without a request and SESSION_ABSOLUTE_LIFETIME_SECONDS after
sign-in, whatever its cookie says.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import update

from .models import User, UserSession, utcnow

# Writing last_seen_at on every request would make each page view a write; this is precise
# enough for an idle timeout counted in minutes.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, made cheap for requests that do not use it.

    Flask builds its signing serializer on every request, cookie or not; this one is built once
    per set of keys (SECRET_KEY and SECRET_KEY_FALLBACKS, still read on each request). A
    session that is empty and unchanged is not saved: an API call with a bearer token and no
    cookie gets no cookie and writes nothing, as before, without the cookie settings looked up.
    """

    def __init__(self) -> None:
        self._serializer: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app) -> URLSafeTimedSerializer | None:
        """Flask's serializer for the app's current keys, made again only when they change."""
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._serializer
        if cached is None or cached[0] != keys:
            cached = self._serializer = (keys, super().get_signing_serializer(app))
        return cached[1]

    def save_session(self, app, session, response) -> None:
        """As Flask does; an empty session nobody changed only adds `Vary: Cookie` if read."""
        if not session and not session.modified:
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)


def start_session(db, user_id: uuid.UUID) -> uuid.UUID:
    """A new session for a user who just signed in (commits); its id goes into the cookie."""
    row = UserSession(user_id=user_id)
    db.session.add(row)
    db.session.commit()
    return row.id


def user_of_session(db, session_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
    """The active user a live session belongs to, else None; ends a session past its time
    (commits when it writes)."""
    row = db.session.get(UserSession, session_id)
    if row is None or row.ended_at is not None or row.user_id != user_id:
        return None
    now = utcnow()
    config = current_app.config
    idle = timedelta(seconds=config["SESSION_IDLE_TIMEOUT_SECONDS"])
    lifetime = timedelta(seconds=config["SESSION_ABSOLUTE_LIFETIME_SECONDS"])
    if now - row.last_seen_at > idle or now - row.created_at > lifetime:
        row.ended_at = now
        db.session.commit()
        return None
    if not row.user.active:
        return None
    if now - row.last_seen_at > LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
        db.session.commit()
    return row.user


def end_session(db, session_id: uuid.UUID) -> None:
    """Sign out: end this session (commits)."""
    db.session.execute(update(UserSession).where(UserSession.id == session_id,
                                                 UserSession.ended_at.is_(None))
                       .values(ended_at=utcnow()))
    db.session.commit()


def end_user_sessions(db, user_id: uuid.UUID, except_id: uuid.UUID | None = None) -> int:
    """End every open session of a user but `except_id` (the caller commits); how many."""
    query = update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
    if except_id is not None:
        query = query.where(UserSession.id != except_id)
    return db.session.execute(
        query.values(ended_at=utcnow()).execution_options(synchronize_session=False)).rowcount
