"""Domain errors raised by services; views turn them into problem+json or inline messages."""

from __future__ import annotations

from dataclasses import dataclass


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


def database_error_cause(exc: Exception) -> str:
    """What went wrong with the database, for messages and log lines: "database is locked"
    (SQLite's lock held by another writer past the busy timeout) or "database unreachable"."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "database is locked" in text or "database table is locked" in text:
        return "database is locked"
    return "database unreachable"
