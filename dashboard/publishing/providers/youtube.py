"""YouTube Data API v3 (resumable videos.insert).

Two clients: the stub (PROVIDER_MODE=stub) and `YouTubeLiveClient` (PROVIDER_MODE=live), which
speaks Google's resumable upload protocol (shared/platforms.md):

1. `POST {YOUTUBE_API_URL}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status`
   with the snippet and status as JSON and `X-Upload-Content-Length`/`X-Upload-Content-Type`
   -> `200` with the session URI in `Location` (used exactly as returned).
2. `PUT <session URI>` in chunks of `YOUTUBE_CHUNK_BYTES` (multiples of 256 KiB; the last may be
   shorter) with `Content-Range: bytes a-b/N` -> `308 Resume Incomplete` with `Range: bytes=0-k`
   (continue at k+1; no Range: from 0), or `200`/`201` with the video resource when complete.
3. After an interruption the session is asked where it is (`Content-Range: bytes */N`, empty
   body): `308` resumes from its Range, `200`/`201` means the video exists, `5xx` is asked again
   after a back-off, `404`/`410` means the session is gone and a new one is started. The client
   never starts over while the session lives.
4. `GET {YOUTUBE_API_URL}/youtube/v3/videos?part=status,processingDetails&id=<id>` polls the
   processing, bounded (the video is published as soon as its last byte arrived).

The saved state (written onto the publish log by the pipeline) holds `session_uri`, `size`,
`offset` (the bytes the server acknowledged), `final_chunk_sent` (set before the last chunk goes
out) and `video_id`. No video exists until the last byte arrives, so the session's own answer
settles an unknown outcome; the one case it cannot settle is a session that is gone after the
final chunk may have completed it (then the outcome stays unknown rather than risk a duplicate).

Errors are classified by `error.errors[].reason` through `ERROR_TABLE` (data, below), falling
back on the HTTP status through `STATUS_TABLE`. Messages are YouTube's own; the access token
travels only in the `Authorization` header, and httpx's request logging is silenced.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from urllib.parse import quote, urljoin
from zoneinfo import ZoneInfo

import httpx

from ..outcome import PlatformOutcome
from .base import (
    Checkpoint,
    ErrorRule,
    LiveClient,
    LiveErrorKind,
    LiveJob,
    ProviderError,
    StepResult,
)
from .stub import PostRef, ProviderClient

# httpx logs every request line at INFO; keep request details out of the application's logs.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

# YouTube's quotas reset at midnight Pacific time.
PACIFIC = ZoneInfo("America/Los_Angeles")
UPLOAD_PATH = "/upload/youtube/v3/videos"
VIDEOS_PATH = "/youtube/v3/videos"
CHUNK_UNIT = 256 * 1024
TRACE_HEADER = "X-GUploader-UploadID"
SHORTS_URL = "https://www.youtube.com/shorts/{}"

# error.errors[].reason -> what it means (shared/platforms.md, "YouTube Data API v3").
ERROR_TABLE: dict[str, ErrorRule] = {
    "quotaExceeded": ErrorRule("transient", "the project's daily videos.insert quota is used; "
                                            "it resets at midnight Pacific time"),
    "uploadLimitExceeded": ErrorRule("transient", "the channel's own 24-hour upload limit"),
    "rateLimitExceeded": ErrorRule("transient", "too many requests; slow down"),
    "forbidden": ErrorRule("permanent", "the request is not allowed for this channel"),
    "authError": ErrorRule("auth", "the access token was refused"),
    "invalidTitle": ErrorRule("permanent", "the title is empty, too long or has < or >"),
    "invalidDescription": ErrorRule("permanent", "the description is too long or has < or >"),
    "invalidTags": ErrorRule("permanent", "the tags are too long in all"),
    "backendError": ErrorRule("transient", "YouTube had a server error"),
}
# When the answer carries no reason of the table: its HTTP status.
STATUS_TABLE: dict[int, ErrorRule] = {
    401: ErrorRule("auth", "invalid credentials"),
    500: ErrorRule("transient", "YouTube had a server error"),
    502: ErrorRule("transient", "bad gateway"),
    503: ErrorRule("transient", "YouTube is unavailable"),
    504: ErrorRule("transient", "gateway timeout"),
}
UNKNOWN_RULE = ErrorRule("permanent", "an error YouTube's table does not list")
# A session that is gone: nothing was published (no video exists before the last byte).
SESSION_GONE = ErrorRule("transient", "the upload session is gone", restart=True)


def pacific_day(now: datetime) -> tuple[datetime, datetime]:
    """The Pacific-time day holding `now`, as UTC (start, end): YouTube's quota day."""
    local = now.astimezone(PACIFIC).date()

    def midnight(day: date) -> datetime:
        return datetime.combine(day, clock_time(0), tzinfo=PACIFIC).astimezone(UTC)

    return midnight(local), midnight(local + timedelta(days=1))


def seconds_until_quota_reset(now: datetime) -> float:
    """Seconds from `now` to the next midnight Pacific time."""
    return (pacific_day(now)[1] - now).total_seconds()


def project_fingerprint(client_id: str) -> str:
    """A short, non-secret name of a Google Cloud project (its OAuth client id), for indexing."""
    return hashlib.sha256(client_id.strip().encode()).hexdigest()[:16]


def classify(status: int, body: Any) -> tuple[str | None, ErrorRule, str]:
    """(reason, rule, message) of an error answer, through ERROR_TABLE then STATUS_TABLE."""
    error = body.get("error") if isinstance(body, dict) else None
    reasons: list[str] = []
    message = ""
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        for item in error.get("errors") or ():
            if isinstance(item, dict) and item.get("reason"):
                reasons.append(str(item["reason"]))
                message = message or str(item.get("message") or "")
    for reason in reasons:
        if reason in ERROR_TABLE:
            return reason, ERROR_TABLE[reason], message or ERROR_TABLE[reason].meaning
    rule = STATUS_TABLE.get(status, UNKNOWN_RULE)
    return (reasons[0] if reasons else None), rule, message or f"HTTP {status}: {rule.meaning}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _acknowledged(response: httpx.Response) -> int:
    """The next byte to send after a 308: k+1 from `Range: bytes=0-k`, 0 without a Range."""
    header = response.headers.get("Range")
    if not header:
        return 0
    try:
        return int(header.strip().split("=", 1)[1].split("-", 1)[1]) + 1
    except (IndexError, ValueError):
        raise ProviderError(f"YouTube answered an unreadable Range header: {header[:60]}",
                            kind="transient", status=308) from None


class YouTubeDataClient(ProviderClient):
    """YouTube Data API v3 in stub mode: a pretend resumable `videos.insert`."""

    platform = "youtube"
    name = "youtube_data_v3"

    def upload_video_stub(self, file_path: str, **kw) -> str:
        return uuid.uuid4().hex[:11]

    def publish_post_stub(self, video_id: str, **kw) -> PostRef:
        # videos.insert publishes as it uploads: the uploaded id is the post id.
        return PostRef(video_id, f"https://www.youtube.com/shorts/{video_id}")


class _SessionGone(Exception):
    """The upload session answered 404/410."""


class YouTubeLiveClient(LiveClient):
    """YouTube Data API v3 over HTTP: resumable `videos.insert`, then a bounded processing poll.

    Steps: prepare (nothing platform-side: the project quota is counted locally, see
    project_quota.py) -> upload -> processing -> confirm; there is no finalize step.
    """

    platform = "youtube"
    name = "youtube_data_v3"

    def __init__(self, credentials: Mapping[str, str], settings: Mapping[str, Any],
                 http: httpx.Client):
        super().__init__(credentials, settings, http)
        self.api_url = str(settings["YOUTUBE_API_URL"]).rstrip("/")
        self.chunk_bytes = int(settings["YOUTUBE_CHUNK_BYTES"])
        if self.chunk_bytes <= 0 or self.chunk_bytes % CHUNK_UNIT:
            raise ValueError("YOUTUBE_CHUNK_BYTES must be a positive multiple of 256 KiB")
        self.timeout = float(settings["PROVIDER_HTTP_TIMEOUT"])

    # -- plumbing -------------------------------------------------------------------------

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._credentials.get('access_token', '')}"}
        headers.update(extra or {})
        return headers

    def _error(self, response: httpx.Response) -> ProviderError:
        reason, rule, message = classify(response.status_code, _json(response))
        retry_after = None
        if reason == "quotaExceeded":
            retry_after = seconds_until_quota_reset(datetime.now(UTC))
        elif response.headers.get("Retry-After", "").isdigit():
            retry_after = float(response.headers["Retry-After"])
        return ProviderError.from_rule(
            rule, f"YouTube: {message}", code=reason or str(response.status_code),
            trace_id=response.headers.get(TRACE_HEADER), retry_after=retry_after,
            status=response.status_code,
        )

    def _backoff(self, attempt: int) -> None:
        time.sleep(min(float(self.settings["YOUTUBE_RETRY_BASE_DELAY"]) * 2 ** attempt, 30.0))

    def _snippet_and_status(self, job: LiveJob) -> dict[str, Any]:
        privacy = job.options.get("privacy_status") or self.settings["YOUTUBE_PRIVACY_STATUS"]
        return {
            "snippet": {
                "title": job.title,
                "description": job.caption,
                "tags": [tag.lstrip("#") for tag in job.hashtags],
                "categoryId": str(self.settings["YOUTUBE_CATEGORY_ID"]),
            },
            "status": {"privacyStatus": privacy, "selfDeclaredMadeForKids": False},
        }

    def _create_session(self, job: LiveJob, size: int) -> tuple[str, str | None]:
        """Start a resumable upload; (session URI, trace id). Costs one videos.insert call."""
        try:
            response = self.http.post(
                # The documented query, literally (httpx would send the comma as %2C).
                f"{self.api_url}{UPLOAD_PATH}?uploadType=resumable&part=snippet,status",
                json=self._snippet_and_status(job),
                headers=self._headers({
                    "Content-Type": "application/json; charset=UTF-8",
                    "X-Upload-Content-Length": str(size),
                    "X-Upload-Content-Type": job.media.content_type or "video/*",
                }),
                timeout=self.timeout,
            )
        except httpx.TransportError as exc:
            # No video exists without its bytes: a session that may have been made is harmless.
            raise ProviderError(f"YouTube could not be reached to start the upload "
                                f"({type(exc).__name__})", kind="transient") from None
        if not response.is_success or not response.headers.get("Location"):
            if response.status_code < 400:
                raise ProviderError(f"YouTube started no upload session (HTTP "
                                    f"{response.status_code}, no Location)", kind="transient",
                                    status=response.status_code)
            raise self._error(response)
        # Used as returned; a relative Location is resolved against the request's URL.
        return (urljoin(str(response.request.url), response.headers["Location"]),
                response.headers.get(TRACE_HEADER))

    def _ask_session(self, session_uri: str, size: int, *,
                     final_chunk_sent: bool = False) -> httpx.Response:
        """`PUT <session> Content-Range: bytes */N`: the session's answer (5xx asked again).

        Returns a 308 or 200/201 response; raises _SessionGone on 404/410, ProviderError
        otherwise (transient when YouTube stays unreachable). Once the final chunk may have
        arrived (`final_chunk_sent`), a session that is gone or silent leaves the outcome
        unknown: a video may exist, so starting again could publish it twice.
        """
        try:
            return self._ask_session_once(session_uri, size)
        except _SessionGone:
            if final_chunk_sent:
                raise ProviderError("YouTube's upload session is gone after its final chunk was "
                                    "sent; whether the video exists is unknown",
                                    kind="unknown", code="sessionGone") from None
            raise
        except ProviderError as exc:
            if final_chunk_sent and exc.kind == "transient":
                raise ProviderError(f"{exc} after the final chunk was sent; whether the video "
                                    "exists is unknown", kind="unknown", code=exc.code,
                                    trace_id=exc.trace_id, status=exc.status) from None
            raise

    def _ask_session_once(self, session_uri: str, size: int) -> httpx.Response:
        retries = int(self.settings["YOUTUBE_UPLOAD_RETRIES"])
        last, trace_id = "no answer", None
        for attempt in range(retries + 1):
            if attempt:
                self._backoff(attempt - 1)
            try:
                response = self.http.put(
                    session_uri, content=b"",
                    headers=self._headers({"Content-Range": f"bytes */{size}",
                                           "Content-Length": "0"}),
                    timeout=self.timeout, follow_redirects=False,  # 308 is Resume Incomplete
                )
            except httpx.TransportError as exc:
                last = type(exc).__name__
                continue
            if response.status_code in (308, 200, 201):
                return response
            if response.status_code in (404, 410):
                raise _SessionGone()
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                trace_id = response.headers.get(TRACE_HEADER) or trace_id
                continue
            raise self._error(response)
        raise ProviderError(f"YouTube's upload session did not answer ({last})",
                            kind="transient", trace_id=trace_id)

    def _video_from(self, response: httpx.Response) -> str:
        body = _json(response)
        video_id = body.get("id") if isinstance(body, dict) else None
        if not video_id:
            # The upload completed but the answer is unreadable: the video may exist.
            raise ProviderError("YouTube completed the upload but sent no video id",
                                kind="unknown", status=response.status_code,
                                trace_id=response.headers.get(TRACE_HEADER))
        return str(video_id)

    # -- steps ----------------------------------------------------------------------------

    def prepare(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Nothing to ask YouTube first: the project's upload quota is counted locally."""
        return StepResult(state=state, next_step="upload")

    def upload_video(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Send the bytes through a resumable session, resuming a saved one where it stands."""
        if state.get("video_id"):
            return StepResult(state=state, next_step="processing",
                              details={"video_id": state["video_id"]})

        def save(patch: dict[str, Any]) -> None:
            checkpoint(patch)
            state.update(patch)

        size = job.media.size
        if size <= 0:
            raise ProviderError("the clip's file is empty", kind="permanent")
        offset = None
        restarts = 0
        if state.get("session_uri"):
            try:
                answer = self._ask_session(state["session_uri"], int(state.get("size") or size),
                                           final_chunk_sent=bool(state.get("final_chunk_sent")))
            except _SessionGone:
                answer = None
            if answer is not None and answer.status_code in (200, 201):
                return self._uploaded(self._video_from(answer), answer, state, save)
            if answer is not None and int(state.get("size") or size) == size:
                offset = _acknowledged(answer)
                save({"offset": offset})
            else:
                restarts = 1  # a dead (or mismatched) saved session counts as the one restart
        no_progress = 0
        while True:
            if offset is None:
                session_uri, trace_id = self._create_session(job, size)
                save({"session_uri": session_uri, "size": size, "offset": 0,
                      "final_chunk_sent": False, "upload_trace_id": trace_id})
                offset = 0
            try:
                if offset < size:
                    response = self._send_from(job, state, offset, size, save)
                else:  # every byte is in but no video was named yet: ask for it
                    response = self._ask_session(state["session_uri"], size, final_chunk_sent=True)
            except _SessionGone:
                if restarts >= 1:
                    raise ProviderError.from_rule(SESSION_GONE, "YouTube: the upload session "
                                                  "is gone", code="sessionGone") from None
                restarts += 1
                offset = None
                continue
            if response.status_code in (200, 201):
                return self._uploaded(self._video_from(response), response, state, save)
            # 308: the server's Range says where to go on.
            acknowledged = _acknowledged(response)
            no_progress = 0 if acknowledged > offset else no_progress + 1
            if no_progress > int(self.settings["YOUTUBE_UPLOAD_RETRIES"]):
                # Once the final chunk went out, only the session can say whether it completed.
                kind: LiveErrorKind = "unknown" if state.get("final_chunk_sent") else "transient"
                raise ProviderError("YouTube's upload makes no progress", kind=kind,
                                    trace_id=response.headers.get(TRACE_HEADER))
            offset = acknowledged
            save({"offset": offset})

    def _send_from(self, job: LiveJob, state: dict, offset: int, size: int, save) -> httpx.Response:
        """Send one chunk from `offset`; a 308 or 200/201 answer (an interruption is asked about).

        A lost connection or a 5xx is followed by asking the session, whose answer stands in for
        the chunk's. Raises _SessionGone on 404/410 and ProviderError on other refusals.
        """
        length = min(self.chunk_bytes, size - offset)
        final = offset + length == size
        if final and not state.get("final_chunk_sent"):
            save({"final_chunk_sent": True})
        try:
            response = self.http.put(
                state["session_uri"],
                content=job.media.read_range(offset, length),
                headers=self._headers({
                    "Content-Length": str(length),
                    "Content-Range": f"bytes {offset}-{offset + length - 1}/{size}",
                    "Content-Type": job.media.content_type or "video/*",
                }),
                timeout=self.timeout, follow_redirects=False,  # 308 is Resume Incomplete
            )
        except httpx.TransportError:
            response = None
        if response is not None:
            if response.status_code in (308, 200, 201):
                return response
            if response.status_code in (404, 410):
                raise _SessionGone()  # refused: this chunk completed nothing
            if response.status_code < 500:
                raise self._error(response)
        # Interrupted: the last chunk may have completed the video, only the session can tell.
        return self._ask_session(state["session_uri"], size, final_chunk_sent=final)

    def _uploaded(self, video_id: str, response: httpx.Response, state: dict,
                  save) -> StepResult:
        trace_id = response.headers.get(TRACE_HEADER) or state.get("upload_trace_id")
        save({"video_id": video_id, "offset": state.get("size"), "processing_polls": 0})
        return StepResult(state=state, next_step="processing", trace_id=trace_id,
                          details={"video_id": video_id, "bytes": state.get("size"),
                                   "upload_id": trace_id})

    def wait_for_processing(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Poll the video's processing once; bounded, since the video is already published.

        `rejected`/`failed`/`deleted` end the attempt as a permanent failure with YouTube's
        reason; `processed` (or the bound reached) goes on to confirm. A poll YouTube cannot
        answer counts as a poll: it never fails a video that exists.
        """
        video_id = state["video_id"]
        polls = int(state.get("processing_polls") or 0) + 1
        state["processing_polls"] = polls
        details: dict[str, Any] = {"video_id": video_id, "poll": polls}
        video = None
        try:
            response = self.http.get(
                f"{self.api_url}{VIDEOS_PATH}?part=status,processingDetails&id={quote(video_id)}",
                headers=self._headers(), timeout=self.timeout,
            )
            if response.status_code == 200:
                items = (_json(response) or {}).get("items") or []
                video = items[0] if items else None
            else:
                error = self._error(response)
                details["poll_error"] = error.code
        except httpx.TransportError as exc:
            details["poll_error"] = type(exc).__name__
        status = (video or {}).get("status") or {}
        processing = ((video or {}).get("processingDetails") or {}).get("processingStatus")
        upload_status = status.get("uploadStatus")
        details.update(upload_status=upload_status, processing_status=processing)
        if upload_status in ("rejected", "failed", "deleted"):
            reason = (status.get("rejectionReason") or status.get("failureReason")
                      or upload_status)
            details["reason"] = reason
            outcome = PlatformOutcome(False, external_post_id=video_id,
                                      error_message=f"YouTube {upload_status} the video: {reason}",
                                      error_kind="permanent")
            return StepResult(state=state, next_step=None, outcome=outcome, details=details)
        done = upload_status == "processed" or processing in ("succeeded",)
        if not done and polls < int(self.settings["YOUTUBE_PROCESSING_MAX_POLLS"]):
            return StepResult(state=state, next_step="processing", details=details,
                              wait_seconds=float(self.settings["YOUTUBE_PROCESSING_POLL_SECONDS"]))
        details["processing_done"] = done
        return StepResult(state=state, next_step="confirm", details=details)

    def publish_post(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """No such call on YouTube: videos.insert publishes as it uploads."""
        return StepResult(state=state, next_step="confirm")

    def confirm(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """The Short's id and URL (known since the upload completed)."""
        video_id = state["video_id"]
        outcome = PlatformOutcome(True, external_post_id=video_id,
                                  external_url=SHORTS_URL.format(video_id))
        return StepResult(state=state, next_step=None, outcome=outcome,
                          details={"video_id": video_id})

    def reconcile(self, job: LiveJob, state: dict) -> PlatformOutcome | None:
        """Ask the upload session: complete -> success; incomplete or gone -> not published."""
        if state.get("video_id"):
            return PlatformOutcome(True, external_post_id=state["video_id"],
                                   external_url=SHORTS_URL.format(state["video_id"]))
        if not state.get("session_uri"):
            return PlatformOutcome(False, error_kind="transient",
                                   error_message="no YouTube upload session was started: "
                                                 "nothing was published")
        size = int(state.get("size") or job.media.size)
        try:
            answer = self._ask_session(state["session_uri"], size,
                                       final_chunk_sent=bool(state.get("final_chunk_sent")))
        except _SessionGone:
            return PlatformOutcome(False, error_kind="transient",
                                   error_message="YouTube's upload session is gone before its "
                                                 "last byte: nothing was published")
        except ProviderError:
            return None  # unreachable, or gone after the final chunk: YouTube cannot tell
        if answer.status_code in (200, 201):
            try:
                video_id = self._video_from(answer)
            except ProviderError:
                return None
            return PlatformOutcome(True, external_post_id=video_id,
                                   external_url=SHORTS_URL.format(video_id))
        try:
            received = _acknowledged(answer)
        except ProviderError:
            return None
        return PlatformOutcome(False, error_kind="transient",
                               error_message=f"YouTube holds {received} of {size} bytes: the "
                                             "upload is incomplete and nothing was published")
