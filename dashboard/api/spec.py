"""The OpenAPI document and request validation, both from the pydantic models (spectree)."""

from __future__ import annotations

import copy

from spectree import Response, SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData, SecureType
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


spec = SpecTree(
    "flask",
    title="Publishing dashboard API",
    version="1.0.0",
    path="apidoc",
    page_templates={},  # its UI pages load from a CDN; the dashboard runs offline
    mode="strict",  # document the JSON API only, not every HTML page of the dashboard
    before=_raise_problem,
    validation_error_status=400,
    naming_strategy=_schema_name,
    security_schemes=[
        SecurityScheme(name="bearer", data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer")),
    ],
    security={"bearer": []},
)


def responses(ok_status: int | None, ok_model=None, *errors: int) -> Response:
    """Spectree responses: one success and the problem+json statuses the endpoint can answer."""
    codes = {f"HTTP_{code}": Problem for code in (401, 403, *errors)}
    if ok_status is not None:
        codes[f"HTTP_{ok_status}"] = ok_model
    return Response(**codes)


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Spectree's own error model; our `before` hook answers every validation failure as a Problem.
_VALIDATION_ERROR_REF = {"$ref": "#/components/schemas/ValidationError"}


def openapi_document() -> dict:
    """The OpenAPI document, with error responses as they are really sent.

    Spectree labels every response `application/json`; errors go out as
    `application/problem+json` with the Problem schema.
    """
    document = copy.deepcopy(spec.spec)
    for item in document["paths"].values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if status[0] in "45" and schema in (_PROBLEM_REF, _VALIDATION_ERROR_REF):
                    response["content"] = {"application/problem+json": {"schema": dict(_PROBLEM_REF)}}
    return document
