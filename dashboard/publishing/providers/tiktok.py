"""TikTok Content Posting API (Direct Post): the stub client, the live client and its error table.

Live mode (see base.py for the step interface) follows ../shared/platforms.md:

    prepare     POST /v2/post/publish/creator_info/query/   refuse early when TikTok would refuse
    upload      POST /v2/post/publish/video/init/           FILE_UPLOAD (chunks) or PULL_FROM_URL
                PUT <upload_url> per chunk, in order         Content-Range, 206 partial, 201 complete
    processing  POST /v2/post/publish/status/fetch/         PROCESSING_* -> poll again later
    finalize    (none: Direct Post has no publish call; the final chunk or the pull is the act)
    confirm     status/fetch until moderation gives `publicaly_available_post_id` (TikTok's spelling)

Choices a manager relies on (the brief left them open):
- Privacy level: TikTok's guidelines forbid a default. The post's `privacy_level` option is used;
  without it, `TIKTOK_DEFAULT_PRIVACY_LEVEL` is used only when an admin set it; otherwise the
  attempt is refused (permanent) with a message naming the creator's options.
- Comments, duets and stitches the creator has switched off in TikTok stay off whatever the post's
  options say (creator_info's `*_disabled`), as TikTok's guidelines require.
- PUBLISH_COMPLETE without a post id yet (moderation): keep polling with backoff for up to
  `TIKTOK_MODERATION_WAIT_SECONDS`, then end as a success with no id and no URL; the step's
  details say `moderation: pending` and carry the publish id. TikTok has posted the video by then,
  so calling it a failure would invite a second, duplicate post.
- SEND_TO_USER_INBOX: the video waits in the creator's TikTok inbox; a success without an id,
  and the details say so.
- Polls that hit a transient error (429, internal_error, 5xx, a timeout) do not fail the attempt:
  the step asks to be run again later. After the upload, any other error while asking for the
  status is `unknown` (the post may be live: reconcile), never `permanent`.
- Processing longer than `TIKTOK_POLL_MAX_SECONDS` ends the step as `unknown` (reconcile later).
- An upload URL that expired before the last chunk (a resume hours later) raises a transient
  error with `restart=True`: TikTok refused the chunk, nothing was posted, the attempt starts
  again with a fresh init.
- reconcile(): PUBLISH_COMPLETE / SEND_TO_USER_INBOX -> success; FAILED, or a file upload TikTok
  holds only part of -> safely not published; still processing -> raises ProviderError
  kind="unknown" with `retry_after` (ask again later; the pipeline may equally resume the
  `processing` step, whose state it has); TikTok refusing the question -> None (cannot tell).

Resuming: the state holds `publish_id`, `upload_url`, the chunk plan and the acknowledged
`uploaded_bytes`, checkpointed as they happen. A re-run with a publish id never inits again: it
asks status/fetch how many bytes TikTok holds and continues from there. The final chunk is marked
(`final_chunk_sent`) before it is sent; it is sent again only when TikTok's own count shows it
never arrived. A PULL_FROM_URL init is marked (`init_sent`) before it is sent: its lost answer
is `unknown`, and it is never sent twice.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from ..outcome import ErrorKind, PlatformOutcome
from .base import Checkpoint, ErrorRule, LiveClient, LiveJob, ProviderError, StepResult
from .stub import PostRef, ProviderClient, _digits

# httpx logs every request line at INFO; upload URLs carry TikTok's upload token.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

MIB = 1024 * 1024

# TikTok's chunk rules (Media Transfer Guide) say "MB" without saying which: the client keeps to
# the stricter of both readings (at least 5 MiB, at most 64,000,000 bytes; the last chunk then
# stays under 128,000,000), so that a platform reading either accepts every plan it makes.
CHUNK_MIN_BYTES = 5 * MIB
CHUNK_MAX_BYTES = 64 * 1000 * 1000
CHUNK_COUNT_MAX = 1000

FILE_UPLOAD = "FILE_UPLOAD"
PULL_FROM_URL = "PULL_FROM_URL"

PROCESSING_STATUSES = ("PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD")
PUBLISH_COMPLETE = "PUBLISH_COMPLETE"
SEND_TO_USER_INBOX = "SEND_TO_USER_INBOX"
FAILED = "FAILED"

# One table: TikTok's `error.code` (and the transport failures around a call) -> what to do.
ERROR_TABLE: dict[str, ErrorRule] = {
    "access_token_invalid": ErrorRule("auth", "the access token is invalid or expired"),
    "scope_not_authorized": ErrorRule("auth", "the token lacks the video.publish scope: reconnect"),
    "scope_permission_missed": ErrorRule("auth", "the token lacks a needed scope: reconnect"),
    "rate_limit_exceeded": ErrorRule("transient", "too many requests for this token"),
    "spam_risk_too_many_posts": ErrorRule("transient", "the creator's daily post limit is reached"),
    "spam_risk_too_many_pending_share": ErrorRule("transient",
                                                  "too many of the creator's posts are pending"),
    "spam_risk_user_banned_from_posting": ErrorRule("permanent",
                                                    "the creator is banned from posting"),
    "unaudited_client_can_only_post_to_private_accounts": ErrorRule(
        "permanent", "an unaudited app may only post privately (SELF_ONLY)"),
    "privacy_level_option_mismatch": ErrorRule("permanent",
                                               "the privacy level is not one the creator offers"),
    "invalid_params": ErrorRule("permanent", "TikTok refused the request's parameters"),
    "invalid_file_upload": ErrorRule("permanent", "the file does not meet TikTok's rules"),
    "url_ownership_unverified": ErrorRule("permanent",
                                          "the video URL's domain is not verified for this app"),
    "internal_error": ErrorRule("transient", "TikTok had an internal error"),
    # The upload URL answered 403/404/410 without an error struct: it expired (TikTok keeps it
    # an hour) or is gone. The chunk was refused, so nothing was posted: start again.
    "upload_url_gone": ErrorRule("transient", "the upload URL has expired", restart=True),
    # No error struct in the answer: judged by the HTTP status.
    "http_401": ErrorRule("auth", "TikTok refused the token"),
    "http_429": ErrorRule("transient", "too many requests"),
    "http_5xx": ErrorRule("transient", "TikTok is unavailable"),
    # The request failed in transit. Before any effect (or for a read) nothing happened; after
    # the call that posts (the final chunk, a PULL_FROM_URL init) TikTok may have it.
    "transport": ErrorRule("transient", "TikTok could not be reached or did not answer"),
    "transport_after_effect": ErrorRule("unknown",
                                        "TikTok did not answer the call that posts the video"),
}
UNKNOWN_CODE_RULE = ErrorRule("permanent", "TikTok refused the request")

# Words for status/fetch's `fail_reason` (FAILED: nothing was posted).
FAIL_REASONS: dict[str, str] = {
    "file_format_check_failed": "TikTok could not read the video's format (MP4, WebM or MOV)",
    "duration_check_failed": "the video's duration is outside what TikTok accepts for this creator",
    "frame_rate_check_failed": "the video's frame rate is outside 23-60 fps",
    "picture_size_check_failed": "the video's picture size is outside 360-4096 pixels a side",
    "video_pull_failed": "TikTok could not download the video from its URL",
}


@dataclass(frozen=True)
class ChunkPlan:
    """How a FILE_UPLOAD is cut: `total_chunk_count` chunks of `chunk_size`, the remainder joining
    the last chunk."""

    video_size: int
    chunk_size: int
    total_chunk_count: int

    def byte_range(self, index: int) -> tuple[int, int]:
        """The first and last byte (inclusive) of chunk `index` (0-based)."""
        first = index * self.chunk_size
        last = self.video_size - 1 if index == self.total_chunk_count - 1 \
            else first + self.chunk_size - 1
        return first, last

    def chunk_index(self, offset: int) -> int:
        """The chunk that starts at or holds byte `offset` (chunks are acknowledged whole)."""
        return min(offset // self.chunk_size, self.total_chunk_count - 1)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def plan_chunks(video_size: int, chunk_bytes: int) -> ChunkPlan:
    """Cut a file by TikTok's rules, with chunks of `chunk_bytes` (5 MiB-64 MB) where possible.

    A file no larger than one chunk goes whole (`chunk_size = video_size`, one chunk), which is
    what TikTok requires under 5 MB; larger files use `floor(video_size / chunk_size)` chunks, the
    remainder joining the last (so it stays under 128 MB); past 1000 chunks the chunk grows, and
    a file over 64 MB is always cut in two or more.
    """
    if video_size <= 0:
        raise ValueError("the video file is empty")
    if not CHUNK_MIN_BYTES <= chunk_bytes <= CHUNK_MAX_BYTES:
        raise ValueError(f"the chunk size must be {CHUNK_MIN_BYTES}-{CHUNK_MAX_BYTES} bytes")
    if video_size <= chunk_bytes:
        return ChunkPlan(video_size, video_size, 1)
    chunk_size = max(chunk_bytes, math.ceil(video_size / CHUNK_COUNT_MAX))
    if chunk_size > CHUNK_MAX_BYTES:
        raise ValueError("the video is larger than TikTok accepts (1000 chunks of 64 MB)")
    if video_size > CHUNK_MAX_BYTES and video_size // chunk_size < 2:
        chunk_size = video_size // 2  # over 64 MB must be several chunks, never one
    return ChunkPlan(video_size, chunk_size, video_size // chunk_size)


def utf16_units(text: str) -> int:
    """The length TikTok counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class TikTokContentClient(ProviderClient):
    """TikTok Content Posting API, Direct Post."""

    platform = "tiktok"
    name = "tiktok_content_posting"

    def upload_video_stub(self, file_path: str, **kw) -> str:
        return f"v_pub_file~v2-1.{_digits(19)}"  # the publish_id

    def publish_post_stub(self, video_id: str, **kw) -> PostRef:
        post_id = "7" + _digits(18)
        username = (kw.get("account_handle") or "creator").lstrip("@")
        return PostRef(post_id, f"https://www.tiktok.com/@{username}/video/{post_id}")


class TikTokLiveClient(LiveClient):
    """TikTok Direct Post over HTTP, as resumable steps (see the module docstring).

    Settings read: TIKTOK_API_URL, PROVIDER_HTTP_TIMEOUT, TIKTOK_CHUNK_BYTES,
    TIKTOK_POLL_INTERVAL_SECONDS, TIKTOK_POLL_MAX_INTERVAL_SECONDS, TIKTOK_POLL_MAX_SECONDS,
    TIKTOK_MODERATION_WAIT_SECONDS, TIKTOK_DEFAULT_PRIVACY_LEVEL, PLATFORM_LIMITS.
    """

    platform = "tiktok"
    name = "tiktok_content_posting"

    def __init__(self, credentials: Mapping[str, str], settings: Mapping[str, Any],
                 http: httpx.Client):
        super().__init__(credentials, settings, http)
        self.clock = time.time  # wall-clock seconds; saved deadlines survive a worker restart

    # ---- steps -------------------------------------------------------------------------------

    def prepare(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Ask creator_info; refuse what TikTok would refuse (duration, privacy level, caption)."""
        data, trace_id = self._post("/v2/post/publish/creator_info/query/", None)
        options = list(data.get("privacy_level_options") or [])
        max_duration = data.get("max_video_post_duration_sec")
        username = data.get("creator_username")
        nickname = data.get("creator_nickname")

        def refuse(message: str, code: str) -> ProviderError:
            return ProviderError(message, kind="permanent", code=code, trace_id=trace_id)

        if not options:
            raise refuse(f"TikTok says {nickname or 'this creator'} cannot post right now "
                         "(no privacy level is offered)", "creator_cannot_post")
        if (job.duration_seconds is not None and max_duration is not None
                and job.duration_seconds > max_duration):
            raise refuse(f"The clip lasts {job.duration_seconds:g} s; {nickname or 'this creator'}"
                         f" may post at most {max_duration} s on TikTok", "duration_too_long")
        privacy_level = job.options.get("privacy_level") or \
            self.settings.get("TIKTOK_DEFAULT_PRIVACY_LEVEL") or None
        if privacy_level is None:
            raise refuse("Choose a TikTok privacy level for this post: one of "
                         + ", ".join(options), "privacy_level_missing")
        if privacy_level not in options:
            raise refuse(f"TikTok does not offer the privacy level {privacy_level} to "
                         f"{nickname or 'this creator'}: choose one of " + ", ".join(options),
                         "privacy_level_option_mismatch")
        caption_max = self.settings["PLATFORM_LIMITS"]["tiktok"]["caption_max_chars"]
        if utf16_units(job.caption) > caption_max:
            raise refuse(f"The caption is longer than TikTok's {caption_max} characters "
                         "(UTF-16 units)", "caption_too_long")

        state.update({
            "creator_username": username,
            "creator_nickname": nickname,
            "privacy_level": privacy_level,
            "disable_comment": bool(job.options.get("disable_comment")
                                    or data.get("comment_disabled")),
            "disable_duet": bool(job.options.get("disable_duet") or data.get("duet_disabled")),
            "disable_stitch": bool(job.options.get("disable_stitch")
                                   or data.get("stitch_disabled")),
        })
        return StepResult(state, "upload", trace_id=trace_id, details={
            "creator_username": username, "creator_nickname": nickname,
            "privacy_level": privacy_level, "max_video_post_duration_sec": max_duration})

    def upload_video(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Init once (publish id checkpointed at once), then send the chunks, resuming from
        TikTok's own count of received bytes on a re-run."""
        trace_id = None
        if state.get("publish_id"):
            posted_maybe = state["source"] == PULL_FROM_URL or bool(state.get("final_chunk_sent"))
            status, trace_id = self._status(state, after_effect=posted_maybe)
            if status.get("status") == FAILED:
                return self._failed(state, status, trace_id)
            received = self._tiktok_count(state, status)
            if received is None and status.get("status") == "PROCESSING_UPLOAD" \
                    and not state.get("final_chunk_sent"):
                received = state.get("uploaded_bytes", 0)  # TikTok did not say: our own count
            plan = ChunkPlan(**state["chunk_plan"]) if state["source"] == FILE_UPLOAD else None
            if plan is None or received is None or received >= plan.video_size:
                return self._to_processing(state, trace_id, wait=False)
            # Chunks are acknowledged whole: resume at the chunk holding TikTok's count.
            start = plan.chunk_index(received)
        else:
            if state.get("init_sent") and state.get("source") == PULL_FROM_URL:
                raise ProviderError.from_rule(
                    ERROR_TABLE["transport_after_effect"],
                    "TikTok may have received the pull request (its answer was lost): "
                    "reconcile before trying again", code="transport_after_effect")
            trace_id = self._init(job, state, checkpoint)
            if state["source"] == PULL_FROM_URL:
                return self._to_processing(state, trace_id, wait=True)
            plan = ChunkPlan(**state["chunk_plan"])
            start = 0

        for index in range(start, plan.total_chunk_count):
            self._send_chunk(job, state, checkpoint, plan, index)
        return self._to_processing(state, trace_id, wait=True)

    def wait_for_processing(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Poll status/fetch once: still processing -> ask to be run later; done -> confirm."""
        polled = self._poll(state, "processing")
        if isinstance(polled, StepResult):
            return polled
        status, trace_id = polled
        name = status.get("status")
        if name == FAILED:
            return self._failed(state, status, trace_id)
        if name in (PUBLISH_COMPLETE, SEND_TO_USER_INBOX):
            state["tiktok_status"] = name
            return StepResult(state, "confirm", trace_id=trace_id,
                              details={"publish_id": state["publish_id"], "status": name})
        if self._upload_incomplete(state, status) and \
                state.get("uploaded_bytes", 0) < state["chunk_plan"]["video_size"]:
            # TikTok holds part of the file only: the upload step resumes from its count.
            return StepResult(state, "upload", trace_id=trace_id,
                              details={"publish_id": state["publish_id"], "status": name,
                                       "uploaded_bytes": status.get("uploaded_bytes")})
        since = state.setdefault("processing_since", self.clock())
        if self.clock() - since >= self.settings["TIKTOK_POLL_MAX_SECONDS"]:
            raise ProviderError(
                f"TikTok was still processing the video after "
                f"{self.settings['TIKTOK_POLL_MAX_SECONDS']:g} s (status {name})",
                kind="unknown", code=name, trace_id=trace_id)
        return self._poll_later(state, "processing", trace_id,
                                {"publish_id": state["publish_id"], "status": name})

    def publish_post(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Direct Post has no publish call (the final chunk or the pull posts): go on to confirm."""
        return StepResult(state, "confirm", details={"publish_id": state.get("publish_id")})

    def confirm(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Wait (with backoff, up to TIKTOK_MODERATION_WAIT_SECONDS) for the public post id."""
        polled = self._poll(state, "confirm")
        if isinstance(polled, StepResult):
            return polled
        status, trace_id = polled
        name = status.get("status")
        details = {"publish_id": state["publish_id"], "status": name}
        if name == FAILED:
            return self._failed(state, status, trace_id)
        if name in PROCESSING_STATUSES:
            return StepResult(state, "processing", trace_id=trace_id, details=details)
        if name == SEND_TO_USER_INBOX:
            details["inbox"] = "the video waits in the creator's TikTok inbox to be posted there"
            return StepResult(state, None, trace_id=trace_id, details=details,
                              outcome=PlatformOutcome(True))
        post_id = self._post_id(status)
        if post_id:
            details["post_id"] = post_id
            return StepResult(state, None, trace_id=trace_id, details=details,
                              outcome=self._success(state, post_id))
        since = state.setdefault("moderation_since", self.clock())
        if self.clock() - since >= self.settings["TIKTOK_MODERATION_WAIT_SECONDS"]:
            details["moderation"] = "pending"
            return StepResult(state, None, trace_id=trace_id, details=details,
                              outcome=PlatformOutcome(True))
        return self._poll_later(state, "confirm", trace_id, details)

    def reconcile(self, job: LiveJob, state: dict) -> PlatformOutcome | None:
        """Settle an unknown outcome from status/fetch (see the module docstring)."""
        if not state.get("publish_id"):
            if state.get("init_sent") and state.get("source") == PULL_FROM_URL:
                return None  # the pull may have started, and only its publish id could tell
            return PlatformOutcome(False, error_kind="transient", error_message=(
                "TikTok never gave this attempt a publish id: nothing was posted"))
        try:
            status, trace_id = self._status(state, after_effect=False)
        except ProviderError as exc:
            if exc.kind == "permanent":
                return None  # TikTok will not answer about this publish id
            raise
        name = status.get("status")
        if name == PUBLISH_COMPLETE:
            post_id = self._post_id(status)
            return self._success(state, post_id) if post_id else PlatformOutcome(True)
        if name == SEND_TO_USER_INBOX:
            return PlatformOutcome(True)
        if name == FAILED:
            return self._failed(state, status, trace_id).outcome
        if self._upload_incomplete(state, status):
            return PlatformOutcome(False, error_kind="transient", error_message=(
                f"TikTok received {status.get('uploaded_bytes') or 0} of "
                f"{state['chunk_plan']['video_size']} bytes: nothing was posted"))
        raise ProviderError("TikTok is still processing the video: ask again later",
                            kind="unknown", code=name, trace_id=trace_id,
                            retry_after=self.settings["TIKTOK_POLL_INTERVAL_SECONDS"])

    # ---- calls -------------------------------------------------------------------------------

    def _init(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> str | None:
        post_info: dict[str, Any] = {
            "title": job.caption,
            "privacy_level": state["privacy_level"],
            "disable_duet": state["disable_duet"],
            "disable_comment": state["disable_comment"],
            "disable_stitch": state["disable_stitch"],
            "brand_content_toggle": False,
            "brand_organic_toggle": False,
            "is_aigc": bool(job.options.get("is_aigc")),
        }
        if job.options.get("cover_offset_ms") is not None:
            post_info["video_cover_timestamp_ms"] = int(job.options["cover_offset_ms"])
        plan = None
        if job.media.public_url:
            source = PULL_FROM_URL
            source_info: dict[str, Any] = {"source": source, "video_url": job.media.public_url}
        else:
            source = FILE_UPLOAD
            try:
                plan = plan_chunks(job.media.size, self.settings["TIKTOK_CHUNK_BYTES"])
            except (ValueError, OSError) as exc:
                raise ProviderError(f"The clip's file cannot be sent to TikTok: {exc}",
                                    kind="permanent", code="file_unusable") from None
            source_info = {"source": source, "video_size": plan.video_size,
                           "chunk_size": plan.chunk_size,
                           "total_chunk_count": plan.total_chunk_count}
        state.update({"source": source, "init_sent": True})
        checkpoint({"source": source, "init_sent": True})
        data, trace_id = self._post("/v2/post/publish/video/init/",
                                    {"post_info": post_info, "source_info": source_info},
                                    posts=source == PULL_FROM_URL)
        if not data.get("publish_id") or (plan is not None and not data.get("upload_url")):
            raise ProviderError("TikTok's answer to video/init had no publish id or upload URL",
                                kind="unknown" if plan is None else "transient",
                                code="invalid_answer", trace_id=trace_id)
        patch: dict[str, Any] = {"publish_id": data["publish_id"]}
        if plan is not None:
            patch.update({"upload_url": data["upload_url"], "chunk_plan": plan.as_dict(),
                          "uploaded_bytes": 0, "final_chunk_sent": False})
        state.update(patch)
        checkpoint(patch)
        return trace_id

    def _send_chunk(self, job: LiveJob, state: dict, checkpoint: Checkpoint, plan: ChunkPlan,
                    index: int) -> None:
        first, last = plan.byte_range(index)
        final = index == plan.total_chunk_count - 1
        if final:
            state["final_chunk_sent"] = True
            checkpoint({"final_chunk_sent": True})
        length = last - first + 1
        headers = {
            "Content-Type": job.media.content_type or "video/mp4",
            "Content-Length": str(length),
            "Content-Range": f"bytes {first}-{last}/{plan.video_size}",
        }
        try:
            response = self.http.put(state["upload_url"], headers=headers,
                                     content=job.media.read_range(first, length),
                                     timeout=self.settings["PROVIDER_HTTP_TIMEOUT"])
        except httpx.TransportError as exc:
            raise self._transport_error(exc, posts=final) from None
        except OSError as exc:  # the file itself (gone, unreadable): nothing was sent
            raise ProviderError(f"The clip's file could not be read: {exc.strerror}",
                                kind="permanent", code="file_unusable") from None
        if response.status_code in (403, 404, 410) and not _json(response).get("error"):
            rule = ERROR_TABLE["upload_url_gone"]
            raise ProviderError.from_rule(rule, f"TikTok {rule.meaning} (HTTP "
                                          f"{response.status_code}): the upload starts again",
                                          code="upload_url_gone", status=response.status_code)
        if response.status_code not in (200, 201, 206):
            raise self._answer_error(response, posts=final)
        state["uploaded_bytes"] = last + 1
        checkpoint({"uploaded_bytes": last + 1})

    def _status(self, state: dict, *, after_effect: bool) -> tuple[dict, str | None]:
        return self._post("/v2/post/publish/status/fetch/", {"publish_id": state["publish_id"]},
                          posts=False, after_effect=after_effect)

    def _post(self, path: str, body: dict | None, *, posts: bool = False,
              after_effect: bool = False) -> tuple[dict, str | None]:
        """POST a JSON body (none for creator_info, as documented) and return (data, log_id).

        `posts`: this call itself may post the video (a lost answer is unknown). `after_effect`:
        the video may already be posted, so a refusal (other than auth or transient) is unknown.
        """
        url = self.settings["TIKTOK_API_URL"].rstrip("/") + path
        headers = {"Authorization": f"Bearer {self._credentials.get('access_token', '')}",
                   "Content-Type": "application/json; charset=UTF-8"}
        content = None if body is None else json.dumps(body).encode()
        try:
            response = self.http.post(url, headers=headers, content=content,
                                      timeout=self.settings["PROVIDER_HTTP_TIMEOUT"])
        except httpx.TransportError as exc:
            raise self._transport_error(exc, posts=posts) from None
        payload = _json(response)
        error = _error_object(payload)
        if response.status_code < 300 and error.get("code", "ok") == "ok":
            return payload.get("data") or {}, error.get("log_id")
        refusal = self._answer_error(response, posts=posts, payload=payload)
        if after_effect and refusal.kind == "permanent":
            refusal.kind = "unknown"
        raise refusal

    # ---- errors ------------------------------------------------------------------------------

    def _answer_error(self, response: httpx.Response, *, posts: bool,
                      payload: dict | None = None) -> ProviderError:
        payload = _json(response) if payload is None else payload
        error = _error_object(payload)
        code = error.get("code") if error.get("code") not in (None, "", "ok") else None
        status = response.status_code
        if code is not None:
            rule = ERROR_TABLE.get(code, UNKNOWN_CODE_RULE)
        elif status == 401:
            code, rule = "http_401", ERROR_TABLE["http_401"]
        elif status == 429:
            code, rule = "http_429", ERROR_TABLE["http_429"]
        elif status >= 500:
            code, rule = "http_5xx", ERROR_TABLE["http_5xx"]
        else:
            rule = UNKNOWN_CODE_RULE
        message = str(error.get("message") or "").strip() or f"{rule.meaning} (HTTP {status})"
        if posts and status >= 500 and rule.kind == "transient":
            # The answer to the posting call failed on TikTok's side: it may still have posted.
            rule = ERROR_TABLE["transport_after_effect"]
        return ProviderError.from_rule(rule, message, code=code, trace_id=error.get("log_id"),
                                       retry_after=_retry_after(response), status=status)

    @staticmethod
    def _transport_error(exc: httpx.TransportError, *, posts: bool) -> ProviderError:
        # A connection never made sent nothing; any other failure may have reached TikTok.
        nothing_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
        code = "transport_after_effect" if posts and not nothing_sent else "transport"
        rule = ERROR_TABLE[code]
        what = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed in transit"
        # Never str(exc): httpx's messages may carry the URL.
        return ProviderError.from_rule(rule, f"The call to TikTok {what}: {rule.meaning}",
                                       code=code)

    # ---- helpers -----------------------------------------------------------------------------

    def _poll(self, state: dict, step: str) -> tuple[dict, str | None] | StepResult:
        """status/fetch, or a StepResult asking to poll later when the question itself failed."""
        try:
            return self._status(state, after_effect=True)
        except ProviderError as exc:
            if exc.kind != "transient":
                raise
            return self._poll_later(state, step, exc.trace_id,
                                    {"publish_id": state["publish_id"], "poll_error": exc.code},
                                    at_least=exc.retry_after)

    def _poll_later(self, state: dict, step: str, trace_id: str | None, details: dict,
                    at_least: float | None = None) -> StepResult:
        polls = state.get(f"{step}_polls", 0)
        state[f"{step}_polls"] = polls + 1
        wait = min(self.settings["TIKTOK_POLL_INTERVAL_SECONDS"] * 2 ** polls,
                   self.settings["TIKTOK_POLL_MAX_INTERVAL_SECONDS"])
        return StepResult(state, step, wait_seconds=max(wait, at_least or 0), trace_id=trace_id,
                          details=details)

    def _to_processing(self, state: dict, trace_id: str | None, *, wait: bool) -> StepResult:
        details = {"publish_id": state["publish_id"], "source": state["source"]}
        if state["source"] == FILE_UPLOAD:
            details.update(uploaded_bytes=state.get("uploaded_bytes"),
                           total_chunk_count=state["chunk_plan"]["total_chunk_count"])
        return StepResult(state, "processing", trace_id=trace_id, details=details,
                          wait_seconds=self.settings["TIKTOK_POLL_INTERVAL_SECONDS"] if wait else 0)

    @staticmethod
    def _tiktok_count(state: dict, status: dict) -> int | None:
        """The bytes TikTok says it holds of a FILE_UPLOAD still uploading (None: not said)."""
        count = status.get("uploaded_bytes")
        if state.get("source") != FILE_UPLOAD or status.get("status") != "PROCESSING_UPLOAD" \
                or isinstance(count, bool) or not isinstance(count, int):
            return None
        return count

    def _upload_incomplete(self, state: dict, status: dict) -> bool:
        """TikTok says it holds only part of the file (so it cannot post it)."""
        count = self._tiktok_count(state, status)
        return count is not None and count < state["chunk_plan"]["video_size"]

    @staticmethod
    def _failed(state: dict, status: dict, trace_id: str | None) -> StepResult:
        reason = str(status.get("fail_reason") or "")
        rule = ERROR_TABLE.get(reason)
        kind: ErrorKind = "transient" if rule is not None and rule.kind == "transient" else "permanent"
        words = FAIL_REASONS.get(reason) or (rule.meaning if rule else None) \
            or "TikTok could not post the video"
        message = f"{words} ({reason})" if reason else words
        return StepResult(state, None, trace_id=trace_id,
                          details={"publish_id": state.get("publish_id"), "status": FAILED,
                                   "fail_reason": reason or None},
                          outcome=PlatformOutcome(False, error_message=message, error_kind=kind))

    @staticmethod
    def _post_id(status: dict) -> str | None:
        ids = status.get("publicaly_available_post_id") or []
        return str(ids[0]) if ids else None

    @staticmethod
    def _success(state: dict, post_id: str) -> PlatformOutcome:
        username = (state.get("creator_username") or "").lstrip("@")
        url = f"https://www.tiktok.com/@{username}/video/{post_id}" if username else None
        return PlatformOutcome(True, external_post_id=post_id, external_url=url)


def _json(response: httpx.Response) -> dict:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _error_object(payload: dict) -> dict:
    """The answer's `error` object ({} when it has none or it is not an object)."""
    error = payload.get("error")
    return error if isinstance(error, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
