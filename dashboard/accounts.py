"""Accounts service: main accounts and their satellites, per platform."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .credentials import OPTIONAL_KEYS, REQUIRED_KEYS
from .errors import AccountNotFound, Conflict, FieldError, InvalidInput
from .ledger import record_event
from .models import PLATFORMS, LedgerEvent, SocialAccount, platform_name
from .schemas import AccountIn, AccountPatch
from .transactions import rolls_back


def get_account(db, account_id: uuid.UUID) -> SocialAccount:
    """The account, or NotFound."""
    account = db.session.get(SocialAccount, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    return account


def list_accounts(db, platform: str | None = None) -> list[SocialAccount]:
    """Every account, by platform then handle."""
    query = select(SocialAccount).order_by(SocialAccount.platform, SocialAccount.handle)
    if platform:
        query = query.where(SocialAccount.platform == platform)
    return list(db.session.scalars(query))


def credentials_refused_at(db, accounts: Iterable[SocialAccount]) -> dict[uuid.UUID, datetime]:
    """When the platform last refused the credentials of each account that needs new ones
    (the ledger's `account_needs_credentials` events; one query for all)."""
    flagged = [account.id for account in accounts if account.needs_credentials]
    if not flagged:
        return {}
    rows = db.session.execute(
        select(LedgerEvent.entity_id, func.max(LedgerEvent.created_at))
        .where(LedgerEvent.entity_type == "account",
               LedgerEvent.event_type == "account_needs_credentials",
               LedgerEvent.entity_id.in_(flagged))
        .group_by(LedgerEvent.entity_id))
    return {account_id: when for account_id, when in rows}


@dataclass
class AccountTree:
    """A main account and its satellites; or, when `orphan`, an active satellite whose main
    account is inactive (it can still be published to on its own)."""

    main: SocialAccount
    satellites: list[SocialAccount] = field(default_factory=list)
    orphan: bool = False

    @property
    def accounts(self) -> list[SocialAccount]:
        """The main account first, then its satellites."""
        return [self.main, *self.satellites]


def account_trees(db, platform: str | None = None, *, active_only: bool = False) -> dict[str, list[AccountTree]]:
    """Per platform (in PLATFORMS order, empty platforms kept), each main account by handle with
    its satellites by handle under it: the one main/satellite tree every page shows.

    `active_only` (where one publishes) leaves out inactive accounts; an active satellite of an
    inactive main account then becomes a tree of its own, marked `orphan`.
    """
    accounts = [a for a in list_accounts(db, platform) if a.active or not active_only]
    trees: dict[str, list[AccountTree]] = {p: [] for p in PLATFORMS if platform in (None, p)}
    by_main: dict[uuid.UUID, AccountTree] = {}
    for account in accounts:
        if account.is_main:
            by_main[account.id] = AccountTree(account)
            trees.setdefault(account.platform, []).append(by_main[account.id])
    for account in accounts:
        if account.is_main:
            continue
        tree = by_main.get(account.parent_account_id) if account.parent_account_id else None
        if tree is not None:
            tree.satellites.append(account)
        else:
            trees.setdefault(account.platform, []).append(AccountTree(account, orphan=True))
    return trees


def _check_parent(db, platform: str, parent_id: uuid.UUID | None, self_id: uuid.UUID | None = None):
    if parent_id is None:
        return
    parent = db.session.get(SocialAccount, parent_id)
    if parent is None:
        raise InvalidInput.field("parent_account_id", "no such account")
    if parent.id == self_id:
        raise InvalidInput.field("parent_account_id", "an account cannot be its own main account")
    if parent.platform != platform:
        raise InvalidInput.field(
            "parent_account_id",
            f"@{parent.handle} is a {platform_name(parent.platform)} account, not {platform_name(platform)}",
        )
    if not parent.is_main:
        raise InvalidInput.field("parent_account_id", f"@{parent.handle} is itself a satellite")


# `config` is shown in every account view; a credential pasted there would be stored and shown
# in clear, so such keys are sent to the encrypted credentials instead.
_CREDENTIAL_KEYS = {key for keys in (*REQUIRED_KEYS.values(), *OPTIONAL_KEYS.values()) for key in keys}
_SECRET_WORDS = ("secret", "token", "password", "credential")


def _check_config(config: dict | None) -> None:
    secret = sorted(key for key in (config or {})
                    if key in _CREDENTIAL_KEYS or any(word in key.lower() for word in _SECRET_WORDS))
    if secret:
        raise InvalidInput(
            "config holds non-secret settings; store credentials with the account's credentials",
            [FieldError(f"config.{key}", "looks like a credential: set it as a credential, "
                                         "which is encrypted and never shown") for key in secret],
        )


def _check_handle_free(db, platform: str, handle: str, self_id: uuid.UUID | None = None):
    clash = db.session.scalar(select(SocialAccount).where(
        SocialAccount.platform == platform, SocialAccount.handle == handle))
    if clash is not None and clash.id != self_id:
        raise Conflict(f"{platform_name(platform)} account @{handle} already exists")


def _commit_unique_handle(db, platform: str, handle: str) -> None:
    """Commit; another request that took the same handle after our check is a Conflict too."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"{platform_name(platform)} account @{handle} already exists") from None


@rolls_back
def create_account(db, data: AccountIn) -> SocialAccount:
    """Add an account (commits) and record `account_created`."""
    handle = data.handle.lstrip("@")
    _check_parent(db, data.platform, data.parent_account_id)
    _check_config(data.config)
    _check_handle_free(db, data.platform, handle)
    account = SocialAccount(
        id=uuid.uuid4(), platform=data.platform, handle=handle, display_name=data.display_name,
        parent_account_id=data.parent_account_id, config=data.config, active=data.active,
    )
    db.session.add(account)
    record_event(db.session, "account_created", "account", account.id, {
        "platform": account.platform, "handle": account.handle,
        "parent_account_id": account.parent_account_id,
    })
    _commit_unique_handle(db, account.platform, handle)
    return account


@rolls_back
def update_account(db, account_id: uuid.UUID, changes: AccountPatch) -> SocialAccount:
    """Change the given fields of an account (commits) and record `account_updated`."""
    account = get_account(db, account_id)
    fields = changes.model_dump(exclude_unset=True)
    if "parent_account_id" in fields:
        _check_parent(db, account.platform, fields["parent_account_id"], account.id)
        if fields["parent_account_id"] is not None and account.satellites:
            raise InvalidInput.field("parent_account_id",
                                     "a main account with satellites cannot become a satellite")
    if "config" in fields:
        _check_config(fields["config"])
    if fields.get("handle"):
        fields["handle"] = fields["handle"].lstrip("@")
        _check_handle_free(db, account.platform, fields["handle"], account.id)
    for name, value in fields.items():
        if value is None and name not in ("parent_account_id",):
            continue
        setattr(account, name, value)
    record_event(db.session, "account_updated", "account", account.id, {"fields": sorted(fields)})
    _commit_unique_handle(db, account.platform, account.handle)
    return account


def main_accounts(db, platform: str | None = None) -> list[SocialAccount]:
    """The main accounts (those a satellite may hang under), by platform then handle."""
    query = (select(SocialAccount).where(SocialAccount.parent_account_id.is_(None))
             .order_by(SocialAccount.platform, SocialAccount.handle))
    if platform:
        query = query.where(SocialAccount.platform == platform)
    return list(db.session.scalars(query))
