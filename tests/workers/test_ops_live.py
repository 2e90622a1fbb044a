"""Logs, request ids and metrics across real processes: gunicorn with 2 workers, 2 queue workers.

One run serves publishes now and later through gunicorn, lets two `flask worker` processes
publish the scheduled ones, then checks what an operator sees: JSON log lines with the request
id from the request to the worker's outcome line, the access log with the same id, no secret in
any line, and /metrics that counts every process's events and the database's states the same
whichever gunicorn worker answers the scrape.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboard.models import utcnow

from queue_support import iso, wait_for_status
from server_support import ROOT, GunicornProcess, process_env

pytestmark = pytest.mark.slow  # real gunicorn and queue worker processes

METRICS_TOKEN = "scrape-token-for-the-test"


def samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def total(text: str, name: str, **labels) -> float:
    return sum(s.value for s in samples(text)
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def json_lines(text: str) -> list[dict]:
    """Every non-empty line as JSON: a line that is not JSON fails the test."""
    records = []
    for line in text.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise AssertionError(f"not a JSON log line: {line!r}") from None
    return records


def test_request_ids_logs_and_metrics_across_gunicorn_and_queue_workers(
        app, db, database_uri, tmp_path, worker_process, make_clip, api_headers):
    clip_id = str(make_clip().id)
    headers = api_headers("editor")
    db.session.remove()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    shared = {"LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
              "WORKER_HEARTBEAT_SECONDS": "0.5"}
    workers = [worker_process(threads=2, **shared) for _ in range(2)]
    env = process_env(app, database_uri, METRICS_TOKEN=METRICS_TOKEN, METRICS_ALLOW_NETWORKS="",
                      **shared)

    # One connection at a time per worker, so that concurrent clients reach both workers (a
    # gthread worker otherwise accepts greedily and may serve everything alone).
    env["GUNICORN_WORKER_CONNECTIONS"] = "1"
    with GunicornProcess(env, tmp_path / "gunicorn.log", workers=2) as server:
        # Until both gunicorn workers have served requests (and so written metrics files).
        readyz_calls = 0
        with ThreadPoolExecutor(8) as pool:
            while readyz_calls < 400 and len(list(metrics_dir.glob("histogram_*.db"))) < 2:
                statuses = list(pool.map(lambda _: server.request("GET", "/readyz")[0], range(16)))
                assert statuses == [200] * 16
                readyz_calls += 16
        assert len(list(metrics_dir.glob("histogram_*.db"))) == 2, "both workers should answer"

        body = {"clip_id": clip_id, "platform": "tiktok",
                "metadata": {"caption": "Out now", "hashtags": ["launch"]}}
        for i in range(6):
            status, response_headers, _ = server.request(
                "POST", "/publishing/publish", body, {**headers, "X-Request-Id": f"now-{i}"})
            assert status == 200
            assert response_headers["X-Request-Id"] == f"now-{i}"
        # A client's id that could forge log lines is replaced by a fresh one.
        status, response_headers, _ = server.request("GET", "/healthz", None,
                                                     {"X-Request-Id": "a b\tc"})
        assert status == 200 and len(response_headers["X-Request-Id"]) == 32
        later = []
        for i in range(4):
            status, _, raw = server.request(
                "POST", "/publishing/schedule",
                {**body, "scheduled_at": iso(utcnow() + timedelta(seconds=1))},
                {**headers, "X-Request-Id": f"later-{i}"})
            assert status == 202
            later.append(json.loads(raw)["id"])
        for log_id in later:
            wait_for_status(log_id, "success", timeout=30)
        time.sleep(1.5)  # a heartbeat from each worker since they started

        assert server.request("GET", "/metrics")[0] == 403
        assert server.request("GET", "/metrics", None,
                              {"Authorization": "Bearer wrong"})[0] == 403
        scrapes = []
        for _ in range(6):
            status, _, raw = server.request("GET", "/metrics", None,
                                            {"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert status == 200
            scrapes.append(raw.decode())

    for text in scrapes:  # whichever worker answered, the same sums
        assert total(text, "dashboard_publish_outcomes_total", platform="tiktok",
                     provider="simulator", status="success") == 10
        assert total(text, "dashboard_publish_duration_seconds_count", platform="tiktok") == 10
        assert total(text, "dashboard_http_request_duration_seconds_count",
                     endpoint="publishing.publish", method="POST", status="200") == 6
        assert total(text, "dashboard_http_request_duration_seconds_count",
                     endpoint="ops.readyz") == readyz_calls
        assert total(text, "dashboard_posts_due_not_started") == 0
        assert total(text, "dashboard_workers_seen") == 2
        assert total(text, "dashboard_queue_pending") == 0

    gunicorn_log = server.output()
    records = json_lines(gunicorn_log)
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert any("request_id=now-3" in r["message"] and "/publishing/publish" in r["message"]
               for r in access)
    outcome_now = [r for r in records if r.get("outcome") and r["request_id"] == "now-3"]
    assert len(outcome_now) == 1
    assert outcome_now[0]["platform"] == "tiktok" and outcome_now[0]["attempt"] == 1

    worker_records = [r for w in workers for r in json_lines(w.output())]
    for i, log_id in enumerate(later):
        lines = [r for r in worker_records if r.get("publish_log_id") == log_id]
        assert len(lines) == 1, lines  # one outcome line per publish, in one worker
        assert lines[0]["request_id"] == f"later-{i}"
        assert lines[0]["outcome"] == "success" and lines[0]["provider"] == "simulator"
        assert lines[0]["duration_seconds"] >= 0
    assert any(r["logger"].startswith("huey") for r in worker_records)  # Huey's own lines too

    token = headers["Authorization"].split()[1]
    everything = gunicorn_log + "".join(w.output() for w in workers)
    for secret in (token, METRICS_TOKEN, app.config["SECRET_KEY"], *app.config["CREDENTIALS_KEYS"]):
        assert secret not in everything


def test_queue_status_lists_the_running_workers(app, database_uri, worker_process):
    workers = [worker_process(threads=1, WORKER_HEARTBEAT_SECONDS="0.5") for _ in range(2)]
    env = process_env(app, database_uri)
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run([sys.executable, "-m", "flask", "queue", "status"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        if "workers:     2 seen" in done.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "workers:     2 seen" in done.stdout
    for worker in workers:
        assert f":{worker.process.pid}  1 threads, last seen" in done.stdout

    # A worker stopped cleanly removes its heartbeat.
    workers[0].stop()
    done = subprocess.run([sys.executable, "-m", "flask", "queue", "status"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert "workers:     1 seen" in done.stdout
    assert f":{workers[0].process.pid} " not in done.stdout
