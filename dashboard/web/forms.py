"""Form helpers every page shares (EmptyForm, run_button, flash_retry, apply_domain_error,
DateRangeForm, the datetime-local formats) and the forms of the sign-in, accounts, credentials,
tokens, users and profile pages. The other pages keep their forms beside them (clip_forms.py,
history.py, ledger.py, schedule.py).

One form per use, microblog style. The services stay the judges of what is valid (they raise
InvalidInput/Conflict, which `apply_domain_error` maps back onto the form's fields, FlaskBB
style); the checks here only catch what a browser can get wrong before a service is called.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import flash
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from ..credentials import REQUIRED_KEYS, allowed_keys, key_label
from ..errors import Conflict, DomainError
from ..extensions import db
from ..local_times import OUT_OF_RANGE, day_in_range
from ..models import PLATFORMS, ROLES, platform_name
from ..publishing import background
from ..users import MIN_PASSWORD_LENGTH
from .filters import local_day_end, local_day_start

# The same pattern the API's AccountIn enforces, so the form and the service agree.
HANDLE_PATTERN = r"^@?[\w.\-]+$"
MAIN_ACCOUNT = ""  # the parent select's value for "this is a main account"


class EmptyForm(FlaskForm):
    """A CSRF token and nothing else: for buttons that POST (sign out, revoke, retry, ...)."""


FORM_EXPIRED = "The form expired; reload the page and try again."


def run_button(action, refused=(Conflict,)):
    """Run `action()` for a CSRF-checked button POST.

    Returns (what action returned, None), or (None, the message to show) when the form expired
    or the service refused with one of `refused`.
    """
    if not EmptyForm().validate_on_submit():
        return None, FORM_EXPIRED
    try:
        return action(), None
    except refused as exc:
        return None, refusal_message(exc)


def retry_button(log_id):
    """Run a Retry button: queue one new attempt of a failed post (background.retry, the one
    retry service). Returns (the queued log, None), or (None, why not) for every refusal, so each
    page shows the real reason where the user clicked."""
    return run_button(lambda: background.retry(db, log_id), refused=(DomainError,))


def flash_retry(error: str | None) -> None:
    """Say how a Retry button went after a plain form post (htmx answers in place): queued, or
    why not, in the same words on every page."""
    if error is None:
        flash("Retry queued: a worker publishes it in a moment.", "info")
    else:
        flash(f"Not retried: {error}", "error")


# datetime-local sends minutes (or seconds with a step); the first is how values are rendered.
BAD_TIME = "enter a date and a time, e.g. 2026-11-26 09:00"
LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


class DateRangeForm(FlaskForm):
    """The base of the list pages' filter forms: from/to dates, both inclusive, read as days on
    the user's clock (their profile zone)."""

    class Meta:
        csrf = False

    date_from = DateField("From", name="from", validators=[Optional()])
    date_to = DateField("To", name="to", validators=[Optional()])

    def validate_date_from(self, field):
        if field.data and not day_in_range(field.data):
            raise ValidationError(OUT_OF_RANGE)

    def validate_date_to(self, field):
        """An empty range is a mistake, not a query."""
        if field.data and not day_in_range(field.data):
            raise ValidationError(OUT_OF_RANGE)
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("must be on or after the From date")

    @staticmethod
    def value(field):
        """What a filter field filters by: None when it is empty or has an error (a field with an
        error filters nothing; its message shows inline)."""
        return field.data if field.data and not field.errors else None

    def since(self) -> datetime | None:
        """The start of the From day (inclusive)."""
        day = self.value(self.date_from)
        return local_day_start(day) if day else None

    def until(self) -> datetime | None:
        """The start of the day after To (exclusive), so To's whole day is included."""
        day = self.value(self.date_to)
        return local_day_end(day) if day else None


def uuid_or_none(value: str | None) -> uuid.UUID | None:
    """The UUID in `value`, None when it is empty or not a UUID."""
    try:
        return uuid.UUID(value.strip()) if value else None
    except ValueError:
        return None


class LoginForm(FlaskForm):
    """Email and password sign-in."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired()],
                             render_kw={"autocomplete": "current-password"})


def _parent_choices(mains, exclude_id=None) -> dict:
    """Choices for the parent select: 'main account' first, then the mains grouped by platform."""
    choices: dict = {MAIN_ACCOUNT: "None: this is a main account"}
    for account in mains:
        if account.id == exclude_id:
            continue
        label = f"@{account.handle}" + (f" ({account.display_name})" if account.display_name else "")
        group = platform_name(account.platform)
        choices.setdefault(group, {})[str(account.id)] = label
    return choices


class _AccountForm(FlaskForm):
    """The fields a new account and an account's changes share (the platform never changes)."""

    handle = StringField("Handle", validators=[
        DataRequired(), Length(max=100),
        Regexp(HANDLE_PATTERN, message="Use letters, digits, dots, dashes and underscores only."),
    ], render_kw={"autocomplete": "off", "spellcheck": "false"})
    display_name = StringField("Display name", validators=[Optional(), Length(max=200)])
    parent_account_id: SelectField
    active: BooleanField

    def account_fields(self) -> dict:
        """The shared fields as the accounts service takes them (AccountIn, AccountPatch)."""
        parent = self.parent_account_id.data
        return {"handle": self.handle.data, "display_name": (self.display_name.data or "").strip(),
                "parent_account_id": uuid.UUID(parent) if parent else None,
                "active": self.active.data}


class AccountCreateForm(_AccountForm):
    """A new main or satellite account."""

    platform = SelectField("Platform", choices={p: platform_name(p) for p in PLATFORMS},
                           validators=[InputRequired()])
    parent_account_id = SelectField("Main account", default=MAIN_ACCOUNT,
                                    description="Leave as a main account, or pick the main "
                                                "account (same platform) this one is a satellite of.")
    active = BooleanField("Active (may be published to)", default=True)

    def set_parent_choices(self, mains) -> None:
        """Offer every main account as a possible parent, grouped by platform."""
        self.parent_account_id.choices = _parent_choices(mains)
        self._main_platforms = {str(m.id): m.platform for m in mains}

    def validate_parent_account_id(self, field) -> None:
        """A satellite's main must be of the chosen platform (the service checks it too)."""
        parent_platform = getattr(self, "_main_platforms", {}).get(field.data)
        if field.data and parent_platform and parent_platform != self.platform.data:
            raise ValidationError(
                f"That main account is on {platform_name(parent_platform)}, "
                f"not {platform_name(self.platform.data)}. "
                "Pick one of the same platform, or none.")


class AccountEditForm(_AccountForm):
    """Changes to an existing account; the platform of an account never changes."""

    parent_account_id = SelectField("Main account", default=MAIN_ACCOUNT,
                                    description="A satellite of a main account of the same platform.")
    active = BooleanField("Active (may be published to)")

    def set_parent_choices(self, mains, account) -> None:
        """Offer the other main accounts of the account's platform."""
        same_platform = [m for m in mains if m.platform == account.platform]
        self.parent_account_id.choices = _parent_choices(same_platform, exclude_id=account.id)


class CredentialsFormBase(FlaskForm):
    """Base of the per-platform credentials forms made by `credentials_form_class`."""

    platform: str = ""

    def credential_fields(self):
        """(value input, its "clear the stored one" box) per key, required ones first."""
        return [(self[key], self[f"clear_{key}"]) for key in allowed_keys(self.platform)]

    def values(self) -> dict[str, str]:
        """The typed values by key; blanks are left out, so saving keeps what is stored there."""
        return {key: self[key].data for key in allowed_keys(self.platform) if self[key].data}

    def cleared(self) -> list[str]:
        """The keys whose stored value the user asked to clear."""
        return [key for key in allowed_keys(self.platform) if self[f"clear_{key}"].data]


_CREDENTIALS_FORMS: dict[str, type[CredentialsFormBase]] = {}


def credentials_form_class(platform: str) -> type[CredentialsFormBase]:
    """A form with exactly `platform`'s credential fields, as never-prefilled password inputs."""
    if platform not in _CREDENTIALS_FORMS:
        required = REQUIRED_KEYS.get(platform, ())
        fields: dict = {}
        for key in allowed_keys(platform):
            fields[key] = PasswordField(
                key_label(key),
                validators=[Optional(), Length(max=4000)],
                description="Required for the provider client." if key in required else "Optional.",
                # autocomplete=off keeps password managers from offering (or saving) these.
                render_kw={"autocomplete": "off", "spellcheck": "false"},
            )
            fields[f"clear_{key}"] = BooleanField(f"Clear the stored {key_label(key)}")
        _CREDENTIALS_FORMS[platform] = type(
            f"{platform.capitalize()}CredentialsForm", (CredentialsFormBase,),
            {"platform": platform, **fields})
    return _CREDENTIALS_FORMS[platform]


class TokenForm(FlaskForm):
    """A new API token for the signed-in user."""

    name = StringField("Token name", validators=[DataRequired(), Length(max=100)],
                       description="What the token is for, e.g. “ci” or “zapier”.",
                       render_kw={"autocomplete": "off"})


class UserCreateForm(FlaskForm):
    """A new dashboard user with an initial password."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "off"})
    role = SelectField("Role", choices={r: r.capitalize() for r in ROLES}, default="viewer")
    password = PasswordField("Initial password", validators=[
        DataRequired(), Length(min=MIN_PASSWORD_LENGTH, message=f"Use at least {MIN_PASSWORD_LENGTH} characters."),
    ], description="Give it to the user through a safe channel; they change it on their profile.",
                             render_kw={"autocomplete": "new-password"})


def _new_password_field(label: str) -> PasswordField:
    return PasswordField(label, validators=[
        DataRequired(), Length(min=MIN_PASSWORD_LENGTH, message=f"Use at least {MIN_PASSWORD_LENGTH} characters."),
        Length(max=1000, message="Use at most 1000 characters."),
    ], render_kw={"autocomplete": "new-password"})


class ChangePasswordForm(FlaskForm):
    """The signed-in user's new password, with their current one as proof."""

    current_password = PasswordField("Current password", validators=[DataRequired()],
                                     render_kw={"autocomplete": "current-password"})
    new_password = _new_password_field("New password")
    confirm = PasswordField("New password again", validators=[
        DataRequired(), EqualTo("new_password", message="The two new passwords differ.")],
        render_kw={"autocomplete": "new-password"})


class ResetPasswordForm(FlaskForm):
    """An admin sets a new password for a user (who is signed out everywhere)."""

    new_password = _new_password_field("New password")


class UserRoleForm(FlaskForm):
    """Another role for an existing user."""

    role = SelectField("Role", choices={r: r.capitalize() for r in ROLES})


class ProfileForm(FlaskForm):
    """The signed-in user's own settings: the time zone pages use."""

    timezone = SelectField("Time zone", validators=[InputRequired()],
                           description="Scheduled times are shown in this zone, and the times you "
                                       "type are read in it.")


class SearchForm(FlaskForm):
    """A GET filter box; no CSRF, since it changes nothing."""

    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=200)])


def apply_domain_error(form: FlaskForm, exc: DomainError, *, aliases: dict[str, str | None] | None = None,
                       default_field: str | None = None) -> None:
    """Show a service's error next to the fields it names, or above the form (FlaskBB style).

    `aliases` maps a service's field path, or its longest known prefix (`metadata.hashtags`
    takes `metadata.hashtags.3`), to a form field name, or to None for an error about the whole
    form. An error that names no field of the form (a Conflict, say) goes next to
    `default_field` when given, else above the form. The one way pages put a service's error
    onto a form: they dispatch on the error's type and its field paths, never on its text.
    """
    aliases = aliases or {}
    if not exc.errors:
        _add_error(form, default_field, exc.detail)
    for error in exc.errors:
        name = _alias(aliases, error.field)
        if name is None:
            _add_error(form, None, error.message)
        elif name in form._fields:
            _add_error(form, name, error.message)
        else:
            _add_error(form, default_field, f"{error.field}: {error.message}")


def _alias(aliases: dict[str, str | None], path: str) -> str | None:
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in aliases:
            return aliases[prefix]
    return path


def refusal_message(exc: DomainError) -> str:
    """A refused button's reason in one sentence: the fields' own messages read better than the
    detail, which prefixes each with its field."""
    return "; ".join(e.message for e in exc.errors) or exc.detail


def _add_error(form: FlaskForm, name: str | None, message: str) -> None:
    if name and name in form._fields and name != "csrf_token":
        # Field.errors is a tuple until validation ran; a list afterwards.
        form[name].errors = list(form[name].errors) + [_sentence(message)]
    else:
        form.form_errors.append(_sentence(message))


def _sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."

