"""The task queue (Huey): storage chosen by one setting, QUEUE_URL.

- `sqlite:///path` (the embedded default, under instance/): no server; workers on this machine.
- `redis://host:port/db`: any number of workers on any number of machines.
- `postgresql://...`: the same, on the PostgreSQL the app already uses.

The queue only carries work (publish-log ids); the publish log stays the source of truth, so a
lost or repeated message can delay a post but never publish it twice (see publishing/worker.py).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey

from .config import ConfigError

QUEUE_NAME = "dashboard"


def make_huey(url: str) -> Huey:
    """A Huey instance for the storage `url` names."""
    huey = _huey_for(url)
    huey.pre_execute(name="drop_trace_headers")(_drop_trace_headers)
    return huey


def _huey_for(url: str) -> Huey:
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(QUEUE_NAME, url=url)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        dsn = "postgresql://" + url.split("://", 1)[1]
        return PostgresHuey(QUEUE_NAME, dsn=dsn)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(QUEUE_NAME, filename=str(path))
    raise ConfigError(f"QUEUE_URL must start with sqlite:///, redis:// or postgresql://, got {url.split(':', 1)[0]}:")


def _drop_trace_headers(task) -> None:
    """A task queued by a process with Sentry on carries its trace headers as a keyword; a worker
    with Sentry on takes them off before the call, one without it drops them here (so that
    turning SENTRY_DSN on in one process first never breaks the tasks another one runs)."""
    task.kwargs.pop("sentry_headers", None)


def register_all_tasks(huey, app: Flask):
    """Register every task of the app on `huey` (they run inside `app`'s context): the one list,
    so any consumer can run whatever any process of the app enqueued. The publish tasks."""
    from .media.tasks import register_media_tasks
    from .publishing.worker import register_tasks

    publish_tasks = register_tasks(huey, app)
    register_media_tasks(huey, app)
    return publish_tasks


def init_app(app: Flask) -> None:
    """Create the app's queue and register its tasks (tasks run inside this app's context)."""
    huey = make_huey(app.config["QUEUE_URL"])
    app.extensions["huey"] = huey
    app.extensions["publish_tasks"] = register_all_tasks(huey, app)


def tasks():
    """The current app's registered tasks."""
    return current_app.extensions["publish_tasks"]
