"""The OpenAPI document and request validation, both from the pydantic models (spectree).

The document is what a client generator reads, so it says what the server really does: each
component named once, readable operationIds, every error as problem+json with the statuses the
endpoint can answer, the response headers (Location, Idempotent-Replayed, Retry-After), path ids
typed as UUIDs, and request examples taken from the demo data and the README.
"""

from __future__ import annotations

import copy
import re

from spectree import Response, SecurityScheme, SpecTree
from spectree.models import SecureType, SecuritySchemeData
from spectree.plugins.flask_plugin import FlaskPlugin
from spectree.utils import get_model_key

from ..errors import InvalidInput
from ..schemas import Problem


def _raise_problem(_req, _resp, validation_error, _instance, _adapter):
    """Turn spectree's validation failure into our 400 problem, field by field."""
    if validation_error is None:
        return
    raise InvalidInput.from_pydantic(validation_error)


def _schema_name(model) -> str:
    """A model's component name without spectree's module hash: clients see `PublishRequest`."""
    return get_model_key(model).rsplit(".", 1)[0]


def _nested_schema_name(_parent: str, child: str) -> str:
    """A nested model keeps its own name (`PublishMetadata`, not `PublishRequest.PublishMetadata`),
    so a model used by several requests is one component."""
    return child


# operationIds where the view's name alone would be vague; the others are the view's name in
# camelCase (list_clips -> listClips).
OPERATION_IDS = {
    "publish": "publishNow",
    "schedule": "schedulePublish",
    "cancel": "cancelPublishLog",
    "reschedule": "reschedulePublishLog",
    "retry": "retryPublishLog",
    "mark_published": "markPublishLogPublished",
    "logs": "listClipPublishLogs",
    "ledger": "listLedgerEvents",
    "put_credentials": "setAccountCredentials",
    "delete_credentials": "deleteAccountCredentials",
    "healthz": "getHealth",
    "readyz": "getReadiness",
}


def operation_id(view_name: str) -> str:
    """The operationId of a view function."""
    if view_name in OPERATION_IDS:
        return OPERATION_IDS[view_name]
    head, *rest = view_name.split("_")
    return head + "".join(word.capitalize() for word in rest)


class DashboardFlaskPlugin(FlaskPlugin):
    """spectree's Flask plugin, with operationIds from the view names."""

    def get_func_operation_id(self, func, path, method):
        return operation_id(func.__name__)


spec = SpecTree(
    "flask",
    backend=DashboardFlaskPlugin,
    title="Publishing dashboard API",
    version="1.0.0",
    path="apidoc",
    page_templates={},  # its UI pages load from a CDN; the dashboard runs offline
    mode="strict",  # document the JSON API only, not every HTML page of the dashboard
    before=_raise_problem,
    validation_error_status=400,
    naming_strategy=_schema_name,
    nested_naming_strategy=_nested_schema_name,
    security_schemes=[
        SecurityScheme(name="bearer", data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer")),
    ],
    security={"bearer": []},
)


def responses(ok_status: int | None, ok_model=None, *errors: int, also: dict | None = None) -> Response:
    """Spectree responses: one success and the problem+json statuses the endpoint can answer;
    `also` maps further success statuses to their models (e.g. {202: PublishLogOut}).

    Every API endpoint can also answer 401, 403 and 503, and one with a body 413;
    openapi_document() adds those.
    """
    codes = {f"HTTP_{code}": Problem for code in (401, 403, *errors)}
    if ok_status is not None:
        codes[f"HTTP_{ok_status}"] = ok_model
    for status, model in (also or {}).items():
        codes[f"HTTP_{status}"] = model
    return Response(**codes)


PROBLEM_REF = "#/components/schemas/Problem"
# Spectree's own error models; our `before` hook answers every validation failure as a Problem.
_SPECTREE_ERROR = re.compile(r"^ValidationError")
API_PREFIXES = ("/api/", "/publishing/")

ERROR_DESCRIPTIONS = {
    "400": "Malformed or invalid input; `errors` names each invalid field. Nothing was written.",
    "401": "No token, or an unknown, revoked or expired one.",
    "403": "The token's user has a role that may not do this.",
    "404": "The clip, account, batch or log does not exist.",
    "409": "A conflict with the current state (e.g. the post has started), or an Idempotency-Key "
           "reused with another body or still in progress.",
    "413": "The request body is larger than 1 MiB.",
    "429": "The account's rolling 24-hour posting quota is used up; retry after `Retry-After` "
           "seconds, or schedule the post for then.",
    "503": "The database is unreachable; retry shortly.",
}
HEADERS = {
    "Location": {"description": "The URL of the created resource.",
                 "schema": {"type": "string", "format": "uri-reference"}},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
                       "same Idempotency-Key (nothing was done again).",
        "schema": {"type": "string", "enum": ["true"]}},
    "Retry-After": {"description": "Seconds until the next post is possible.",
                    "schema": {"type": "integer", "minimum": 1}},
    "X-Request-Id": {"description": "The request's id (the client's X-Request-Id, or a new one); "
                                    "it is on every log line of the request.",
                     "schema": {"type": "string"}},
}

# Request bodies as the README sends them, with the demo data's clips and accounts.
_CLIP = "5b0e2d8a-1f6c-4f6e-9a51-8d3f0c2b7e11"
_ACCOUNT = "0c7f3e2a-9b14-4d5e-8f21-6a4b3c2d1e0f"
EXAMPLES = {
    "createClip": {"title": "Behind the scenes: product shoot",
                   "description": "A quick look at how we shot the spring campaign.",
                   "media": "https://cdn.example.com/clips/bts-spring.mp4", "duration_seconds": 42.0},
    "updateClip": {"title": "Launch teaser", "description": "Something new is coming on Friday."},
    "createAccount": {"platform": "instagram", "handle": "acme.travel", "display_name": "Acme Travel",
                      "parent_account_id": _ACCOUNT},
    "updateAccount": {"display_name": "Acme Sports", "active": True},
    "setAccountCredentials": {"access_token": "EAAB...", "instagram_account_id": "17841400000000000"},
    "publishNow": {"clip_id": _CLIP, "platform": "tiktok",
                   "metadata": {"caption": "New range, out now", "hashtags": ["launch"]}},
    "schedulePublish": {"clip_id": _CLIP, "platform": "instagram", "social_account_id": _ACCOUNT,
                        "scheduled_at": "2026-12-02T09:00:00", "timezone": "Europe/Paris",
                        "metadata": {"caption": "Three tips for faster mornings"}},
    "createBatch": {"clip_id": _CLIP, "with_satellites_of": [_ACCOUNT],
                    "metadata": {"caption": "Out now"}},
    "reschedulePublishLog": {"scheduled_at": "2026-12-03T18:30:00+01:00"},
    "markPublishLogPublished": {"external_url": "https://www.instagram.com/reel/C1a2b3c4d5/"},
}


def _problem_response(status: str, existing: dict | None) -> dict:
    return {
        "description": ERROR_DESCRIPTIONS.get(status, (existing or {}).get("description", "")),
        "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
    }


def _document_operation(path: str, operation: dict) -> None:
    responses_ = operation["responses"]
    parameters = operation.get("parameters", [])
    for parameter in parameters:
        if parameter["in"] == "path" and parameter["name"].endswith("_id"):
            parameter["schema"] = {"type": "string", "format": "uuid"}
    has_body = "requestBody" in operation
    if not parameters and not has_body:
        responses_.pop("400", None)  # nothing to be invalid
    if path.startswith(API_PREFIXES):
        for status in ("401", "403", "503"):
            responses_.setdefault(status, {})
        if has_body:
            responses_.setdefault("413", {})
    idempotent = any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters)
    for status, response in list(responses_.items()):
        if status[0] in "45":
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if not response or schema.get("$ref") == PROBLEM_REF or \
                    _SPECTREE_ERROR.search(schema.get("$ref", "").rsplit("/", 1)[-1]):
                responses_[status] = response = _problem_response(status, response)
        headers = response.setdefault("headers", {})
        headers["X-Request-Id"] = HEADERS["X-Request-Id"]
        if status == "201":
            headers["Location"] = HEADERS["Location"]
        if status == "429":
            headers["Retry-After"] = HEADERS["Retry-After"]
        if idempotent and status[0] == "2":
            headers["Idempotent-Replayed"] = HEADERS["Idempotent-Replayed"]
    example = EXAMPLES.get(operation["operationId"])
    if example is not None and has_body:
        operation["requestBody"]["content"]["application/json"]["example"] = example


def openapi_document() -> dict:
    """The OpenAPI document, as served at /openapi.json (and /apidoc/openapi.json)."""
    document = copy.deepcopy(spec.spec)
    schemas = document["components"]["schemas"]
    for name in [name for name in schemas if _SPECTREE_ERROR.search(name)]:
        del schemas[name]
    for path, item in document["paths"].items():
        for operation in item.values():
            _document_operation(path, operation)
    return document
