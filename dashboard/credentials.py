"""Encryption at rest for account credentials.

Credentials are a JSON object encrypted with MultiFernet over `CREDENTIALS_KEYS` (newest first),
so keys can be rotated: new writes use the newest key, reads accept every listed key, and
`rotate_credentials` re-encrypts every account under the newest. Plain values leave this module
only towards a provider client (`get_account_credentials`); everything else sees a
`CredentialSummary`, which names the keys that are set and never their values.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import select

from .errors import AccountNotFound, FieldError, InvalidInput
from .ledger import record_event
from .models import SocialAccount, platform_name
from .transactions import rolls_back

# The keys a provider client needs, per platform (see shared/platforms.md).
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "instagram": ("access_token", "instagram_account_id"),
    "tiktok": ("client_key", "client_secret", "access_token"),
    "youtube": ("client_id", "client_secret", "access_token"),
}
# Keys a form may also set: useful context, never required.
OPTIONAL_KEYS: dict[str, tuple[str, ...]] = {
    "instagram": ("facebook_page_id",),
    "tiktok": ("refresh_token",),
    "youtube": ("refresh_token",),
}


# Each key as a person names it: forms and pages show these, never the raw key.
KEY_LABELS: dict[str, str] = {
    "access_token": "Access token",
    "instagram_account_id": "Instagram account ID",
    "facebook_page_id": "Facebook Page ID",
    "client_key": "Client key",
    "client_secret": "Client secret",
    "client_id": "Client ID",
    "refresh_token": "Refresh token",
}


def key_label(key: str) -> str:
    """A credential key as words: `access_token` -> "Access token"."""
    return KEY_LABELS.get(key, key.replace("_", " ").capitalize())


class CredentialError(Exception):
    """Stored credentials exist but cannot be decrypted with any configured key."""


@dataclass(frozen=True)
class CredentialSummary:
    """What may be shown about an account's credentials: a status and the names of set keys."""

    status: str  # "none" | "incomplete" | "complete" | "unreadable"
    keys_set: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def _fernet() -> MultiFernet:
    keys = current_app.config["CREDENTIALS_KEYS"]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_credentials(values: dict[str, str]) -> str:
    """Encrypt a credentials dict under the newest key."""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt_credentials(ciphertext: str) -> dict[str, str]:
    """Decrypt a stored token; raises CredentialError when no key opens it."""
    try:
        return json.loads(_fernet().decrypt(ciphertext.encode()))
    except (InvalidToken, ValueError) as exc:
        raise CredentialError("stored credentials cannot be decrypted with the configured keys") from exc


def missing_keys(platform: str, values: dict[str, str]) -> tuple[str, ...]:
    """The required keys of `platform` that are absent or empty in `values`."""
    return tuple(
        key for key in REQUIRED_KEYS.get(platform, ()) if not str(values.get(key) or "").strip()
    )


def _account(session, account_id: uuid.UUID) -> SocialAccount:
    account = session.get(SocialAccount, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    return account


def get_account_credentials(db, account_id: uuid.UUID) -> dict[str, str] | None:
    """The decrypted credentials of an account, None when none are stored.

    Raises CredentialError when they cannot be decrypted. Only provider clients should call this.
    """
    account = _account(db.session, account_id)
    if account.credentials_ciphertext is None:
        return None
    return decrypt_credentials(account.credentials_ciphertext)


def summarize(account: SocialAccount) -> CredentialSummary:
    """The status of an account's credentials, safe to show anywhere."""
    if account.credentials_ciphertext is None:
        return CredentialSummary("none", (), REQUIRED_KEYS.get(account.platform, ()))
    try:
        values = decrypt_credentials(account.credentials_ciphertext)
    except CredentialError:
        return CredentialSummary("unreadable")
    keys_set = tuple(sorted(k for k, v in values.items() if str(v or "").strip()))
    missing = missing_keys(account.platform, values)
    return CredentialSummary("incomplete" if missing else "complete", keys_set, missing)


def allowed_keys(platform: str) -> tuple[str, ...]:
    """Every key a credentials form of `platform` may set."""
    return REQUIRED_KEYS.get(platform, ()) + OPTIONAL_KEYS.get(platform, ())


def _check_values(account: SocialAccount, values: dict[str, str], clear=()) -> dict[str, str]:
    """The stripped, non-empty values; refuses keys the platform does not take."""
    allowed = allowed_keys(account.platform)
    unknown = sorted((set(values) | set(clear)) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"{platform_name(account.platform)} credentials take only: {', '.join(allowed)}",
            [FieldError(f"credentials.{key}", f"is not a {platform_name(account.platform)} credential")
             for key in unknown],
        )
    bad_type = [key for key, value in values.items() if not isinstance(value, str)]
    if bad_type:
        raise InvalidInput.field(f"credentials.{bad_type[0]}", "must be a string")
    return {key: value.strip() for key, value in values.items() if value and value.strip()}


def _store(db, account: SocialAccount, values: dict[str, str], cleared: list[str]) -> CredentialSummary:
    """Encrypt and store `values` (or forget the credentials when empty), record it, commit."""
    account.credentials_ciphertext = encrypt_credentials(values) if values else None
    # New credentials are the fix for a refused token: publishing may go on. Tokens entered by
    # hand are not the linked ones: their expiry is unknown, so nothing refreshes them.
    if values:
        account.needs_credentials = False
        account.needs_credentials_reason = None
    account.forget_token_metadata()
    summary = summarize(account)
    if values:
        metadata = {"platform": account.platform, "keys_set": list(summary.keys_set), "status": summary.status}
        if cleared:
            metadata["keys_cleared"] = cleared
        record_event(db.session, "account_credentials_set", "account", account.id, metadata)
    else:
        record_event(db.session, "account_credentials_removed", "account", account.id,
                     {"platform": account.platform, "keys_cleared": cleared})
    db.session.commit()
    return summary


@rolls_back
def set_account_credentials(db, account_id: uuid.UUID, values: dict[str, str]) -> CredentialSummary:
    """Encrypt and store an account's credentials, replacing any earlier ones (commits).

    Unknown keys are refused; empty values are dropped, so a partial set is stored as
    `incomplete` and the publishing engine falls back to the simulator for it.
    """
    account = _account(db.session, account_id)
    cleaned = _check_values(account, values)
    if not cleaned:
        raise InvalidInput.field("credentials", "at least one value is needed")
    return _store(db, account, cleaned, [])


@rolls_back
def update_account_credentials(db, account_id: uuid.UUID, values: dict[str, str],
                               clear: tuple[str, ...] | list[str] = ()) -> CredentialSummary:
    """Merge `values` into an account's stored credentials (commits): empty values keep what is
    stored, keys in `clear` are forgotten, the rest stays.

    Credentials no configured key can open cannot be merged: the typed values replace them.
    Clearing every key forgets the credentials, as `remove_account_credentials` does.
    """
    account = _account(db.session, account_id)
    cleaned = _check_values(account, values, clear)
    both = sorted(set(cleaned) & set(clear))
    if both:
        raise InvalidInput(
            "type a new value or clear the stored one, not both",
            [FieldError(f"credentials.{key}", "type a new value or clear the stored one, not both")
             for key in both])
    stored: dict[str, str] = {}
    if account.credentials_ciphertext is not None:
        try:
            stored = decrypt_credentials(account.credentials_ciphertext)
        except CredentialError:
            stored = {}
    cleared = sorted(key for key in clear if key in stored)
    merged = {key: value for key, value in stored.items() if key not in clear} | cleaned
    if not cleaned and not cleared:
        raise InvalidInput.field("credentials", "type at least one value, or tick a stored key to clear")
    return _store(db, account, merged, cleared)


@rolls_back
def remove_account_credentials(db, account_id: uuid.UUID) -> None:
    """Forget an account's credentials (commits); publishing then uses the simulator."""
    account = _account(db.session, account_id)
    if account.credentials_ciphertext is None:
        return
    account.credentials_ciphertext = None
    account.forget_token_metadata()
    record_event(db.session, "account_credentials_removed", "account", account.id,
                 {"platform": account.platform})
    db.session.commit()


@dataclass(frozen=True)
class RotationReport:
    rotated: int
    unreadable: int


def rotate_credentials(db) -> RotationReport:
    """Re-encrypt every account's credentials under the newest key (commits).

    Tokens no configured key can open are left as they are and counted, never dropped.
    """
    fernet = _fernet()
    rotated = unreadable = 0
    accounts = db.session.scalars(
        select(SocialAccount).where(SocialAccount.credentials_ciphertext.is_not(None))
    )
    for account in accounts:
        try:
            account.credentials_ciphertext = fernet.rotate(
                account.credentials_ciphertext.encode()
            ).decode()
            rotated += 1
        except InvalidToken:
            unreadable += 1
    record_event(db.session, "credentials_rotated", "system", uuid.UUID(int=0),
                 {"rotated": rotated, "unreadable": unreadable})
    db.session.commit()
    return RotationReport(rotated, unreadable)
