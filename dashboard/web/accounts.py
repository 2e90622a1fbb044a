"""Accounts: the list grouped by platform, create and edit (admins), and credentials (admins).

Credential values travel one way only: from the form into `update_account_credentials`. Pages show
a `CredentialSummary` (a status and key names), and the password inputs are never pre-filled.
"""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from pydantic import ValidationError

from .. import linking
from ..accounts import (
    account_trees,
    create_account,
    credentials_refused_at,
    get_account,
    main_accounts,
    update_account,
)
from ..credentials import (
    REQUIRED_KEYS,
    key_label,
    remove_account_credentials,
    summarize,
    update_account_credentials,
)
from ..errors import DomainError, InvalidInput
from ..extensions import db
from ..models import platform_name, utcnow
from ..publishing.quotas import quota_states
from ..schemas import AccountIn, AccountPatch
from .access import role_required
from .confirm import ask_first, confirmed
from .forms import (
    MAIN_ACCOUNT,
    AccountCreateForm,
    AccountEditForm,
    EmptyForm,
    apply_domain_error,
    credentials_form_class,
)

bp = Blueprint("accounts", __name__, url_prefix="/accounts")

# What each credentials status means to the person choosing where to publish.
MODES = {
    "none": ("simulator", "badge-simulator", "No credentials: publishing uses the simulator."),
    "incomplete": ("incomplete", "badge-incomplete",
                   "Some required credentials are missing: publishing uses the simulator."),
    "unreadable": ("unreadable", "badge-unreadable",
                   "The stored credentials can't be decrypted with the configured keys: "
                   "publishing uses the simulator. Enter them again."),
    "complete": ("provider ready", "badge-ready",
                 "Complete credentials: publishing uses the platform's provider client."),
}


def publish_mode(account) -> dict:
    """The account's publish-mode badge: label, CSS class, explanation, and the safe summary."""
    summary = summarize(account)
    label, css, help_text = MODES[summary.status]
    return {"label": label, "css": css, "help": help_text, "summary": summary}


@bp.get("/")
@role_required("viewer")
def index():
    """Every account by platform, each main account followed by its satellites, with its publish
    mode, its health and what is left of its 24-hour posting quota (one query for all)."""
    groups = account_trees(db)
    accounts = [account for trees in groups.values() for tree in trees for account in tree.accounts]
    modes = {account.id: publish_mode(account) for account in accounts}
    quotas = quota_states(db.session, accounts, utcnow()) if accounts else {}
    return render_template("accounts/index.html", groups=groups, modes=modes, quotas=quotas,
                           linking=link_panels(), health={a.id: token_health(a) for a in accounts},
                           now=utcnow(), disconnect_form=EmptyForm(),
                           refused_at=credentials_refused_at(db, accounts))


# --- linking by OAuth ----------------------------------------------------------------------

PENDING_KEY = "oauth_link"  # the started connection, bound to this user's session


def redirect_uri(platform: str) -> str:
    """The callback URL to register with the platform: PUBLIC_BASE_URL's when set."""
    base = current_app.config["PUBLIC_BASE_URL"]
    if base:
        return base + url_for("accounts.connect_callback", platform=platform)
    return url_for("accounts.connect_callback", platform=platform, _external=True)


def link_panels() -> dict[str, dict]:
    """Per platform: whether Connect is possible, the redirect URI and what to register."""
    config = current_app.config
    panels = {}
    for platform, app in linking.APPS.items():
        panels[platform] = {
            "ready": linking.app_credentials(config, platform) is not None,
            "settings": (app.id_setting, app.secret_setting),
            "redirect_uri": redirect_uri(platform), "register": app.register_hint,
            "revocable": app.revocable, "scopes": app.scopes,
        }
    return panels


def token_health(account) -> dict | None:
    """What the page shows about a linked account's tokens (never a token)."""
    if account.linked_at is None:
        return None
    now = utcnow()
    expires_in = None
    if account.token_expires_at is not None:
        expires_in = account.token_expires_at - now
    return {"connected_as": account.connected_as, "expires_at": account.token_expires_at,
            "expired": expires_in is not None and expires_in.total_seconds() <= 0,
            "expires_in": expires_in, "refreshed_at": account.token_refreshed_at,
            "missing_scopes": linking.missing_scopes(account),
            "needs_reconnect": account.needs_reconnect,
            "reason": account.needs_reconnect_reason}


def _uuid_arg(name: str) -> uuid.UUID | None:
    raw = request.args.get(name) or ""
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        abort(400, f"{name} is not an account id")


@bp.get("/connect/<platform>")
@role_required("admin")
def connect(platform: str):
    """Start the platform's authorization-code flow (as a main account, a satellite of
    `?parent=`, or reconnecting `?account=`)."""
    if platform not in linking.APPS:
        abort(404)
    parent_id, account_id = _uuid_arg("parent"), _uuid_arg("account")
    try:
        url, pending = linking.start_connect(current_app.config, platform, redirect_uri(platform),
                                             current_user.id, parent_id, account_id)
    except DomainError as exc:
        flash(exc.detail, "error")
        return redirect(url_for("accounts.index", _anchor=f"platform-{platform}"))
    session[PENDING_KEY] = pending
    return redirect(url)


@bp.get("/connect/<platform>/callback")
@role_required("admin")
def connect_callback(platform: str):
    """The platform's redirect back: finish the connection or say why it was refused."""
    if platform not in linking.APPS:
        abort(404)
    pending = session.get(PENDING_KEY)
    if pending and pending.get("platform") == platform:
        session.pop(PENDING_KEY)  # one answer per started connection
    else:
        pending = None
    args = {key: request.args.get(key, "") for key in
            ("state", "code", "error", "error_description", "error_reason")}
    try:
        account, created = linking.complete_connect(db, platform, pending, args, current_user.id)
    except DomainError as exc:
        flash(exc.detail, "error")
        return redirect(url_for("accounts.index", _anchor=f"platform-{platform}"))
    flash(f"{'Connected' if created else 'Reconnected'} {platform_name(platform)} account "
          f"@{account.handle} as {account.connected_as}.", "success")
    return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))


@bp.post("/<uuid:account_id>/disconnect")
@role_required("admin")
def disconnect(account_id: uuid.UUID):
    """Revoke the account's token at the platform (where offered) and forget it."""
    account = get_account(db, account_id)
    if not confirmed():
        name = platform_name(account.platform)
        revoke = (f"asks {name} to revoke them" if linking.APPS[account.platform].revocable
                  else f"{name} offers no revocation, so its access ends only when you remove the app there")
        return ask_first(f"Disconnect @{account.handle}?",
                         f"The dashboard forgets the account's tokens and {revoke}; publishing to it "
                         "with its own tokens needs Connect again afterwards.",
                         "Disconnect", url_for("accounts.index", _anchor=f"account-{account.id}"))
    if not EmptyForm().validate_on_submit():
        abort(400, "The form has expired; reload the page and try again.")
    handle, platform = account.handle, account.platform
    revoked = linking.disconnect(db, account_id)
    if revoked:
        note = f"{platform_name(platform)} confirmed the token is revoked"
    elif not linking.APPS[platform].revocable:
        note = (f"{platform_name(platform)} offers no revocation: remove the app from the "
                "account's business integrations on Facebook to end its access")
    else:
        note = f"{platform_name(platform)} did not confirm the revocation"
    flash(f"Disconnected @{handle} and forgot its tokens; {note}.", "info")
    return redirect(url_for("accounts.index", _anchor=f"account-{account_id}"))


def _saved(form, save):
    """The account `save()` returns; None when the service refused it, its error put on `form`
    (the field it names, else next to the handle)."""
    try:
        return save()
    except ValidationError as exc:
        apply_domain_error(form, InvalidInput.from_pydantic(exc, whole="form"))
    except DomainError as exc:
        apply_domain_error(form, exc, default_field="handle")
    return None


@bp.route("/new", methods=["GET", "POST"])
@role_required("admin")
def create():
    """Add a main account or a satellite of a main account of the same platform."""
    form = AccountCreateForm()
    form.set_parent_choices(main_accounts(db))
    if form.validate_on_submit():
        account = _saved(form, lambda: create_account(
            db, AccountIn(platform=form.platform.data, **form.account_fields())))
        if account is not None:
            flash(f"Added {platform_name(account.platform)} account @{account.handle}.", "success")
            return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/form.html", form=form, account=None), status


@bp.route("/<uuid:account_id>/edit", methods=["GET", "POST"])
@role_required("admin")
def edit(account_id: uuid.UUID):
    """Change an account's handle, display name, main account or active flag."""
    account = get_account(db, account_id)
    form = AccountEditForm(obj=account)
    if request.method == "GET":
        form.parent_account_id.data = str(account.parent_account_id or MAIN_ACCOUNT)
    form.set_parent_choices(main_accounts(db, account.platform), account)
    if form.validate_on_submit():
        saved = _saved(form, lambda: update_account(
            db, account_id, AccountPatch(**form.account_fields())))
        if saved is not None:
            flash(f"Saved {platform_name(saved.platform)} account @{saved.handle}.", "success")
            return redirect(url_for("accounts.index", _anchor=f"account-{saved.id}"))
        account = get_account(db, account_id)
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/form.html", form=form, account=account,
                           mode=publish_mode(account)), status


@bp.route("/<uuid:account_id>/credentials", methods=["GET", "POST"])
@role_required("admin")
def credentials(account_id: uuid.UUID):
    """Change an account's stored credentials (encrypted): typed values replace their key, ticked
    keys are cleared, empty fields keep what is stored. Afterwards only the key names are shown."""
    account = get_account(db, account_id)
    form = credentials_form_class(account.platform)()
    if form.validate_on_submit():
        try:
            summary = update_account_credentials(db, account.id, form.values(), form.cleared())
        except DomainError as exc:
            aliases = {f"credentials.{key}": key for key in form.values()} | {"credentials": None}
            apply_domain_error(form, exc, aliases=aliases)
        else:
            keys = ", ".join(key_label(key) for key in summary.keys_set) or "no keys"
            flash(f"Saved the credentials of @{account.handle}: {keys} set; "
                  f"status {MODES[summary.status][0]}.", "success")
            return redirect(url_for("accounts.credentials", account_id=account.id))
        account = get_account(db, account_id)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "accounts/credentials.html", account=account, form=form, mode=publish_mode(account),
        required=REQUIRED_KEYS.get(account.platform, ()), key_label=key_label,
        refused_at=credentials_refused_at(db, [account]),
        can_reconnect=linking.app_credentials(current_app.config, account.platform) is not None), status


@bp.post("/<uuid:account_id>/credentials/remove")
@role_required("admin")
def remove_credentials(account_id: uuid.UUID):
    """Forget an account's credentials; publishing to it falls back to the simulator."""
    account = get_account(db, account_id)
    if not confirmed():
        return ask_first(f"Remove the credentials of @{account.handle}?",
                         "Every stored key is forgotten and cannot be shown again; publishing to "
                         "the account falls back to the simulator until you enter them again.",
                         "Remove credentials", url_for("accounts.credentials", account_id=account.id))
    if not EmptyForm().validate_on_submit():
        abort(400, "The form has expired; reload the page and try again.")
    remove_account_credentials(db, account.id)
    flash(f"Removed the credentials of @{account.handle}; it now publishes through the simulator.",
          "info")
    return redirect(url_for("accounts.credentials", account_id=account_id))
