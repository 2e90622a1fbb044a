"""Instagram Graph API (Reels through a media container).

Two clients: the stub client (PROVIDER_MODE=stub, the seed's pretend calls) and the live client
(PROVIDER_MODE=live), which speaks the Graph API as documented in shared/platforms.md:

    prepare     GET  {graph}/{ig-user-id}/content_publishing_limit?fields=config,quota_usage
    upload      POST {graph}/{ig-user-id}/media  (media_type=REELS, by video_url, or
                upload_type=resumable then POST <uri> with the bytes, `offset`, `file_size`)
    processing  GET  {graph}/{container-id}?fields=status_code,status  (once per step)
    finalize    POST {graph}/{ig-user-id}/media_publish  (creation_id; sent at most once)
    confirm     GET  {graph}/{media-id}?fields=permalink,shortcode  (best effort)

The access token travels as the Graph API's `access_token` parameter: in the form body of POSTs
and in the query string of GETs, so URLs carry it. That is why the `httpx` logger gets a filter
that redacts it, and why no error message here is ever built from a URL or an httpx exception:
messages are the platform's own `error.message`, or our words.

Errors are classified by one table, `ERROR_TABLE` (code/subcode -> kind, meaning, restart), read
by `classify_graph_error`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import httpx

from ..outcome import PlatformOutcome
from .base import Checkpoint, ErrorRule, LiveClient, LiveJob, ProviderError, StepResult
from .stub import PostRef, ProviderClient, _digits


class InstagramGraphClient(ProviderClient):
    """Instagram Graph API: a REELS media container, then media_publish."""

    platform = "instagram"
    name = "instagram_graph"

    def upload_video_stub(self, file_path: str, **kw) -> str:
        return _digits(17)  # the container (creation) id

    def publish_post_stub(self, video_id: str, **kw) -> PostRef:
        media_id = "17" + _digits(16)
        shortcode = uuid.uuid4().hex[:11]
        return PostRef(media_id, f"https://www.instagram.com/reel/{shortcode}/")


# --- the error table -------------------------------------------------------------------------

# (code, subcode) -> rule. A subcode of None matches the code with any subcode not listed; a code
# of None matches the subcode under any code. Rows from shared/platforms.md (December 2026).
ERROR_TABLE: dict[tuple[int | None, int | None], ErrorRule] = {
    (190, None): ErrorRule("auth", "access token invalid or expired"),
    (190, 458): ErrorRule("auth", "the app is not authorised by the user"),
    (190, 459): ErrorRule("auth", "the user is checkpointed"),
    (190, 460): ErrorRule("auth", "the password changed: the session is invalid"),
    (190, 463): ErrorRule("auth", "the access token has expired"),
    (190, 467): ErrorRule("auth", "the access token is invalid"),
    (4, None): ErrorRule("transient", "application request limit reached"),
    (17, None): ErrorRule("transient", "user request limit reached"),
    (32, None): ErrorRule("transient", "page request limit reached"),
    (613, None): ErrorRule("transient", "calls within one hour exceeded"),
    (9, 2207042): ErrorRule("transient", "daily publishing limit reached (wait for the window)"),
    (-2, 2207003): ErrorRule("transient", "the media download timed out"),
    (-2, 2207020): ErrorRule("transient", "the media expired: make a new container", restart=True),
    (-1, 2207001): ErrorRule("transient", "Instagram server error"),
    (-1, 2207032): ErrorRule("transient", "container creation failed"),
    (-1, 2207053): ErrorRule("transient", "unknown upload error: make a new container",
                             restart=True),
    (1, 2207057): ErrorRule("permanent", "the thumbnail offset is invalid"),
    (4, 2207051): ErrorRule("permanent", "the post was flagged as spam"),
    (9004, 2207052): ErrorRule("permanent", "the media could not be fetched from its URL"),
    (None, 2207026): ErrorRule("permanent", "unsupported video format"),
    (None, 2207082): ErrorRule("permanent", "media processing failed"),
    (None, 2207085): ErrorRule("permanent", "media processing failed"),
    (2, None): ErrorRule("transient", "service temporarily unavailable"),
}
IS_TRANSIENT_RULE = ErrorRule("transient", "the platform says the error is transient")
SERVER_ERROR_RULE = ErrorRule("transient", "Instagram answered with a server error")
UNLISTED_RULE = ErrorRule("permanent", "an error the table does not list")

QUOTA_CODE = "9/2207042"


def classify_graph_error(code: int | None, subcode: int | None, *, is_transient: bool = False,
                         http_status: int | None = None) -> ErrorRule:
    """The table's rule for a Graph API error.

    Precedence: the exact (code, subcode) row, then the subcode under any code, then the code
    with any subcode, then the platform's own `is_transient`, then a 5xx status; anything else
    is permanent (a person must look at it).
    """
    keys = [(code, subcode), (None, subcode)] if subcode is not None else []
    for key in (*keys, (code, None)):
        if key in ERROR_TABLE:
            return ERROR_TABLE[key]
    if is_transient:
        return IS_TRANSIENT_RULE
    if http_status is not None and http_status >= 500:
        return SERVER_ERROR_RULE
    return UNLISTED_RULE


# --- keeping the token out of logs -----------------------------------------------------------

_TOKEN_IN_TEXT = re.compile(r"(access_token=)[^&\s'\"]+")


class RedactAccessToken(logging.Filter):
    """Replaces `access_token=<value>` in a log record's text (httpx logs every request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "access_token=" in text:
            record.msg = _TOKEN_IN_TEXT.sub(r"\1[redacted]", text)
            record.args = ()
        return True


def _install_log_redaction() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactAccessToken) for f in logger.filters):
            logger.addFilter(RedactAccessToken())


_install_log_redaction()


# --- the live client -------------------------------------------------------------------------

class InstagramLiveClient(LiveClient):
    """Reels through the Graph API's media container, as resumable steps (see base.py).

    State it keeps between steps (all platform ids, no secret): `container_id`, `upload_uri`,
    `upload_offset` (bytes the upload endpoint acknowledged), `file_size`, `polls`,
    `processing_since`, `publish_sent` (set before media_publish is sent), `media_id`.
    """

    platform = "instagram"
    name = "instagram_graph"

    # --- settings and plumbing ---

    @property
    def _graph(self) -> str:
        return str(self.settings["INSTAGRAM_GRAPH_URL"]).rstrip("/")

    @property
    def _token(self) -> str:
        return self._credentials["access_token"]

    @property
    def _user_id(self) -> str:
        return self._credentials["instagram_account_id"]

    def _redact(self, text: str) -> str:
        token = self._credentials.get("access_token")
        return text.replace(token, "[redacted]") if token else text

    def _request(self, method: str, url: str, *, irreversible: bool = False,
                 **kw) -> tuple[dict[str, Any], str | None]:
        """Send one call; the JSON answer and its trace id, or a classified ProviderError.

        `irreversible`: the call may have taken effect even when no answer arrives (media_publish);
        a lost or unreadable answer is then `unknown`, never retried blindly.
        """
        try:
            response = self.http.request(method, url, **kw)
        except httpx.RequestError as exc:
            # Our words, not str(exc), and no chained exception: httpx errors carry the URL.
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection lost"
            # No connection was made: the request never left, whatever it was.
            never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            raise ProviderError(
                f"No answer from Instagram ({what})",
                kind="unknown" if irreversible and not never_sent else "transient",
                code=type(exc).__name__,
            ) from None
        trace_id = response.headers.get("x-fb-trace-id")
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            raise self._graph_error(body["error"], response, trace_id)
        if response.status_code >= 400 or not isinstance(body, dict):
            rule = SERVER_ERROR_RULE if response.status_code >= 500 else UNLISTED_RULE
            kind = "unknown" if irreversible else rule.kind
            raise ProviderError(
                f"Instagram answered HTTP {response.status_code} without an error body",
                kind=kind, code=f"HTTP {response.status_code}", trace_id=trace_id,
                status=response.status_code, retry_after=_retry_after(response),
            )
        return body, trace_id

    def _graph_error(self, error: dict[str, Any], response: httpx.Response,
                     trace_id: str | None) -> ProviderError:
        code = _as_int(error.get("code"))
        subcode = _as_int(error.get("error_subcode"))
        rule = classify_graph_error(code, subcode, is_transient=error.get("is_transient") is True,
                                    http_status=response.status_code)
        label = f"{code}/{subcode}" if subcode is not None else str(code)
        message = self._redact(str(error.get("message") or rule.meaning))
        retry_after = _retry_after(response)
        if label == QUOTA_CODE and retry_after is None:
            retry_after = float(self.settings["INSTAGRAM_QUOTA_RECHECK_SECONDS"])
        return ProviderError.from_rule(
            rule, message, code=label, trace_id=error.get("fbtrace_id") or trace_id,
            retry_after=retry_after, status=response.status_code,
        )

    def _get(self, node: str, fields: str) -> tuple[dict[str, Any], str | None]:
        return self._request("GET", f"{self._graph}/{node}",
                             params={"fields": fields, "access_token": self._token})

    def _post(self, edge: str, form: dict[str, str], *,
              irreversible: bool = False) -> tuple[dict[str, Any], str | None]:
        return self._request("POST", f"{self._graph}/{self._user_id}/{edge}",
                             data={**form, "access_token": self._token}, irreversible=irreversible)

    def _container_status(self, container_id: str) -> tuple[str, str, str | None]:
        body, trace_id = self._get(container_id, "status_code,status")
        return str(body.get("status_code") or ""), str(body.get("status") or ""), trace_id

    # --- the steps ---

    def prepare(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Read content_publishing_limit; refuse (transient, until the window frees) when used up."""
        body, trace_id = self._get(f"{self._user_id}/content_publishing_limit",
                                   "config,quota_usage")
        entry = (body.get("data") or [{}])[0]
        usage = _as_int(entry.get("quota_usage")) or 0
        config = entry.get("config") or {}
        total = _as_int(config.get("quota_total"))
        duration = _as_int(config.get("quota_duration"))
        details = {"quota_usage": usage, "quota_total": total, "quota_duration": duration}
        if total is not None and usage >= total:
            recheck = float(self.settings["INSTAGRAM_QUOTA_RECHECK_SECONDS"])
            raise ProviderError(
                f"Instagram publishing limit reached: {usage} of {total} posts in the window",
                kind="transient", code=QUOTA_CODE, trace_id=trace_id,
                retry_after=min(recheck, float(duration)) if duration else recheck,
            )
        return StepResult(state=state, next_step="upload", details=details, trace_id=trace_id)

    def upload_video(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Create the REELS container (once), then send the bytes when there is no public URL."""
        container_id = state.get("container_id")
        trace_id = None
        if container_id is None:
            container_id, trace_id = self._create_container(job, state, checkpoint)
        elif state.get("upload_uri") and state.get("upload_offset", 0) < state.get("file_size", 0):
            # A re-run: the container exists. Its status says whether the bytes still matter.
            status_code, status, trace_id = self._container_status(container_id)
            if status_code not in ("IN_PROGRESS", ""):
                return StepResult(state=state, next_step="processing", trace_id=trace_id,
                                  details={"container_id": container_id,
                                           "status_code": status_code})
        if state.get("upload_uri"):
            trace_id = self._send_bytes(job, state, checkpoint) or trace_id
        details = {"container_id": container_id,
                   "by": "resumable" if state.get("upload_uri") else "video_url"}
        if state.get("upload_uri"):
            details["bytes"] = state["upload_offset"]
        return StepResult(state=state, next_step="processing", details=details, trace_id=trace_id)

    def _create_container(self, job: LiveJob, state: dict,
                          checkpoint: Checkpoint) -> tuple[str, str | None]:
        form = {"media_type": "REELS", "caption": job.caption,
                "share_to_feed": "true" if job.options.get("share_to_feed", True) else "false"}
        if job.options.get("cover_url"):
            form["cover_url"] = str(job.options["cover_url"])
        elif job.options.get("cover_offset_ms") is not None:
            try:
                form["thumb_offset"] = str(int(job.options["cover_offset_ms"]))
            except (TypeError, ValueError):
                raise ProviderError("The cover offset must be a whole number of milliseconds",
                                    kind="permanent", code="cover_offset_ms") from None
        if job.media.public_url:
            form["video_url"] = job.media.public_url
        elif job.media.path is None:
            raise ProviderError("The clip has neither a public URL nor a file to upload",
                                kind="permanent", code="no_media")
        else:
            form["upload_type"] = "resumable"
        body, trace_id = self._post("media", form)
        container_id = str(body["id"])
        state["container_id"] = container_id
        patch: dict[str, Any] = {"container_id": container_id}
        if not job.media.public_url:
            state.update(upload_uri=str(body["uri"]), upload_offset=0, file_size=job.media.size)
            patch.update(upload_uri=state["upload_uri"], upload_offset=0,
                         file_size=state["file_size"])
        checkpoint(patch)  # before any byte is sent: a re-run must find this container
        return container_id, trace_id

    def _send_bytes(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> str | None:
        """POST the file to the container's `uri` from the acknowledged offset, chunk by chunk."""
        size = int(state["file_size"])
        chunk = max(1, int(self.settings["INSTAGRAM_UPLOAD_CHUNK_BYTES"]))
        trace_id = None
        offset = int(state.get("upload_offset", 0))
        while offset < size:
            length = min(chunk, size - offset)
            _, trace_id = self._request(
                "POST", state["upload_uri"],
                headers={"Authorization": f"OAuth {self._token}", "offset": str(offset),
                         "file_size": str(size), "Content-Length": str(length)},
                content=job.media.read_range(offset, length),
            )
            offset += length
            state["upload_offset"] = offset
            checkpoint({"upload_offset": offset})
        return trace_id

    def wait_for_processing(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """Read the container's status_code once; wait with backoff while it is IN_PROGRESS."""
        container_id = state["container_id"]
        status_code, status, trace_id = self._container_status(container_id)
        details = {"container_id": container_id, "status_code": status_code}
        if status_code == "FINISHED":
            return StepResult(state=state, next_step="finalize", details=details,
                              trace_id=trace_id)
        if status_code == "PUBLISHED":  # already live (a media_publish whose answer was lost)
            return StepResult(state=state, next_step="confirm", details=details,
                              trace_id=trace_id)
        if status_code == "ERROR":
            message = status or "media processing failed"
            return StepResult(state=state, next_step=None, details={**details, "status": status},
                              trace_id=trace_id,
                              outcome=PlatformOutcome(False, error_message=self._redact(message),
                                                      error_kind="permanent"))
        if status_code == "EXPIRED":  # not published within 24 h: the pipeline starts afresh
            raise ProviderError("The Instagram container expired before it was published",
                                kind="transient", restart=True, code="EXPIRED",
                                trace_id=trace_id)
        # IN_PROGRESS (or a status this client does not know yet): poll again later.
        now = time.time()
        since = float(state.setdefault("processing_since", now))
        polls = int(state.get("polls", 0))
        limit = float(self.settings["INSTAGRAM_PROCESSING_TIMEOUT_SECONDS"])
        if now - since >= limit:
            return StepResult(
                state=state, next_step=None, details=details, trace_id=trace_id,
                outcome=PlatformOutcome(
                    False, error_kind="transient",
                    error_message=f"Instagram was still processing the video after {limit:.0f} s"),
            )
        wait = min(float(self.settings["INSTAGRAM_POLL_INTERVAL_SECONDS"]) * 2 ** polls,
                   float(self.settings["INSTAGRAM_POLL_BACKOFF_MAX_SECONDS"]))
        state["polls"] = polls + 1
        return StepResult(state=state, next_step="processing", wait_seconds=wait,
                          details={**details, "polls": polls + 1}, trace_id=trace_id)

    def publish_post(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """media_publish, sent at most once: a re-run reads the container before sending again."""
        container_id = state["container_id"]
        if state.get("publish_sent"):
            status_code, _, trace_id = self._container_status(container_id)
            if status_code == "PUBLISHED":
                return StepResult(state=state, next_step="confirm", trace_id=trace_id,
                                  details={"container_id": container_id,
                                           "status_code": status_code})
        state["publish_sent"] = True
        checkpoint({"publish_sent": True})
        body, trace_id = self._post("media_publish", {"creation_id": container_id},
                                    irreversible=True)
        state["media_id"] = str(body["id"])
        return StepResult(state=state, next_step="confirm", trace_id=trace_id,
                          details={"container_id": container_id, "media_id": state["media_id"]})

    def confirm(self, job: LiveJob, state: dict, checkpoint: Checkpoint) -> StepResult:
        """The media's permalink, best effort: the post is live whatever this read says."""
        media_id = state.get("media_id")
        url, trace_id, details = self._permalink(media_id) if media_id else (None, None, {})
        return StepResult(
            state=state, next_step=None, trace_id=trace_id,
            details={"media_id": media_id, "url": url, **details},
            outcome=PlatformOutcome(True, external_post_id=media_id, external_url=url),
        )

    def _permalink(self, media_id: str) -> tuple[str | None, str | None, dict[str, Any]]:
        try:
            body, trace_id = self._get(media_id, "permalink,shortcode")
        except ProviderError as exc:
            return None, exc.trace_id, {"permalink_error": exc.message}
        shortcode = body.get("shortcode")
        if shortcode:
            return f"https://www.instagram.com/reel/{shortcode}/", trace_id, {}
        return body.get("permalink") or None, trace_id, {}

    def reconcile(self, job: LiveJob, state: dict) -> PlatformOutcome | None:
        """Settle an unknown outcome from the container's status_code (PUBLISHED means live)."""
        container_id = state.get("container_id")
        if not container_id:  # media_publish needs a saved container id: nothing was published
            return PlatformOutcome(False, error_kind="transient",
                                   error_message="No Instagram container was created")
        try:
            status_code, status, _ = self._container_status(container_id)
        except ProviderError:
            if not state.get("publish_sent"):
                return PlatformOutcome(False, error_kind="transient",
                                       error_message="media_publish was never sent")
            return None
        if status_code == "PUBLISHED":
            media_id = state.get("media_id")
            url = self._permalink(media_id)[0] if media_id else None
            return PlatformOutcome(True, external_post_id=media_id, external_url=url)
        if status_code in ("FINISHED", "IN_PROGRESS", "EXPIRED"):
            return PlatformOutcome(
                False, error_kind="transient",
                error_message=f"Instagram did not publish the container (status {status_code})")
        if status_code == "ERROR":
            return PlatformOutcome(False, error_kind="permanent",
                                   error_message=self._redact(status or "media processing failed"))
        return None


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return float(raw) if raw else None
    except ValueError:
        return None
