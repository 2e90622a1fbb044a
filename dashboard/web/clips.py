"""Clips pages: the searchable list, create and edit, and the clip page with its publish and
cross-post panels.

The list and the panels answer htmx with fragments (`_something.html`) and browsers with whole
pages, chosen by `request.htmx` on the same URL. Views never commit and never reach a platform:
they call the clips service, `publish_clip` or the background publishing functions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from htmx_flask import request  # flask's request, typed with its .htmx
from pydantic import ValidationError

from .. import clips as clip_service
from .. import idempotency
from ..api import uploads as tus
from ..errors import (
    AccountNotFound,
    ClipNotFound,
    InvalidInput,
    NotFound,
)
from ..extensions import db
from ..history import HistoryFilter, list_publish_logs
from ..media import clips as media_service
from ..media.http import accepts_uploads, send_stored
from ..media.storage import get_storage
from ..models import FINAL_STATUSES, PublishLog, SocialAccount, platform_name, utcnow
from ..publishing import background
from ..publishing.models import PublishMetadata, PublishRequest, PublishResult
from ..publishing.preview import caption_counts, post_previews
from ..publishing.quotas import quota_state
from ..publishing.service import QuotaExceeded, publish_now, result_of
from ..schemas import ClipIn, ClipPatch
from .access import role_required
from .clip_forms import (
    LOCAL_FORMATS,
    PUBLISH_FIELD_MAP,
    ClipForm,
    ClipSearchForm,
    CoverForm,
    PublishForm,
    account_choices,
    crosspost_accounts,
    crosspost_form,
    parse_hashtags,
)
from .confirm import ask_first, confirmed
from .filters import local_text, new_idempotency_key, user_zone
from .forms import apply_domain_error, retry_button, run_button
from .htmx import go_to, retarget, wants_fragment
from .submit import submit_form_once

bp = Blueprint("clips", __name__, url_prefix="/clips")

PAGE_SIZE = 25
CLIP_HISTORY_SIZE = 10
CLIP_FIELD_MAP: dict[str, str | None] = {name: name for name in ("title", "description", "media", "duration_seconds")}


@bp.get("")
@role_required("viewer")
def index():
    """Clips newest first, searched as you type, one keyset page at a time."""
    form = ClipSearchForm(request.args)
    search = (form.q.data or "").strip() if form.validate() else ""
    cursor = request.args.get("cursor") or None
    page = clip_service.list_clips(db, search or None, cursor, PAGE_SIZE)
    template = "clips/_results.html" if wants_fragment() else "clips/index.html"
    return render_template(template, form=form, page=page, search=search, cursor=cursor)


@bp.route("/new", methods=["GET", "POST"])
@role_required("editor")
def new():
    """Create a clip, then show it."""
    form = ClipForm()
    if form.validate_on_submit():
        try:
            clip = clip_service.create_clip(db, ClipIn(**form.clip_fields()))
        except ValidationError as exc:
            apply_domain_error(form, InvalidInput.from_pydantic(exc, whole=""), aliases=CLIP_FIELD_MAP)
        except InvalidInput as exc:
            apply_domain_error(form, exc, aliases=CLIP_FIELD_MAP)
        else:
            flash(f"Clip \u201c{clip.title}\u201d created.", "success")
            return redirect(url_for("clips.detail", clip_id=clip.id))
    return render_template("clips/form.html", form=form, clip=None)


@bp.route("/<uuid:clip_id>/edit", methods=["GET", "POST"])
@role_required("editor")
def edit(clip_id: uuid.UUID):
    """Change a clip's title, description, media or duration."""
    clip = clip_service.get_clip(db, clip_id)
    form = ClipForm(obj=clip)
    if clip.has_upload:  # its name and duration are the uploaded file's
        del form.media
        del form.duration_seconds
    if form.validate_on_submit():
        try:
            clip = clip_service.update_clip(db, clip_id, ClipPatch(**form.clip_fields()))
        except ValidationError as exc:
            apply_domain_error(form, InvalidInput.from_pydantic(exc, whole=""), aliases=CLIP_FIELD_MAP)
        except InvalidInput as exc:
            apply_domain_error(form, exc, aliases=CLIP_FIELD_MAP)
        else:
            flash("Clip saved.", "success")
            return redirect(url_for("clips.detail", clip_id=clip.id))
    return render_template("clips/form.html", form=form, clip=clip)


def _clip_history(clip_id: uuid.UUID):
    return list_publish_logs(db, HistoryFilter(clip_id=clip_id), limit=CLIP_HISTORY_SIZE)


def _publish_form() -> PublishForm:
    form = PublishForm()
    form.social_account_id.choices = account_choices(db, form.platform.data or "instagram")
    return form


def _crosspost_form(**kwargs):
    groups = crosspost_accounts(db)
    return crosspost_form(groups, **kwargs), groups


@bp.get("/<uuid:clip_id>")
@role_required("viewer")
def detail(clip_id: uuid.UUID):
    """A clip's details, its publish and cross-post panels (editors) and its latest attempts."""
    clip = clip_service.get_clip(db, clip_id)
    context = {}
    if current_user.has_role("editor"):
        form = _publish_form()
        form.idempotency_key.data = new_idempotency_key()
        crosspost, groups = _crosspost_form()
        crosspost.idempotency_key.data = new_idempotency_key()
        context = dict(form=form, crosspost=crosspost, groups=groups)
    return render_template("clips/detail.html", clip=clip, result=None, history=_clip_history(clip_id),
                           **context)


@bp.context_processor
def clip_page_helpers() -> dict:
    """For the clip templates: `platform_checks(clip)`, `cover_form(clip)`, the upload settings,
    `caption_counts(form)` (the publish panel's lengths per platform) and `account_of(id)` (the
    account a result names)."""

    def cover_form(clip):
        form = CoverForm(formdata=None)
        form.cover_seconds.data = (clip.cover_offset_ms or 0) / 1000
        return form

    def empty_previews(clip):
        return post_previews(clip, "", [], None, current_app.config["PLATFORM_LIMITS"])

    def form_caption_counts(form):
        return caption_counts(form.caption.data or "", parse_hashtags(form.hashtags.data),
                              current_app.config["PLATFORM_LIMITS"])

    def account_of(account_id):
        return db.session.get(SocialAccount, account_id) if account_id else None

    return {"platform_checks": media_service.platform_checks, "cover_form": cover_form,
            "upload_chunk_bytes": current_app.config["MEDIA_UPLOAD_CHUNK_BYTES"],
            "empty_previews": empty_previews, "caption_counts": form_caption_counts,
            "account_of": account_of}


@bp.get("/<uuid:clip_id>/preview")
@role_required("viewer")
def preview(clip_id: uuid.UUID):
    """The post on each platform with the publish panel's caption, hashtags and account, fetched
    by static/preview.js as the manager types (nothing is written; reading is enough)."""
    clip = clip_service.get_clip(db, clip_id)
    account = None
    try:
        account_id = uuid.UUID(request.args.get("social_account_id") or "")
    except ValueError:
        pass
    else:
        account = db.session.get(SocialAccount, account_id)
    previews = post_previews(clip, request.args.get("caption", "")[:10_000],
                             parse_hashtags(request.args.get("hashtags", "")[:5_000]), account,
                             current_app.config["PLATFORM_LIMITS"])
    return render_template("clips/_preview.html", clip=clip, previews=previews)


def _uploaded(clip_id: uuid.UUID):
    clip = clip_service.get_clip(db, clip_id)
    if not clip.has_upload:
        raise NotFound(f"clip {clip_id} has no uploaded video")
    return clip


@bp.get("/<uuid:clip_id>/video")
@role_required("viewer")
def video(clip_id: uuid.UUID):
    """The clip's video for the page's player, with Range requests so seeking works."""
    clip = _uploaded(clip_id)
    return send_stored(get_storage(), clip.media_key, clip.media_content_type)


@bp.get("/<uuid:clip_id>/thumbnail.jpg")
@role_required("viewer")
def thumbnail(clip_id: uuid.UUID):
    """The clip's cover frame (JPEG)."""
    clip = _uploaded(clip_id)
    return send_stored(get_storage(), clip.thumbnail_key, "image/jpeg")


@bp.post("/<uuid:clip_id>/cover")
@role_required("editor")
def cover(clip_id: uuid.UUID):
    """Take the cover (thumbnail, platforms' cover) at the chosen second; htmx gets the media
    panel again, with the error next to the field when the time is refused."""
    clip = _uploaded(clip_id)
    form = CoverForm()
    if form.validate_on_submit():
        try:
            clip = media_service.set_cover(db, clip_id, round(form.cover_seconds.data * 1000))
        except InvalidInput as exc:
            apply_domain_error(form, exc, aliases={"cover_offset_ms": "cover_seconds"}, default_field="cover_seconds")
        else:
            if not wants_fragment():
                flash("Cover frame saved.", "success")
                return redirect(url_for("clips.detail", clip_id=clip_id))
            return render_template("clips/_media.html", clip=clip, cover=None)
    if not wants_fragment():
        flash("Cover not saved: " + "; ".join(form.cover_seconds.errors), "error")
        return redirect(url_for("clips.detail", clip_id=clip_id))
    return render_template("clips/_media.html", clip=clip, cover=form)


# Resumable uploads from the pages (tus, through the signed-in session) ------------------------

def _page_upload_url(upload_id) -> str:
    return url_for("clips.upload", upload_id=upload_id)


def _page_clip_url(clip_id) -> str:
    return url_for("clips.detail", clip_id=clip_id)


@bp.post("/uploads")
@role_required("editor")
def create_upload():
    """Start a resumable upload from the page (tus creation)."""
    return tus.tus_create(current_user.id, _page_upload_url)


@bp.route("/uploads/<upload_id>", methods=["HEAD", "PATCH", "DELETE"])
@accepts_uploads
@role_required("editor")
def upload(upload_id: str):
    """HEAD: the offset to resume at; PATCH: append; DELETE: cancel (tus)."""
    if request.method == "PATCH":
        return tus.tus_patch(current_user.id, upload_id, _page_clip_url)
    if request.method == "DELETE":
        return tus.tus_delete(current_user.id, upload_id)
    return tus.tus_head(current_user.id, upload_id, _page_clip_url)


@bp.get("/accounts-options")
@role_required("editor")
def account_options():
    """The account <option>s of one platform, for the publish panel's account select."""
    choices = account_choices(db, request.args.get("platform"))
    return render_template("clips/_account_options.html", choices=choices, selected="")


@dataclass
class PanelOutcome:
    """What the publish panel did: published now (`result`, of the attempt `log_id`, which its
    Retry names), scheduled (`scheduled`), or an attempt still under way (`processing`: a live
    publish past the sync wait, or a retry in the queue, followed live by the page)."""

    result: PublishResult | None = None
    scheduled: PublishLog | None = None
    processing: PublishLog | None = None
    replayed: bool = False
    log_id: uuid.UUID | None = None

    def body(self) -> dict:
        """What the idempotency record keeps, to answer a repeat of the same POST."""
        if self.scheduled is not None:
            return {"scheduled_log_id": str(self.scheduled.id)}
        if self.processing is not None:
            return {"processing_log_id": str(self.processing.id)}
        assert self.result is not None  # an outcome is one of the three
        return self.result.model_dump(mode="json") | {"log_id": str(self.log_id) if self.log_id else None}

    @classmethod
    def replay(cls, body: dict) -> PanelOutcome:
        if "scheduled_log_id" in body:
            return cls(scheduled=background.get_log(db, uuid.UUID(body["scheduled_log_id"])), replayed=True)
        if "processing_log_id" in body:
            log_row = background.get_log(db, uuid.UUID(body["processing_log_id"]))
            return cls.of_attempt(log_row, replayed=True)
        result = dict(body)
        log_id = result.pop("log_id", None)
        return cls(result=PublishResult.model_validate(result), replayed=True,
                   log_id=uuid.UUID(log_id) if log_id else None)

    @classmethod
    def of_attempt(cls, log_row: PublishLog, replayed: bool = False) -> PanelOutcome:
        """An attempt as it stands: its result once final, else still under way."""
        if log_row.status in FINAL_STATUSES:
            return cls(result=result_of(log_row), replayed=replayed, log_id=log_row.id)
        return cls(processing=log_row, replayed=replayed)


@dataclass
class QuotaOffer:
    """The next moment an account may post again, offered as a schedule time."""

    slot: datetime  # UTC, rounded up to the minute
    local_value: str  # the datetime-local value on the user's clock
    message: str  # why it cannot post now, with that moment on the user's clock


def _quota_offer(account_id: uuid.UUID | None) -> QuotaOffer | None:
    account = db.session.get(SocialAccount, account_id) if account_id else None
    if account is None:
        return None
    state = quota_state(db.session, account, utcnow())
    if state.next_slot is None:
        return None
    slot = state.next_slot.replace(second=0, microsecond=0)
    if slot < state.next_slot:
        slot += timedelta(minutes=1)
    message = (f"@{account.handle} has made {state.used} of its {state.limit} posts in the last 24 "
               f"hours; the next post is possible at {local_text(slot)}")
    return QuotaOffer(slot, slot.astimezone(user_zone()).strftime(LOCAL_FORMATS[0]), message)


def _run_publish(clip_id: uuid.UUID, form: PublishForm) -> tuple[PanelOutcome | None, QuotaOffer | None]:
    """Publish now or schedule, mapping refusals onto the form; (None, offer) when refused."""
    try:
        clip_service.get_clip(db, clip_id)
        metadata = PublishMetadata(caption=form.caption.data or "", hashtags=form.hashtag_list())
        if form.when.data == "later":
            target = background.Target(form.platform.data, form.account_id(), metadata.caption,
                                       list(metadata.hashtags))
            return PanelOutcome(scheduled=background.schedule_publish(
                db, clip_id, target, form.scheduled_at.data)), None
        attempt = publish_now(db, PublishRequest(
            clip_id=clip_id, platform=form.platform.data, social_account_id=form.account_id(),
            metadata=metadata,
        ))
        if attempt.done:
            return PanelOutcome(result=attempt.result, log_id=attempt.log_id), None
        return PanelOutcome(processing=background.get_log(db, attempt.log_id)), None
    except ValidationError as exc:
        apply_domain_error(form, InvalidInput.from_pydantic(exc, whole=""), aliases=PUBLISH_FIELD_MAP)
    except QuotaExceeded as exc:
        # The engine's sentence gives the time in UTC (the API's clock); the page says it on the
        # user's clock, beside the offer to schedule it for then.
        offer = _quota_offer(form.account_id())
        shown = exc if offer is None else QuotaExceeded(offer.message, exc.retry_at)
        apply_domain_error(form, shown, default_field="social_account_id")
        return None, offer
    except InvalidInput as exc:
        apply_domain_error(form, exc, aliases=PUBLISH_FIELD_MAP)
    except AccountNotFound:
        form.social_account_id.errors = ["this account no longer exists; choose another"]
    except ClipNotFound:
        form.form_errors.append("This clip no longer exists: it may have been deleted.")
    return None, None


def _in_flight_outcome(reserved: idempotency.InFlight) -> PanelOutcome:
    """A repeat of a form whose first sending created its post but never answered: that post as
    it stands (scheduled, still publishing and followed, or its result), never a second publish."""
    log_row = background.get_log(db, reserved.log_id)
    if log_row.scheduled_at is not None:
        return PanelOutcome(scheduled=log_row, replayed=True)
    return PanelOutcome.of_attempt(log_row, replayed=True)


@bp.post("/<uuid:clip_id>/publish")
@role_required("editor")
def publish(clip_id: uuid.UUID):
    """Publish the clip now, or schedule it, with the panel's values; show the outcome in place.

    htmx gets the outcome for #publish-result (with the refreshed history and a fresh
    idempotency key, out of band), or, when the input is refused, the form again with its errors
    inline, retargeted onto the form (200: htmx 2 does not swap 4xx answers). Nothing is written
    when the input is refused, and a repeat of the same form (same idempotency key) shows the
    first outcome without publishing again.
    """
    slot = request.form.get("use_next_slot")
    if slot:  # the quota message's "Schedule it for then" button: the same values, later
        formdata = request.form.copy()
        formdata["when"], formdata["scheduled_at"] = "later", slot
        form = PublishForm(formdata=formdata)
    else:
        form = PublishForm()
    form.social_account_id.choices = account_choices(db, form.platform.data)
    outcome = offer = None
    if form.validate_on_submit():
        outcome, offer = submit_form_once(current_user.id, form.idempotency_key.data, form.request_body(),
                              lambda: _run_publish(clip_id, form), form.form_errors.append,
                                        in_flight=lambda reserved: (_in_flight_outcome(reserved), None))
        if isinstance(outcome, idempotency.Replay):
            outcome = PanelOutcome.replay(outcome.body)
    if outcome is None:
        if not wants_fragment():
            return _full_clip_page(clip_id, form, None, offer=offer)
        return retarget(render_template("clips/_publish_invalid.html", clip_id=clip_id, form=form, offer=offer),
                        "#publish-form")
    if not wants_fragment():
        form = _publish_form()
        form.idempotency_key.data = new_idempotency_key()
        return _full_clip_page(clip_id, form, outcome)
    return render_template("clips/_publish_done.html", clip_id=clip_id, form=form, outcome=outcome,
                           result=outcome.result, scheduled=outcome.scheduled,
                           processing=outcome.processing, fresh_key=new_idempotency_key(),
                           history=_clip_history(clip_id))


def _attempt_of(clip_id: uuid.UUID, log_id: uuid.UUID) -> PublishLog:
    log_row = background.get_log(db, log_id)
    if log_row.clip_id != clip_id:
        raise NotFound(f"publish log {log_id} is not a post of this clip")
    return log_row


@bp.get("/<uuid:clip_id>/attempts/<uuid:log_id>")
@role_required("editor")
def publish_status(clip_id: uuid.UUID, log_id: uuid.UUID):
    """An attempt followed by the panel (a live publish, a retry): polled by htmx while it is
    queued or publishing; once final, its result (with Retry) and, out of band, the refreshed
    history, and the polling stops. Without JavaScript: the clip page with it in the panel."""
    outcome = PanelOutcome.of_attempt(_attempt_of(clip_id, log_id))
    if not wants_fragment():
        form = _publish_form()
        form.idempotency_key.data = new_idempotency_key()
        return _full_clip_page(clip_id, form, outcome)
    return render_template("clips/_publish_followed.html", clip_id=clip_id, outcome=outcome,
                           result=outcome.result, processing=outcome.processing,
                           history=_clip_history(clip_id) if outcome.result else None)


@bp.post("/<uuid:clip_id>/attempts/<uuid:log_id>/retry")
@role_required("editor")
def retry_attempt(clip_id: uuid.UUID, log_id: uuid.UUID):
    """The panel's Retry (or "Retry anyway") of a failed or unconfirmed attempt: the one retry
    service (background.retry, as home, history and batch rows use), so the new attempt is
    queued once and linked to this one; the panel then follows it to its end.

    A refusal is answered in the panel, not as an error page: a post retried already (a double
    click, a second tab) shows that one retry instead; any other refusal shows under the
    attempt's Retry. htmx gets the panel's fragment; a plain form post is sent to the new
    attempt's page (reloading it never retries again), or gets the clip page with the refusal.
    """
    original = _attempt_of(clip_id, log_id)
    queued, error = retry_button(log_id)
    already = None
    if queued is None:
        already = background.retry_of(db, log_id)
    if queued is not None and not wants_fragment():
        return redirect(url_for("clips.publish_status", clip_id=clip_id, log_id=queued.id), 303)
    shown = queued or already
    outcome = PanelOutcome.of_attempt(shown if shown is not None else original)
    context = dict(already_retried=already is not None, retry_error=None if shown else error)
    if not wants_fragment():
        form = _publish_form()
        form.idempotency_key.data = new_idempotency_key()
        return _full_clip_page(clip_id, form, outcome, **context), 409
    return render_template("clips/_publish_done.html", clip_id=clip_id, outcome=outcome,
                           result=outcome.result, scheduled=None, processing=outcome.processing,
                           fresh_key=new_idempotency_key(), history=_clip_history(clip_id), **context)


@bp.post("/<uuid:clip_id>/scheduled/<uuid:log_id>/cancel")
@role_required("editor")
def cancel_scheduled(clip_id: uuid.UUID, log_id: uuid.UUID):
    """Cancel the post just scheduled from the panel; the panel's result says so in place."""
    _attempt_of(clip_id, log_id)
    if not confirmed():
        return ask_first("Cancel this scheduled post?", "It will not go out.", "Cancel the post",
                         url_for("clips.detail", clip_id=clip_id))
    _, error = run_button(lambda: background.cancel(db, log_id))
    log_row = background.get_log(db, log_id)
    if not wants_fragment():
        flash(f"Not cancelled: {error}" if error else "Cancelled the scheduled post.",
              "error" if error else "info")
        return redirect(url_for("clips.detail", clip_id=clip_id))
    return render_template("clips/_scheduled_done.html", clip_id=clip_id, scheduled=log_row,
                           cancel_error=error, history=_clip_history(clip_id))


def _full_clip_page(clip_id: uuid.UUID, form: PublishForm, outcome: PanelOutcome | None, offer=None,
                    crosspost=None, groups=None, account_errors=None, **panel):
    """The clip page after a POST without JavaScript: the outcome, or the form's errors;
    `panel` adds to the publish panel (a Retry's refusal)."""
    clip = clip_service.get_clip(db, clip_id)
    if crosspost is None:
        crosspost, groups = _crosspost_form(formdata=None)
        crosspost.idempotency_key.data = new_idempotency_key()
    return render_template(
        "clips/detail.html", clip=clip, form=form, outcome=outcome,
        result=outcome.result if outcome else None, scheduled=outcome.scheduled if outcome else None,
        processing=outcome.processing if outcome else None,
        offer=offer, crosspost=crosspost, groups=groups, account_errors=account_errors or {},
        history=_clip_history(clip_id), **panel)


# Cross-posting ---------------------------------------------------------------------------------

@dataclass
class BatchMade:
    batch_id: uuid.UUID

    def body(self) -> dict:
        return {"batch_id": str(self.batch_id)}


ACCOUNT_GONE = "one of these accounts no longer exists; reload the page"


def _crosspost_errors(form, exc: InvalidInput, account_errors: dict[uuid.UUID, list[str]]) -> None:
    """Put a refused batch's errors next to what caused them: the account's checkbox, its own
    caption/hashtags when it has them, else the default ones (naming the account)."""
    if isinstance(exc, background.TargetRefused):
        account = db.session.get(SocialAccount, exc.target.social_account_id)
        if account is None:  # deleted since the batch was refused
            form.accounts.errors = list(form.accounts.errors) + [ACCOUNT_GONE]
            return
        own_caption, own_hashtags = form.override_fields(account.id)
        for error in exc.errors:
            rest = error.field.removeprefix(exc.prefix + ".")
            named = f"@{account.handle}: {error.message}"
            if rest in ("metadata.caption", "caption", "metadata"):
                field = own_caption if (own_caption.data or "").strip() else form.caption
                field.errors = list(field.errors) + [error.message if field is own_caption else named]
            elif rest.startswith(("metadata.hashtags", "hashtags")):
                field = own_hashtags if (own_hashtags.data or "").strip() else form.hashtags
                field.errors = list(field.errors) + [error.message if field is own_hashtags else named]
            elif rest.startswith("social_account_id"):
                account_errors.setdefault(account.id, []).append(error.message)
            else:  # the clip itself breaks a rule of this account's platform
                form.form_errors.append(f"@{account.handle} ({platform_name(account.platform)}): {error.message}")
        return
    if any(e.field.startswith("targets") and e.field.endswith("social_account_id") for e in exc.errors):
        form.accounts.errors = list(form.accounts.errors) + [ACCOUNT_GONE]
        return
    apply_domain_error(form, exc, aliases={"with_satellites_of": "with_satellites_of", "targets": "accounts",
                                           "scheduled_at": "scheduled_at"})


def _run_crosspost(clip_id: uuid.UUID, form, account_errors) -> tuple[BatchMade | None, None]:
    try:
        clip_service.get_clip(db, clip_id)
        targets = background.batch_targets(db, form.picked_ids(), form.main_ids(), form.default_text(),
                                           form.own_texts())
        batch = background.create_batch(db, clip_id, targets, created_by_id=current_user.id,
                                        scheduled_at=form.scheduled_for())
        return BatchMade(batch.id), None
    except InvalidInput as exc:
        _crosspost_errors(form, exc, account_errors)
    except ClipNotFound:
        form.form_errors.append("This clip no longer exists: it may have been deleted.")
    except AccountNotFound:
        form.accounts.errors = list(form.accounts.errors) + [ACCOUNT_GONE]
    return None, None


@bp.post("/<uuid:clip_id>/crosspost")
@role_required("editor")
def crosspost(clip_id: uuid.UUID):
    """Cross-post the clip to the picked accounts (one queued log each), then show the batch.

    htmx is sent to the batch page with HX-Redirect; refused input comes back as the form with
    its errors next to the accounts and captions that caused them, and writes nothing.
    """
    form, groups = _crosspost_form()
    account_errors: dict[uuid.UUID, list[str]] = {}
    made = None
    if form.validate_on_submit():
        made, _ = submit_form_once(current_user.id, form.idempotency_key.data, form.request_body(),
                       lambda: _run_crosspost(clip_id, form, account_errors), form.form_errors.append,
                                     in_flight=lambda reserved: (BatchMade(reserved.created_batch_id), None))
        if isinstance(made, idempotency.Replay):
            made = BatchMade(uuid.UUID(made.body["batch_id"]))
    if made is not None:
        return go_to(url_for("batches.detail", batch_id=made.batch_id))
    if not wants_fragment():
        publish_form = _publish_form()
        publish_form.idempotency_key.data = new_idempotency_key()
        return _full_clip_page(clip_id, publish_form, None, crosspost=form, groups=groups,
                               account_errors=account_errors)
    return render_template("clips/_crosspost_form.html", clip_id=clip_id, crosspost=form, groups=groups,
                           account_errors=account_errors)
