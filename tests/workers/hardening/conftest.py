"""Fixtures of the hardening tests: a real gunicorn. The queue's and the live platform's (the
counting fake over real HTTP, `live_account`, `live_clip`) come from tests/workers/conftest.py."""

from __future__ import annotations

import pytest

from server_support import GunicornProcess, process_env


@pytest.fixture
def processing_polls() -> int:
    """One processing poll before the upload is ready (two elsewhere): shorter attempts."""
    return 1


@pytest.fixture
def gunicorn(app, database_uri, tmp_path):
    """gunicorn(**settings) -> a running GunicornProcess; all are stopped after the test."""
    servers: list[GunicornProcess] = []

    def start(**settings) -> GunicornProcess:
        env = process_env(app, database_uri, forward=("OUTCOME_JOURNAL_DIR",),
                          GUNICORN_ACCESSLOG="", **settings)
        server = GunicornProcess(env, tmp_path / f"gunicorn-{len(servers) + 1}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
