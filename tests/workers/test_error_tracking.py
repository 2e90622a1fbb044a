"""Optional error tracking: with SENTRY_DSN set, an error in a request and one in a queued task
reach Sentry's ingest endpoint (a real HTTP server here), with no secret in what was sent."""

from __future__ import annotations

import pytest
import sentry_sdk

from tests.fakes import FakeServer
from tests.fakes.sentry import SentryIngest

from api_support import COMPLETE_CREDENTIALS
from conftest import base_config
from queue_support import InProcessWorker, wait_until

OAUTH_CODE = "4/0AfJohXn-oauth-code-secret"
COOKIE_VALUE = "cookie-secret-session-value"


@pytest.fixture
def sentry_ingest():
    ingest = SentryIngest()
    with FakeServer(ingest) as server:
        ingest.dsn = f"http://public-key@127.0.0.1:{server.port}/42"
        yield ingest
        # Sentry is process-wide: the tests after this one run without it.
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture
def app_config(database_uri, sentry_ingest):
    return {**base_config(database_uri), "SENTRY_DSN": sentry_ingest.dsn,
            "SENTRY_ENVIRONMENT": "ci"}


def received(ingest: SentryIngest, predicate) -> dict:
    """The first event `predicate` accepts, once the SDK has sent it."""
    def find():
        sentry_sdk.flush(timeout=2)
        return next((event for event in ingest.events() if predicate(event)), None)
    return wait_until(find, timeout=20, what="the event at the ingest endpoint")


def exception_of(event: dict) -> dict:
    return event["exception"]["values"][-1]


def test_an_error_in_a_request_is_reported_without_its_secrets(
        app, client, api_headers, make_account, sentry_ingest, monkeypatch):
    account = make_account("instagram")
    credentials = COMPLETE_CREDENTIALS["instagram"]

    def vault_down(db, account_id, values):
        raise RuntimeError(f"the vault refused access_token={values['access_token']}")

    monkeypatch.setattr("dashboard.api.views.set_account_credentials", vault_down)
    headers = api_headers("admin")
    response = client.put(f"/api/accounts/{account.id}/credentials?code={OAUTH_CODE}&state=s1",
                          json=credentials, headers={**headers, "Cookie": f"session={COOKIE_VALUE}"})
    assert response.status_code == 500

    event = received(sentry_ingest, lambda e: exception_of(e)["type"] == "RuntimeError")
    assert event["environment"] == "ci"
    assert event["request"]["url"].endswith(f"/api/accounts/{account.id}/credentials")
    assert event["request"]["query_string"] == "code=[redacted]&state=s1"
    assert event["tags"]["request_id"] == response.headers["X-Request-Id"]
    assert exception_of(event)["value"] == "the vault refused access_token=[redacted]"
    sent = sentry_ingest.raw()
    bearer = headers["Authorization"].removeprefix("Bearer ")
    for secret in (bearer, COOKIE_VALUE, OAUTH_CODE, *credentials.values()):
        assert secret not in sent


def test_an_error_in_a_queued_task_is_reported_without_its_secrets(app, sentry_ingest):
    token = COMPLETE_CREDENTIALS["youtube"]["access_token"]
    worker = InProcessWorker(app, threads=1)

    @worker.huey.task(name="refresh_that_fails")
    def refresh_that_fails(access_token: str):
        raise RuntimeError(f"the platform answered 500 to access_token={access_token}")

    worker.start()
    try:
        refresh_that_fails(token)
        event = received(sentry_ingest, lambda e: exception_of(e)["mechanism"]["type"] == "huey")
    finally:
        worker.stop()
    assert exception_of(event)["value"] == "the platform answered 500 to access_token=[redacted]"
    assert event["extra"]["huey-job"]["task"] == "refresh_that_fails"
    assert token not in sentry_ingest.raw()



def test_a_worker_without_sentry_runs_the_tasks_a_process_with_it_queued(app, sentry_ingest):
    worker = InProcessWorker(app, threads=1)
    calls = []

    @worker.huey.task(name="note_the_call")
    def note_the_call(value: str):
        calls.append(value)

    note_the_call("queued with Sentry on")  # carries Sentry's trace headers
    [message] = worker.huey.pending()
    assert "sentry_headers" in message.kwargs
    sentry_sdk.get_global_scope().set_client(None)  # this worker runs without Sentry
    worker.start()
    try:
        wait_until(lambda: calls, what="the task to run")
    finally:
        worker.stop()
    assert calls == ["queued with Sentry on"]
