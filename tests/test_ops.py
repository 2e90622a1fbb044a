"""Request ids, the redaction filter, /metrics access and states, /readyz, heartbeats on the
home page, and `flask queue status/sweep`, in one process (test_ops_live.py runs the processes).
"""

from __future__ import annotations

import io
import logging
import logging.config
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboard import create_app
from dashboard.models import Clip, PublishLog, utcnow
from dashboard.ops.health import write_heartbeat
from dashboard.ops.logs import logging_config, redact
from dashboard.queue import make_huey

from conftest import base_config


def gauge(text: str, name: str) -> float:
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == name)


@pytest.fixture
def captured():
    """The app's own logging setup (JSON), writing into a buffer instead of stderr."""
    buffer = io.StringIO()
    config = logging_config("INFO", "json")
    config["handlers"]["console"]["stream"] = buffer
    logging.config.dictConfig(config)
    yield buffer
    logging.config.dictConfig(logging_config("INFO", "text"))


def test_every_response_carries_the_request_id_given_or_a_new_one(client):
    given = client.get("/healthz", headers={"X-Request-Id": "lb-7f3a:42"})
    assert given.headers["X-Request-Id"] == "lb-7f3a:42"
    fresh = [client.get("/login").headers["X-Request-Id"] for _ in range(2)]
    assert len(set(fresh)) == 2 and all(len(value) == 32 for value in fresh)
    forged = client.get("/healthz", headers={"X-Request-Id": "x\" level=ERROR" + "y" * 200})
    assert forged.headers["X-Request-Id"] != "x\" level=ERROR" + "y" * 200


def test_log_lines_of_a_request_carry_its_id_and_no_secret(app, client, captured, api_headers,
                                                           make_clip):
    headers = api_headers("editor")
    clip = make_clip()
    response = client.post("/publishing/publish", headers={**headers, "X-Request-Id": "req-1"},
                           json={"clip_id": str(clip.id), "platform": "youtube"})
    assert response.status_code == 200
    logging.getLogger("dashboard.test").warning(
        "calling https://graph.example/v1/me?access_token=EAABsecret&fields=id with %s",
        headers["Authorization"])
    lines = [line for line in captured.getvalue().splitlines() if line]
    import json

    records = [json.loads(line) for line in lines]
    outcome = [r for r in records if r.get("outcome")]
    assert outcome and outcome[0]["request_id"] == "req-1"
    assert outcome[0]["outcome"] == "success" and outcome[0]["platform"] == "youtube"
    text = captured.getvalue()
    assert "EAABsecret" not in text and headers["Authorization"].split()[1] not in text
    assert "access_token=[redacted]" in text and "Bearer [redacted]" in text


@pytest.mark.parametrize("line, secret", [
    ("Authorization: BEARER abc.def", "abc.def"),
    ("a token sdb_AbC123-x in a message", "sdb_AbC123-x"),
    ("GET /callback?CODE=one-time&state=s", "one-time"),
    ("https://graph.example/v1/me?Access_Token=EAAB1&fields=id", "EAAB1"),
    ('{"Client_Secret": "shh-42"}', "shh-42"),
    ("refresh_token: r-77", "r-77"),
    ("paſſword=hunter3", "hunter3"),  # the patterns' (?i) reads the long s as an s
])
def test_redaction_blanks_secrets_written_in_any_case(line, secret):
    assert secret not in redact(line) and "[redacted]" in redact(line)


def test_redaction_leaves_other_lines_as_they_are():
    line = "publish success: log 7f3a on tiktok (simulator), account -, 0.012 s, attempt 1"
    assert redact(line) == line


def test_each_process_counts_its_metrics_under_its_own_pid():
    """prometheus_client's multiprocess files are named by this identifier: a forked worker
    must not write into its parent's."""
    import os

    from dashboard.ops.metrics import _process_identifier

    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, _process_identifier().encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 300).decode().endswith(f"-{child}")
    assert _process_identifier().endswith(f"-{os.getpid()}")


def test_metrics_need_the_token_or_an_allowed_network(app, client):
    app.config.update(METRICS_TOKEN="s3cret-scrape", METRICS_ALLOW_NETWORKS=())
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 403
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
    assert ok.status_code == 200 and ok.mimetype == "text/plain"
    from ipaddress import ip_network

    app.config.update(METRICS_TOKEN=None, METRICS_ALLOW_NETWORKS=(ip_network("10.0.0.0/8"),))
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 403


def test_metrics_count_due_and_unconfirmed_posts_from_the_database(app, db, client, make_clip):
    clip = make_clip()
    now = utcnow()
    for minutes, status in ((-10, "scheduled"), (-2, "queued"), (30, "scheduled"),
                            (None, "unconfirmed")):
        db.session.add(PublishLog(clip_id=clip.id, platform="tiktok", status=status,
                                  next_attempt_at=now + timedelta(minutes=minutes)
                                  if minutes is not None else None))
    db.session.commit()
    client.get("/healthz")  # a request before the scrape, whatever ran earlier in this process
    text = client.get("/metrics").get_data(as_text=True)  # the test client comes from 127.0.0.1
    assert gauge(text, "dashboard_posts_due_not_started") == 2
    assert gauge(text, "dashboard_posts_unconfirmed") == 1
    assert 600 <= gauge(text, "dashboard_oldest_due_post_age_seconds") < 660
    assert gauge(text, "dashboard_workers_seen") == 0
    assert 'dashboard_http_request_duration_seconds_bucket{endpoint="healthz"' in text


def test_readyz_names_what_is_down(app, client):
    assert client.get("/readyz").json == {"status": "ok", "database": "ok", "queue": "ok"}
    real = app.extensions["huey"]
    app.extensions["huey"] = make_huey("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        down = client.get("/readyz")
    finally:
        app.extensions["huey"] = real
    assert down.status_code == 503
    assert down.json["database"] == "ok" and down.json["queue"].startswith("unreachable")


def test_readyz_is_503_when_the_database_is_unreachable(queue_url):
    config = base_config("postgresql+psycopg://postgres@127.0.0.1:1/none")
    config["QUEUE_URL"] = queue_url
    app = create_app(config)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["database"].startswith("unreachable") and response.json["queue"] == "ok"


def _due_post(db, clip: Clip):
    db.session.add(PublishLog(clip_id=clip.id, platform="tiktok", status="scheduled",
                              next_attempt_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()


def test_home_warns_when_posts_are_due_and_no_worker_was_seen(app, db, client, login, make_clip):
    login("viewer")
    _due_post(db, make_clip())
    page = client.get("/").get_data(as_text=True)
    assert 'id="worker-warning"' in page and "No queue worker has been seen" in page

    huey = app.extensions["huey"]
    write_heartbeat(huey, threads=8, started_at=0)
    page = client.get("/").get_data(as_text=True)
    assert 'id="worker-warning"' not in page
    assert "Worker last seen 0 s ago" in page and "(1 running)" in page


def test_home_has_no_warning_when_nothing_is_due(client, login):
    login("viewer")
    page = client.get("/").get_data(as_text=True)
    assert 'id="worker-warning"' not in page and "No queue worker has been seen yet" in page


def test_queue_status_and_sweep_commands(app, db, make_clip):
    runner = app.test_cli_runner()
    _due_post(db, make_clip())
    status = runner.invoke(args=["queue", "status"])
    assert status.exit_code == 0
    assert "due:         1 post(s) due" in status.output
    assert "workers:     0 seen" in status.output
    assert "posts are due and no worker has been seen" in status.output

    sweep = runner.invoke(args=["queue", "sweep"])
    assert sweep.exit_code == 0 and "requeued 1" in sweep.output
    assert app.extensions["huey"].pending_count() == 1

    assert runner.invoke(args=["queue", "check-worker"]).exit_code == 1
    write_heartbeat(app.extensions["huey"], threads=2, started_at=0)
    assert runner.invoke(args=["queue", "check-worker"]).exit_code == 0


def test_operations_settings_come_from_the_environment(tmp_path):
    from dashboard.config import ConfigError, load_config

    env = {"SECRET_KEY": "new", "CREDENTIALS_KEYS": __import__("conftest").TEST_CREDENTIALS_KEY,
           "SECRET_KEY_FALLBACKS": "older, oldest", "LOG_FORMAT": "JSON", "LOG_LEVEL": "warning",
           "METRICS_ALLOW_NETWORKS": "10.0.0.0/8, fd00::/8", "METRICS_TOKEN": "t"}
    config = load_config(tmp_path, env)
    assert config["SECRET_KEY_FALLBACKS"] == ["older", "oldest"]
    assert (config["LOG_FORMAT"], config["LOG_LEVEL"]) == ("json", "WARNING")
    assert [str(n) for n in config["METRICS_ALLOW_NETWORKS"]] == ["10.0.0.0/8", "fd00::/8"]
    with pytest.raises(ConfigError, match="METRICS_ALLOW_NETWORKS"):
        load_config(tmp_path, {**env, "METRICS_ALLOW_NETWORKS": "10.0.0.0/33"})
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_config(tmp_path, {**env, "LOG_FORMAT": "xml"})


def test_a_session_signed_with_a_retired_secret_key_still_works_through_the_fallbacks(
        db, app_config, queue_url, make_user, sign_in_as):
    user_id = make_user("viewer").id
    db.session.remove()  # SQLite: the other apps below need the write lock
    old = create_app({**app_config, "QUEUE_URL": queue_url, "SECRET_KEY": "old-key"})
    with old.test_client() as browser, old.app_context():
        sign_in_as(browser, user_id)
        cookie = browser.get_cookie("session").value

    def home_with(config) -> int:
        rotated = create_app({**app_config, "QUEUE_URL": queue_url, **config})
        with rotated.test_client() as browser:
            browser.set_cookie("session", cookie)
            return browser.get("/").status_code

    assert home_with({"SECRET_KEY": "new-key", "SECRET_KEY_FALLBACKS": ["old-key"]}) == 200
    assert home_with({"SECRET_KEY": "new-key"}) == 302  # to the sign-in page
