"""Flask-WTF forms of the clips pages and the clip page's publish and cross-post panels.

Forms check what a browser can get wrong (required, lengths, numbers, dates); the services stay
the judges of the domain rules, and views map their FieldErrors back onto these fields.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    FloatField,
    HiddenField,
    RadioField,
    SearchField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from ..accounts import AccountTree, account_trees
from ..local_times import validate_local_field
from ..models import PLATFORMS, platform_name
from .filters import user_zone
from .forms import BAD_TIME, LOCAL_FORMATS

NO_ACCOUNT_LABEL = "No account (simulator)"


class ClipForm(FlaskForm):
    """Create or edit a clip."""

    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)])
    media = StringField(
        "Media path or URL",
        validators=[DataRequired(), Length(max=2000)],
        description="Where the video file is, e.g. https://cdn.example.com/clip.mp4",
    )
    duration_seconds = FloatField(
        "Duration (seconds)",
        validators=[Optional(), NumberRange(max=4 * 3600, message="at most 4 hours (14400 s)")],
    )

    def validate_duration_seconds(self, field):
        """A clip lasts some time: zero or less is a typo."""
        if field.data is not None and field.data <= 0:
            raise ValidationError("must be more than 0 seconds")

    def clip_fields(self) -> dict:
        """The form's values as ClipIn / ClipPatch fields (media and duration only when the
        form has them: an uploaded clip's come from its file)."""
        fields = {"title": (self.title.data or "").strip(), "description": self.description.data or ""}
        if "media" in self:
            fields["media"] = (self.media.data or "").strip()
        if "duration_seconds" in self:
            fields["duration_seconds"] = self.duration_seconds.data
        return fields


class CoverForm(FlaskForm):
    """Pick the cover frame of an uploaded video, in seconds from its start."""

    cover_seconds = FloatField(
        "Cover at (seconds)",
        validators=[DataRequired(message="enter a time in seconds, e.g. 1.5"),
                    NumberRange(min=0, message="must be 0 or more seconds")],
    )


class ClipSearchForm(FlaskForm):
    """The search box above the clips list (GET, so no CSRF)."""

    class Meta:
        csrf = False

    q = SearchField("Search clips", validators=[Optional(), Length(max=200)])


# The rule the hashtag fields state and static/publish-panel.js repeats: tags are separated by
# commas, the # is optional, and a tag is one word. "#spring #sale" (every word with its #) is two
# tags; "spring sale" is refused rather than guessed at.
HASHTAGS_HELP = "Separated by commas; the # is optional; a tag is one word (springsale, not spring sale)."
HASHTAGS_EXAMPLE = "launch, springsale"


def parse_hashtags(raw: str | None) -> list[str]:
    """'#launch, springsale' -> ['launch', 'springsale']; '#spring #sale' -> ['spring', 'sale'];
    'spring sale' stays one entry, which `check_hashtags` refuses (order kept, duplicates dropped)."""
    tags: list[str] = []
    for entry in (raw or "").split(","):
        words = entry.split()
        parts = words if len(words) > 1 and all(word.startswith("#") for word in words) else [" ".join(words)]
        for part in parts:
            tag = part[1:] if part.startswith("#") and part.count("#") == 1 else part
            if tag and tag not in tags:
                tags.append(tag)
    return tags


def check_hashtags(_form, field):
    """A hashtags field's tags are one word each, of at most 100 characters."""
    for tag in parse_hashtags(field.data):
        if " " in tag:
            raise ValidationError(f"\u201c{tag}\u201d is not one hashtag: a tag is one word (write "
                                  f"{tag.replace(' ', '')}), and tags are separated by commas")
        if "#" in tag:
            raise ValidationError(f"\u201c{tag}\u201d is not one hashtag: separate tags with commas")
        if len(tag) > 100:
            raise ValidationError(f"\u201c{tag[:20]}\u2026\u201d is longer than 100 characters")


class PublishForm(FlaskForm):
    """The clip page's publish panel. Platform rules are checked by the engine, not here."""

    platform = SelectField(
        "Platform",
        choices=[SelectChoice(p, platform_name(p)) for p in PLATFORMS],
        validators=[DataRequired()],
    )
    # Choices depend on the platform (set by the view); the engine judges the account itself.
    social_account_id = SelectField("Account", validate_choice=False)
    caption = TextAreaField("Caption")
    hashtags = StringField("Hashtags", description=HASHTAGS_HELP, render_kw={"placeholder": HASHTAGS_EXAMPLE})
    when = RadioField("When", default="now",
                      choices=[SelectChoice("now", "Publish now"),
                               SelectChoice("later", "Schedule for a date and time")])
    # Typed on the user's clock (their profile's zone); the engine stores UTC.
    scheduled_at = DateTimeLocalField("Date and time", format=LOCAL_FORMATS, tz=user_zone,
                                      validators=[Optional()], invalid_value_message=BAD_TIME)
    # One per render of the form: a second POST with the same key (a double click) replays the
    # first answer instead of publishing again.
    idempotency_key = HiddenField()

    def validate(self, extra_validators=None) -> bool:
        """The fields, then: scheduling needs a time (Optional() stops an empty field's own
        validators, so this is checked here)."""
        valid = super().validate(extra_validators)
        if self.when.data == "later" and self.scheduled_at.data is None and not self.scheduled_at.errors:
            self.scheduled_at.errors = list(self.scheduled_at.errors) + ["choose the date and time to publish at"]
            valid = False
        return valid

    def request_body(self) -> dict:
        """What this POST asks for, as the idempotency fingerprint sees it."""
        later = self.when.data == "later"
        return {
            "platform": self.platform.data, "social_account_id": self.social_account_id.data or "",
            "caption": self.caption.data or "", "hashtags": self.hashtag_list(),
            "when": "later" if later else "now",
            "scheduled_at": self.scheduled_at.data.isoformat() if later and self.scheduled_at.data else None,
        }

    def validate_scheduled_at(self, field):
        """A time that exists, once, on the user's clock (not in a daylight-saving change)."""
        if self.when.data == "later":
            validate_local_field(field, user_zone())

    def validate_social_account_id(self, field):
        """An id, or empty for the simulator."""
        if field.data:
            try:
                uuid.UUID(field.data)
            except ValueError:
                raise ValidationError("choose an account from the list") from None

    def validate_hashtags(self, field):
        """Catch '#a#b' (two tags run together) before the engine does, in plain words."""
        check_hashtags(self, field)

    def account_id(self) -> uuid.UUID | None:
        """The chosen account id, None for the simulator."""
        return uuid.UUID(self.social_account_id.data) if self.social_account_id.data else None

    def hashtag_list(self) -> list[str]:
        """The hashtags field split into tags."""
        return parse_hashtags(self.hashtags.data)


# Engine field paths -> publish form fields. Errors about the clip itself (title, duration) are
# not the form's to fix: they show above it, with a link to edit the clip.
PUBLISH_FIELD_MAP: dict[str, str | None] = {
    "clip": None,
    "scheduled_at": "scheduled_at",
    "timezone": "scheduled_at",
    "platform": "platform",
    "social_account_id": "social_account_id",
    "metadata.caption": "caption",
    "metadata": "caption",
    "metadata.hashtags": "hashtags",
}


def account_choices(db, platform: str | None) -> list[SelectChoice]:
    """Active accounts of `platform` for the publish form: each main account, its satellites under it.

    The first choice is publishing without an account (the simulator).
    """
    choices = [SelectChoice("", NO_ACCOUNT_LABEL)]
    if platform not in PLATFORMS:
        return choices
    for tree in account_trees(db, platform, active_only=True)[platform]:
        if tree.orphan:
            parent = tree.main.parent.handle if tree.main.parent else "?"
            choices.append(SelectChoice(str(tree.main.id), f"@{tree.main.handle} (satellite of inactive @{parent})"))
            continue
        choices.append(SelectChoice(str(tree.main.id), _account_label(tree.main)))
        for satellite in tree.satellites:
            choices.append(SelectChoice(str(satellite.id),
                                        f"\u21b3 @{satellite.handle} (satellite of @{tree.main.handle})"))
    return choices


def _account_label(account) -> str:
    if account.display_name and account.display_name != account.handle:
        return f"@{account.handle} \u2014 {account.display_name}"
    return f"@{account.handle}"


# Publishing later and elsewhere -------------------------------------------------------------------

class CrossPostFormBase(FlaskForm):
    """The clip page's cross-post panel: accounts picked one by one and/or main accounts with all
    their satellites, a default caption, and per-account captions made by `crosspost_form`."""

    accounts = SelectMultipleField("Accounts", choices=[])
    with_satellites_of = SelectMultipleField("Main account and all its satellites", choices=[])
    caption = TextAreaField("Caption")
    hashtags = StringField("Hashtags", validators=[check_hashtags], description=HASHTAGS_HELP,
                           render_kw={"placeholder": HASHTAGS_EXAMPLE})
    when = RadioField("When", default="now",
                      choices=[SelectChoice("now", "Publish now"),
                               SelectChoice("later", "Schedule for a date and time")])
    scheduled_at = DateTimeLocalField("Date and time", format=LOCAL_FORMATS, tz=user_zone,
                                      validators=[Optional()], invalid_value_message=BAD_TIME)
    idempotency_key = HiddenField()
    account_ids: list[uuid.UUID] = []  # every account offered, set by crosspost_form

    def validate(self, extra_validators=None) -> bool:
        """The fields, then: scheduling needs a time."""
        valid = super().validate(extra_validators)
        if self.when.data == "later" and self.scheduled_at.data is None and not self.scheduled_at.errors:
            self.scheduled_at.errors = list(self.scheduled_at.errors) + ["choose the date and time to publish at"]
            valid = False
        return valid

    def scheduled_for(self) -> datetime | None:
        """The moment every target is scheduled for, None to queue them now."""
        return self.scheduled_at.data if self.when.data == "later" else None

    def own_texts(self) -> dict[uuid.UUID, tuple[str, list[str]]]:
        """The accounts given their own caption or hashtags, with the text each gets."""
        texts = {}
        for account_id in self.account_ids:
            caption, hashtags = self.override_fields(account_id)
            if (caption.data or "").strip() or (hashtags.data or "").strip():
                texts[account_id] = self.text_for(account_id)
        return texts

    def default_text(self) -> tuple[str, list[str]]:
        """The caption and hashtags of every account without its own."""
        return self.caption.data or "", parse_hashtags(self.hashtags.data)

    def override_fields(self, account_id: uuid.UUID):
        """The (caption, hashtags) fields of one account's own text."""
        return self[f"caption_{account_id.hex}"], self[f"hashtags_{account_id.hex}"]

    def text_for(self, account_id: uuid.UUID) -> tuple[str, list[str]]:
        """The caption and hashtags one account gets: its own when typed, else the default."""
        caption, hashtags = self.override_fields(account_id)
        return ((caption.data if (caption.data or "").strip() else self.caption.data) or "",
                parse_hashtags(hashtags.data) if (hashtags.data or "").strip() else parse_hashtags(self.hashtags.data))

    def picked_ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(value) for value in self.accounts.data or []]

    def main_ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(value) for value in self.with_satellites_of.data or []]

    def request_body(self) -> dict:
        """What this POST asks for, as the idempotency fingerprint sees it."""
        body = {"accounts": sorted(self.accounts.data or []),
                "with_satellites_of": sorted(self.with_satellites_of.data or []),
                "caption": self.caption.data or "", "hashtags": self.hashtags.data or "",
                "scheduled_at": when.isoformat() if (when := self.scheduled_for()) else None}
        for name, field in self._fields.items():
            if name.startswith(("caption_", "hashtags_")) and field.data:
                body[name] = field.data
        return body

    def validate_accounts(self, field):
        if not field.data and not self.with_satellites_of.data:
            raise ValidationError("pick at least one account, or a main account with its satellites")


def crosspost_accounts(db) -> dict[str, list[AccountTree]]:
    """The cross-post picker's tree: active accounts by platform (platforms without any left out)."""
    return {platform: trees for platform, trees in account_trees(db, active_only=True).items() if trees}


def crosspost_form(groups: dict[str, list[AccountTree]], **kwargs) -> CrossPostFormBase:
    """A cross-post form for these accounts: a caption and hashtags field per account."""
    fields = {}
    choices, mains = [], []
    for trees in groups.values():
        for tree in trees:
            for account in [tree.main, *tree.satellites]:
                choices.append(SelectChoice(str(account.id), f"@{account.handle}"))
                fields[f"caption_{account.id.hex}"] = TextAreaField(
                    f"Caption for @{account.handle}", validators=[Optional()])
                fields[f"hashtags_{account.id.hex}"] = StringField(
                    f"Hashtags for @{account.handle}", validators=[Optional(), check_hashtags])
            if tree.satellites and not tree.orphan:
                mains.append(SelectChoice(str(tree.main.id), f"@{tree.main.handle} and all its satellites"))
    form_class = type("CrossPostForm", (CrossPostFormBase,), fields)
    form = form_class(prefix="xp", **kwargs)
    form.accounts.choices = choices
    form.with_satellites_of.choices = mains
    form.account_ids = [uuid.UUID(choice.value) for choice in choices]
    return form
