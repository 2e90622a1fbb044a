"""Accounts: the list grouped by platform, create and edit (admins), and credentials (admins).

Credential values travel one way only: from the form into `set_account_credentials`. Pages show
a `CredentialSummary` (a status and key names), and the password inputs are never pre-filled.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from pydantic import ValidationError

from ..accounts import accounts_by_platform, create_account, get_account, main_accounts, update_account
from ..credentials import REQUIRED_KEYS, remove_account_credentials, set_account_credentials, summarize
from ..errors import DomainError, InvalidInput
from ..extensions import db
from ..models import utcnow
from ..publishing.quotas import quota_states
from ..schemas import AccountIn, AccountPatch
from .access import role_required
from .forms import (MAIN_ACCOUNT, PLATFORM_NAMES, AccountCreateForm, AccountEditForm, EmptyForm,
                    apply_domain_error, credentials_form_class)

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


@bp.app_template_filter("platform_name")
def platform_name(platform: str) -> str:
    """A platform as its owner spells it: `tiktok` -> TikTok (for every page's templates)."""
    return PLATFORM_NAMES.get(platform, platform.capitalize())


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
    groups = accounts_by_platform(db)
    accounts = [account for mains in groups.values() for main in mains
                for account in [main, *main.satellites]]
    modes = {account.id: publish_mode(account) for account in accounts}
    quotas = quota_states(db.session, accounts, utcnow()) if accounts else {}
    return render_template("accounts/index.html", groups=groups, modes=modes, quotas=quotas)


@bp.route("/new", methods=["GET", "POST"])
@role_required("admin")
def create():
    """Add a main account or a satellite of a main account of the same platform."""
    form = AccountCreateForm()
    form.set_parent_choices(main_accounts(db))
    if form.validate_on_submit():
        try:
            data = AccountIn(
                platform=form.platform.data, handle=form.handle.data,
                display_name=(form.display_name.data or "").strip(),
                parent_account_id=uuid.UUID(form.parent_account_id.data) if form.parent_account_id.data else None,
                active=form.active.data,
            )
            account = create_account(db, data)
        except ValidationError as exc:
            apply_domain_error(form, InvalidInput.from_pydantic(exc, whole="form"))
        except DomainError as exc:
            db.session.rollback()
            apply_domain_error(form, exc, default_field="handle")
        else:
            flash(f"Added {account.platform} account @{account.handle}.", "success")
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
        try:
            changes = AccountPatch(
                handle=form.handle.data,
                display_name=(form.display_name.data or "").strip(),
                parent_account_id=uuid.UUID(form.parent_account_id.data) if form.parent_account_id.data else None,
                active=form.active.data,
            )
            account = update_account(db, account.id, changes)
        except ValidationError as exc:
            apply_domain_error(form, InvalidInput.from_pydantic(exc, whole="form"))
        except DomainError as exc:
            db.session.rollback()
            apply_domain_error(form, exc, default_field="handle")
        else:
            flash(f"Saved {account.platform} account @{account.handle}.", "success")
            return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))
        account = get_account(db, account_id)
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/form.html", form=form, account=account,
                           mode=publish_mode(account)), status


@bp.route("/<uuid:account_id>/credentials", methods=["GET", "POST"])
@role_required("admin")
def credentials(account_id: uuid.UUID):
    """Store an account's credentials (encrypted); afterwards only the key names are shown."""
    account = get_account(db, account_id)
    form = credentials_form_class(account.platform)()
    if form.validate_on_submit():
        try:
            summary = set_account_credentials(db, account.id, form.values())
        except DomainError as exc:
            db.session.rollback()
            aliases = {f"credentials.{key}": key for key in form.values()} | {"credentials": None}
            apply_domain_error(form, exc, aliases=aliases)
        else:
            flash(f"Saved the credentials of @{account.handle}: "
                  f"{', '.join(summary.keys_set)} set; status {MODES[summary.status][0]}.", "success")
            return redirect(url_for("accounts.credentials", account_id=account.id))
        account = get_account(db, account_id)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "accounts/credentials.html", account=account, form=form, mode=publish_mode(account),
        required=REQUIRED_KEYS.get(account.platform, ())), status


@bp.post("/<uuid:account_id>/credentials/remove")
@role_required("admin")
def remove_credentials(account_id: uuid.UUID):
    """Forget an account's credentials; publishing to it falls back to the simulator."""
    account = get_account(db, account_id)
    if not EmptyForm().validate_on_submit():
        abort(400, "The form has expired; reload the page and try again.")
    remove_account_credentials(db, account.id)
    flash(f"Removed the credentials of @{account.handle}; it now publishes through the simulator.",
          "info")
    return redirect(url_for("accounts.credentials", account_id=account_id))
