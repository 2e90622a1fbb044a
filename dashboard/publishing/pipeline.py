"""One publish attempt, run the same way for the page button, the API and the queue worker.

An attempt is started by `start()` (inside the caller's transaction: it picks the publisher and
records the choice) and run by `run()` once the caller has committed:

- **One-shot** (stub mode, and the simulator for accounts without complete credentials): one
  platform call, `publish()`, then its outcome is recorded. Exactly the seed's behaviour.
- **Live** (`PROVIDER_MODE=live`, complete credentials, a live client for the platform): the
  steps of providers/base.py (prepare -> upload -> processing -> finalize -> confirm). Each step
  is *claimed* (`step_started_at`, a conditional UPDATE), run with no transaction open, and its
  result (platform state, next step, trace id) is written with a `publish_step` ledger event in
  its own short transaction before the next step starts. `checkpoint(patch)` writes at once and
  refreshes the claim (a heartbeat).

Waiting is a queue task: a step that asks to wait ends the run and schedules the next step
(`next_attempt_at` + a Huey ETA). Only a caller with a sync budget (the page and the API, up to
PUBLISH_SYNC_WAIT seconds) may sleep between polls; past the budget it hands the attempt to the
queue and answers "still processing".

Errors (`ProviderError.kind`): transient -> retried with the usual backoff (at least
`retry_after`), resuming at the failed step; permanent -> failed; auth -> failed and the account
needs credentials; `restart` -> the platform objects are spoiled, start again from prepare
(at most PUBLISH_MAX_RESTARTS times); unknown -> ask the platform (reconcile.py).

Crash safety: a step whose claim went stale (its worker died) is resumed by `sweep_live()` from
the last written state, except an interrupted `finalize` (the irreversible call), which is
settled by asking the platform instead.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
from flask import current_app
from sqlalchemy import Table, and_, bindparam, insert, inspect, literal, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm.attributes import set_committed_value

from ..credentials import CredentialError, get_account_credentials, missing_keys
from ..direct_sql import DirectStatement
from ..ledger import event_rows, insert_events, record_event, stamp
from ..linking import ensure_fresh_token
from ..media.sources import media_source_for
from ..models import Clip, LedgerEvent, PublishLog, PublishStatus, SocialAccount, TargetClip, utcnow
from ..ops.metrics import PublishReport
from . import journal, service
from .outcome import ErrorKind, PlatformOutcome, Publisher, PublishJob
from .project_quota import count_youtube_upload, youtube_project_quota
from .providers import LIVE_CLIENTS, PROVIDER_CLIENTS
from .providers.base import (
    FIRST_STEP,
    LiveClient,
    LiveErrorKind,
    LiveJob,
    ProviderError,
    StepResult,
)
from .reconcile import RECONCILE_STEP, settle
from .rules import compose_caption
from .simulator import PlatformSimulator, SimulatorSettings

log = logging.getLogger(__name__)

# The step whose interruption may have published the post (media_publish, TikTok/YouTube's
# last call): a stale claim on it is settled by asking the platform, not by running it again.
IRREVERSIBLE_STEP = "finalize"
IN_FLIGHT = service.IN_FLIGHT
# Settings a live client never needs (they are secrets or the database's).
_PRIVATE_SETTINGS = ("SECRET_KEY", "CREDENTIALS_KEYS", "SQLALCHEMY_DATABASE_URI",
                     "SQLALCHEMY_ENGINE_OPTIONS", "QUEUE_URL",
                     # the OAuth apps' secrets (linking.py): a client gets them, if it needs
                     # them, from the account's credentials
                     "INSTAGRAM_APP_SECRET", "TIKTOK_CLIENT_SECRET", "GOOGLE_CLIENT_SECRET")


@dataclass(frozen=True)
class PublisherChoice:
    """Who publishes one attempt, and the ledger event that explains the choice.

    Exactly one of `publisher` (one-shot: stub client or simulator) and `live` (a live client
    class) is set.
    """

    name: str
    event_type: str  # publish_provider_ready | publish_provider_fallback
    publisher: Publisher | None = None
    live: type[LiveClient] | None = None
    reason: str | None = None  # set on fallback


def choose_publisher(db, platform: str, account: SocialAccount | None) -> PublisherChoice:
    """A provider client when the account has complete, readable credentials, else a simulator.

    In live mode the platform's live client is chosen when one is registered (LIVE_CLIENTS);
    otherwise the stub client stands in, as in stub mode.
    """
    config = current_app.config
    simulator = PlatformSimulator(platform, SimulatorSettings.from_config(config))

    def fallback(reason: str) -> PublisherChoice:
        return PublisherChoice(simulator.name, "publish_provider_fallback", publisher=simulator,
                               reason=reason)

    if account is None:
        return fallback("no_account")
    client_class = PROVIDER_CLIENTS.get(platform)
    if client_class is None:
        return fallback("unsupported_platform")
    try:
        credentials = get_account_credentials(db, account.id)
    except CredentialError:
        return fallback("credential_error")
    if credentials is None:
        return fallback("no_credentials")
    client = client_class(credentials)
    if not client.supports_real_api():
        return fallback("incomplete_config")
    live = LIVE_CLIENTS.get(platform) if config["PROVIDER_MODE"] == "live" else None
    if live is not None:
        return PublisherChoice(live.name, "publish_provider_ready", live=live)
    return PublisherChoice(client.name, "publish_provider_ready", publisher=client)


@dataclass(frozen=True)
class Attempt:
    """What `run()` needs to carry an attempt across the caller's commit (plain values only)."""

    log_id: uuid.UUID
    call: tuple[Publisher, PublishJob] | None = field(default=None, repr=False)  # not live: one call
    facts: service.AttemptFacts | None = None  # the log's, kept from the start (one call only)

    @property
    def live(self) -> bool:
        return self.call is None


def start(db, log_row: PublishLog, clip: Clip | TargetClip, account: SocialAccount | None,
          started: dict[str, Any], *, insert: bool = False) -> Attempt:
    """Pick the attempt's publisher, note it on the log, record the attempt's two ledger events
    in one statement (`publish_started` with the metadata `started`, then the publisher's), and
    prepare a live attempt's first step (the caller commits, then calls `run`).

    With `insert`, `log_row` is a new log, inserted here (`service.insert_log`) before its
    events; without, it is a log already written, or one the caller inserts. A live attempt
    retried after a transient failure keeps its step and platform state: it resumes where it
    failed.
    """
    choice = choose_publisher(db, log_row.platform, account)
    log_row.provider = choice.name
    metadata: dict[str, Any] = {"platform": log_row.platform}
    if choice.reason is None:
        metadata["provider"] = choice.name
    else:
        metadata["reason"] = choice.reason
    metadata["publish_log_id"] = log_row.id
    events = event_rows("clip", log_row.clip_id,
                        [("publish_started", started), (choice.event_type, metadata)])
    attempt = _prepared(log_row, clip, account, choice)
    # The writes come last, with nothing else between them and the commit: on SQLite the first
    # one takes the write lock, which every other writer then waits for.
    if insert:
        service.insert_log(db.session, log_row)
    insert_events(db.session, events)
    return attempt


def _prepared(log_row: PublishLog, clip: Clip | TargetClip, account: SocialAccount | None,
              choice: PublisherChoice) -> Attempt:
    if choice.publisher is not None:  # one-shot, not live
        if log_row.step is not None:
            # A live attempt being retried without its live client (credentials removed, mode
            # switched): publishing it another way could post it twice.
            return Attempt(log_row.id)
        return Attempt(log_row.id, (choice.publisher, service.job_for(log_row, clip, account)),
                       service.AttemptFacts.of(log_row))
    if log_row.step is None:
        log_row.step = FIRST_STEP
        log_row.platform_state = {}
    log_row.step_started_at = None
    log_row.next_attempt_at = None
    return Attempt(log_row.id)


def run(db, attempt: Attempt, *, may_retry: bool, sync_wait: float | None = None) -> None:
    """Run a committed attempt: its one call, or its steps until it ends, waits or is handed off.

    `sync_wait` (seconds, page and API) lets the caller run steps and sleep between polls that
    long before handing the rest to the queue; None (the worker) never sleeps.
    """
    if attempt.call is not None:
        outcome = service.call_platform(*attempt.call)
        finish(db, attempt.log_id, outcome, may_retry=may_retry, facts=attempt.facts)
        return
    deadline = None if sync_wait is None else time.monotonic() + sync_wait
    StepRunner(db, attempt.log_id, may_retry=may_retry, deadline=deadline).run()


def resume(db, log_id: uuid.UUID) -> None:
    """Continue a live attempt from its last written step (the queue task's body for a log that
    is between steps, was handed off, or waits to be reconciled)."""
    StepRunner(db, log_id, may_retry=True, deadline=None).run()


def finish(db, log_id: uuid.UUID, outcome: PlatformOutcome, *, may_retry: bool,
           token: datetime | None = None, facts: service.AttemptFacts | None = None) -> bool:
    """Record an attempt's outcome (commits) and hand a retry to the queue.

    With `token`, only while the runner still holds its step claim; False when it lost it. When
    the database cannot take it, the outcome is journalled and OutcomeNotRecorded raised
    (journal.py). `facts` are the log's as the attempt started (read from the log if not given).

    The outcome is written in a transaction of its own on a Core connection, not in the
    session's: the caller holds no transaction (an attempt is committed before its platform
    call), and the session's begin and commit cost a publish more than its UPDATE does.
    """
    session = db.session
    with journal.written_or_kept(db, log_id, outcome, may_retry=may_retry):
        with db.engine.connect() as connection:  # rolled back as it closes unless committed
            # On PostgreSQL the outcome and its event are one statement, which needs no
            # transaction of its own: one round trip where BEGIN, UPDATE, INSERT and COMMIT made
            # four. A refused token also marks the account: that takes a transaction.
            in_one_statement = connection.dialect.name == "postgresql" and not outcome.auth_error
            if in_one_statement:
                connection.execution_options(isolation_level="AUTOCOMMIT")
            if facts is None:
                facts = service.AttemptFacts.of(connection.execute(_FACTS, {"log_id": log_id}).one())
            change = service.outcome_change(facts, outcome, may_retry=may_retry)
            # Built before the UPDATE: on SQLite it takes the write lock, held to the commit.
            event = change.event_rows()
            report = PublishReport.of(replace(facts, status=change.values["status"]))
            if in_one_statement:
                written = _write_outcome(connection, change, token, event)
            else:
                written = _write_outcome(connection, change, token)
                if written:
                    change.record_event(connection, event)
            if written:
                connection.commit()
        if written:
            _keep_as_committed(session, change)
            retry_at = change.retry_at
            report.report()
        else:
            # Not the attempt that was started any more: its runner lost the claim (False), or it
            # was given up (by the sweep, a person) and maybe started again. The answer is kept on
            # record, never written over what a person or the next attempt relies on.
            log_row = session.get(PublishLog, log_id, with_for_update=True, populate_existing=True)
            if token is not None and log_row.step_started_at != token:
                session.rollback()
                return False
            if token is not None:
                log_row.step_started_at = None
            service.record_late_answer(session, log_row, outcome)
            retry_at = commit_outcome(session, log_row)
    if retry_at is not None:
        from .worker import enqueue

        enqueue(log_id, retry_at)
    return True


_LOGS = cast(Table, PublishLog.__table__)
_FACTS = select(*(_LOGS.c[name] for name in (f.name for f in fields(service.AttemptFacts)))).where(
    _LOGS.c.id == bindparam("log_id"))


_EVENTS = cast(Table, LedgerEvent.__table__)
_EVENT_COLUMNS = ("id", "event_type", "entity_type", "entity_id", "metadata", "created_at")


@functools.cache
def _outcome_update(columns: tuple[str, ...], claimed: bool, with_event: bool):
    # One statement per shape of outcome, built once: building it costs about what running it does.
    # One bound value per status, not an IN of one bound list: that is an "expanding" parameter,
    # whose SQL is only known at execution, and a DirectStatement is compiled once.
    guard = [_LOGS.c.id == bindparam("log_id"), _LOGS.c.status.in_([literal(s) for s in IN_FLIGHT]),
             _LOGS.c.attempts == bindparam("started_attempts")]
    if claimed:
        guard.append(_LOGS.c.step_started_at == bindparam("token"))
    outcome = update(_LOGS).where(*guard).values(
        {name: bindparam(f"new_{name}", type_=_LOGS.c[name].type) for name in columns})
    if not with_event:
        return DirectStatement(outcome)
    # PostgreSQL: the event is inserted from the UPDATE's RETURNING, so only with a row written.
    written = outcome.returning(_LOGS.c.id).cte("written")
    return DirectStatement(insert(_EVENTS).from_select(list(_EVENT_COLUMNS), select(
        *(bindparam(f"event_{name}", type_=_EVENTS.c[name].type) for name in _EVENT_COLUMNS)
    ).select_from(written)))


def _write_outcome(connection: Connection, change: service.OutcomeChange, token: datetime | None,
                   event: list[dict[str, Any]] | None = None) -> bool:
    """Write the outcome on its log with one conditional UPDATE, and with it, on PostgreSQL,
    its one `event` row; False (nothing written) unless the log is still the attempt that was
    started, in flight, and claimed with `token` if given: an outcome is recorded once, only on
    the attempt it answers."""
    statement = _outcome_update(tuple(change.values) + ("step_started_at",), token is not None,
                                event is not None)
    params = {f"new_{name}": value for name, value in change.values.items()}
    params.update(new_step_started_at=None, log_id=change.facts.id,
                  started_attempts=change.facts.attempts, token=token)
    if event is not None:
        (row,) = event
        stamp(event)
        params.update({f"event_{name}": row[name] for name in _EVENT_COLUMNS})
    return statement.execute(connection, params) == 1


def _keep_as_committed(session, change: service.OutcomeChange) -> None:
    """After the commit of `_write_outcome`'s UPDATE: the session's copy of the log, if it holds
    one unexpired (publish_now's), as a flush would have left it; its copy of an account the
    outcome marked as needing credentials is read again when next used."""
    service.forget_kept_account(session, change)
    kept = session.identity_map.get(session.identity_key(PublishLog, change.facts.id))
    if kept is None or inspect(kept).expired:
        return
    for name, value in change.values.items():
        set_committed_value(kept, name, value)
    set_committed_value(kept, "step_started_at", None)
    session.expire(kept, ["updated_at", "counts_at"])  # the database set those


def commit_outcome(session, log_row: PublishLog) -> datetime | None:
    """Commit an attempt's recorded outcome, then report it (its log line and metrics); when to
    retry it if it was queued again."""
    retry_at = log_row.next_attempt_at if log_row.status == PublishStatus.QUEUED.value else None
    report = PublishReport.of(log_row)
    session.commit()
    report.report()
    return retry_at


class StepLost(Exception):
    """Another runner took this step over (the sweep judged our claim stale)."""


class LiveUnavailable(Exception):
    """The attempt's live client cannot be built any more (credentials gone or unreadable)."""


@dataclass(frozen=True)
class Claim:
    step: str
    state: dict[str, Any]
    token: datetime


def client_settings() -> dict[str, Any]:
    """The app's settings as a live client sees them (no secret among them)."""
    return {key: value for key, value in current_app.config.items()
            if key not in _PRIVATE_SETTINGS}


class StepRunner:
    """Runs one live attempt's steps in this thread, each claimed and written on its own."""

    def __init__(self, db, log_id: uuid.UUID, *, may_retry: bool, deadline: float | None):
        self.db = db
        self.log_id = log_id
        self.may_retry = may_retry
        self.deadline = deadline
        self.config = current_app.config
        self._live: tuple[LiveClient, LiveJob] | None = None
        self._http: httpx.Client | None = None

    # The loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while True:
                claim = self.claim()
                if claim is None:
                    return
                if not self.step(claim):
                    return
        except StepLost:
            log.warning("publish log %s: step taken over by another runner", self.log_id)
            self.db.session.rollback()
        finally:
            if self._http is not None:
                self._http.close()

    def claim(self) -> Claim | None:
        """Take the attempt's next step if it is due and nobody runs it (a conditional UPDATE)."""
        session = self.db.session
        now = utcnow()
        runnable = or_(
            PublishLog.status.in_(IN_FLIGHT),
            and_(PublishLog.status == PublishStatus.UNCONFIRMED.value,
                 PublishLog.step == RECONCILE_STEP),
        )
        taken = session.execute(
            update(PublishLog)
            .where(PublishLog.id == self.log_id, PublishLog.step.is_not(None),
                   PublishLog.step_started_at.is_(None), runnable,
                   or_(PublishLog.next_attempt_at.is_(None), PublishLog.next_attempt_at <= now))
            .values(step_started_at=now, status=PublishStatus.PUBLISHING.value,
                    next_attempt_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken != 1:
            session.rollback()
            return None
        row = session.execute(
            select(PublishLog.step, PublishLog.platform_state).where(PublishLog.id == self.log_id)
        ).one()
        session.commit()
        return Claim(row.step, dict(row.platform_state or {}), now)

    def step(self, claim: Claim) -> bool:
        """Run one claimed step and write its result; True when the next step may run now."""
        try:
            client, job = self.live_client()
        except LiveUnavailable as exc:
            after_publish = (IRREVERSIBLE_STEP, "confirm", RECONCILE_STEP)
            kind: ErrorKind = "unknown" if claim.step in after_publish else "permanent"
            finish(self.db, self.log_id, PlatformOutcome(False, error_message=str(exc), error_kind=kind),
                   may_retry=False, token=claim.token)
            return False
        if claim.step == RECONCILE_STEP:
            settle(self.db, self.log_id, client, job, claim.state, claim.token,
                   may_retry=self.may_retry, reason="interrupted")
            return False
        if claim.step == FIRST_STEP and not self.quota_allows(claim.token, job):
            return False
        token = claim.token
        state = dict(claim.state)

        def checkpoint(patch: dict[str, Any]) -> None:
            nonlocal token, state
            state = {**state, **patch}
            token = self.write_checkpoint(token, state)

        try:
            result = client.run_step(claim.step, job, state, checkpoint)
        except ProviderError as exc:
            return self.failed(Claim(claim.step, state, token), client, job, exc)
        except StepLost:
            raise
        except Exception as exc:  # a client bug or an unclassified network error
            log.warning("live step %s of %s raised %s", claim.step, self.log_id, type(exc).__name__)
            live_kind: LiveErrorKind = ("unknown" if claim.step in ("upload", IRREVERSIBLE_STEP)
                                        else "permanent")
            message = (f"network error during {claim.step}" if isinstance(exc, httpx.HTTPError)
                       else str(exc) or type(exc).__name__)
            return self.failed(Claim(claim.step, state, token), client, job,
                               ProviderError(message, kind=live_kind))
        return self.done(claim.step, token, result)

    # Writes -----------------------------------------------------------------------------------

    def write_checkpoint(self, token: datetime, state: dict[str, Any]) -> datetime:
        """Save a step's platform state now and refresh the claim; the new claim token."""
        session = self.db.session
        now = utcnow()
        if now <= token:
            now = token + timedelta(microseconds=1)
        changed = session.execute(
            update(PublishLog)
            .where(PublishLog.id == self.log_id, PublishLog.step_started_at == token)
            .values(platform_state=state, step_started_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
        if changed != 1:
            raise StepLost()
        return now

    def owned_log(self, token: datetime) -> PublishLog:
        log_row = self.db.session.get(PublishLog, self.log_id, with_for_update=True,
                                      populate_existing=True)
        if log_row.step_started_at != token:
            self.db.session.rollback()
            raise StepLost()
        return log_row

    def done(self, step: str, token: datetime, result: StepResult) -> bool:
        """Write a finished step (state, next step, trace id, its ledger event); the last step's
        outcome is journalled if the database cannot take it."""
        if result.next_step is not None:
            return self._write_done(step, token, result, None)
        outcome = result.outcome or PlatformOutcome(True)
        with journal.written_or_kept(self.db, self.log_id, outcome, may_retry=self.may_retry,
                                     trace_id=result.trace_id):
            return self._write_done(step, token, result, outcome)

    def _write_done(self, step: str, token: datetime, result: StepResult,
                    outcome: PlatformOutcome | None) -> bool:
        session = self.db.session
        log_row = self.owned_log(token)
        log_row.platform_state = dict(result.state)
        if result.trace_id:
            log_row.trace_id = result.trace_id
        metadata = {"platform": log_row.platform, "publish_log_id": log_row.id, "step": step,
                    "next_step": result.next_step, "details": dict(result.details)}
        if result.trace_id:
            metadata["trace_id"] = result.trace_id
        if result.wait_seconds:
            metadata["wait_seconds"] = result.wait_seconds
        record_event(session, "publish_step", "clip", log_row.clip_id, metadata)
        if outcome is not None:
            log_row.step_started_at = None
            service.record_outcome(self.db, log_row, outcome, may_retry=self.may_retry)
            retry_at = commit_outcome(session, log_row)
            if retry_at is not None:
                self.enqueue(retry_at)
            return False
        log_row.step = result.next_step
        log_row.step_started_at = None
        wait = max(float(result.wait_seconds or 0), 0.0)
        due = utcnow() + timedelta(seconds=wait)
        log_row.next_attempt_at = due if wait else None
        session.commit()
        if self.deadline is None:
            if wait:
                self.enqueue(due)
                return False
            return True
        left = self.deadline - time.monotonic()
        if wait <= left:
            if wait:
                time.sleep(wait)
            return True
        self.enqueue(due)  # past the caller's sync budget: the queue takes over
        return False

    def failed(self, claim: Claim, client: LiveClient, job: LiveJob, exc: ProviderError) -> bool:
        """Act on a step's ProviderError by its kind (see the module docstring)."""
        session = self.db.session
        log_row = self.owned_log(claim.token)
        metadata = {"platform": log_row.platform, "publish_log_id": log_row.id, "step": claim.step,
                    "error": exc.message, "kind": exc.kind, "code": exc.code}
        if exc.trace_id:
            metadata["trace_id"] = exc.trace_id
            log_row.trace_id = exc.trace_id
        log_row.platform_state = claim.state
        if exc.restart and exc.kind != "unknown":
            limit = self.config["PUBLISH_MAX_RESTARTS"]
            if log_row.restarts < limit:
                log_row.restarts += 1
                log_row.step = FIRST_STEP
                log_row.platform_state = {}
                log_row.step_started_at = None
                record_event(session, "publish_restarted", "clip", log_row.clip_id,
                             {**metadata, "restarts": log_row.restarts})
                session.commit()
                return True
            exc = ProviderError(f"{exc.message} (gave up after {limit} fresh starts)",
                                kind="permanent", code=exc.code, trace_id=exc.trace_id)
        record_event(session, "publish_step", "clip", log_row.clip_id, metadata)
        if exc.kind == "unknown":
            session.commit()
            settle(self.db, self.log_id, client, job, claim.state, claim.token,
                   may_retry=self.may_retry, reason=exc.message)
            return False
        outcome = PlatformOutcome(False, error_message=exc.message,
                                  error_kind="transient" if exc.kind == "transient" else "permanent",
                                  auth_error=exc.kind == "auth", retry_after=exc.retry_after)
        log_row.step_started_at = None
        service.record_outcome(self.db, log_row, outcome, may_retry=self.may_retry)
        retry_at = commit_outcome(session, log_row)
        if retry_at is not None:
            self.enqueue(retry_at)
        return False

    def quota_allows(self, token: datetime, job: LiveJob) -> bool:
        """Quotas the platform counts per app rather than per account, checked (and the attempt
        counted) in one transaction before the first step: YouTube's daily upload quota belongs
        to the Google Cloud project of the credentials' client id. When it is used up the
        attempt waits for the reset, `queued` again and not counted as an attempt (nothing is
        sent), as the per-account quota does."""
        if job.platform != "youtube":
            return True
        session = self.db.session
        log_row = self.owned_log(token)
        now = utcnow()
        client_id = job.credentials["client_id"]
        quota = youtube_project_quota(session, client_id, now, exclude_log_id=log_row.id)
        if not quota.exhausted:
            count_youtube_upload(log_row, client_id, now)
            session.commit()
            return True
        log_row.status = PublishStatus.QUEUED.value
        log_row.attempts = max(log_row.attempts - 1, 0)
        log_row.step_started_at = None
        log_row.next_attempt_at = quota.resets_at
        record_event(session, "publish_deferred", "clip", log_row.clip_id, {
            "platform": log_row.platform, "reason": "project_quota", "used": quota.used,
            "limit": quota.limit, "until": quota.resets_at, "publish_log_id": log_row.id,
        })
        session.commit()
        self.enqueue(quota.resets_at)
        return False

    def enqueue(self, eta: datetime) -> None:
        from .worker import enqueue

        enqueue(self.log_id, eta)

    # The client -------------------------------------------------------------------------------

    def live_client(self) -> tuple[LiveClient, LiveJob]:
        """The attempt's live client and job, built once per run from the log (a short read;
        the credentials are decrypted here and given to the client only)."""
        if self._live is not None:
            return self._live
        session = self.db.session
        # A linked token within its refresh-ahead window is refreshed first (YouTube's last an
        # hour): its own short transactions, before this read; the step claim is committed.
        account_id = session.scalar(select(PublishLog.social_account_id)
                                    .where(PublishLog.id == self.log_id))
        session.commit()
        ensure_fresh_token(self.db, account_id)
        try:
            log_row = session.get(PublishLog, self.log_id, populate_existing=True)
            clip = session.get(Clip, log_row.clip_id)
            account = (session.get(SocialAccount, log_row.social_account_id)
                       if log_row.social_account_id else None)
            client_class = LIVE_CLIENTS.get(log_row.platform)
            if client_class is None or account is None:
                raise LiveUnavailable(f"no live client for {log_row.platform} any more")
            try:
                credentials = get_account_credentials(self.db, account.id)
            except CredentialError:
                raise LiveUnavailable(f"@{account.handle}'s credentials cannot be read") from None
            if credentials is None or missing_keys(log_row.platform, credentials):
                raise LiveUnavailable(f"@{account.handle}'s credentials were removed during the publish")
            values = dict(
                platform=log_row.platform,
                log_id=str(log_row.id),
                title=clip.title,
                description=clip.description,
                caption=compose_caption(log_row.caption, log_row.hashtags or []),
                hashtags=tuple(log_row.hashtags or []),
                duration_seconds=clip.duration_seconds,
                account_handle=account.handle,
                options=dict((account.config or {}).get("publish_options") or {}),
            )
            # Detached, so that finding the file (an S3 copy may be downloaded) happens after
            # this read transaction ends.
            session.expunge(clip)
        finally:
            session.commit()
        job = LiveJob(**values, media=media_source_for(clip), credentials=credentials)
        self._http = httpx.Client(timeout=self.config["PROVIDER_HTTP_TIMEOUT"])
        self._live = (client_class(credentials, client_settings(), self._http), job)
        return self._live


def sweep_live(db, requeue_grace: float | None = None) -> dict[str, int]:
    """Keep live attempts moving after crashes (part of the worker's sweep; never calls a
    platform, only the queue).

    - a step whose claim is older than PUBLISH_TIMEOUT_SECONDS lost its runner (a killed worker
      or web process): it is released and re-enqueued, to resume from the last written state;
      an interrupted `finalize` is settled by asking the platform instead (`reconcile`);
    - an attempt waiting between steps whose message was lost (overdue by
      REQUEUE_GRACE_SECONDS, or `requeue_grace`), or left between two steps by a dead process (for longer than
      PUBLISH_TIMEOUT_SECONDS), is enqueued again; claiming makes a repeat harmless;
    - an unconfirmed live attempt due for another question to the platform is enqueued.
    """
    from .worker import enqueue

    session = db.session
    config = current_app.config
    now = utcnow()
    timeout = timedelta(seconds=config["PUBLISH_TIMEOUT_SECONDS"])
    grace = timedelta(seconds=config["REQUEUE_GRACE_SECONDS"] if requeue_grace is None else requeue_grace)
    stale = session.execute(
        select(PublishLog.id, PublishLog.clip_id, PublishLog.platform, PublishLog.step,
               PublishLog.step_started_at)
        .where(PublishLog.status.in_(IN_FLIGHT), PublishLog.step.is_not(None),
               PublishLog.step_started_at < now - timeout)
    ).all()
    resumed = []
    for row in stale:
        resume_with = RECONCILE_STEP if row.step == IRREVERSIBLE_STEP else row.step
        changed = session.execute(
            update(PublishLog)
            .where(PublishLog.id == row.id, PublishLog.step_started_at == row.step_started_at)
            .values(step=resume_with, step_started_at=None, next_attempt_at=None,
                    status=PublishStatus.PUBLISHING.value, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed:
            resumed.append(row.id)
            record_event(session, "publish_step_interrupted", "clip", row.clip_id, {
                "platform": row.platform, "publish_log_id": row.id, "step": row.step,
                "step_started_at": row.step_started_at, "resumed_with": resume_with,
            })
    session.commit()
    waiting = list(session.scalars(
        select(PublishLog.id).where(
            PublishLog.step.is_not(None), PublishLog.step_started_at.is_(None),
            or_(and_(PublishLog.status.in_(IN_FLIGHT), PublishLog.next_attempt_at <= now - grace),
                # Between two steps with no wait (e.g. a web process that died right after
                # committing the attempt): nobody will claim it unless it is handed on.
                and_(PublishLog.status.in_(IN_FLIGHT), PublishLog.next_attempt_at.is_(None),
                     PublishLog.updated_at < now - timeout),
                and_(PublishLog.status == PublishStatus.UNCONFIRMED.value,
                     PublishLog.step == RECONCILE_STEP, PublishLog.next_attempt_at <= now)))
    ))
    session.commit()
    for log_id in [*resumed, *waiting]:
        enqueue(log_id)
    return {"resumed": len(resumed), "requeued_live": len(waiting)}
