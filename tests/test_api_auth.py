"""Who may call what: the 401 matrix over every API endpoint, the 403 role matrix, the open
endpoints (/healthz, /openapi.json) and the OpenAPI document itself."""

from __future__ import annotations

import re
import uuid

import pytest

from dashboard import create_app
from dashboard.config import normalise_database_url
from dashboard.models import ApiToken, Clip, SocialAccount
from dashboard.users import create_token, revoke_token

from api_support import assert_problem, count, written_rows
from conftest import base_config

BODY_METHODS = {"POST", "PUT", "PATCH"}


def api_endpoints() -> list[tuple[str, str]]:
    """(method, rule) of every route under /api and /publishing, read from the app's URL map."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/publishing/")):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((method, rule.rule))
    return found


ENDPOINTS = api_endpoints()


def concrete(rule: str) -> str:
    """The rule with every <argument> replaced by a UUID."""
    return re.sub(r"<(?:\w+:)?\w+>", lambda _m: str(uuid.uuid4()), rule)


def test_the_matrix_covers_the_documented_endpoints():
    expected = {
        ("POST", "/publishing/publish"), ("GET", "/publishing/logs/<clip_id>"),
        ("GET", "/api/clips"), ("POST", "/api/clips"), ("GET", "/api/clips/<clip_id>"),
        ("PATCH", "/api/clips/<clip_id>"), ("DELETE", "/api/clips/<clip_id>"),
        ("GET", "/api/accounts"), ("POST", "/api/accounts"), ("GET", "/api/accounts/<account_id>"),
        ("PATCH", "/api/accounts/<account_id>"), ("PUT", "/api/accounts/<account_id>/credentials"),
        ("DELETE", "/api/accounts/<account_id>/credentials"), ("GET", "/api/ledger"),
    }
    assert expected <= set(ENDPOINTS)


def _call(client, method: str, rule: str, headers: dict):
    kwargs = {"headers": headers}
    if method in BODY_METHODS:
        kwargs["json"] = {}
    return client.open(concrete(rule), method=method, **kwargs)


def _assert_401(response):
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert body["title"] == "Unauthorized"


@pytest.mark.parametrize(("method", "rule"), ENDPOINTS)
@pytest.mark.parametrize("authorization", [
    None,
    "Basic YWRtaW46cGFzc3dvcmQ=",
    "Bearer",
    "Bearer sdb_this-token-was-never-issued",
    "Token sdb_this-token-was-never-issued",
], ids=["no-header", "basic-scheme", "bearer-without-token", "unknown-token", "wrong-scheme-name"])
def test_401_without_a_valid_token(client, db, method, rule, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    before = written_rows(db)
    _assert_401(_call(client, method, rule, headers))
    assert written_rows(db) == before


@pytest.mark.parametrize(("method", "rule"), ENDPOINTS)
def test_401_with_a_revoked_token(client, db, make_user, method, rule):
    user = make_user("admin")
    new = create_token(db, user.id, "revoked")
    revoke_token(db, user.id, new.token.id)
    _assert_401(_call(client, method, rule, {"Authorization": f"Bearer {new.plaintext}"}))


@pytest.mark.parametrize(("method", "rule"), ENDPOINTS)
def test_401_for_a_deactivated_user(client, db, make_user, method, rule):
    user = make_user("admin")
    plaintext = create_token(db, user.id, "ci").plaintext
    user.active = False
    db.session.commit()
    _assert_401(_call(client, method, rule, {"Authorization": f"Bearer {plaintext}"}))


def test_a_valid_token_notes_when_it_was_used(client, db, make_user):
    user = make_user("viewer")
    new = create_token(db, user.id, "ci")
    assert new.token.last_used_at is None
    response = client.get("/api/clips", headers={"Authorization": f"Bearer {new.plaintext}"})
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, new.token.id).last_used_at is not None


def test_tokens_are_stored_hashed(db, make_user):
    user = make_user("viewer")
    new = create_token(db, user.id, "ci")
    stored = db.session.get(ApiToken, new.token.id)
    assert new.plaintext not in (stored.token_hash, stored.prefix)
    assert len(stored.token_hash) == 64


# The role matrix --------------------------------------------------------------------------------

ROLE_RANK = {"viewer": 0, "editor": 1, "admin": 2}

# name: (method, url with {clip}/{account}, body, the least role allowed, the status it gets)
ACTIONS = {
    "list clips": ("GET", "/api/clips", None, "viewer", 200),
    "read clip": ("GET", "/api/clips/{clip}", None, "viewer", 200),
    "read logs": ("GET", "/publishing/logs/{clip}", None, "viewer", 200),
    "list accounts": ("GET", "/api/accounts", None, "viewer", 200),
    "read account": ("GET", "/api/accounts/{account}", None, "viewer", 200),
    "read ledger": ("GET", "/api/ledger", None, "viewer", 200),
    "publish": ("POST", "/publishing/publish", {"clip_id": "{clip}", "platform": "instagram"},
                "editor", 200),
    "create clip": ("POST", "/api/clips", {"title": "New", "media": "https://cdn.example.com/n.mp4"},
                    "editor", 201),
    "change clip": ("PATCH", "/api/clips/{clip}", {"title": "Renamed"}, "editor", 200),
    "delete clip": ("DELETE", "/api/clips/{clip}", None, "editor", 204),
    "create account": ("POST", "/api/accounts", {"platform": "tiktok", "handle": "newone"}, "admin", 201),
    "change account": ("PATCH", "/api/accounts/{account}", {"display_name": "Acme HQ"}, "admin", 200),
    "set credentials": ("PUT", "/api/accounts/{account}/credentials", {"access_token": "tok"},
                        "admin", 200),
    "remove credentials": ("DELETE", "/api/accounts/{account}/credentials", None, "admin", 204),
}


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("role", list(ROLE_RANK))
def test_role_matrix(client, db, api_headers, make_clip, make_account, role, action):
    method, url, body, least_role, ok_status = ACTIONS[action]
    ids = {"clip": str(make_clip().id), "account": str(make_account("instagram").id)}
    headers = api_headers(role)
    before = (written_rows(db), count(db, Clip), count(db, SocialAccount))

    response = client.open(_fill(url, ids), method=method, headers=headers, json=_fill(body, ids))

    if ROLE_RANK[role] >= ROLE_RANK[least_role]:
        assert response.status_code == ok_status, response.get_json()
    else:
        problem = assert_problem(response, 403)
        assert least_role in problem["detail"]
        assert (written_rows(db), count(db, Clip), count(db, SocialAccount)) == before


# Open endpoints ---------------------------------------------------------------------------------

def test_healthz_needs_no_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


UNREACHABLE_DATABASES = [
    pytest.param("sqlite:////nonexistent-directory/for/sure/dashboard.sqlite3", id="sqlite"),
    pytest.param("postgresql://postgres@127.0.0.1:1/nowhere", id="postgresql"),
]


@pytest.fixture
def unreachable_app(request):
    config = base_config(normalise_database_url(request.param))
    config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"connect_timeout": 2}} \
        if request.param.startswith("postgresql") else {}
    app = create_app(config)
    yield app
    with app.app_context():
        from dashboard.extensions import db

        db.engine.dispose()


@pytest.mark.parametrize("unreachable_app", UNREACHABLE_DATABASES, indirect=True)
def test_healthz_is_503_when_the_database_is_unreachable(unreachable_app):
    response = unreachable_app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "unreachable"}


@pytest.mark.parametrize("unreachable_app", UNREACHABLE_DATABASES, indirect=True)
def test_api_is_503_problem_when_the_database_is_unreachable(unreachable_app):
    response = unreachable_app.test_client().get(
        "/api/clips", headers={"Authorization": "Bearer sdb_whatever"})
    body = assert_problem(response, 503)
    assert "nonexistent" not in str(body) and "127.0.0.1" not in str(body)


# The OpenAPI document ---------------------------------------------------------------------------

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _resolve(document: dict, ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_openapi_document_is_valid_openapi_3(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json

    assert re.fullmatch(r"3\.\d+\.\d+", document["openapi"])
    assert document["info"]["title"] and document["info"]["version"]
    for ref in _refs(document):
        _resolve(document, ref)  # every reference points at something
    operation_ids = []
    for path, item in document["paths"].items():
        assert path.startswith("/")
        templated = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            assert method in HTTP_METHODS, (path, method)
            assert operation["responses"], (path, method)
            for status in operation["responses"]:
                assert re.fullmatch(r"[1-5]\d\d|default", status)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == templated, (path, method)
            assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")
            operation_ids.append(operation["operationId"])
    assert len(operation_ids) == len(set(operation_ids))
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}


def test_openapi_describes_publishing_from_the_pydantic_models(client):
    from dashboard.publishing.models import PublishRequest

    document = client.get("/openapi.json").json
    publish = document["paths"]["/publishing/publish"]["post"]
    logs = document["paths"]["/publishing/logs/{clip_id}"]["get"]
    request_schema = publish["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema == {"$ref": "#/components/schemas/PublishRequest"}

    schema = document["components"]["schemas"]["PublishRequest"]
    assert set(schema["properties"]) == set(PublishRequest.model_fields)
    assert set(schema["required"]) == {"clip_id", "platform"}
    assert schema["additionalProperties"] is False
    assert schema["properties"]["platform"]["enum"] == ["instagram", "tiktok", "youtube"]

    result = _resolve(document, publish["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
    assert set(result["properties"]) == {"success", "external_post_id", "external_url", "error_message",
                                         "platform", "clip_id", "social_account_id"}
    assert {"200", "400", "401", "403", "404"} <= set(publish["responses"])
    assert {"200", "401", "404"} <= set(logs["responses"])


def test_openapi_marks_healthz_as_open(client):
    document = client.get("/openapi.json").json
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/healthz"]["get"]["security"] == []


def test_openapi_errors_are_problem_json(client):
    document = client.get("/openapi.json").json
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors"} <= set(problem["properties"])
    errors = [(path, method, status, response)
              for path, item in document["paths"].items() if path not in ("/healthz", "/readyz")
              for method, operation in item.items()
              for status, response in operation["responses"].items() if status[0] in "45"]
    assert errors
    for path, method, status, response in errors:
        assert response["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }, (path, method, status)


@pytest.mark.parametrize("path", ["/publishing/publish", "/publishing/schedule", "/publishing/batches",
                                  "/publishing/logs/{log_id}/retry", "/publishing/batches/{batch_id}/retry-failed"])
def test_openapi_documents_the_idempotency_key_header(client, path):
    parameters = client.get("/openapi.json").json["paths"][path]["post"]["parameters"]
    headers = {p["name"]: p for p in parameters if p["in"] == "header"}
    assert headers["Idempotency-Key"]["required"] is False
