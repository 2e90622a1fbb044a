"""Domain errors raised by services; views turn them into problem+json or inline messages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exc as sa_exc


@dataclass(frozen=True)
class FieldError:
    """One invalid input field: `field` is a dotted path such as `metadata.caption`."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class DomainError(Exception):
    """Base of the errors a service raises on purpose; `status` is the HTTP status it maps to."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: list[FieldError] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers (Retry-After, say)."""
        return {}

    @property
    def extra(self) -> dict:
        """Extra members of the problem+json body (the publish log id of an unknown outcome)."""
        return {}


class InvalidInput(DomainError):
    status = 400
    title = "Invalid input"

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        """An error about one field, with the field named in the detail."""
        return cls(f"{field}: {message}", [FieldError(field, message)])

    @classmethod
    def from_pydantic(cls, exc, whole: str = "body") -> InvalidInput:
        """A pydantic ValidationError, one FieldError per problem with its dotted path
        (`metadata.hashtags.0`); `whole` names an error about the input as a whole."""
        errors = [
            FieldError(".".join(str(part) for part in err["loc"]) or whole, err["msg"])
            for err in exc.errors(include_context=False, include_url=False)
        ]
        return cls("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


class NotFound(DomainError):
    status = 404
    title = "Not found"


class ClipNotFound(NotFound):
    """The clip does not exist (it may have been deleted meanwhile)."""

    def __init__(self, clip_id):
        super().__init__(f"clip {clip_id} does not exist")


class AccountNotFound(NotFound):
    """The social account does not exist (it may have been deleted meanwhile)."""

    def __init__(self, account_id):
        super().__init__(f"account {account_id} does not exist")


class PublishLogNotFound(NotFound):
    """The publish log does not exist."""

    def __init__(self, log_id):
        super().__init__(f"publish log {log_id} does not exist")


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class AlreadySubmitted(Conflict):
    """An idempotency key seen before: `still_running` when its first request has no answer
    yet, else it was used with another request."""

    def __init__(self, detail: str, still_running: bool):
        super().__init__(detail)
        self.still_running = still_running


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


# How the drivers name each cause: sqlite3's result codes (`sqlite_errorname`, extended codes
# such as SQLITE_BUSY_SNAPSHOT included) and PostgreSQL's SQLSTATEs (psycopg's `sqlstate`).
_SQLITE_LOCKED = ("SQLITE_BUSY", "SQLITE_LOCKED")
_SQLITE_UNREACHABLE = ("SQLITE_CANTOPEN", "SQLITE_IOERR")
_PG_LOCKED = ("55P03", "40P01")  # lock_not_available (lock_timeout), deadlock_detected
_PG_TIMED_OUT = ("57014", "25P03")  # query_canceled (statement_timeout), idle-in-transaction timeout
# connection exceptions; shut down, crashed, starting up; too many connections
_PG_UNREACHABLE = ("08", "57P01", "57P02", "57P03", "53300")


def database_error_cause(exc: Exception) -> str:
    """What went wrong with the database, in words for messages and log lines:

    - "database is locked": another writer holds the lock (SQLite past its busy timeout,
      PostgreSQL's lock_timeout, a deadlock);
    - "database timed out": a statement, or the wait for a pooled connection, took too long;
    - "database unreachable": no connection could be made, or it was lost;
    - "database integrity error": a constraint refused the change;
    - "database error": anything else (a bad statement, a corrupt file).

    Only these fixed words: the driver's message, which may quote the statement and its
    parameters, never reaches them.
    """
    orig = getattr(exc, "orig", None) or exc
    sqlite_code = getattr(orig, "sqlite_errorname", None) or ""
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if sqlite_code.startswith(_SQLITE_LOCKED) or sqlstate.startswith(_PG_LOCKED):
        return "database is locked"
    if sqlstate.startswith(_PG_TIMED_OUT) or isinstance(exc, sa_exc.TimeoutError):
        return "database timed out"
    if (sqlite_code.startswith(_SQLITE_UNREACHABLE) or sqlstate.startswith(_PG_UNREACHABLE)
            or getattr(exc, "connection_invalidated", False)
            or isinstance(exc, sa_exc.DisconnectionError)
            # psycopg's errors about the connection itself (refused, lost) carry no SQLSTATE
            or (isinstance(exc, sa_exc.OperationalError) and not sqlstate and not sqlite_code)):
        return "database unreachable"
    if isinstance(exc, sa_exc.IntegrityError):
        return "database integrity error"
    return "database error"
