"""A faithful local TikTok Content Posting API (Direct Post), as a WSGI app.

It speaks the protocol of ../shared/platforms.md ("TikTok Content Posting API"): every answer is
`{"data": {...}, "error": {"code", "message", "log_id"}}`; the chunk rules are checked exactly;
statuses move over a processing delay and then a moderation delay; rate limits are per token.

Factory and use:

    fake = TikTokFake(clock=clock.now, processing_seconds=2, moderation_seconds=1)
    with FakeServer(fake) as server:
        settings["TIKTOK_API_URL"] = server.url   # uploads go to the returned upload_url,
        ...                                        # on the same server (/video/?upload_id=...)
    fake.published          # publish ids that reached PUBLISH_COMPLETE, in order
    fake.final_chunks       # Counter: publish id -> final chunks accepted (exactly once!)
    fake.final_chunk_puts   # Counter: publish id -> PUTs of the final chunk's range, accepted or not
    fake.calls              # Counter: endpoint name -> requests received

Keyword options (each also an attribute a test may change later):
- `clock`: a callable giving seconds (default time.monotonic); move it to make time pass.
- `token_check(token) -> bool`: which bearer tokens are valid (default: non-empty and not in
  `fake.revoked`); pass an OAuth fake's check to share its tokens.
- `scopes`: the scopes tokens carry (default user.info.basic, video.publish).
- `username`, `nickname`, `privacy_level_options`, `max_video_post_duration_sec`,
  `comment_disabled`, `duet_disabled`, `stitch_disabled`: what creator_info answers.
- `creator_error`: an error code (e.g. "spam_risk_user_banned_from_posting") creator_info and
  init answer while set: the creator cannot post.
- `audited` (default True): False allows SELF_ONLY only
  (`unaudited_client_can_only_post_to_private_accounts`).
- `processing_seconds`, `moderation_seconds`: from the last byte (or the pull) to
  PUBLISH_COMPLETE, then to `publicaly_available_post_id`.
- `fail_reason`: set, every new post ends FAILED with it after processing.
- `verified_url_prefixes`: PULL_FROM_URL accepts only URLs starting with one of them
  (None, the default: any http(s) URL), else `url_ownership_unverified`.
- `rate_limits`: requests per 60 s per token: {"creator_info": 20, "init": 6, "status": 30}.
- `posts_per_day`, `pending_max`: creator limits (None: none) -> spam_risk_too_many_posts,
  spam_risk_too_many_pending_share.
- `upload_url_ttl`: seconds an upload_url stays valid (3600).
- `reports_uploaded_bytes` (default True): False leaves `uploaded_bytes` out of status/fetch, as
  an implementation may (the client must then never guess that bytes are missing).
- `inbox_delivery` (default False): True ends processing in SEND_TO_USER_INBOX (the video waits in
  the creator's inbox, as in TikTok's Upload flow) instead of PUBLISH_COMPLETE; not counted in
  `published`.

Scripting, per endpoint ("creator_info", "init", "upload" (any chunk), "upload_final", "status"):
- `fake.fail(endpoint, code, http_status=None, message=None, times=1)`: answer an error instead of
  doing the work (`code=None`: an HTTP error without a JSON body, 503 unless told).
- `fake.drop(endpoint, times=1, mode="disconnect" | "hang", hang_seconds=2.0)`: do the work, then
  lose the answer (close the connection, or answer too late): the unknown outcome.

Memory: uploaded bytes are counted and thrown away, never kept.
Run for a local demo: `python -m tests.fakes.tiktok [port]`.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

MIB = 1024 * 1024
CHUNKS_MAX = 1000
VIDEO_MAX = 4 * 1024 * MIB
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")

ERROR_STATUS = {
    "access_token_invalid": 401, "scope_not_authorized": 401, "scope_permission_missed": 401,
    "rate_limit_exceeded": 429, "spam_risk_too_many_posts": 403,
    "spam_risk_too_many_pending_share": 403, "spam_risk_user_banned_from_posting": 403,
    "unaudited_client_can_only_post_to_private_accounts": 403,
    "privacy_level_option_mismatch": 400, "invalid_params": 400, "invalid_file_upload": 400,
    "url_ownership_unverified": 403, "internal_error": 500,
}
ERROR_MESSAGES = {
    "access_token_invalid": "The access token is invalid or not found in the request.",
    "scope_not_authorized": "The user did not authorize the scope required for this endpoint.",
    "scope_permission_missed": "The access token lacks a required scope.",
    "rate_limit_exceeded": "API rate limit exceeded, please retry later.",
    "spam_risk_too_many_posts": "The daily post cap for this user has been reached.",
    "spam_risk_too_many_pending_share": "Too many pending shares for this user.",
    "spam_risk_user_banned_from_posting": "The user is banned from making new posts.",
    "unaudited_client_can_only_post_to_private_accounts":
        "Unaudited clients can only post with the SELF_ONLY privacy level.",
    "privacy_level_option_mismatch": "The privacy_level is not among the creator's options.",
    "url_ownership_unverified": "The video_url's domain or prefix is not verified.",
    "internal_error": "Internal server error, please retry later.",
}
ENDPOINTS = {
    "/v2/post/publish/creator_info/query/": "creator_info",
    "/v2/post/publish/video/init/": "init",
    "/v2/post/publish/status/fetch/": "status",
}


@dataclass
class FakePost:
    """One publish id and what TikTok knows about it (byte counts, never bytes)."""

    publish_id: str
    token: str
    source: str
    post_info: dict
    created_at: float
    video_size: int = 0
    chunk_size: int = 0
    total_chunk_count: int = 0
    video_url: str | None = None
    upload_id: str | None = None
    upload_token: str | None = None
    received: int = 0
    chunks_received: int = 0
    arrived_at: float | None = None  # the last byte, or the pull's start
    fail_reason: str | None = None
    post_id: int | None = None
    completed: bool = False

    def chunk_range(self, index: int) -> tuple[int, int]:
        first = index * self.chunk_size
        last = self.video_size - 1 if index == self.total_chunk_count - 1 \
            else first + self.chunk_size - 1
        return first, last


@dataclass
class _Script:
    fail: deque = field(default_factory=deque)  # (code, http_status, message)
    drop: deque = field(default_factory=deque)  # (mode, hang_seconds)


class TikTokFake:
    """The WSGI app (see the module docstring for its options, scripting and counters)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 token_check: Callable[[str], bool] | None = None,
                 scopes: tuple[str, ...] = ("user.info.basic", "video.publish"),
                 username: str = "creator.one", nickname: str = "Creator One",
                 privacy_level_options: tuple[str, ...] = (
                     "PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR",
                     "SELF_ONLY"),
                 max_video_post_duration_sec: int = 600, comment_disabled: bool = False,
                 duet_disabled: bool = False, stitch_disabled: bool = False,
                 creator_error: str | None = None, audited: bool = True,
                 processing_seconds: float = 2.0, moderation_seconds: float = 1.0,
                 fail_reason: str | None = None,
                 verified_url_prefixes: tuple[str, ...] | None = None,
                 rate_limits: dict[str, int] | None = None,
                 posts_per_day: int | None = None, pending_max: int | None = None,
                 upload_url_ttl: float = 3600.0, reports_uploaded_bytes: bool = True,
                 inbox_delivery: bool = False):
        self.clock = clock
        self.revoked: set[str] = set()
        self.token_check = token_check or (lambda token: bool(token) and token not in self.revoked)
        self.scopes = set(scopes)
        self.username = username
        self.nickname = nickname
        self.privacy_level_options = list(privacy_level_options)
        self.max_video_post_duration_sec = max_video_post_duration_sec
        self.comment_disabled = comment_disabled
        self.duet_disabled = duet_disabled
        self.stitch_disabled = stitch_disabled
        self.creator_error = creator_error
        self.audited = audited
        self.processing_seconds = processing_seconds
        self.moderation_seconds = moderation_seconds
        self.fail_reason = fail_reason
        self.verified_url_prefixes = verified_url_prefixes
        self.rate_limits = {"creator_info": 20, "init": 6, "status": 30, **(rate_limits or {})}
        self.posts_per_day = posts_per_day
        self.pending_max = pending_max
        self.upload_url_ttl = upload_url_ttl
        self.reports_uploaded_bytes = reports_uploaded_bytes
        self.inbox_delivery = inbox_delivery

        self.posts: dict[str, FakePost] = {}
        self.calls: Counter[str] = Counter()
        self.final_chunks: Counter[str] = Counter()
        self.final_chunk_puts: Counter[str] = Counter()
        self.requests: list[dict] = []  # method, path, headers (no bodies) of every request
        self._published: list[str] = []
        self._uploads: dict[str, str] = {}  # upload_id -> publish_id
        self._hits: dict[tuple[str, str], deque] = defaultdict(deque)
        self._scripts: dict[str, _Script] = defaultdict(_Script)
        self._lock = threading.RLock()

    # ---- scripting and counters --------------------------------------------------------------

    def fail(self, endpoint: str, code: str | None, *, http_status: int | None = None,
             message: str | None = None, times: int = 1) -> None:
        """The next `times` requests to `endpoint` answer this error and do nothing."""
        with self._lock:
            for _ in range(times):
                self._scripts[endpoint].fail.append((code, http_status, message))

    def drop(self, endpoint: str, *, times: int = 1, mode: str = "disconnect",
             hang_seconds: float = 2.0) -> None:
        """The next `times` requests to `endpoint` take effect, then their answer is lost."""
        assert mode in ("disconnect", "hang")
        with self._lock:
            for _ in range(times):
                self._scripts[endpoint].drop.append((mode, hang_seconds))

    @property
    def published(self) -> list[str]:
        """Publish ids that reached PUBLISH_COMPLETE, in order (each at most once)."""
        with self._lock:
            for post in self.posts.values():
                self._advance(post)
            return list(self._published)

    def post_for(self, publish_id: str) -> FakePost:
        with self._lock:
            post = self.posts[publish_id]
            self._advance(post)
            return post

    # ---- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append({"method": request.method, "path": request.path,
                                  "headers": dict(request.headers)})
        if request.path == "/video/":
            response = self._upload(request, environ)
        elif request.path in ENDPOINTS:
            response = self._api(ENDPOINTS[request.path], request, environ)
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def _api(self, endpoint: str, request: Request, environ) -> Response:
        with self._lock:
            self.calls[endpoint] += 1
        if request.method != "POST":
            return Response("method not allowed", status=405)
        scripted = self._scripted_failure(endpoint)
        if scripted is not None:
            return scripted
        token = _bearer(request)
        if not self.token_check(token):
            return _error("access_token_invalid")
        if "video.publish" not in self.scopes:
            return _error("scope_not_authorized")
        if not self._within_rate(endpoint, token):
            return _error("rate_limit_exceeded")
        if endpoint != "creator_info" and not request.mimetype == "application/json":
            return _error("invalid_params", "Content-Type must be application/json")
        body: Any = {}
        if endpoint != "creator_info":
            try:
                body = json.loads(request.get_data() or b"null")
            except ValueError:
                return _error("invalid_params", "The request body is not JSON.")
            if not isinstance(body, dict):
                return _error("invalid_params", "The request body must be a JSON object.")
        handler = {"creator_info": self._creator_info, "init": self._init,
                   "status": self._status}[endpoint]
        with self._lock:
            response = handler(token, body, request)
        return self._maybe_drop(endpoint, response, environ)

    def _creator_info(self, token: str, body: dict, request: Request) -> Response:
        if self.creator_error:
            return _error(self.creator_error)
        return _ok({
            "creator_avatar_url": "https://p16.tiktokcdn.example/avatar.jpeg",
            "creator_username": self.username,
            "creator_nickname": self.nickname,
            "privacy_level_options": list(self.privacy_level_options),
            "comment_disabled": self.comment_disabled,
            "duet_disabled": self.duet_disabled,
            "stitch_disabled": self.stitch_disabled,
            "max_video_post_duration_sec": self.max_video_post_duration_sec,
        })

    def _init(self, token: str, body: dict, request: Request) -> Response:
        if self.creator_error:
            return _error(self.creator_error)
        post_info, source_info = body.get("post_info"), body.get("source_info")
        if not isinstance(post_info, dict) or not isinstance(source_info, dict):
            return _error("invalid_params", "post_info and source_info are required objects.")
        refused = self._check_post_info(post_info)
        if refused is not None:
            return refused
        now = self.clock()
        mine = [post for post in self.posts.values() if post.token == token]
        if self.posts_per_day is not None and sum(
                1 for post in mine if post.completed and now - post.created_at < 86400
        ) >= self.posts_per_day:
            return _error("spam_risk_too_many_posts")
        if self.pending_max is not None and sum(
                1 for post in mine if not self._advance(post).completed
                and post.fail_reason is None) >= self.pending_max:
            return _error("spam_risk_too_many_pending_share")

        publish_id = f"v_pub_file~v2-1.{uuid.uuid4().int % 10**19:019d}"
        source = source_info.get("source")
        post = FakePost(publish_id, token, str(source), post_info, now,
                        fail_reason=self.fail_reason)
        if source == "FILE_UPLOAD":
            refused = _check_chunks(source_info)
            if refused is not None:
                return _error("invalid_params", refused)
            post.video_size = source_info["video_size"]
            post.chunk_size = source_info["chunk_size"]
            post.total_chunk_count = source_info["total_chunk_count"]
            post.upload_id = secrets.token_hex(8)
            post.upload_token = secrets.token_urlsafe(16)
            self._uploads[post.upload_id] = publish_id
            self.posts[publish_id] = post
            upload_url = (f"{request.host_url.rstrip('/')}/video/?upload_id={post.upload_id}"
                          f"&upload_token={post.upload_token}")
            return _ok({"publish_id": publish_id, "upload_url": upload_url})
        if source == "PULL_FROM_URL":
            url = source_info.get("video_url")
            if not isinstance(url, str) or not re.match(r"https?://[^/\s]+/", url):
                return _error("invalid_params", "video_url must be an http(s) URL.")
            if self.verified_url_prefixes is not None and not any(
                    url.startswith(prefix) for prefix in self.verified_url_prefixes):
                return _error("url_ownership_unverified")
            post.video_url = url
            post.arrived_at = now
            self.posts[publish_id] = post
            return _ok({"publish_id": publish_id})
        return _error("invalid_params", "source must be FILE_UPLOAD or PULL_FROM_URL.")

    def _check_post_info(self, post_info: dict) -> Response | None:
        title = post_info.get("title", "")
        if not isinstance(title, str) or len(title.encode("utf-16-le")) // 2 > 2200:
            return _error("invalid_params", "title must be a string of at most 2200 UTF-16 units.")
        level = post_info.get("privacy_level")
        if not isinstance(level, str) or not level:
            return _error("invalid_params", "privacy_level is required.")
        for name in ("disable_duet", "disable_comment", "disable_stitch", "brand_content_toggle",
                     "brand_organic_toggle", "is_aigc"):
            if name in post_info and not isinstance(post_info[name], bool):
                return _error("invalid_params", f"{name} must be a boolean.")
        for name in ("brand_content_toggle", "brand_organic_toggle"):
            if name not in post_info:
                return _error("invalid_params", f"{name} is required.")
        cover = post_info.get("video_cover_timestamp_ms")
        if cover is not None and (isinstance(cover, bool) or not isinstance(cover, int)
                                  or cover < 0):
            return _error("invalid_params", "video_cover_timestamp_ms must be an integer >= 0.")
        if level not in self.privacy_level_options:
            return _error("privacy_level_option_mismatch")
        if not self.audited and level != "SELF_ONLY":
            return _error("unaudited_client_can_only_post_to_private_accounts")
        if post_info["brand_content_toggle"] and level == "SELF_ONLY":
            return _error("invalid_params", "Branded content cannot be private.")
        return None

    def _status(self, token: str, body: dict, request: Request) -> Response:
        post = self.posts.get(body.get("publish_id")) if isinstance(body.get("publish_id"),
                                                                    str) else None
        if post is None or post.token != token:
            return _error("invalid_params", "The publish_id does not exist.")
        self._advance(post)
        data: dict[str, Any] = {"status": self._status_name(post),
                                "publicaly_available_post_id": [post.post_id]
                                if post.post_id is not None else []}
        if post.source == "FILE_UPLOAD":
            if self.reports_uploaded_bytes:
                data["uploaded_bytes"] = post.received
        else:
            data["downloaded_bytes"] = 0 if post.arrived_at is None else post.video_size
        if data["status"] == "FAILED":
            data["fail_reason"] = post.fail_reason
        return _ok(data)

    def _status_name(self, post: FakePost) -> str:
        processing = "PROCESSING_UPLOAD" if post.source == "FILE_UPLOAD" else "PROCESSING_DOWNLOAD"
        if post.arrived_at is None or self.clock() < post.arrived_at + self.processing_seconds:
            return processing
        if post.fail_reason:
            return "FAILED"
        return "SEND_TO_USER_INBOX" if self.inbox_delivery else "PUBLISH_COMPLETE"

    def _advance(self, post: FakePost) -> FakePost:
        """Move a post along its timeline to now (publishing it at most once)."""
        if post.arrived_at is None or post.fail_reason or self.inbox_delivery:
            return post
        now = self.clock()
        if not post.completed and now >= post.arrived_at + self.processing_seconds:
            post.completed = True
            self._published.append(post.publish_id)
        if post.completed and post.post_id is None and \
                now >= post.arrived_at + self.processing_seconds + self.moderation_seconds:
            post.post_id = 7 * 10**18 + uuid.uuid4().int % 10**18
        return post

    # ---- the upload URL ----------------------------------------------------------------------

    def _upload(self, request: Request, environ) -> Response:
        with self._lock:
            self.calls["upload"] += 1
        if request.method != "PUT":
            return Response("method not allowed", status=405)
        with self._lock:
            publish_id = self._uploads.get(request.args.get("upload_id", ""))
            post = self.posts.get(publish_id) if publish_id else None
        if post is None or request.args.get("upload_token") != post.upload_token:
            return Response("unknown upload", status=404)
        if self.clock() > post.created_at + self.upload_url_ttl:
            return Response("upload URL expired", status=403)
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", request.headers.get("Content-Range", ""))
        if match is None:
            return Response("Content-Range must be 'bytes first-last/total'", status=400)
        first, last, total = (int(part) for part in match.groups())
        final_first, _ = post.chunk_range(post.total_chunk_count - 1)
        is_final = first == final_first
        endpoint = "upload_final" if is_final else "upload"
        with self._lock:
            if is_final:
                self.calls["upload_final"] += 1
                self.final_chunk_puts[publish_id] += 1
        scripted = self._scripted_failure(endpoint) or (
            self._scripted_failure("upload") if is_final else None)
        if scripted is not None:
            _discard(request)
            return scripted
        if request.mimetype not in VIDEO_TYPES:
            return Response(f"Content-Type must be one of {', '.join(VIDEO_TYPES)}", status=400)
        if total != post.video_size:
            return Response(f"the total must be the video_size {post.video_size}", status=400)
        if post.received >= post.video_size:
            return Response("the upload is already complete", status=416)
        expected = post.chunk_range(post.received // post.chunk_size)
        if (first, last) != expected:
            return Response(f"expected bytes {expected[0]}-{expected[1]}/{total} next",
                            status=416)
        length = last - first + 1
        if request.content_length != length:
            return Response(f"Content-Length must be {length} for this range", status=400)
        if _discard(request) != length:
            return Response("the body is shorter than Content-Length", status=400)
        with self._lock:
            if post.received != first:  # another PUT of this chunk got in first
                return Response("chunk already received", status=416)
            post.received = last + 1
            post.chunks_received += 1
            complete = post.received == post.video_size
            if complete:
                post.arrived_at = self.clock()
                self.final_chunks[publish_id] += 1
        response = Response(status=201 if complete else 206)
        drop_endpoint = endpoint if self._scripts[endpoint].drop else "upload"
        return self._maybe_drop(drop_endpoint, response, environ)

    # ---- helpers -----------------------------------------------------------------------------

    def _scripted_failure(self, endpoint: str) -> Response | None:
        with self._lock:
            script = self._scripts[endpoint].fail
            if not script:
                return None
            code, http_status, message = script.popleft()
        if code is None:
            return Response("Service Unavailable", status=http_status or 503,
                            mimetype="text/plain")
        return _error(code, message, http_status)

    def _maybe_drop(self, endpoint: str, response: Response, environ) -> Response:
        with self._lock:
            script = self._scripts[endpoint].drop
            if not script:
                return response
            mode, hang_seconds = script.popleft()
        if mode == "hang":
            time.sleep(hang_seconds)
            return response
        conn = environ.get("werkzeug.socket")
        if conn is not None:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return Response(status=204)  # never reaches the client

    def _within_rate(self, endpoint: str, token: str) -> bool:
        limit = self.rate_limits.get(endpoint)
        if limit is None:
            return True
        with self._lock:
            hits = self._hits[(endpoint, token)]
            now = self.clock()
            while hits and now - hits[0] >= 60:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True


def _check_chunks(source_info: dict, mb: int = MIB) -> str | None:
    """TikTok's chunk rules (Media Transfer Guide): None when the plan is valid, else why not.

    `mb` is what "MB" means: 1024 * 1024 by default (the fake's reading), 10**6 to check a plan
    against the other reading.
    """
    values = [source_info.get(name) for name in ("video_size", "chunk_size", "total_chunk_count")]
    if any(isinstance(value, bool) or not isinstance(value, int) for value in values):
        return "video_size, chunk_size and total_chunk_count must be integers."
    size, chunk, count = values
    if not 0 < size <= VIDEO_MAX:
        return f"video_size must be 1-{VIDEO_MAX} bytes."
    if size < 5 * mb:
        if chunk != size or count != 1:
            return "A video under 5 MB is uploaded whole: chunk_size = video_size, one chunk."
        return None
    if not 5 * mb <= chunk <= 64 * mb or chunk > size:
        return "chunk_size must be 5-64 MB and at most video_size."
    if count != size // chunk:
        return "total_chunk_count must be floor(video_size / chunk_size)."
    if not 1 <= count <= CHUNKS_MAX:
        return "There must be 1-1000 chunks."
    if size > 64 * mb and count < 2:
        return "A video over 64 MB must be uploaded in several chunks."
    if size - (count - 1) * chunk > 128 * mb:
        return "The last chunk may be at most 128 MB."
    return None


def _discard(request: Request, block: int = 1024 * 1024) -> int:
    """Read the body in blocks and count it (never keep an upload in memory)."""
    stream = request.stream
    count = 0
    while True:
        data = stream.read(block)
        if not data:
            return count
        count += len(data)


def _bearer(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else ""


def _log_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


def _ok(data: dict) -> Response:
    return Response(json.dumps({"data": data, "error": {"code": "ok", "message": "",
                                                        "log_id": _log_id()}}),
                    status=200, mimetype="application/json")


def _error(code: str, message: str | None = None, http_status: int | None = None) -> Response:
    body = {"data": {}, "error": {"code": code,
                                  "message": message or ERROR_MESSAGES.get(code, code),
                                  "log_id": _log_id()}}
    return Response(json.dumps(body), status=http_status or ERROR_STATUS.get(code, 400),
                    mimetype="application/json")


if __name__ == "__main__":  # a local demo: python -m tests.fakes.tiktok [port]
    from . import FakeServer

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    with FakeServer(TikTokFake(), port=port) as server:
        print(f"TikTok fake at {server.url} (TIKTOK_API_URL={server.url}); Ctrl-C stops it")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
