"""Platform answers the database could not take: kept on local disk until it can.

After a platform call the outcome is written onto the log in a new transaction (pipeline.py: the
one-shot call's answer, or a live attempt's final step). When that write fails (the database is
down or locked), the post may well be out, and forgetting the answer would leave the log
`pending` or `publishing` until the sweep calls it `unconfirmed`, with the platform's post id
lost. So the answer goes into a small journal, one JSON file per log (written atomically and
fsynced) in OUTCOME_JOURNAL_DIR (under instance/ by default), the caller is told the outcome is
unknown (`OutcomeNotRecorded`, a 503 naming the log), and `replay` records the answer on the log
once the database answers again; the sweep runs it first, in workers and in web processes.

Final answers are journalled: the one-shot call's and a live attempt's last step's (the post's id
and URL). Any other live write that fails (a step's result, a failed step, a reconcile) leaves
the step's claim to go stale: the sweep resumes the attempt from its last written state, and an
interrupted `finalize` is settled by asking the platform (reconcile.py). Either way the caller of
a publish now is told the outcome is unknown, with the log to check (service.publish_now).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from ..errors import DomainError, database_error_cause
from ..models import PublishLog, PublishStatus
from ..ops.metrics import PublishReport
from .outcome import PlatformOutcome

log = logging.getLogger(__name__)


class OutcomeNotRecorded(DomainError):
    """The platform was called but the database could not record what became of it: the outcome
    is unknown to the caller; the platform's answer, when there was one, is journalled and
    recorded on the log once the database is back."""

    status = 503
    title = "Outcome unknown"

    def __init__(self, log_id: uuid.UUID):
        super().__init__(
            "the platform was called but what it answered could not be recorded (the database "
            f"is unavailable): the post may be out. Publish log {log_id} gets the platform's "
            "answer once the database is back; check it before publishing again.")
        self.publish_log_id = log_id

    @property
    def extra(self) -> dict:
        return {"publish_log_id": str(self.publish_log_id)}


def journal_dir() -> Path:
    return Path(current_app.config["OUTCOME_JOURNAL_DIR"])


def keep(log_id: uuid.UUID, outcome: PlatformOutcome, may_retry: bool,
         trace_id: str | None = None) -> Path:
    """Write the platform's answer for `log_id` durably (atomic rename, fsynced)."""
    folder = journal_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{log_id}.json"
    temporary = folder / f".{log_id}.tmp"
    entry = {"publish_log_id": str(log_id), "may_retry": may_retry, "outcome": asdict(outcome),
             "trace_id": trace_id}
    with open(temporary, "w") as handle:
        json.dump(entry, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


@contextmanager
def written_or_kept(db, log_id: uuid.UUID, outcome: PlatformOutcome, *, may_retry: bool,
                    trace_id: str | None = None) -> Iterator[None]:
    """Run the block that records the platform's final answer `outcome` on its log; when the
    database fails it, keep the answer in the journal and raise OutcomeNotRecorded (503)."""
    try:
        yield
    except SQLAlchemyError as exc:
        rollback(db)
        path = keep(log_id, outcome, may_retry, trace_id)
        log.error("could not record the outcome of publish log %s (%s: %s); kept in %s until the "
                  "database is back", log_id, type(exc).__name__, database_error_cause(exc), path)
        raise OutcomeNotRecorded(log_id) from exc


def rollback(db) -> None:
    try:
        db.session.rollback()
    except SQLAlchemyError:
        pass  # the connection is gone with the database; the session is reset all the same


def entries() -> list[Path]:
    """The journal's files, oldest first."""
    folder = journal_dir()
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)


def replay(db) -> int:
    """Record every journalled answer on its log (one transaction each), then forget it; how many.

    A live attempt's step claim is released with it. An answer that comes after the log was
    settled otherwise (the sweep gave it up as interrupted, a person marked it) is kept on
    record as a late answer (service.record_outcome). Stops at the first database error (it is
    still down: the next sweep tries again).
    """
    from .service import record_outcome
    from .worker import enqueue

    recorded = 0
    for path in entries():
        try:
            handle = open(path)
        except FileNotFoundError:
            continue  # another process on this machine replayed it meanwhile
        with handle:
            try:
                # Held until this entry is done (released if the process dies): two sweeps on one
                # machine never record one answer twice.
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if not path.exists():
                continue
            entry = json.load(handle)
            if not _record(db, entry, record_outcome, enqueue):
                break
            path.unlink(missing_ok=True)
        recorded += 1
    return recorded


def _record(db, entry: dict, record_outcome, enqueue) -> bool:
    """Record one journalled answer (commits); False when the database is still unavailable."""
    log_id = uuid.UUID(entry["publish_log_id"])
    retry_at = report = None
    try:
        log_row = db.session.get(PublishLog, log_id, with_for_update=True, populate_existing=True)
        if log_row is not None:
            log_row.step_started_at = None
            if entry.get("trace_id"):
                log_row.trace_id = entry["trace_id"]
            record_outcome(db, log_row, PlatformOutcome(**entry["outcome"]), may_retry=entry["may_retry"])
            if log_row.status == PublishStatus.QUEUED.value:
                retry_at = log_row.next_attempt_at
            report = PublishReport.of(log_row)
        db.session.commit()
    except SQLAlchemyError:
        rollback(db)
        log.warning("journalled outcome of publish log %s not recorded yet: the database is still "
                    "unavailable", log_id)
        return False
    log.info("recorded the journalled outcome of publish log %s", log_id)
    if report is not None:
        report.report()
    if retry_at is not None:
        enqueue(log_id, retry_at)
    return True
