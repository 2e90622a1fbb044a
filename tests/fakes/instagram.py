"""A faithful local Instagram Graph API (Reels containers), as a WSGI app.

    fake = InstagramFake(processing_polls=2)
    with FakeServer(fake) as server:
        settings["INSTAGRAM_GRAPH_URL"] = f"{server.url}/v24.0"
        ...
        assert len(fake.published) == 1

Endpoints (any `v<major>.<minor>` version prefix), per shared/platforms.md:

- `GET  /{v}/{ig-user-id}/content_publishing_limit?fields=config,quota_usage`
- `POST /{v}/{ig-user-id}/media` (media_type=REELS; `video_url`, or `upload_type=resumable`,
  which answers `{"id", "uri"}` with `uri` = `<upload_base_url>/ig-api-upload/{v}/{id}`, this
  server's own absolute URL unless `upload_base_url` names another server of the same fake)
- `POST /ig-api-upload/{v}/{container-id}` (headers `Authorization: OAuth <token>`, `offset`,
  `file_size`; the body is written at `offset`; an upload continues at any offset up to the bytes
  already received; bytes are counted, and kept only for files up to `keep_bytes_max`)
- `GET  /{v}/{container-id}?fields=status_code,status` and `GET /{v}/{media-id}?fields=permalink,
  shortcode` (Graph answers only the fields asked for, plus `id`)
- `POST /{v}/{ig-user-id}/media_publish` (creation_id; only a FINISHED container; enforces the
  publishing limit: `quota_total` posts per `quota_duration` seconds, error 9/2207042)

The token is the `access_token` parameter (query string or form body, as Graph accepts both);
`token_check(token)` returns None when the token is valid, else "expired" (190/463), "revoked"
(190/458) or "invalid" (190). The default accepts any non-empty token not passed to
`expire_token`/`revoke_token`, so an OAuth fake can share its notion of validity by passing its own.

Processing: a container becomes FINISHED once its bytes are all there (at once for `video_url`)
and `processing_polls` status reads have seen it IN_PROGRESS, or `processing_seconds` have passed
(whichever is set, first; neither set: one poll; the clock is `time.time`, so time-machine moves
it). Graph paths work with a version prefix (`/v24.0/...`) or without one. `process_next_as("ERROR",
status=...)` scripts the next container's end; `expire(container_id)` (or `container_ttl_seconds`)
expires one.

Scripted faults, by call name (`content_publishing_limit`, `media`, `upload`, `status`,
`media_publish`, `media_info`):
- `fail_next(call, code=..., subcode=..., message=..., is_transient=..., status=400)`: a Graph
  error answer instead of the call (nothing happens); `body=""` answers that status with no body.
- `drop_next(call, after_bytes=None)`: the call takes effect, then the connection is closed with
  no answer (for `upload`, `after_bytes` closes it mid-body instead, keeping what arrived).
- `stall_next(call, seconds)`: the call takes effect, then the answer waits `seconds` (longer
  than the client's timeout: a timeout after the effect).

For a local demo: `python -m tests.fakes.instagram --port 8701`, then
`INSTAGRAM_GRAPH_URL=http://127.0.0.1:8701/v24.0 PROVIDER_MODE=live`.

What happened: `published` (each really published post, in order), `publish_calls` (every
media_publish received), `containers` (by id), `calls` (method, call name, query keys, form keys,
for checking where the client put its parameters).
"""

from __future__ import annotations

import json
import random
import socket
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import ClientDisconnected
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

READ_BLOCK = 1024 * 1024
DEFAULT_VERSION = "v24.0"


class _VersionConverter(BaseConverter):
    """A Graph API version path segment: v24.0."""

    regex = r"v[0-9]+\.[0-9]+"


@dataclass
class Container:
    id: str
    ig_user_id: str
    params: dict[str, str]
    created_at: float
    resumable: bool
    file_size: int | None = None
    received: int = 0
    data: bytearray | None = None
    ready_at: float | None = None  # when all the bytes were there
    polls_in_progress: int = 0
    status_code: str = "IN_PROGRESS"
    status: str = "In Progress"
    end_as: tuple[str, str] = ("FINISHED", "Finished")
    media_id: str | None = None


@dataclass
class Fault:
    kind: str  # "error" | "drop" | "stall"
    options: dict[str, Any] = field(default_factory=dict)


def _digits(count: int) -> str:
    return "1" + "".join(random.choices(string.digits, k=count - 1))


class InstagramFake:
    """The fake Graph API; an instance is a WSGI callable (serve it with FakeServer)."""

    def __init__(self, *, processing_polls: int | None = None,
                 processing_seconds: float | None = None,
                 quota_total: int = 50, quota_duration: int = 86400,
                 container_ttl_seconds: float = 86400,
                 token_check: Callable[[str], str | None] | None = None,
                 upload_base_url: str | None = None, keep_bytes_max: int = 8 * 1024 * 1024):
        # One poll of processing unless told otherwise (in polls, in seconds, or both).
        self.processing_polls = 1 if processing_polls is None and processing_seconds is None \
            else processing_polls
        self.processing_seconds = processing_seconds
        self.quota_total = quota_total
        self.quota_duration = quota_duration
        self.container_ttl_seconds = container_ttl_seconds
        self.token_check = token_check or self._default_token_check
        self.upload_base_url = upload_base_url
        self.keep_bytes_max = keep_bytes_max
        self.expired_tokens: set[str] = set()
        self.revoked_tokens: set[str] = set()
        self.containers: dict[str, Container] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.published: list[dict[str, Any]] = []
        self.publish_calls = 0
        self.calls: list[dict[str, Any]] = []
        self._faults: dict[str, list[Fault]] = {}
        self._next_end: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        graph = [("/<user_id>/content_publishing_limit", "content_publishing_limit", "GET"),
                 ("/<user_id>/media", "media", "POST"),
                 ("/<user_id>/media_publish", "media_publish", "POST"),
                 ("/<node_id>", "node", "GET")]
        # Graph paths with a version prefix, and without one (Graph's unversioned calls use
        # the app's default version), so either form of INSTAGRAM_GRAPH_URL works.
        self._urls = Map(
            [Rule("/ig-api-upload/<version:version>/<container_id>", endpoint="upload",
                  methods=["POST"])]
            + [Rule(f"/<version:version>{path}", endpoint=name, methods=[method])
               for path, name, method in graph]
            + [Rule(path, endpoint=name, methods=[method], defaults={"version": DEFAULT_VERSION})
               for path, name, method in graph],
            converters={"version": _VersionConverter}, redirect_defaults=False,
        )

    # --- scripting ---

    def expire_token(self, token: str) -> None:
        """From now on the token answers 190/463 (session expired)."""
        self.expired_tokens.add(token)

    def revoke_token(self, token: str) -> None:
        """From now on the token answers 190/458 (the user removed the app)."""
        self.revoked_tokens.add(token)

    def fail_next(self, call: str, *, code: int = 2, subcode: int | None = None,
                  message: str = "An unexpected error has occurred.", is_transient: bool = False,
                  status: int = 400, body: str | None = None, error_type: str = "OAuthException",
                  headers: dict[str, str] | None = None, fbtrace_id: str | None = None) -> None:
        """The next `call` answers this Graph error (or `body` verbatim) and has no effect."""
        self._add_fault(call, Fault("error", dict(code=code, subcode=subcode, message=message,
                                                  is_transient=is_transient, status=status,
                                                  body=body, error_type=error_type,
                                                  headers=headers or {},
                                                  fbtrace_id=fbtrace_id)))

    def drop_next(self, call: str, *, after_bytes: int | None = None) -> None:
        """The next `call` takes effect, then its connection closes without an answer."""
        self._add_fault(call, Fault("drop", {"after_bytes": after_bytes}))

    def stall_next(self, call: str, seconds: float) -> None:
        """The next `call` takes effect, then answers only after `seconds`."""
        self._add_fault(call, Fault("stall", {"seconds": seconds}))

    def process_next_as(self, status_code: str, status: str = "") -> None:
        """The next container created ends its processing in `status_code` (e.g. ERROR)."""
        self._next_end.append((status_code, status))

    def expire(self, container_id: str) -> None:
        """The container expires now (as after 24 h unpublished)."""
        with self._lock:
            container = self.containers[container_id]
            if container.status_code != "PUBLISHED":
                container.status_code, container.status = "EXPIRED", "Expired"

    def quota_usage(self, ig_user_id: str) -> int:
        """Posts published for the account within the rolling window."""
        since = time.time() - self.quota_duration
        return sum(1 for post in self.published
                   if post["ig_user_id"] == ig_user_id and post["published_at"] > since)

    def _add_fault(self, call: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(call, []).append(fault)

    def _take_fault(self, call: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(call)
            return queue.pop(0) if queue else None

    def _default_token_check(self, token: str) -> str | None:
        if token in self.expired_tokens:
            return "expired"
        if token in self.revoked_tokens:
            return "revoked"
        return None if token else "invalid"

    # --- WSGI ---

    def __call__(self, environ, start_response):
        request = Request(environ)
        adapter = self._urls.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
        except Exception:  # unknown path or method: Graph's "unsupported request"
            response = self._error(400, 100, None, "Unsupported request - method type: "
                                   f"{request.method.lower()}")
            return response(environ, start_response)
        call = endpoint
        if endpoint == "node":
            call = "status" if args["node_id"] in self.containers else "media_info"
        fault = self._take_fault(call)
        if fault is not None and fault.kind == "error":
            _drain(request)
            return self._fault_response(fault)(environ, start_response)
        form = request.form if endpoint not in ("upload",) else {}
        self.calls.append({"method": request.method, "call": call, "host": request.host,
                           "path": request.path,
                           "query": sorted(request.args.keys()), "form": sorted(form.keys()),
                           "headers": {name.lower(): value for name, value
                                       in request.environ.get("fake.raw_headers", ())}})
        handler = getattr(self, f"_{endpoint}")
        response = handler(request, fault=fault, **args)
        if fault is not None and fault.kind == "drop":
            self._drop(environ)
            start_response("200 OK", [])  # writing it fails quietly: the socket is shut
            return []
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.options["seconds"])
        return response(environ, start_response)

    @staticmethod
    def _drop(environ) -> None:
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _fault_response(self, fault: Fault) -> Response:
        options = fault.options
        if options["body"] is not None:
            return Response(options["body"], status=options["status"],
                            headers=options["headers"])
        response = self._error(options["status"], options["code"], options["subcode"],
                               options["message"], is_transient=options["is_transient"],
                               error_type=options["error_type"],
                               fbtrace_id=options["fbtrace_id"])
        response.headers.update(options["headers"])
        return response

    # --- answers ---

    @staticmethod
    def _json(payload: dict, status: int = 200) -> Response:
        response = Response(json.dumps(payload), status=status, mimetype="application/json")
        response.headers["x-fb-trace-id"] = _trace_id()
        return response

    def _error(self, status: int, code: int, subcode: int | None, message: str, *,
               is_transient: bool = False, error_type: str = "OAuthException",
               fbtrace_id: str | None = None) -> Response:
        error: dict[str, Any] = {"message": message, "type": error_type, "code": code,
                                 "is_transient": is_transient,
                                 "fbtrace_id": fbtrace_id or _trace_id()}
        if subcode is not None:
            error["error_subcode"] = subcode
            error["error_user_title"] = "Error"
            error["error_user_msg"] = message
        return self._json({"error": error}, status)

    def _auth(self, token: str | None) -> Response | None:
        """The 190 answer for a refused token, or None when it is valid."""
        reason = self.token_check(token or "")
        if reason is None:
            return None
        if reason == "expired":
            return self._error(400, 190, 463, "Error validating access token: Session has "
                               "expired on Tuesday, 01-Dec-26 09:00:00 PST.")
        if reason == "revoked":
            return self._error(400, 190, 458, "Error validating access token: The user has not "
                               "authorized application.")
        return self._error(400, 190, None, "Invalid OAuth access token - Cannot parse access token")

    @staticmethod
    def _token(request: Request) -> str | None:
        return request.form.get("access_token") or request.args.get("access_token")

    @staticmethod
    def _fields(request: Request) -> list[str]:
        return [f.strip() for f in (request.args.get("fields") or "").split(",") if f.strip()]

    def _content_publishing_limit(self, request: Request, user_id: str, **_) -> Response:
        refused = self._auth(self._token(request))
        if refused:
            return refused
        fields = self._fields(request) or ["quota_usage"]
        entry: dict[str, Any] = {}
        with self._lock:
            if "quota_usage" in fields:
                entry["quota_usage"] = self.quota_usage(user_id)
            if "config" in fields:
                entry["config"] = {"quota_total": self.quota_total,
                                   "quota_duration": self.quota_duration}
        return self._json({"data": [entry]})

    def _media(self, request: Request, user_id: str, version: str, **_) -> Response:
        refused = self._auth(self._token(request))
        if refused:
            return refused
        params = {**request.args.to_dict(), **request.form.to_dict()}
        params.pop("access_token", None)
        if params.get("media_type") != "REELS":
            return self._error(400, 100, None, "(#100) The parameter media_type must be REELS "
                               "for this fake")
        resumable = params.get("upload_type") == "resumable"
        if not resumable and not params.get("video_url"):
            return self._error(400, 100, None, "(#100) The parameter video_url is required")
        if resumable and params.get("video_url"):
            return self._error(400, 100, None, "(#100) Either video_url or upload_type")
        offset = params.get("thumb_offset")
        if offset is not None and not offset.isdigit():
            return self._error(400, 1, 2207057, "Thumbnail offset is invalid")
        with self._lock:
            container = Container(id=_digits(17), ig_user_id=user_id, params=params,
                                  created_at=time.time(), resumable=resumable)
            if self._next_end:
                container.end_as = self._next_end.pop(0)
            if not resumable:
                container.ready_at = time.time()  # Meta fetches the URL itself
            self.containers[container.id] = container
        payload = {"id": container.id}
        if resumable:
            base = (self.upload_base_url or request.host_url).rstrip("/")
            payload["uri"] = f"{base}/ig-api-upload/{version}/{container.id}"
        return self._json(payload)

    def _upload(self, request: Request, container_id: str, fault: Fault | None = None,
                **_) -> Response:
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("OAuth "):
            return self._error(400, 190, None, "Invalid OAuth access token - Missing "
                               "Authorization: OAuth header")
        refused = self._auth(authorization[len("OAuth "):])
        if refused:
            return refused
        raw = {name.lower(): value for name, value in request.environ.get("fake.raw_headers", ())}
        try:
            offset = int(raw["offset"])
            file_size = int(raw["file_size"])
        except (KeyError, ValueError):
            return self._error(400, 100, None, "The offset and file_size headers are required")
        with self._lock:
            container = self.containers.get(container_id)
            if container is None or not container.resumable:
                return self._error(400, 100, 33, f"Unsupported post request. Object with ID "
                                   f"'{container_id}' does not exist or is not a resumable upload")
            self._age(container)
            if container.status_code == "EXPIRED":
                return self._error(400, -2, 2207020, "The media has expired")
            if container.file_size is None:
                container.file_size = file_size
                if file_size <= self.keep_bytes_max:
                    container.data = bytearray(file_size)
            if file_size != container.file_size:
                return self._error(400, 100, None, "file_size differs from the upload's")
            if offset < 0 or offset > container.received:
                return self._error(400, -1, 2207053, f"offset {offset} is past the "
                                   f"{container.received} bytes received")
        # Read the body outside the lock, in blocks: memory stays flat whatever the size.
        limit = fault.options.get("after_bytes") if fault and fault.kind == "drop" else None
        position = offset
        stream = request.stream
        try:
            while True:
                block = min(READ_BLOCK, limit - (position - offset)) if limit is not None \
                    else READ_BLOCK
                if block <= 0:
                    break
                data = stream.read(block)
                if not data:
                    break
                if position + len(data) > file_size:
                    return self._error(400, 100, None, "The body goes past file_size")
                with self._lock:
                    if container.data is not None:
                        container.data[position:position + len(data)] = data
                    position += len(data)
                    container.received = max(container.received, position)
        except ClientDisconnected:
            pass
        with self._lock:
            if container.received == container.file_size and container.ready_at is None:
                container.ready_at = time.time()
        return self._json({"success": True, "message": "Upload successful."})

    def _age(self, container: Container) -> None:
        """Move a container along: expiry, then processing (called under the lock)."""
        now = time.time()
        if container.status_code in ("IN_PROGRESS", "FINISHED") and \
                now - container.created_at >= self.container_ttl_seconds:
            container.status_code, container.status = "EXPIRED", "Expired"
        if container.status_code != "IN_PROGRESS" or container.ready_at is None:
            return
        done_by_polls = self.processing_polls is not None and \
            container.polls_in_progress >= self.processing_polls
        done_by_time = self.processing_seconds is not None and \
            now - container.ready_at >= self.processing_seconds
        if done_by_polls or done_by_time:
            container.status_code, container.status = container.end_as
            if container.status_code == "ERROR" and not container.status:
                container.status = "Error: media processing failed"

    def _node(self, request: Request, node_id: str, **_) -> Response:
        refused = self._auth(self._token(request))
        if refused:
            return refused
        fields = self._fields(request)
        with self._lock:
            container = self.containers.get(node_id)
            if container is not None:
                self._age(container)
                values = {"status_code": container.status_code, "status": container.status}
                if container.status_code == "IN_PROGRESS" and container.ready_at is not None:
                    container.polls_in_progress += 1
            elif node_id in self.media:
                values = self.media[node_id]
            else:
                return self._error(400, 100, 33, f"Unsupported get request. Object with ID "
                                   f"'{node_id}' does not exist, cannot be loaded due to missing "
                                   "permissions, or does not support this operation.")
        return self._json({"id": node_id, **{k: values[k] for k in fields if k in values}})

    def _media_publish(self, request: Request, user_id: str, **_) -> Response:
        refused = self._auth(self._token(request))
        if refused:
            return refused
        creation_id = request.form.get("creation_id") or request.args.get("creation_id")
        with self._lock:
            self.publish_calls += 1
            container = self.containers.get(creation_id or "")
            if container is None or container.ig_user_id != user_id:
                return self._error(400, 100, 33, f"Unsupported post request. Object with ID "
                                   f"'{creation_id}' does not exist")
            self._age(container)
            if container.status_code == "PUBLISHED":
                return self._error(400, 100, None, "(#100) The media has already been published")
            if container.status_code == "EXPIRED":
                return self._error(400, -2, 2207020, "The media has expired")
            if container.status_code != "FINISHED":
                return self._error(400, 9007, 2207027, "Media ID is not available: the media is "
                                   "not ready for publishing, please wait for a moment")
            if self.quota_usage(user_id) >= self.quota_total:
                return self._error(400, 9, 2207042, "You have reached the maximum number of posts "
                                   "that is allowed to be published by Content Publishing API.")
            media_id = "17" + _digits(16)
            shortcode = "".join(random.choices(string.ascii_letters + string.digits + "_-", k=11))
            container.status_code, container.status = "PUBLISHED", "Published"
            container.media_id = media_id
            self.media[media_id] = {"shortcode": shortcode, "media_type": "VIDEO",
                                    "permalink": f"https://www.instagram.com/reel/{shortcode}/"}
            self.published.append({"media_id": media_id, "container_id": container.id,
                                   "ig_user_id": user_id,
                                   "caption": container.params.get("caption", ""),
                                   "published_at": time.time()})
        return self._json({"id": media_id})


def _drain(request: Request) -> None:
    """Read and discard a body we answer without using (a big upload must not reset)."""
    try:
        while request.stream.read(READ_BLOCK):
            pass
    except ClientDisconnected:
        pass


def _trace_id() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=11))


def main() -> None:
    """Serve the fake on a loopback port until Ctrl-C (a local live-mode demo)."""
    import argparse

    from tests.fakes import FakeServer

    parser = argparse.ArgumentParser(description="A local Instagram Graph API for live mode.")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--processing-seconds", type=float, default=5.0)
    args = parser.parse_args()
    fake = InstagramFake(processing_polls=None, processing_seconds=args.processing_seconds)
    server = FakeServer(fake, port=args.port).start()
    print(f"Instagram fake: INSTAGRAM_GRAPH_URL={server.url}/v24.0 (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
        print(f"published {len(fake.published)} post(s)")


if __name__ == "__main__":
    main()
