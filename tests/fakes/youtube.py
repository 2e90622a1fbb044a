"""A faithful local YouTube Data API v3: resumable `videos.insert` and `videos.list`.

    fake = FakeYouTube(quota_per_day=100, processing_seconds=0.0)
    with FakeServer(fake) as server:          # YOUTUBE_API_URL = server.url
        ...
    len(fake.videos)                          # videos really created (exactly-once checks)

`FakeYouTube(**options)` is the factory (a WSGI app; `python -m tests.fakes.youtube [PORT]`
serves one on 127.0.0.1:PORT, default 8091, for a demo). Options: `quota_per_day`
(videos.insert calls per project per Pacific-time day, default 100), `processing_seconds` (how long
a new video reports `uploadStatus: uploaded` / `processing`), `processing_outcome` ("processed",
"rejected:<rejectionReason>" or "failed:<failureReason>"), `session_ttl_seconds` (an older session
answers 410), `token_check` (a callable token -> project id, or None to refuse it with 401
`authError`; the default accepts any non-empty token not in `fake.revoked`, of project
`fake.token_projects.get(token, "default-project")`, so an OAuth fake can share it), `clock`
(seconds, default `time.time`; tests pass their own to move time), `verified_projects` (videos of
other projects are locked private, as Google does for unverified projects).

The protocol, as shared/platforms.md documents it:
- `POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status` validates the
  Bearer token, the headers (`Content-Type: application/json`, `X-Upload-Content-Length`,
  `X-Upload-Content-Type: video/*`) and the snippet (`invalidTitle`, `invalidDescription`,
  `invalidTags`, `invalidCategoryId`), spends one unit of the project's quota (`quotaExceeded`
  403 once used up) and answers 200 with the session URI (on this server) in `Location`.
- `PUT <session URI>` with `Content-Range: bytes a-b/N`: `a` must be the next byte the session
  expects and every chunk but the last a multiple of 256 KiB (else 400). Answers 308 with
  `Range: bytes=0-k` (no Range before the first byte), or 201 with the video resource once the
  last byte arrived. `Content-Range: bytes */N` with an empty body asks where the session is:
  308 (Range as above) or 200 with the video. Unknown sessions answer 404, expired ones 410.
- `GET /youtube/v3/videos?part=status,processingDetails&id=...` reports `uploadStatus`
  (`uploaded` while processing, then `processed`, `rejected` or `failed` with the reason).
- Every upload answer carries `X-GUploader-UploadID`. Errors are Google's shape:
  `{"error": {"code", "message", "errors": [{"reason", "message", "domain"}]}}`.

Interruptions for tests: `drop_connection(on_put=n, after_bytes=b)` closes the socket during the
n-th data PUT after accepting `b` bytes (rounded down to 256 KiB); `lose_answer(on_put=n)`
processes the n-th data PUT fully, then closes the socket unanswered; `fail_put(on_put=n)` answers
503 to the n-th data PUT; `fail_status_queries(count)` answers 503 to that many status queries;
`queue_error(where, status, reason)` answers the next request of a kind ("insert", "put", "status",
"videos") with that error; `expire_sessions(status)` makes every session answer 404 or 410
(sessions started later live on). Only byte counts and a running SHA-256 of each upload are kept,
never the bytes, so a gigabyte costs no memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

CHUNK_UNIT = 256 * 1024
UPLOAD_PATH = "/upload/youtube/v3/videos"
VIDEOS_PATH = "/youtube/v3/videos"
PACIFIC = ZoneInfo("America/Los_Angeles")
# YouTube's assignable video categories (videoCategories.list, region US).
CATEGORY_IDS = {"1", "2", "10", "15", "17", "19", "20", "22", "23", "24", "25", "26", "27", "28",
                "29"}
PRIVACY_STATUSES = ("private", "unlisted", "public")
_DATA_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
_STATUS_RANGE = re.compile(r"^bytes \*/(\d+)$")


@dataclass
class UploadSession:
    upload_id: str
    project: str
    size: int
    content_type: str
    metadata: dict[str, Any]
    created_at: float
    received: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    video_id: str | None = None
    gone_status: int | None = None  # 404 or 410 once expired by expire_sessions()


@dataclass
class Video:
    id: str
    project: str
    snippet: dict[str, Any]
    privacy_status: str
    made_for_kids: bool
    size: int
    sha256: str
    processed_at: float  # until then YouTube reports it as still processing
    upload_id: str
    outcome: str

    def resource(self, now: float, parts: set[str]) -> dict[str, Any]:
        """The video as YouTube shows it (`status`, `processingDetails`, `snippet` parts)."""
        processing = now < self.processed_at
        kind, _, reason = self.outcome.partition(":")
        status: dict[str, Any] = {"privacyStatus": self.privacy_status,
                                  "selfDeclaredMadeForKids": self.made_for_kids,
                                  "uploadStatus": "uploaded"}
        details = {"processingStatus": "processing"}
        if not processing:
            if kind == "rejected":
                status.update(uploadStatus="rejected", rejectionReason=reason or "duplicate")
                details = {"processingStatus": "terminated"}
            elif kind == "failed":
                status.update(uploadStatus="failed", failureReason=reason or "codec")
                details = {"processingStatus": "failed"}
            else:
                status["uploadStatus"] = "processed"
                details = {"processingStatus": "succeeded"}
        body: dict[str, Any] = {"kind": "youtube#video", "id": self.id}
        if "snippet" in parts:
            body["snippet"] = self.snippet
        if "status" in parts:
            body["status"] = status
        if "processingDetails" in parts:
            body["processingDetails"] = details
        return body


@dataclass
class PutRecord:
    """One PUT a session received: its Content-Range and the answer's status."""

    upload_id: str
    content_range: str
    status: int


def _error(status: int, reason: str, message: str, domain: str = "youtube.video",
           headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason}]}}
    return Response(json.dumps(body), status=status, headers=headers,
                    content_type="application/json; charset=UTF-8")


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers,
                    content_type="application/json; charset=UTF-8")


class FakeYouTube:
    """The fake's state and WSGI entry point (see the module docstring)."""

    def __init__(self, *, quota_per_day: int = 100, processing_seconds: float = 0.0,
                 processing_outcome: str = "processed", session_ttl_seconds: float = 7 * 86400,
                 token_check: Callable[[str], str | None] | None = None,
                 clock: Callable[[], float] = time.time,
                 verified_projects: set[str] | None = None):
        self.quota_per_day = quota_per_day
        self.processing_seconds = processing_seconds
        self.processing_outcome = processing_outcome
        self.session_ttl_seconds = session_ttl_seconds
        self.clock = clock
        self.verified_projects = set(verified_projects or ())
        self.revoked: set[str] = set()
        self.token_projects: dict[str, str] = {}
        self.token_check = token_check or self._default_token_check
        self.sessions: dict[str, UploadSession] = {}
        self.videos: dict[str, Video] = {}
        self.quota_used: dict[tuple[str, date], int] = {}
        self.inserts = 0  # sessions created (videos.insert calls that passed)
        self.puts: list[PutRecord] = []
        self.data_puts = 0
        self._drops: dict[int, int | None] = {}
        self._failed_puts: dict[int, int] = {}
        self._lost_answers: set[int] = set()
        self._failed_status_queries = 0
        self._queued: dict[str, list[tuple[int, str, str]]] = {}
        self._lock = threading.Lock()

    # -- knobs ----------------------------------------------------------------------------

    def drop_connection(self, on_put: int, after_bytes: int | None = None) -> None:
        """Close the socket during the `on_put`-th data PUT, after `after_bytes` (default half)."""
        self._drops[on_put] = after_bytes

    def lose_answer(self, on_put: int) -> None:
        """Process the `on_put`-th data PUT fully, then close the socket instead of answering."""
        self._lost_answers.add(on_put)

    def fail_put(self, on_put: int, status: int = 503) -> None:
        """Answer the `on_put`-th data PUT with a server error; its bytes are not kept."""
        self._failed_puts[on_put] = status

    def fail_status_queries(self, count: int) -> None:
        """Answer the next `count` status queries (`bytes */N`) with 503."""
        self._failed_status_queries = count

    def queue_error(self, where: str, status: int, reason: str, message: str | None = None) -> None:
        """Answer the next request of kind `where` (insert, put, status, videos) with an error."""
        self._queued.setdefault(where, []).append((status, reason, message or f"fake {reason}"))

    def expire_sessions(self, status: int = 404) -> None:
        """Every upload session started so far answers `status` (404 or 410) from now on."""
        with self._lock:
            for session in self.sessions.values():
                session.gone_status = status

    def quota_used_today(self, project: str = "default-project") -> int:
        """videos.insert calls `project` made in the current Pacific-time day."""
        return self.quota_used.get((project, self._pacific_today()), 0)

    # -- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == UPLOAD_PATH and request.method == "POST":
            response = self._insert(request)
        elif request.path == UPLOAD_PATH and request.method == "PUT":
            response = self._session_put(request, environ)
        elif request.path == VIDEOS_PATH and request.method == "GET":
            response = self._videos_list(request)
        else:
            response = _error(404, "notFound", f"no such method: {request.method} {request.path}",
                              domain="global")
        return response(environ, start_response)

    def _default_token_check(self, token: str) -> str | None:
        if not token or token in self.revoked:
            return None
        return self.token_projects.get(token, "default-project")

    def _project(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.token_check(token.strip())

    def _pacific_today(self) -> date:
        return datetime.fromtimestamp(self.clock(), UTC).astimezone(PACIFIC).date()

    def _queued_error(self, where: str, headers: dict[str, str] | None = None) -> Response | None:
        with self._lock:
            queue = self._queued.get(where)
            if not queue:
                return None
            status, reason, message = queue.pop(0)
        quota = reason in ("quotaExceeded", "rateLimitExceeded")
        domain = "youtube.quota" if quota else "youtube.video"
        return _error(status, reason, message, domain=domain, headers=headers)

    # -- videos.insert (resumable session) ------------------------------------------------

    def _insert(self, request: Request) -> Response:
        project = self._project(request)
        if project is None:
            return _error(401, "authError", "Request had invalid authentication credentials.",
                          domain="global")
        queued = self._queued_error("insert")
        if queued is not None:
            return queued
        if request.args.get("uploadType") != "resumable":
            return _error(400, "invalid", "This fake implements uploadType=resumable only.",
                          domain="global")
        parts = set(request.args.get("part", "").split(","))
        if not {"snippet", "status"} <= parts:
            return _error(400, "required", "Required parameter: part (snippet,status)",
                          domain="global")
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            return _error(400, "badContent", "The metadata must be application/json.",
                          domain="global")
        length = request.headers.get("X-Upload-Content-Length", "")
        if not length.isdigit() or int(length) <= 0:
            return _error(400, "required", "X-Upload-Content-Length must be the file's size.",
                          domain="global")
        content_type = request.headers.get("X-Upload-Content-Type", "")
        if not (content_type.startswith("video/") or content_type == "application/octet-stream"):
            return _error(400, "badContent", "X-Upload-Content-Type must be a video type.",
                          domain="global")
        try:
            metadata = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            return _error(400, "parseError", "The metadata is not valid JSON.", domain="global")
        refusal = self._check_metadata(metadata)
        if refusal is not None:
            return refusal
        with self._lock:
            day = (project, self._pacific_today())
            if self.quota_used.get(day, 0) >= self.quota_per_day:
                return _error(403, "quotaExceeded", "The request cannot be completed because you "
                              "have exceeded your quota.", domain="youtube.quota")
            self.quota_used[day] = self.quota_used.get(day, 0) + 1
            upload_id = secrets.token_urlsafe(24)
            self.sessions[upload_id] = UploadSession(upload_id, project, int(length), content_type,
                                                     metadata, self.clock())
            self.inserts += 1
        location = (f"{request.host_url.rstrip('/')}{UPLOAD_PATH}?uploadType=resumable"
                    f"&part=snippet,status&upload_id={upload_id}")
        return Response(b"", status=200,
                        headers={"Location": location, "X-GUploader-UploadID": upload_id})

    def _check_metadata(self, metadata: Any) -> Response | None:
        if not isinstance(metadata, dict) or not isinstance(metadata.get("snippet"), dict):
            return _error(400, "invalidVideoMetadata", "The request metadata needs a snippet.")
        snippet, status = metadata["snippet"], metadata.get("status") or {}
        title = snippet.get("title")
        if (not isinstance(title, str) or not title.strip() or len(title) > 100
                or "<" in title or ">" in title):
            return _error(400, "invalidTitle", "The request metadata specifies an invalid or empty "
                          "video title.")
        description = snippet.get("description", "")
        if (not isinstance(description, str) or len(description.encode()) > 5000
                or "<" in description or ">" in description):
            return _error(400, "invalidDescription", "The request metadata specifies an invalid "
                          "video description.")
        tags = snippet.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            return _error(400, "invalidTags", "The request metadata specifies invalid video "
                          "keywords.")
        # YouTube counts the commas between tags, and quotes around tags with spaces.
        tags_length = sum(len(tag) + (2 if " " in tag else 0) for tag in tags) + max(len(tags) - 1, 0)
        if tags_length > 500:
            return _error(400, "invalidTags", "The request metadata specifies invalid video "
                          "keywords.")
        if str(snippet.get("categoryId", "22")) not in CATEGORY_IDS:
            return _error(400, "invalidCategoryId", "The snippet.categoryId property specifies an "
                          "invalid category ID.")
        if (not isinstance(status, dict)
                or status.get("privacyStatus", "public") not in PRIVACY_STATUSES):
            return _error(400, "invalidVideoMetadata", "status.privacyStatus is invalid.")
        if not isinstance(status.get("selfDeclaredMadeForKids", False), bool):
            return _error(400, "invalidVideoMetadata", "status.selfDeclaredMadeForKids must be a "
                          "boolean.")
        return None

    # -- the session URI ------------------------------------------------------------------

    def _session_put(self, request: Request, environ) -> Response:
        upload_id = request.args.get("upload_id", "")
        trace = {"X-GUploader-UploadID": upload_id}
        content_range = request.headers.get("Content-Range", "")
        session = self.sessions.get(upload_id)
        if session is None or session.gone_status == 404:
            return self._record(upload_id, content_range,
                                _error(404, "notFound", "No such upload session.", "global", trace))
        if session.gone_status == 410 or self.clock() - session.created_at > self.session_ttl_seconds:
            return self._record(upload_id, content_range,
                                _error(410, "gone", "The upload session has expired.", "global",
                                       trace))
        status_query = _STATUS_RANGE.match(content_range)
        if status_query:
            return self._record(upload_id, content_range,
                                self._status_query(session, int(status_query.group(1)), trace))
        with self._lock:
            self.data_puts += 1
            number = self.data_puts
        queued = self._queued_error("put", trace)
        if queued is not None:
            request.get_data()  # drain the body
            return self._record(upload_id, content_range, queued)
        data_range = _DATA_RANGE.match(content_range)
        if data_range:
            start, end, total = (int(group) for group in data_range.groups())
        elif not content_range and session.received == 0:
            start, end, total = 0, session.size - 1, session.size  # the whole file in one PUT
        else:
            return self._record(upload_id, content_range,
                                self._drain(request, 400, "invalid", "Content-Range must be "
                                            "'bytes a-b/N' or 'bytes */N'.", trace))
        length = end - start + 1
        problem = None
        if total != session.size:
            problem = f"the upload was declared as {session.size} bytes, not {total}"
        elif session.video_id is not None:
            problem = "the upload is already complete"
        elif start != session.received:
            problem = f"the session expects byte {session.received} next, not {start}"
        elif end < start or end >= total:
            problem = f"{content_range} is not a range of the file"
        elif end != total - 1 and length % CHUNK_UNIT:
            problem = f"a chunk of {length} bytes is not a multiple of 262144 (only the last may be)"
        elif request.content_length is not None and request.content_length != length:
            problem = f"Content-Length {request.content_length} does not match {content_range}"
        if problem:
            return self._record(upload_id, content_range,
                                self._drain(request, 400, "invalid", problem, trace))
        if number in self._failed_puts:
            status = self._failed_puts.pop(number)
            return self._record(upload_id, content_range,
                                self._drain(request, status, "backendError", "Backend Error",
                                            trace))
        if number in self._drops:
            after = self._drops.pop(number)
            keep = ((length // 2 if after is None else after) // CHUNK_UNIT) * CHUNK_UNIT
            self._receive(request, session, min(keep, length))
            self._record(upload_id, content_range, Response(status=599))
            return self._hang_up(environ)
        received = self._receive(request, session, length)
        if received != length:
            return self._record(upload_id, content_range,
                                _error(400, "invalid", f"the body held {received} of {length} "
                                       "bytes", "global", trace))
        if session.received == session.size:
            video = self._complete(session)
            response = _json_response(video.resource(self.clock(), {"snippet", "status"}), 201,
                                      trace)
        else:
            response = self._incomplete(session, trace)
        if number in self._lost_answers:
            self._lost_answers.discard(number)
            self._record(upload_id, content_range, Response(status=599))
            return self._hang_up(environ)
        return self._record(upload_id, content_range, response)

    def _hang_up(self, environ) -> Response:
        """Close the client's connection: it gets no answer at all."""
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            connection.shutdown(socket.SHUT_RDWR)
        return Response(b"", status=500)  # never reaches the client

    def _receive(self, request: Request, session: UploadSession, length: int) -> int:
        """Read up to `length` bytes of the body into the session (counted and hashed)."""
        stream = request.stream
        count = 0
        while count < length:
            block = stream.read(min(64 * 1024, length - count))
            if not block:
                break
            session.digest.update(block)
            count += len(block)
        with self._lock:
            session.received += count
        return count

    def _drain(self, request: Request, status: int, reason: str, message: str,
               headers: dict[str, str]) -> Response:
        stream = request.stream
        while stream.read(64 * 1024):
            pass
        return _error(status, reason, message, "global", headers)

    def _status_query(self, session: UploadSession, total: int, trace: dict[str, str]) -> Response:
        if total != session.size:
            return _error(400, "invalid", f"the upload was declared as {session.size} bytes",
                          "global", trace)
        with self._lock:
            if self._failed_status_queries > 0:
                self._failed_status_queries -= 1
                return _error(503, "backendError", "Backend Error", "global", trace)
        queued = self._queued_error("status", trace)
        if queued is not None:
            return queued
        if session.video_id is not None:
            video = self.videos[session.video_id]
            return _json_response(video.resource(self.clock(), {"snippet", "status"}), 200, trace)
        return self._incomplete(session, trace)

    def _incomplete(self, session: UploadSession, trace: dict[str, str]) -> Response:
        headers = dict(trace)
        if session.received:
            headers["Range"] = f"bytes=0-{session.received - 1}"
        return Response(b"", status="308 Resume Incomplete", headers=headers)

    def _complete(self, session: UploadSession) -> Video:
        snippet = dict(session.metadata["snippet"])
        status = session.metadata.get("status") or {}
        privacy = status.get("privacyStatus", "public")
        if session.project not in self.verified_projects:
            privacy = "private"  # unverified API projects' uploads are locked private
        with self._lock:
            video_id = secrets.token_urlsafe(8)[:11]
            video = Video(video_id, session.project, snippet, privacy,
                          bool(status.get("selfDeclaredMadeForKids", False)), session.size,
                          session.digest.hexdigest(), self.clock() + self.processing_seconds,
                          session.upload_id, self.processing_outcome)
            self.videos[video_id] = video
            session.video_id = video_id
        return video

    def _record(self, upload_id: str, content_range: str, response: Response) -> Response:
        with self._lock:
            self.puts.append(PutRecord(upload_id, content_range, response.status_code))
        return response

    # -- videos.list ----------------------------------------------------------------------

    def _videos_list(self, request: Request) -> Response:
        if self._project(request) is None:
            return _error(401, "authError", "Request had invalid authentication credentials.",
                          domain="global")
        queued = self._queued_error("videos")
        if queued is not None:
            return queued
        parts = set(filter(None, request.args.get("part", "").split(",")))
        if not parts:
            return _error(400, "required", "Required parameter: part", domain="global")
        ids = [video_id for video_id in request.args.get("id", "").split(",") if video_id]
        now = self.clock()
        items = [self.videos[video_id].resource(now, parts) for video_id in ids
                 if video_id in self.videos]
        return _json_response({"kind": "youtube#videoListResponse", "items": items,
                               "pageInfo": {"totalResults": len(items),
                                            "resultsPerPage": len(items)}})


if __name__ == "__main__":  # a local YouTube for a demo: python -m tests.fakes.youtube [PORT]
    import sys

    from . import FakeServer

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8091
    with FakeServer(FakeYouTube(processing_seconds=5.0), port=port) as running:
        print(f"fake YouTube on {running.url} (YOUTUBE_API_URL={running.url}); Ctrl-C stops it")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
