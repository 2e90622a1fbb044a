"""Clips pages: the searchable list, create and edit, and the clip page with its publish panel.

The list and the publish panel answer htmx with fragments (`_something.html`) and browsers with
whole pages, chosen by `request.htmx` on the same URL. Views never commit and never reach a
platform: they call the clips service or `publish_clip`.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from pydantic import ValidationError

from .. import clips as clip_service
from ..errors import FieldError, InvalidInput, NotFound
from ..extensions import db
from ..history import HistoryFilter, list_publish_logs
from ..publishing.models import PublishMetadata, PublishRequest
from ..publishing.service import publish_clip
from ..schemas import ClipIn, ClipPatch
from .access import role_required
from .clip_forms import (
    PUBLISH_FIELD_MAP,
    ClipForm,
    ClipSearchForm,
    PublishForm,
    account_choices,
    attach_errors,
)

bp = Blueprint("clips", __name__, url_prefix="/clips")

PAGE_SIZE = 25
CLIP_HISTORY_SIZE = 10
CLIP_FIELD_MAP = {name: name for name in ("title", "description", "media", "duration_seconds")}


def wants_fragment() -> bool:
    """An htmx request that swaps part of the page (a history restore needs the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def show_errors(form, errors: list[FieldError], field_map: dict[str, str]) -> None:
    """Put each error next to its field; the rest above the form's buttons."""
    form.form_errors.extend(attach_errors(form, errors, field_map))


def pydantic_errors(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors as our FieldErrors, with dotted paths ('metadata.hashtags.0')."""
    return [
        FieldError(".".join(str(part) for part in err["loc"]), err["msg"])
        for err in exc.errors(include_context=False, include_url=False)
    ]


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
            show_errors(form, pydantic_errors(exc), CLIP_FIELD_MAP)
        except InvalidInput as exc:
            show_errors(form, exc.errors or [FieldError("", exc.detail)], CLIP_FIELD_MAP)
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
    if form.validate_on_submit():
        try:
            clip = clip_service.update_clip(db, clip_id, ClipPatch(**form.clip_fields()))
        except ValidationError as exc:
            show_errors(form, pydantic_errors(exc), CLIP_FIELD_MAP)
        except InvalidInput as exc:
            show_errors(form, exc.errors or [FieldError("", exc.detail)], CLIP_FIELD_MAP)
        else:
            flash("Clip saved.", "success")
            return redirect(url_for("clips.detail", clip_id=clip.id))
    return render_template("clips/form.html", form=form, clip=clip)


def _clip_history(clip_id: uuid.UUID):
    return list_publish_logs(db, HistoryFilter(clip_id=clip_id), limit=CLIP_HISTORY_SIZE)


@bp.get("/<uuid:clip_id>")
@role_required("viewer")
def detail(clip_id: uuid.UUID):
    """A clip's details, its publish panel (editors) and its latest publish attempts."""
    clip = clip_service.get_clip(db, clip_id)
    form = None
    if current_user.has_role("editor"):
        form = PublishForm()
        form.social_account_id.choices = account_choices(db, form.platform.data or "instagram")
    return render_template("clips/detail.html", clip=clip, form=form, result=None,
                           history=_clip_history(clip_id))


@bp.get("/accounts-options")
@role_required("editor")
def account_options():
    """The account <option>s of one platform, for the publish panel's account select."""
    choices = account_choices(db, request.args.get("platform"))
    return render_template("clips/_account_options.html", choices=choices, selected="")


@bp.post("/<uuid:clip_id>/publish")
@role_required("editor")
def publish(clip_id: uuid.UUID):
    """Publish the clip with the panel's values and show the platform's answer in place.

    htmx gets the result for #publish-result (and the refreshed history, out of band), or, when
    the input is invalid, the form again with its errors inline, retargeted onto the form (200:
    htmx 2 does not swap 4xx answers). Nothing is written when the input is invalid.
    """
    form = PublishForm()
    form.social_account_id.choices = account_choices(db, form.platform.data)
    result = None
    if form.validate_on_submit():
        try:
            clip_service.get_clip(db, clip_id)
            result = publish_clip(db, PublishRequest(
                clip_id=clip_id,
                platform=form.platform.data,
                social_account_id=form.account_id(),
                metadata=PublishMetadata(caption=form.caption.data or "",
                                         hashtags=form.hashtag_list()),
            ))
        except ValidationError as exc:
            show_errors(form, pydantic_errors(exc), PUBLISH_FIELD_MAP)
        except InvalidInput as exc:
            show_errors(form, exc.errors or [FieldError("", exc.detail)], PUBLISH_FIELD_MAP)
        except NotFound as exc:
            if form.account_id() is not None and "account" in exc.detail:
                form.social_account_id.errors = ["this account no longer exists; choose another"]
            else:
                form.form_errors.append("This clip no longer exists: it may have been deleted.")
    if not wants_fragment():
        return _full_clip_page(clip_id, form, result)
    if result is None:
        response = render_template("clips/_publish_invalid.html", clip_id=clip_id, form=form)
        return response, 200, {"HX-Retarget": "#publish-form", "HX-Reswap": "outerHTML"}
    return render_template("clips/_publish_done.html", clip_id=clip_id, form=form, result=result,
                           history=_clip_history(clip_id))


def _full_clip_page(clip_id: uuid.UUID, form: PublishForm, result):
    """The clip page after a publish without JavaScript: the result, or the form's errors."""
    clip = clip_service.get_clip(db, clip_id)
    return render_template("clips/detail.html", clip=clip, form=form, result=result,
                           history=_clip_history(clip_id))
