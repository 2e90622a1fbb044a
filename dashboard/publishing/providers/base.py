"""The provider interface: stub mode (the seed's two calls) and live mode (resumable steps).

Stub mode (`PROVIDER_MODE=stub`, the default) keeps the seed's `upload_video_stub` and
`publish_post_stub`. Live mode (`PROVIDER_MODE=live`) speaks each platform's own protocol over
httpx as a sequence of *steps*, so that an attempt survives a killed worker:

    prepare -> upload -> processing -> finalize -> confirm

- A step is one method of the client (`prepare`, `upload_video`, `wait_for_processing`,
  `publish_post`, `confirm`). It receives the attempt's saved platform `state` (a JSON-able dict
  of platform ids: container id, publish id, upload session URI, acknowledged offset, ...) and
  returns a `StepResult` naming the next step. A platform skips a step by naming a later one.
- The pipeline writes the returned `state` onto the publish log, with a ledger event, before it
  runs the next step. Inside a long step, `checkpoint(patch)` writes a platform id or an
  acknowledged offset at once (before the next call that depends on it).
- A step may be run again from the state a killed worker left: it must *resume*, never repeat an
  effect (a container is not created twice, the final chunk or `media_publish` is never sent
  twice). A client marks the irreversible call in its state (via `checkpoint`) before sending it,
  and on a re-run asks the platform instead of sending it again.
- Waiting is not sleeping: `wait_for_processing` polls once and returns `wait_seconds` with
  `next_step="processing"`; the pipeline schedules the next poll as a queue task.
- Errors are raised as `ProviderError`, classified by the platform's own codes through the
  client's error table (data, beside the client). The message is the platform's, never a secret.

A client is plain code: no Flask, no database session. It gets its credentials, its settings
(a mapping with the app's config values) and an `httpx.Client`, and returns outcomes.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal

import httpx

from ..outcome import PlatformOutcome

# transient: nothing was posted and a later try may pass; permanent: a person must fix something;
# auth: the token was refused (refresh it, else the account needs reconnecting); unknown: the
# platform may have accepted the post (ask it: reconcile), so never retry blindly.
LiveErrorKind = Literal["transient", "permanent", "auth", "unknown"]

STEPS = ("prepare", "upload", "processing", "finalize", "confirm")
FIRST_STEP = "prepare"

# A step's state patch: what to write onto the log before anything else happens.
Checkpoint = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ErrorRule:
    """One row of a platform's error table: what an error code means and what to do about it.

    `restart`: the attempt's platform objects are spoiled (an expired Instagram container, a
    dead upload session): start again from the first step with fresh ones, nothing was posted.
    """

    kind: LiveErrorKind
    meaning: str
    restart: bool = False


class ProviderError(Exception):
    """A platform refused or failed a call. `str()` is the platform's message (never a secret).

    `code` is the platform's own code as text ("190/463", "spam_risk_too_many_posts",
    "quotaExceeded"); `trace_id` the platform's request id (fbtrace_id, log_id,
    X-GUploader-UploadID); `retry_after` seconds when the platform says when to come back.
    """

    def __init__(self, message: str, *, kind: LiveErrorKind, code: str | None = None,
                 trace_id: str | None = None, retry_after: float | None = None,
                 restart: bool = False, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code
        self.trace_id = trace_id
        self.retry_after = retry_after
        self.restart = restart
        self.status = status

    @classmethod
    def from_rule(cls, rule: ErrorRule, message: str, **kw) -> ProviderError:
        """The error an error-table row describes, with the platform's message."""
        return cls(message, kind=rule.kind, restart=rule.restart, **kw)


@dataclass(frozen=True)
class MediaSource:
    """Where a clip's bytes are: a local file to stream, and/or a public URL a platform may pull.

    Live clients pull by URL (Instagram `video_url`, TikTok `PULL_FROM_URL`) when `public_url` is
    set, and otherwise upload the bytes from `path`, streamed, never read whole into memory.
    """

    path: str | None = None
    public_url: str | None = None
    size_bytes: int | None = None
    content_type: str = "video/mp4"

    @property
    def size(self) -> int:
        """The file's size in bytes (stat'ed when not known)."""
        if self.size_bytes is not None:
            return self.size_bytes
        if self.path is None:
            raise ValueError("the clip has no local file to upload")
        return os.path.getsize(self.path)

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The file, opened for streaming reads."""
        if self.path is None:
            raise ValueError("the clip has no local file to upload")
        with open(self.path, "rb") as handle:
            yield handle

    def read_range(self, start: int, length: int, block: int = 1024 * 1024) -> Iterator[bytes]:
        """The bytes [start, start + length) in blocks: a chunk body that streams."""
        with self.open() as handle:
            handle.seek(start)
            left = length
            while left > 0:
                data = handle.read(min(block, left))
                if not data:
                    break
                left -= len(data)
                yield data


@dataclass(frozen=True)
class LiveJob:
    """Plain values a live client needs for one attempt; no ORM object crosses a platform call.

    `credentials` are the account's decrypted secrets (excluded from repr). `options` holds the
    post's platform options (e.g. `privacy_level`, `share_to_feed`, `cover_offset_ms`,
    `disable_comment`); a client ignores those it does not know.
    """

    platform: str
    log_id: str
    title: str
    description: str
    caption: str  # the caption with its hashtags, as the platform will show it
    hashtags: tuple[str, ...]
    media: MediaSource
    duration_seconds: float | None
    account_handle: str | None
    credentials: Mapping[str, str] = field(repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepResult:
    """What a step did: the state to save, what comes next, and what the ledger should say.

    `next_step` None ends the attempt with `outcome` (success, or a failure the client settled,
    such as TikTok's `FAILED` with its `fail_reason`). `wait_seconds` > 0 asks the pipeline to
    run `next_step` that much later (a queue task, not a sleeping thread). `details` are
    non-secret facts for the step's ledger event (platform ids, statuses, trace ids).
    """

    state: dict[str, Any]
    next_step: str | None
    wait_seconds: float = 0.0
    outcome: PlatformOutcome | None = None
    details: dict[str, Any] = field(default_factory=dict)
    trace_id: str | None = None


class LiveClient(ABC):
    """A platform's live client. Subclasses set `platform` and `name` and implement the steps."""

    platform: str = ""
    name: str = ""

    def __init__(self, credentials: Mapping[str, str], settings: Mapping[str, Any],
                 http: httpx.Client):
        self._credentials = dict(credentials)
        self.settings = settings
        self.http = http

    def __repr__(self) -> str:  # never show the credentials
        return f"<{type(self).__name__}>"

    def run_step(self, step: str, job: LiveJob, state: dict[str, Any],
                 checkpoint: Checkpoint) -> StepResult:
        """Run the named step (one of STEPS) from the saved `state`."""
        method = {
            "prepare": self.prepare,
            "upload": self.upload_video,
            "processing": self.wait_for_processing,
            "finalize": self.publish_post,
            "confirm": self.confirm,
        }[step]
        return method(job, dict(state), checkpoint)

    @abstractmethod
    def prepare(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Checks the platform makes before any upload (quota, creator info, ...)."""

    @abstractmethod
    def upload_video(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Create the platform's upload object and send the bytes, resuming at the saved offset."""

    @abstractmethod
    def wait_for_processing(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Poll the platform's processing status once; ask to be run again later while it works."""

    @abstractmethod
    def publish_post(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """The call that makes the post public (sent at most once)."""

    @abstractmethod
    def confirm(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Read the public id and URL of the published post (best effort) and end the attempt."""

    @abstractmethod
    def reconcile(self, job: LiveJob, state: dict) -> PlatformOutcome | None:
        """Ask the platform what became of an attempt whose outcome is unknown.

        Returns a success (the post is live: its id and URL when known), a failure with
        `error_kind="permanent"` or `"transient"` when the platform shows it was safely not
        published, or None when the platform cannot tell.
        """
