"""Users and API tokens: sign-in checks, roles, and tokens shown once."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from .direct_sql import DirectStatement, connection_of
from .errors import Conflict, InvalidInput, NotFound
from .ledger import record_event
from .models import ROLES, ApiToken, Role, User, utcnow
from .sessions import end_user_sessions
from .transactions import rolls_back

TOKEN_PREFIX = "sdb_"
# ASVS level 2: at least 12 characters; no composition rules (they make passwords weaker).
MIN_PASSWORD_LENGTH = 12
# Writing last_used_at on every call would make each API read a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Checked when the email is unknown, so both cases take the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored in place of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """The form an email is stored and looked up in."""
    return email.strip().lower()


@rolls_back
def create_user(db, email: str, password: str, role: str = "viewer") -> User:
    """Add a user (commits); the password is stored as a salted hash only."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise InvalidInput.field("email", "is not an email address")
    if role not in ROLES:
        raise InvalidInput.field("role", f"must be one of {', '.join(ROLES)}")
    _check_password_strength(password)
    if db.session.scalar(select(User).where(User.email == email)) is not None:
        raise Conflict(f"a user with email {email} already exists")
    user = User(email=email, password_hash=generate_password_hash(password), role=role)
    db.session.add(user)
    try:
        db.session.flush()
        record_event(db.session, "user_created", "user", user.id, {"email": email, "role": role})
        db.session.commit()
    except IntegrityError:
        # Another request added the same email between our check and this commit.
        db.session.rollback()
        raise Conflict(f"a user with email {email} already exists") from None
    return user


def _check_password_strength(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.field(field, f"needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1000:
        raise InvalidInput.field(field, "is too long (at most 1000 characters)")


@rolls_back
def set_password(db, user_id: uuid.UUID, new_password: str, actor_id: uuid.UUID | None = None,
                 keep_session_id: uuid.UUID | None = None) -> User:
    """Give a user a new password (commits): an admin's reset, the CLI, or the user's own change.

    Every session of the user ends but `keep_session_id` (the user's own, when they change
    it themselves): whoever knew the old password is signed out. The ledger notes who did it,
    never the password.
    """
    user = get_user(db, user_id)
    _check_password_strength(new_password, "new_password")
    user.password_hash = generate_password_hash(new_password)
    ended = end_user_sessions(db, user.id, except_id=keep_session_id)
    record_event(db.session, "user_password_changed", "user", user.id, {
        "by": str(actor_id) if actor_id else None, "sessions_ended": ended})
    db.session.commit()
    return user


@rolls_back
def change_own_password(db, user_id: uuid.UUID, current_password: str, new_password: str,
                        keep_session_id: uuid.UUID | None) -> User:
    """A user changes their own password, proving they know the current one (commits)."""
    user = get_user(db, user_id)
    if not check_password_hash(user.password_hash, current_password):
        raise InvalidInput.field("current_password", "is not your current password")
    if current_password == new_password:
        raise InvalidInput.field("new_password", "is your current password; choose another")
    return set_password(db, user_id, new_password, actor_id=user_id, keep_session_id=keep_session_id)


def find_user(db, email: str) -> User:
    """The user with this email, or NotFound."""
    user = db.session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"no user with email {email}")
    return user


def check_password(db, email: str, password: str) -> User | None:
    """The active user with this email and password, else None."""
    user = db.session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def count_users(db) -> int:
    """How many users exist."""
    return db.session.scalar(select(func.count()).select_from(User))


@dataclass(frozen=True)
class NewToken:
    """A freshly created token: `plaintext` is shown once and never stored."""

    token: ApiToken
    plaintext: str


@rolls_back
def create_token(db, user_id: uuid.UUID, name: str) -> NewToken:
    """Create an API token for a user (commits)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput.field("name", "needs 1 to 100 characters")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user_id, name=name, token_hash=hash_token(plaintext),
                     prefix=plaintext[:10])
    db.session.add(token)
    db.session.flush()
    record_event(db.session, "api_token_created", "user", user_id, {"name": name, "prefix": token.prefix})
    db.session.commit()
    return NewToken(token, plaintext)


def list_tokens(db, user_id: uuid.UUID) -> list[ApiToken]:
    """A user's tokens, newest first, revoked ones included."""
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at.desc())))


@rolls_back
def revoke_token(db, user_id: uuid.UUID, token_id: uuid.UUID) -> None:
    """Revoke one of the user's own tokens (commits)."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound(f"token {token_id} does not exist")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record_event(db.session, "api_token_revoked", "user", user_id, {"name": token.name, "prefix": token.prefix})
        db.session.commit()


@rolls_back
def revoke_all_tokens(db, user_id: uuid.UUID) -> int:
    """Revoke every active token of the user (commits); how many were revoked."""
    now = utcnow()
    tokens = list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))))
    for token in tokens:
        token.revoked_at = now
        record_event(db.session, "api_token_revoked", "user", user_id, {"name": token.name, "prefix": token.prefix})
    db.session.commit()
    return len(tokens)


@dataclass(frozen=True)
class TokenUser:
    """The user an API request acts as, read with its token in one Core query: plain values,
    nothing loaded into the session (no identity-map work per request)."""

    id: uuid.UUID
    role: str

    def has_role(self, needed: Role | str) -> bool:
        """True when the user's role includes the rights of `needed` (as User.has_role)."""
        return Role(self.role).allows(Role(needed))


_TOKENS = cast(Table, ApiToken.__table__)
_USERS = cast(Table, User.__table__)
# Built once: every API request runs them, and building a statement costs about as much as
# running it. Revoked tokens and deactivated users match no row: no cache to invalidate, so a
# revocation holds in every process from the next request on.
_ACTIVE_TOKEN = DirectStatement(
    select(_TOKENS.c.id, _TOKENS.c.last_used_at, _USERS.c.id.label("user_id"), _USERS.c.role)
    .join_from(_TOKENS, _USERS, _USERS.c.id == _TOKENS.c.user_id)
    .where(_TOKENS.c.token_hash == bindparam("token_hash"), _TOKENS.c.revoked_at.is_(None),
           _USERS.c.active.is_(True))
)
_NOTE_TOKEN_USED = DirectStatement(update(_TOKENS).where(_TOKENS.c.id == bindparam("token_id"))
                                   .values(last_used_at=bindparam("now")))


def user_for_token(db, plaintext: str) -> TokenUser | None:
    """The active user a bearer token belongs to, else None; notes when the token was used."""
    connection = connection_of(db.session)
    row = _ACTIVE_TOKEN.first(connection, {"token_hash": hash_token(plaintext)})
    if row is None:
        return None
    token_id, last_used_at, user_id, role = row
    now = utcnow()
    if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION:
        _NOTE_TOKEN_USED.execute(connection, {"token_id": token_id, "now": now})
        db.session.commit()
    return TokenUser(user_id, role)


def list_users(db, search: str | None = None) -> list[User]:
    """Every user by email, or those whose email contains `search`."""
    query = select(User).order_by(User.email)
    if search and search.strip():
        query = query.where(User.email.contains(normalise_email(search), autoescape=True))
    return list(db.session.scalars(query))


def get_user(db, user_id: uuid.UUID) -> User:
    """The user, or NotFound."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def _check_not_self(user: User, actor_id: uuid.UUID | None, what: str) -> None:
    # An admin who demotes or deactivates themselves locks themselves out mid-session.
    if actor_id is not None and user.id == actor_id:
        raise Conflict(f"you cannot {what} yourself; ask another admin")


def _is_last_active_admin(db, user: User) -> bool:
    if user.role != "admin" or not user.active:
        return False
    admins = db.session.scalar(
        select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True)))
    return admins <= 1


@rolls_back
def change_role(db, user_id: uuid.UUID, role: str, actor_id: uuid.UUID | None = None) -> User:
    """Give a user another role (commits) and record `user_role_changed`.

    Refuses (Conflict) to change the acting admin's own role or to demote the last active admin,
    so the dashboard always keeps someone who can manage users.
    """
    if role not in ROLES:
        raise InvalidInput.field("role", f"must be one of {', '.join(ROLES)}")
    user = get_user(db, user_id)
    if user.role == role:
        return user
    _check_not_self(user, actor_id, "change the role of")
    if _is_last_active_admin(db, user):
        raise Conflict(f"{user.email} is the last active admin; make another admin first")
    previous = user.role
    user.role = role
    record_event(db.session, "user_role_changed", "user", user.id,
                 {"email": user.email, "role": role, "previous_role": previous, "by": actor_id})
    db.session.commit()
    return user


@rolls_back
def set_user_active(db, user_id: uuid.UUID, active: bool, actor_id: uuid.UUID | None = None) -> User:
    """Deactivate or reactivate a user (commits), recording `user_deactivated`/`user_reactivated`.

    A deactivated user can neither sign in nor use their API tokens. The acting admin cannot
    deactivate themselves, and the last active admin cannot be deactivated (Conflict).
    """
    user = get_user(db, user_id)
    if user.active == active:
        return user
    if not active:
        _check_not_self(user, actor_id, "deactivate")
        if _is_last_active_admin(db, user):
            raise Conflict(f"{user.email} is the last active admin; make another admin first")
    user.active = active
    if not active:
        end_user_sessions(db, user.id)  # signed out everywhere, copies of cookies included
    record_event(db.session, "user_reactivated" if active else "user_deactivated", "user", user.id,
                 {"email": user.email, "by": actor_id})
    db.session.commit()
    return user


@rolls_back
def set_timezone(db, user_id: uuid.UUID, tz: str) -> User:
    """Set the IANA time zone pages show and take times in (commits); records
    `user_timezone_changed`. InvalidInput on `timezone` for a name zoneinfo does not know."""
    tz = (tz or "").strip()
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput.field("timezone", f"{tz!r} is not an IANA time zone (e.g. Europe/Paris)") from None
    user = get_user(db, user_id)
    if user.timezone == tz:
        return user
    previous = user.timezone
    user.timezone = tz
    record_event(db.session, "user_timezone_changed", "user", user.id,
                 {"email": user.email, "timezone": tz, "previous_timezone": previous})
    db.session.commit()
    return user
