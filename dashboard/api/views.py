"""JSON endpoints for clips, accounts, credentials and the ledger (`/api/...`)."""

from __future__ import annotations

import uuid

from flask import Blueprint, url_for

from .. import accounts as account_service
from .. import clips as clip_service
from ..credentials import remove_account_credentials, set_account_credentials, summarize
from ..errors import InvalidInput
from ..extensions import db
from ..ledger import LedgerFilter, list_events
from ..models import Clip, LedgerEvent, SocialAccount
from ..schemas import (
    AccountIn,
    AccountList,
    AccountOut,
    AccountPatch,
    ClipIn,
    ClipOut,
    ClipPage,
    ClipPatch,
    ClipQuery,
    CredentialsIn,
    CredentialsOut,
    LedgerEventOut,
    LedgerPage,
    LedgerQuery,
)
from .auth import authenticate, require_role
from .spec import responses, spec

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(authenticate)


def parse_id(value: str, field: str) -> uuid.UUID:
    """A UUID from the URL, or a 400 that names the field."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput.field(field, f"{value!r} is not a UUID") from None


def json_of(model, status: int = 200, **headers):
    """A pydantic model as a JSON response (ISO 8601 times with Z).

    The model itself goes to spectree, which serialises an instance of the response model it
    declares without validating it again (the instance was validated when it was made); a dict
    would be validated field by field a second time on every response.
    """
    return model, status, headers


def clip_out(clip: Clip) -> ClipOut:
    """A clip as the API shows it."""
    return ClipOut.model_validate(clip, from_attributes=True)


def account_out(account: SocialAccount) -> AccountOut:
    """An account as the API shows it: its credentials as a status and key names only."""
    summary = summarize(account)
    return AccountOut(
        id=account.id, platform=account.platform, handle=account.handle,
        display_name=account.display_name, parent_account_id=account.parent_account_id,
        config=account.config or {}, active=account.active, credentials=summary.status,
        credential_keys_set=list(summary.keys_set), needs_credentials=account.needs_credentials,
        needs_credentials_reason=account.needs_credentials_reason, created_at=account.created_at,
        updated_at=account.updated_at,
    )


def event_out(event: LedgerEvent) -> LedgerEventOut:
    """A ledger event as the API shows it."""
    return LedgerEventOut(
        id=event.id, event_type=event.event_type, entity_type=event.entity_type,
        entity_id=event.entity_id, metadata=event.event_metadata or {}, created_at=event.created_at,
    )


# Clips ---------------------------------------------------------------------------------------

@bp.get("/clips")
@require_role("viewer")
@spec.validate(query=ClipQuery, resp=responses(200, ClipPage, 400), tags=["clips"])
def list_clips(query: ClipQuery):
    """Clips newest first; `q` searches title, description and media."""
    page = clip_service.list_clips(db, query.q, query.cursor, query.limit)
    return json_of(ClipPage(items=[clip_out(c) for c in page.items], next_cursor=page.next_cursor))


@bp.post("/clips")
@require_role("editor")
@spec.validate(json=ClipIn, resp=responses(201, ClipOut, 400), tags=["clips"])
def create_clip(json: ClipIn):
    """Add a clip."""
    clip = clip_service.create_clip(db, json)
    return json_of(clip_out(clip), 201, Location=url_for("api.get_clip", clip_id=clip.id))


@bp.get("/clips/<clip_id>")
@require_role("viewer")
@spec.validate(resp=responses(200, ClipOut, 400, 404), tags=["clips"])
def get_clip(clip_id: str):
    """One clip."""
    return json_of(clip_out(clip_service.get_clip(db, parse_id(clip_id, "clip_id"))))


@bp.patch("/clips/<clip_id>")
@require_role("editor")
@spec.validate(json=ClipPatch, resp=responses(200, ClipOut, 400, 404), tags=["clips"])
def update_clip(clip_id: str, json: ClipPatch):
    """Change some fields of a clip."""
    return json_of(clip_out(clip_service.update_clip(db, parse_id(clip_id, "clip_id"), json)))


@bp.delete("/clips/<clip_id>")
@require_role("editor")
@spec.validate(resp=responses(204, None, 400, 404, 409), tags=["clips"])
def delete_clip(clip_id: str):
    """Delete a clip that was never published (409 when it has publish history)."""
    clip_service.delete_clip(db, parse_id(clip_id, "clip_id"))
    return "", 204


# Accounts ------------------------------------------------------------------------------------

@bp.get("/accounts")
@require_role("viewer")
@spec.validate(resp=responses(200, AccountList), tags=["accounts"])
def list_accounts():
    """Every account, by platform then handle; credentials appear as a status only."""
    return json_of(AccountList(items=[account_out(a) for a in account_service.list_accounts(db)]))


@bp.post("/accounts")
@require_role("admin")
@spec.validate(json=AccountIn, resp=responses(201, AccountOut, 400, 409), tags=["accounts"])
def create_account(json: AccountIn):
    """Add a main account, or a satellite of a main account of the same platform."""
    account = account_service.create_account(db, json)
    return json_of(account_out(account), 201,
                   Location=url_for("api.get_account", account_id=account.id))


@bp.get("/accounts/<account_id>")
@require_role("viewer")
@spec.validate(resp=responses(200, AccountOut, 400, 404), tags=["accounts"])
def get_account(account_id: str):
    """One account; `credentials` says none, incomplete, complete or unreadable, never a value."""
    return json_of(account_out(account_service.get_account(db, parse_id(account_id, "account_id"))))


@bp.patch("/accounts/<account_id>")
@require_role("admin")
@spec.validate(json=AccountPatch, resp=responses(200, AccountOut, 400, 404, 409), tags=["accounts"])
def update_account(account_id: str, json: AccountPatch):
    """Change some fields of an account (its platform is fixed)."""
    account = account_service.update_account(db, parse_id(account_id, "account_id"), json)
    return json_of(account_out(account))


@bp.put("/accounts/<account_id>/credentials")
@require_role("admin")
@spec.validate(json=CredentialsIn, resp=responses(200, CredentialsOut, 400, 404), tags=["accounts"])
def put_credentials(account_id: str, json: CredentialsIn):
    """Replace an account's credentials (encrypted at rest; never returned)."""
    account_id_ = parse_id(account_id, "account_id")
    account_service.get_account(db, account_id_)
    summary = set_account_credentials(db, account_id_, json.values())
    return json_of(CredentialsOut(account_id=account_id_, credentials=summary.status,
                                  credential_keys_set=list(summary.keys_set),
                                  missing=list(summary.missing)))


@bp.delete("/accounts/<account_id>/credentials")
@require_role("admin")
@spec.validate(resp=responses(204, None, 400, 404), tags=["accounts"])
def delete_credentials(account_id: str):
    """Forget an account's credentials; it publishes through the simulator afterwards."""
    account_id_ = parse_id(account_id, "account_id")
    account_service.get_account(db, account_id_)
    remove_account_credentials(db, account_id_)
    return "", 204


# Ledger --------------------------------------------------------------------------------------

@bp.get("/ledger")
@require_role("viewer")
@spec.validate(query=LedgerQuery, resp=responses(200, LedgerPage, 400), tags=["ledger"])
def ledger(query: LedgerQuery):
    """Ledger events newest first, filtered, one keyset page at a time."""
    page = list_events(
        db.session,
        LedgerFilter(query.event_type, query.entity_type, query.entity_id, query.since, query.until),
        query.cursor,
        query.limit,
    )
    return json_of(LedgerPage(items=[event_out(e) for e in page.items], next_cursor=page.next_cursor))
