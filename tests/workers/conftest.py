"""Fixtures for the tests that run real queue workers (in-process Huey consumers or `flask worker`
subprocesses) beside the test thread.

Here `make_clip` and `make_account` return detached snapshots (their columns loaded, the test
thread's transaction ended): on SQLite a transaction the test left open would hold the write lock
the workers need or keep reading an old snapshot (see tests/queue_support.py).
"""

from __future__ import annotations

import pytest

from dashboard.extensions import db as _db

from queue_support import Api, InProcessWorker, WorkerProcess, released


@pytest.fixture
def make_clip(make_clip):
    """make_clip(**fields) -> a detached snapshot of a new clip."""

    def make(**fields):
        clip = make_clip(**fields)
        return released(lambda: (_db.session.refresh(clip), clip)[1])

    return make


@pytest.fixture
def make_account(make_account):
    """make_account(platform="instagram", handle=None, **fields) -> a detached snapshot of a new
    social account."""

    def make(platform: str = "instagram", handle: str | None = None, **fields):
        account = make_account(platform, handle, **fields)
        return released(lambda: (_db.session.refresh(account), account)[1])

    return make


@pytest.fixture
def api(client, api_headers):
    """An editor's API client (`api.as_role("admin")` for another role)."""
    made = Api(client, api_headers("editor"))
    made.as_role = lambda role: Api(client, api_headers(role))
    _db.session.remove()
    return made


@pytest.fixture
def start_worker(app):
    """start_worker(threads=4) -> a running in-process worker; all are stopped after the test."""
    workers: list[InProcessWorker] = []

    def start(threads: int = 4) -> InProcessWorker:
        worker = InProcessWorker(app, threads)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def worker(start_worker):
    """One running in-process worker with 4 threads."""
    return start_worker(4)


@pytest.fixture
def worker_process(app, database_uri, tmp_path):
    """worker_process(threads=4, **env) -> a running `flask worker` subprocess; all are stopped
    (gracefully) after the test."""
    processes: list[WorkerProcess] = []

    def start(threads: int = 4, **overrides) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(processes) + 1}.log"
        process = WorkerProcess(app, database_uri, threads, log_path, **overrides)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()
