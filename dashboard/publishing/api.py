"""The /publishing JSON blueprint: publish a clip, read its publish logs."""

from __future__ import annotations

from flask import Blueprint

from ..api.auth import authenticate, require_role
from ..api.spec import responses, spec
from ..api.views import json_of, parse_id
from ..extensions import db
from .models import PublishLogOut, PublishRequest, PublishResult
from .service import get_publish_logs_for_clip, publish_clip

bp = Blueprint("publishing", __name__, url_prefix="/publishing")
bp.before_request(authenticate)


@bp.post("/publish")
@require_role("editor")
@spec.validate(json=PublishRequest, resp=responses(200, PublishResult, 400, 404), tags=["publishing"])
def publish(json: PublishRequest):
    """Publish a clip now. A platform failure is a 200 with `success: false` and its message."""
    return json_of(publish_clip(db, json))


@bp.get("/logs/<clip_id>")
@require_role("viewer")
@spec.validate(resp=responses(200, list[PublishLogOut], 400, 404), tags=["publishing"])
def logs(clip_id: str):
    """Every publish attempt of a clip, most recent first."""
    rows = get_publish_logs_for_clip(db, parse_id(clip_id, "clip_id"))
    body = [json_of(PublishLogOut.model_validate(r, from_attributes=True))[0] for r in rows]
    return body, 200
