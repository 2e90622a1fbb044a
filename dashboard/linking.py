"""Linking accounts by OAuth: connect, callback, refresh ahead of expiry, revoke on disconnect.

Each platform's authorization-code flow follows shared/platforms.md exactly:

- Instagram (Facebook Login for Business): authorize at INSTAGRAM_AUTHORIZE_URL; the code is
  exchanged by `GET {INSTAGRAM_GRAPH_URL}/oauth/access_token`, then for a long-lived (about 60-day)
  token with `grant_type=fb_exchange_token`, which is also how it is refreshed; the Instagram
  business account comes from `GET /me/accounts?fields=instagram_business_account` and its
  username from `GET /{ig-user-id}?fields=username`. Facebook documents no revocation: Disconnect
  only forgets the token.
- TikTok: authorize at TIKTOK_AUTHORIZE_URL with `client_key`; `POST {TIKTOK_API_URL}/v2/oauth/
  token/` (form) exchanges and refreshes, and refresh tokens rotate (the new one is saved with the
  new access token in one transaction); `POST /v2/oauth/revoke/` revokes; who was connected is the
  token's `open_id` plus creator_info's username, nickname and avatar.
- YouTube (Google): authorize at GOOGLE_AUTHORIZE_URL with PKCE S256, `access_type=offline`,
  `prompt=consent`; tokens at GOOGLE_TOKEN_URL, revocation at GOOGLE_REVOKE_URL; the channel from
  `GET {YOUTUBE_API_URL}/youtube/v3/channels?part=snippet&mine=true`.

Authlib supplies the protocol pieces (state and verifier generation, the S256 challenge, the
authorization URL and the token request bodies); the HTTP goes through httpx like the provider
clients, because Authlib 1.9's httpx client is deprecated in favour of httpx2 and TikTok's
`client_key` and Facebook's GET token endpoint fit neither of its client classes anyway.

Secrets (codes, tokens, the PKCE verifier, app secrets) never leave this module except into the
encrypted credentials: messages name the platform and its error code, never a value or a URL.
No database transaction is held across a platform call: a refresh is claimed with one
conditional UPDATE (a lease) and committed first, and its answer is written in a new transaction.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from .accounts import _check_parent
from .credentials import (
    CredentialError,
    decrypt_credentials,
    encrypt_credentials,
    get_account_credentials,
)
from .errors import DomainError, NotFound
from .ledger import record_event
from .models import PLATFORM_NAMES, SocialAccount, utcnow
from .transactions import rolls_back

log = logging.getLogger(__name__)
# httpx logs every request line at INFO; Facebook's documented token exchange is a GET whose
# query carries the code and the app secret.
logging.getLogger("httpx").setLevel(logging.WARNING)



@dataclass(frozen=True)
class OAuthApp:
    """What each platform's flow needs from the settings, and the scopes it asks for."""

    platform: str
    id_setting: str
    secret_setting: str
    authorize_setting: str
    scopes: tuple[str, ...]
    scope_separator: str
    pkce: bool
    revocable: bool
    # What to register with the platform, shown beside the redirect URI.
    register_hint: str


APPS: dict[str, OAuthApp] = {
    "instagram": OAuthApp(
        "instagram", "INSTAGRAM_APP_ID", "INSTAGRAM_APP_SECRET", "INSTAGRAM_AUTHORIZE_URL",
        ("instagram_basic", "instagram_content_publish", "pages_read_engagement",
         "pages_show_list"), ",", pkce=False, revocable=False,
        register_hint="a Meta app with Facebook Login for Business; add the redirect URI to "
                      "'Valid OAuth Redirect URIs'"),
    "tiktok": OAuthApp(
        "tiktok", "TIKTOK_CLIENT_KEY", "TIKTOK_CLIENT_SECRET", "TIKTOK_AUTHORIZE_URL",
        ("user.info.basic", "video.publish"), ",", pkce=False, revocable=True,
        register_hint="a TikTok for Developers app with Login Kit and the Content Posting API "
                      "(Direct Post); add the redirect URI under Login Kit"),
    "youtube": OAuthApp(
        "youtube", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "GOOGLE_AUTHORIZE_URL",
        ("https://www.googleapis.com/auth/youtube.upload",
         "https://www.googleapis.com/auth/youtube.readonly"), " ", pkce=True, revocable=True,
        register_hint="a Google Cloud OAuth client of type 'Web application' with the YouTube "
                      "Data API v3 enabled; add the redirect URI to 'Authorized redirect URIs'"),
}
# How long a started connection may take to come back before its state is no longer honoured.
PENDING_MAX_AGE_SECONDS = 15 * 60


class LinkRefused(DomainError):
    """A callback that cannot be honoured; nothing was changed. The message is safe to show."""

    title = "Connection refused"


class _Refused(Exception):
    """The platform refused a code or token (invalid_grant, revoked, expired); `reason` is
    its error code and description, without any value."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Unavailable(Exception):
    """The platform could not be reached or answered something unexpected (try again later)."""


@dataclass
class TokenSet:
    """A platform's token answer, reduced to what is stored."""

    access_token: str
    expires_in: float | None
    refresh_token: str | None = None
    refresh_expires_in: float | None = None
    scopes: list[str] | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Identity:
    """Who was connected: the platform's id for them, a handle, a name and an avatar."""

    external_id: str
    handle: str
    display_name: str
    connected_as: str
    avatar_url: str | None = None
    credentials: dict[str, str] = field(default_factory=dict)  # ids the publisher needs


def app_credentials(config, platform: str) -> tuple[str, str] | None:
    """The app's (client id, secret) for `platform`, or None when either setting is empty."""
    app = APPS[platform]
    client_id, secret = config.get(app.id_setting) or "", config.get(app.secret_setting) or ""
    return (client_id, secret) if client_id and secret else None


def missing_scopes(account: SocialAccount) -> list[str]:
    """The publishing scopes the platform reported as not granted (empty when unknown)."""
    if account.granted_scopes is None or account.platform not in APPS:
        return []
    granted = set(account.granted_scopes)
    return [scope for scope in APPS[account.platform].scopes if scope not in granted]


def reconnect_deadline(account: SocialAccount | None) -> datetime | None:
    """When the account stops being publishable without a person reconnecting it: now when it
    already needs reconnecting, else when its refresh token expires (None: not known to end)."""
    if account is None or account.linked_at is None:
        return None
    if account.needs_reconnect:
        return utcnow()
    return account.refresh_expires_at


def reconnect_warning(account: SocialAccount | None, when: datetime | None) -> str | None:
    """A sentence for a post due at `when` whose account must be reconnected before then."""
    deadline = reconnect_deadline(account)
    if account is None or deadline is None or when is None or when < deadline:
        return None
    if account.needs_reconnect:
        return f"@{account.handle} must be reconnected before this post can go out."
    return (f"@{account.handle}'s authorization ends before this post's time: reconnect it "
            "first, or the post will be refused.")


def accounts_needing_attention(db) -> list[tuple[SocialAccount, str]]:
    """Accounts a person must act on, with why: refused refresh, refused credentials, or a
    linked authorization that ends within a week."""
    soon = utcnow() + timedelta(days=7)
    found = db.session.scalars(
        select(SocialAccount)
        .where(SocialAccount.active.is_(True),
               or_(SocialAccount.needs_reconnect.is_(True),
                   SocialAccount.needs_credentials.is_(True),
                   and_(SocialAccount.linked_at.is_not(None),
                        SocialAccount.refresh_expires_at <= soon)))
        .order_by(SocialAccount.platform, SocialAccount.handle))
    attention = []
    for account in found:
        if account.needs_reconnect:
            why = f"needs reconnecting: {account.needs_reconnect_reason or 'refused by the platform'}"
        elif account.needs_credentials:
            why = f"needs new credentials: {account.needs_credentials_reason or 'refused'}"
        else:
            why = "its authorization ends within a week: reconnect it"
        attention.append((account, why))
    return attention


# ---------------------------------------------------------------------------------------------
# Connect: the authorization URL, and the callback


def start_connect(config, platform: str, redirect_uri: str, user_id: uuid.UUID,
                  parent_id: uuid.UUID | None = None,
                  account_id: uuid.UUID | None = None) -> tuple[str, dict[str, Any]]:
    """The platform's authorization URL and the pending connection to keep in the user's session.

    The pending record binds the `state` to this user; the PKCE verifier (Google) is kept
    encrypted in it, so the session cookie never carries it in clear.
    """
    app = APPS[platform]
    client = app_credentials(config, platform)
    if client is None:
        raise LinkRefused(f"{PLATFORM_NAMES[platform]} has no app credentials: set "
                          f"{app.id_setting} and {app.secret_setting}.")
    state = generate_token(32)
    params: dict[str, Any] = {"scope": app.scope_separator.join(app.scopes)}
    pending: dict[str, Any] = {
        "platform": platform, "state": state, "user_id": str(user_id),
        "parent_id": str(parent_id) if parent_id else None,
        "account_id": str(account_id) if account_id else None,
        "redirect_uri": redirect_uri, "started": time.time(),
    }
    if app.pkce:
        verifier = generate_token(64)
        params |= {"code_challenge": create_s256_code_challenge(verifier),
                   "code_challenge_method": "S256"}
        pending["sealed_verifier"] = encrypt_credentials({"code_verifier": verifier})
    if platform == "youtube":
        params |= {"access_type": "offline", "prompt": "consent"}
    base = config[app.authorize_setting]
    if platform == "tiktok":
        # TikTok names the client id `client_key`; prepare_grant_uri always writes client_id.
        url = add_params_to_uri(base, [("client_key", client[0]), ("response_type", "code"),
                                       ("scope", params["scope"]),
                                       ("redirect_uri", redirect_uri), ("state", state)])
    else:
        url = prepare_grant_uri(base, client[0], "code", redirect_uri=redirect_uri, state=state,
                                **params)
    return url, pending


def _safe(value: Any, limit: int = 200) -> str:
    """A platform's error code or description for a message: plain text, bounded."""
    return "".join(ch for ch in str(value) if ch.isprintable())[:limit]


@rolls_back
def complete_connect(db, platform: str, pending: dict[str, Any] | None, args: dict[str, str],
                     user_id: uuid.UUID) -> tuple[SocialAccount, bool]:
    """Finish a connection from the platform's redirect: check it, exchange the code, read who
    was connected, and create or update the account (commits). Returns (account, created).

    Raises LinkRefused, changing nothing, for a callback without a matching pending connection
    (state mismatch, another user's, expired), a denied consent, or a refused code.
    """
    name = PLATFORM_NAMES[platform]
    if not pending or pending.get("platform") != platform:
        raise LinkRefused(f"This {name} connection was not started from this session (or was "
                          "already finished): nothing changed. Start again with Connect.")
    if pending.get("user_id") != str(user_id):
        raise LinkRefused(f"This {name} connection was started by another user: nothing "
                          "changed. Start again with Connect.")
    if args.get("state") != pending.get("state"):
        raise LinkRefused(f"The {name} answer does not match the connection started here "
                          "(state mismatch): nothing changed. Start again with Connect.")
    if time.time() - float(pending.get("started", 0)) > PENDING_MAX_AGE_SECONDS:
        raise LinkRefused(f"The {name} connection took too long: nothing changed. Start again.")
    if args.get("error"):
        reason = _safe(args.get("error_description") or args.get("error_reason")
                       or args["error"])
        raise LinkRefused(f"{name} consent was not given ({_safe(args['error'], 60)}: {reason}): "
                          "nothing changed.")
    code = args.get("code")
    if not code:
        raise LinkRefused(f"{name} sent no authorization code: nothing changed.")
    config = current_app.config
    client = app_credentials(config, platform)
    if client is None:
        raise LinkRefused(f"{name} has no app credentials any more: nothing changed.")
    verifier = None
    if pending.get("sealed_verifier"):
        verifier = decrypt_credentials(pending["sealed_verifier"])["code_verifier"]
    try:
        with _http(config) as http:
            tokens = _EXCHANGE[platform](http, config, client, code, pending["redirect_uri"],
                                         verifier)
            identity = _IDENTITY[platform](http, config, tokens)
    except _Refused as exc:
        raise LinkRefused(f"{name} refused the authorization code ({exc.reason}); it may have "
                          "been used already or expired: nothing changed. Start again with "
                          "Connect.") from None
    except _Unavailable as exc:
        raise LinkRefused(f"{name} could not be reached to finish the connection ({exc}): "
                          "nothing changed. Try again.") from None
    target = uuid.UUID(pending["account_id"]) if pending.get("account_id") else None
    parent = uuid.UUID(pending["parent_id"]) if pending.get("parent_id") else None
    return _save_link(db, platform, identity, tokens, client, target, parent)


def _save_link(db, platform: str, identity: Identity, tokens: TokenSet, client: tuple[str, str],
               target: uuid.UUID | None, parent: uuid.UUID | None) -> tuple[SocialAccount, bool]:
    session = db.session
    account = session.scalar(select(SocialAccount).where(
        SocialAccount.platform == platform, SocialAccount.external_id == identity.external_id))
    if account is None:
        # An account added by hand under the same handle is the same platform account.
        account = session.scalar(select(SocialAccount).where(
            SocialAccount.platform == platform, SocialAccount.handle == identity.handle,
            SocialAccount.external_id.is_(None)))
    if target is not None:
        wanted = session.get(SocialAccount, target)
        if wanted is None or wanted.platform != platform:
            raise LinkRefused(f"The {PLATFORM_NAMES[platform]} account to reconnect no longer "
                              "exists: nothing changed.")
        if account is not None and account.id != wanted.id:
            raise LinkRefused(f"{PLATFORM_NAMES[platform]} connected {identity.connected_as}, "
                              f"which is not @{wanted.handle}: nothing changed. Sign in to "
                              f"{PLATFORM_NAMES[platform]} as @{wanted.handle} and try again.")
        account = wanted
    created = account is None
    if created:
        _check_parent(db, platform, parent)
        account = SocialAccount(id=uuid.uuid4(), platform=platform, handle=identity.handle,
                                display_name=identity.display_name, parent_account_id=parent,
                                config={}, active=True)
        session.add(account)
    now = utcnow()
    account.external_id = identity.external_id
    account.connected_as = identity.connected_as
    account.avatar_url = identity.avatar_url
    account.linked_at = now
    _apply_tokens(account, tokens, client, now, identity.credentials)
    missing = missing_scopes(account)
    # A consent that left out a publishing scope (TikTok and Google let a person untick one)
    # links the account, but it cannot publish until connected again with it.
    account.needs_reconnect = bool(missing)
    account.needs_reconnect_reason = \
        f"the consent did not grant {', '.join(missing)}" if missing else None
    account.needs_credentials = False
    account.needs_credentials_reason = None
    account.token_refresh_lease_until = None
    record_event(session, "account_linked", "account", account.id, {
        "platform": platform, "external_id": identity.external_id,
        "connected_as": identity.connected_as, "scopes": account.granted_scopes,
        "created": created, "token_expires_at": account.token_expires_at,
    })
    try:
        session.commit()
    except IntegrityError:
        # Another account already has this handle (or another request linked this identity).
        session.rollback()
        raise LinkRefused(f"{PLATFORM_NAMES[platform]} connected {identity.connected_as}, but "
                          f"another {PLATFORM_NAMES[platform]} account here is already "
                          f"@{identity.handle}: nothing changed.") from None
    return account, created


def _apply_tokens(account: SocialAccount, tokens: TokenSet, client: tuple[str, str],
                  now: datetime, ids: dict[str, str] | None = None) -> None:
    """Write a token answer onto the account: encrypted values, plain expiry and scopes.

    A new link (`ids` given) replaces whatever credentials were stored; a refresh keeps the
    stored values it does not replace (Google answers a refresh without a refresh token).
    """
    values: dict[str, str] = dict(ids) if ids is not None else \
        decrypt_credentials(account.credentials_ciphertext or "")
    values["access_token"] = tokens.access_token
    if tokens.refresh_token:
        values["refresh_token"] = tokens.refresh_token
    if account.platform == "tiktok":
        values |= {"client_key": client[0], "client_secret": client[1]}
    elif account.platform == "youtube":
        values |= {"client_id": client[0], "client_secret": client[1]}
    values |= tokens.extra
    account.credentials_ciphertext = encrypt_credentials(values)
    account.token_expires_at = (now + timedelta(seconds=tokens.expires_in)
                                if tokens.expires_in else None)
    if tokens.refresh_expires_in:
        account.refresh_expires_at = now + timedelta(seconds=tokens.refresh_expires_in)
    if tokens.scopes is not None:
        account.granted_scopes = tokens.scopes
    account.token_refreshed_at = now


# ---------------------------------------------------------------------------------------------
# Refresh ahead of expiry


def refresh_ahead(config, platform: str) -> timedelta:
    """How long before expiry a token of `platform` is refreshed."""
    key = "INSTAGRAM_REFRESH_AHEAD_SECONDS" if platform == "instagram" \
        else "TOKEN_REFRESH_AHEAD_SECONDS"
    return timedelta(seconds=config[key])


def _due(account, config, now: datetime) -> bool:
    """Whether a linked token (an account, or a row of its token columns) is due a refresh."""
    return (account.linked_at is not None and account.token_expires_at is not None
            and not account.needs_reconnect
            and account.token_expires_at <= now + refresh_ahead(config, account.platform))


def refresh_account(db, account_id: uuid.UUID, *, force: bool = False) -> str:
    """Refresh a linked account's token if it is due (or `force`); returns what happened:
    "refreshed", "not_due", "busy" (another worker holds the claim), "needs_reconnect" (the
    platform refused: the account is marked) or "unavailable" (try again later).

    The claim is one conditional UPDATE committed before the platform call, so two workers never
    refresh the same account at once; the new access token and a rotated refresh token are saved
    in one transaction.
    """
    config = current_app.config
    session = db.session
    now = utcnow()
    account = session.get(SocialAccount, account_id)
    if account is None:
        raise NotFound(f"account {account_id} does not exist")
    if account.linked_at is None or account.needs_reconnect or \
            (not force and not _due(account, config, now)):
        session.commit()
        return "not_due"
    lease = now + timedelta(seconds=config["TOKEN_REFRESH_LEASE_SECONDS"])
    claimed = session.execute(
        update(SocialAccount)
        .where(SocialAccount.id == account_id, SocialAccount.needs_reconnect.is_(False),
               or_(SocialAccount.token_refresh_lease_until.is_(None),
                   SocialAccount.token_refresh_lease_until < now))
        .values(token_refresh_lease_until=lease)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if claimed != 1:
        return "busy"
    session.refresh(account)
    platform = account.platform
    if not force and not _due(account, config, now):  # another worker refreshed meanwhile
        _release(db, account_id, lease)
        return "not_due"
    try:
        values = decrypt_credentials(account.credentials_ciphertext) \
            if account.credentials_ciphertext else {}
    except CredentialError:
        session.commit()
        return _mark_needs_reconnect(db, account_id, lease, "the stored tokens cannot be "
                                     "decrypted with the configured keys")
    client = app_credentials(config, platform) or _stored_client(platform, values)
    session.commit()  # no transaction across the platform call
    try:
        if client is None:
            raise _Refused("the app credentials are not configured")
        with _http(config) as http:
            tokens = _REFRESH[platform](http, config, client, values)
    except _Refused as exc:
        return _mark_needs_reconnect(
            db, account_id, lease, f"{PLATFORM_NAMES[platform]} refused the token refresh: "
                                   f"{exc.reason}")
    except _Unavailable as exc:
        log.warning("token refresh of account %s could not reach %s: %s", account_id,
                    platform, exc)
        _release(db, account_id, lease)
        return "unavailable"
    account = session.get(SocialAccount, account_id, with_for_update=True)
    session.refresh(account)
    if account.token_refresh_lease_until != lease:
        # The claim ran out and another worker took over; a rotated refresh token must still
        # be kept, since the platform has killed the old one.
        log.warning("token refresh of account %s outlived its claim", account_id)
    now = utcnow()
    rotated = bool(tokens.refresh_token and tokens.refresh_token != values.get("refresh_token"))
    _apply_tokens(account, tokens, client, now)
    account.token_refresh_lease_until = None
    missing = missing_scopes(account)
    if missing:
        account.needs_reconnect = True
        account.needs_reconnect_reason = f"the token no longer grants {', '.join(missing)}"
    record_event(session, "account_token_refreshed", "account", account.id, {
        "platform": platform, "token_expires_at": account.token_expires_at,
        "refresh_rotated": rotated, "scopes": account.granted_scopes,
    })
    if missing:
        record_event(session, "account_needs_reconnect", "account", account.id,
                     {"platform": platform, "reason": account.needs_reconnect_reason})
    session.commit()
    return "needs_reconnect" if missing else "refreshed"


def _stored_client(platform: str, values: dict[str, str]) -> tuple[str, str] | None:
    """The app credentials saved with the tokens (for teams that entered them by hand)."""
    pairs = {"tiktok": ("client_key", "client_secret"), "youtube": ("client_id", "client_secret")}
    if platform not in pairs:
        return None
    client_id, secret = (values.get(key) for key in pairs[platform])
    return (client_id, secret) if client_id and secret else None


def _release(db, account_id: uuid.UUID, lease: datetime) -> None:
    db.session.execute(update(SocialAccount).where(
        SocialAccount.id == account_id, SocialAccount.token_refresh_lease_until == lease
    ).values(token_refresh_lease_until=None).execution_options(synchronize_session=False))
    db.session.commit()


def _mark_needs_reconnect(db, account_id: uuid.UUID, lease: datetime, reason: str) -> str:
    session = db.session
    account = session.get(SocialAccount, account_id, with_for_update=True)
    session.refresh(account)
    if account.token_refresh_lease_until != lease:
        # Another worker took over after our claim ran out; its answer decides.
        session.commit()
        return "busy"
    account.needs_reconnect = True
    account.needs_reconnect_reason = reason
    account.token_refresh_lease_until = None
    record_event(session, "account_needs_reconnect", "account", account.id,
                 {"platform": account.platform, "reason": account.needs_reconnect_reason})
    session.commit()
    log.warning("account %s needs reconnecting: %s", account_id, reason)
    return "needs_reconnect"


def refresh_due(db, limit: int = 100) -> dict[str, int]:
    """The worker's periodic pass: refresh every linked token within its refresh-ahead window.
    Returns a count per outcome."""
    config = current_app.config
    now = utcnow()
    is_instagram = SocialAccount.platform == "instagram"
    ids = list(db.session.scalars(
        select(SocialAccount.id)
        .where(SocialAccount.linked_at.is_not(None), SocialAccount.needs_reconnect.is_(False),
               or_(and_(is_instagram, SocialAccount.token_expires_at
                        <= now + refresh_ahead(config, "instagram")),
                   and_(~is_instagram, SocialAccount.token_expires_at
                        <= now + refresh_ahead(config, "tiktok"))))
        .order_by(SocialAccount.token_expires_at).limit(limit)))
    db.session.commit()
    counts: dict[str, int] = {}
    for account_id in ids:
        outcome = refresh_account(db, account_id)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# What deciding whether a token is due reads: a few columns, not the account.
_TOKEN_DUE_COLUMNS = select(SocialAccount.platform, SocialAccount.linked_at,
                            SocialAccount.token_expires_at, SocialAccount.needs_reconnect)


def ensure_fresh_token(db, account_id: uuid.UUID | None) -> None:
    """Before a publish: refresh the account's token if it is within the refresh-ahead window,
    waiting for another worker's refresh to finish. Call before the attempt's own transaction
    starts: a refresh commits. When none is due (nearly always) this is one read in the
    caller's transaction, which goes on; the attempt reads the account afresh after its lock."""
    if account_id is None:
        return
    config = current_app.config
    deadline = time.monotonic() + config["TOKEN_REFRESH_LEASE_SECONDS"]
    query = _TOKEN_DUE_COLUMNS.where(SocialAccount.id == account_id)
    while True:
        token = db.session.execute(query).first()
        if token is None or not _due(token, config, utcnow()):
            return
        if refresh_account(db, account_id) != "busy" or time.monotonic() > deadline:
            return
        time.sleep(0.2)  # "busy" committed: the next read sees the other worker's refresh


def fresh_credentials(db, account_id: uuid.UUID) -> dict[str, str] | None:
    """The account's decrypted credentials, refreshed first when near expiry (for the publishing
    engine, outside any transaction of its own). Only provider clients should see the result."""
    ensure_fresh_token(db, account_id)
    return get_account_credentials(db, account_id)


# ---------------------------------------------------------------------------------------------
# Disconnect


def disconnect(db, account_id: uuid.UUID) -> bool:
    """Revoke the account's token at the platform where it offers revocation, then forget the
    credentials and the link (commits). Returns whether the platform confirmed the revocation.

    A revocation that fails still forgets the token here (the admin asked for it); the ledger
    says it was not confirmed.
    """
    session = db.session
    account = session.get(SocialAccount, account_id)
    if account is None:
        raise NotFound(f"account {account_id} does not exist")
    platform = account.platform
    values = decrypt_credentials(account.credentials_ciphertext) \
        if account.credentials_ciphertext else {}
    config = current_app.config
    client = app_credentials(config, platform) or _stored_client(platform, values)
    session.commit()
    revoked = False
    if APPS[platform].revocable and values.get("access_token") and client is not None:
        try:
            with _http(config) as http:
                _REVOKE[platform](http, config, client, values)
            revoked = True
        except (_Refused, _Unavailable) as exc:
            log.warning("revoking the token of account %s at %s failed: %s", account_id,
                        platform, exc)
    account = session.get(SocialAccount, account_id, with_for_update=True)
    account.credentials_ciphertext = None
    account.forget_token_metadata()
    record_event(session, "account_disconnected", "account", account.id, {
        "platform": platform, "revoked": revoked,
        "revocation": "confirmed" if revoked else
        ("not offered by the platform" if not APPS[platform].revocable else "not confirmed"),
    })
    session.commit()
    return revoked


# ---------------------------------------------------------------------------------------------
# The platforms' endpoints


def _http(config) -> httpx.Client:
    return httpx.Client(timeout=config["PROVIDER_HTTP_TIMEOUT"], follow_redirects=False)


def _call(http: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    try:
        return http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        # The exception's text holds the URL (for Facebook, with the code and secret).
        raise _Unavailable(type(exc).__name__) from None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise _Unavailable(f"HTTP {response.status_code} without a JSON body") from None
    if not isinstance(body, dict):
        raise _Unavailable(f"HTTP {response.status_code} with an unexpected body")
    return body


def _oauth_error(response: httpx.Response, body: dict[str, Any]) -> None:
    """RFC 6749 errors (TikTok, Google): 4xx with `error` -> refused; 5xx -> unavailable."""
    if response.status_code >= 500:
        raise _Unavailable(f"HTTP {response.status_code}")
    error = body.get("error")
    if isinstance(error, str) and error:
        description = body.get("error_description")
        raise _Refused(_safe(error, 60) + (f": {_safe(description)}" if description else ""))
    if response.status_code >= 400:
        raise _Refused(f"HTTP {response.status_code}")


def _token_set(body: dict[str, Any], separator: str) -> TokenSet:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise _Unavailable("the token answer has no access_token")
    scope = body.get("scope")
    return TokenSet(
        access_token=token,
        expires_in=float(body["expires_in"]) if body.get("expires_in") else None,
        refresh_token=body.get("refresh_token") or None,
        refresh_expires_in=float(body["refresh_expires_in"])
        if body.get("refresh_expires_in") else None,
        scopes=[s for s in scope.replace(",", " ").split() if s] if isinstance(scope, str)
        else None,
    )


# Instagram (Facebook Login for Business) --------------------------------------------------------

def _graph(http, config, method: str, path: str, **kwargs) -> dict[str, Any]:
    response = _call(http, method, f"{config['INSTAGRAM_GRAPH_URL']}{path}", **kwargs)
    body = _json(response)
    error = body.get("error")
    if isinstance(error, dict) or response.status_code >= 400:
        error = error if isinstance(error, dict) else {}
        if response.status_code >= 500 or error.get("is_transient") or \
                error.get("code") in (1, 2, 4, 17, 32, 613):
            raise _Unavailable(f"HTTP {response.status_code}, code {error.get('code')}")
        raise _Refused(f"OAuthException code {_safe(error.get('code'), 20)}"
                       + (f"/{_safe(error.get('error_subcode'), 20)}"
                          if error.get("error_subcode") else "")
                       + (f": {_safe(error.get('message'))}" if error.get("message") else ""))
    return body


def _instagram_exchange(http, config, client, code, redirect_uri, _verifier) -> TokenSet:
    short = _graph(http, config, "GET", "/oauth/access_token", params={
        "client_id": client[0], "client_secret": client[1], "redirect_uri": redirect_uri,
        "code": code})
    return _instagram_long_lived(http, config, client, _token_set(short, ",").access_token)


def _instagram_long_lived(http, config, client, token: str) -> TokenSet:
    body = _graph(http, config, "GET", "/oauth/access_token", params={
        "grant_type": "fb_exchange_token", "client_id": client[0], "client_secret": client[1],
        "fb_exchange_token": token})
    return _token_set(body, ",")


def _instagram_identity(http, config, tokens: TokenSet) -> Identity:
    # The Graph API's `access_token` parameter, as the Instagram client sends it (the httpx
    # logger is kept at WARNING above, and no message here is built from a URL).
    token = {"access_token": tokens.access_token}
    pages = _graph(http, config, "GET", "/me/accounts",
                   params={"fields": "instagram_business_account", **token})
    page = next((p for p in pages.get("data") or []
                 if isinstance(p, dict) and (p.get("instagram_business_account") or {}).get("id")),
                None)
    if page is None:
        raise _Refused("no Instagram business account is connected to the Facebook pages "
                       "that were granted")
    ig_id = str(page["instagram_business_account"]["id"])
    user = _graph(http, config, "GET", f"/{ig_id}", params={"fields": "username", **token})
    username = str(user.get("username") or ig_id)
    return Identity(ig_id, username, username, f"@{username}", None,
                    {"instagram_account_id": ig_id, "facebook_page_id": str(page.get("id") or "")})


def _instagram_refresh(http, config, client, values) -> TokenSet:
    return _instagram_long_lived(http, config, client, values.get("access_token", ""))


# TikTok (hand-written: TikTok names the client id `client_key`) -------------------------------

def _tiktok_token(http, config, form: dict[str, str]) -> TokenSet:
    response = _call(http, "POST", f"{config['TIKTOK_API_URL']}/v2/oauth/token/", data=form,
                     headers={"Cache-Control": "no-cache"})
    body = _json(response)
    _oauth_error(response, body)
    tokens = _token_set(body, ",")
    if body.get("open_id"):
        tokens.extra["open_id"] = str(body["open_id"])
    return tokens


def _tiktok_exchange(http, config, client, code, redirect_uri, _verifier) -> TokenSet:
    return _tiktok_token(http, config, {
        "client_key": client[0], "client_secret": client[1], "code": code,
        "grant_type": "authorization_code", "redirect_uri": redirect_uri})


def _tiktok_identity(http, config, tokens: TokenSet) -> Identity:
    open_id = tokens.extra.get("open_id")
    if not open_id:
        raise _Unavailable("the token answer has no open_id")
    response = _call(http, "POST",
                     f"{config['TIKTOK_API_URL']}/v2/post/publish/creator_info/query/",
                     headers={"Authorization": f"Bearer {tokens.access_token}",
                              "Content-Type": "application/json; charset=UTF-8"})
    body = _json(response)
    error = body.get("error") or {}
    if response.status_code >= 400 or error.get("code") not in (None, "ok"):
        if response.status_code >= 500:
            raise _Unavailable(f"HTTP {response.status_code}")
        raise _Refused(f"creator_info: {_safe(error.get('code'), 60)}")
    data = body.get("data") or {}
    username = str(data.get("creator_username") or open_id)
    nickname = str(data.get("creator_nickname") or username)
    return Identity(open_id, username, nickname, f"{nickname} (@{username})",
                    data.get("creator_avatar_url"), {"open_id": open_id})


def _tiktok_refresh(http, config, client, values) -> TokenSet:
    if not values.get("refresh_token"):
        raise _Refused("no refresh token is stored")
    return _tiktok_token(http, config, {
        "client_key": client[0], "client_secret": client[1], "grant_type": "refresh_token",
        "refresh_token": values["refresh_token"]})


def _tiktok_revoke(http, config, client, values) -> None:
    response = _call(http, "POST", f"{config['TIKTOK_API_URL']}/v2/oauth/revoke/", data={
        "client_key": client[0], "client_secret": client[1], "token": values["access_token"]})
    if response.status_code >= 400:
        _oauth_error(response, _json(response))


# YouTube (Google) -------------------------------------------------------------------------------

def _google_token(http, config, form: dict[str, str]) -> TokenSet:
    response = _call(http, "POST", config["GOOGLE_TOKEN_URL"], data=form)
    body = _json(response)
    _oauth_error(response, body)
    return _token_set(body, " ")


def _youtube_exchange(http, config, client, code, redirect_uri, verifier) -> TokenSet:
    form = {"client_id": client[0], "client_secret": client[1], "code": code,
            "grant_type": "authorization_code", "redirect_uri": redirect_uri}
    if verifier:
        form["code_verifier"] = verifier
    return _google_token(http, config, form)


def _youtube_identity(http, config, tokens: TokenSet) -> Identity:
    response = _call(http, "GET", f"{config['YOUTUBE_API_URL']}/youtube/v3/channels",
                     params={"part": "snippet", "mine": "true"},
                     headers={"Authorization": f"Bearer {tokens.access_token}"})
    body = _json(response)
    if response.status_code >= 500:
        raise _Unavailable(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        reasons = [e.get("reason") for e in (body.get("error") or {}).get("errors") or []]
        raise _Refused(f"channels.list: HTTP {response.status_code} {_safe(reasons, 100)}")
    items = body.get("items") or []
    if not items:
        raise _Refused("the Google account has no YouTube channel")
    channel = items[0]
    snippet = channel.get("snippet") or {}
    title = str(snippet.get("title") or channel["id"])
    handle = str(snippet.get("customUrl") or channel["id"]).lstrip("@")
    avatar = ((snippet.get("thumbnails") or {}).get("default") or {}).get("url")
    return Identity(str(channel["id"]), handle, title, title, avatar,
                    {"channel_id": str(channel["id"])})


def _youtube_refresh(http, config, client, values) -> TokenSet:
    if not values.get("refresh_token"):
        raise _Refused("no refresh token is stored")
    return _google_token(http, config, {
        "client_id": client[0], "client_secret": client[1], "grant_type": "refresh_token",
        "refresh_token": values["refresh_token"]})


def _youtube_revoke(http, config, client, values) -> None:
    # Revoking the refresh token ends the whole grant (its access tokens too).
    token = values.get("refresh_token") or values["access_token"]
    response = _call(http, "POST", config["GOOGLE_REVOKE_URL"], data={"token": token})
    if response.status_code >= 400:
        _oauth_error(response, _json(response))


_EXCHANGE = {"instagram": _instagram_exchange, "tiktok": _tiktok_exchange,
             "youtube": _youtube_exchange}
_IDENTITY = {"instagram": _instagram_identity, "tiktok": _tiktok_identity,
             "youtube": _youtube_identity}
_REFRESH = {"instagram": _instagram_refresh, "tiktok": _tiktok_refresh,
            "youtube": _youtube_refresh}
_REVOKE = {"tiktok": _tiktok_revoke, "youtube": _youtube_revoke}
