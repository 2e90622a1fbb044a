"""Helpers shared by the engine and JSON API tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from dashboard.ledger import events_for
from dashboard.models import LedgerEvent, PublishLog

PUBLISH_RESULT_FIELDS = {
    "success", "external_post_id", "external_url", "error_message", "platform", "clip_id",
    "social_account_id",
}

# A complete set of credentials per platform; the values are recognisable so that a test can
# look for them anywhere they must not be.
COMPLETE_CREDENTIALS = {
    "instagram": {"access_token": "IGQVJ-secret-ig-token-0001", "instagram_account_id": "17841400000000001"},
    "tiktok": {"client_key": "awsecret-client-key-0002", "client_secret": "tt-secret-client-0003",
               "access_token": "act.secret-tiktok-token-0004"},
    "youtube": {"client_id": "1234-secret.apps.googleusercontent.com",
                "client_secret": "GOCSPX-secret-yt-0005", "access_token": "ya29.secret-yt-token-0006"},
}
PROVIDER_NAMES = {
    "instagram": "instagram_graph",
    "tiktok": "tiktok_content_posting",
    "youtube": "youtube_data_v3",
}


def count(db, model) -> int:
    """Rows of `model`'s table, counted fresh from the database."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def written_rows(db) -> tuple[int, int]:
    """(publish logs, ledger events): what a refused request must leave unchanged."""
    return count(db, PublishLog), count(db, LedgerEvent)


def clip_events(db, clip_id) -> list[tuple[str, dict]]:
    """The clip's ledger events as (event_type, metadata), oldest first."""
    db.session.expire_all()
    events = events_for(db.session, "clip", uuid.UUID(str(clip_id)))
    return [(e.event_type, e.event_metadata) for e in events]


def assert_problem(response, status: int, field: str | None = None) -> dict:
    """The response is an RFC 9457 problem with `status`, naming `field` in `errors` if given."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["type"] and body["title"]
    if field is not None:
        named = [error["field"] for error in body.get("errors", [])]
        assert field in named, body
    return body


def publish(client, headers, **body):
    """POST /publishing/publish with `body` as JSON (ids may be given as UUIDs)."""
    payload = {key: str(value) if isinstance(value, uuid.UUID) else value
               for key, value in body.items()}
    return client.post("/publishing/publish", headers=headers, json=payload)
