"""A tiny platform with the shape every live protocol has, and its live client: for testing the
pipeline (publishing/pipeline.py) apart from any real platform's protocol.

The platform (`CountingPlatform`, a WSGI app): a quota check, an upload object that takes its
bytes in chunks at an offset and says how many it holds, processing that takes a given number of
polls, a publish call, and the post's URL. It counts every publish it performs, so a test can
assert "published exactly once". Tests can make any request wait until released (`hold`), to
kill a worker inside that step, and make calls fail with an error code (`fail_next`).

The client (`CountingClient`) follows the contract of providers/base.py: it saves each platform
id with `checkpoint` before the next call that depends on it, resumes an upload at the offset the
platform reports, marks the publish call before sending it, and answers `reconcile` by asking.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field

import httpx
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from dashboard.publishing.outcome import PlatformOutcome
from dashboard.publishing.providers.base import ErrorRule, LiveClient, ProviderError, StepResult

# The platform's error codes, as data: what each means for the pipeline.
ERRORS = {
    "busy": ErrorRule("transient", "the platform is busy; try later"),
    "bad_token": ErrorRule("auth", "the access token was refused"),
    "rejected": ErrorRule("permanent", "the platform refused the video"),
    "expired": ErrorRule("transient", "the upload object expired", restart=True),
}


@dataclass
class Hold:
    """A request that waits until the test releases it. `published` decides, for a held
    publish call, whether the platform goes on to publish once released (the answer is lost)."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    published: bool = True
    skip: int = 0  # let this many requests of the key through first


class CountingPlatform:
    """The platform's state and its WSGI app (`platform.app`)."""

    def __init__(self, processing_polls: int = 2, processing_seconds: float | None = None):
        self.processing_polls = processing_polls
        # When set, processing lasts this long from the last byte (instead of a number of polls).
        self.processing_seconds = processing_seconds
        self.lock = threading.Lock()
        self.uploads: dict[str, dict] = {}
        self.posts: dict[str, str] = {}  # post id -> upload id
        self.published: list[str] = []  # upload ids, once per publish performed
        self.requests: list[str] = []  # "<step key>" per request received
        self.bytes_received = 0
        self.poll_order: list[str] = []  # upload id per processing poll, in arrival order
        self.holds: dict[str, Hold] = {}
        self.failures: dict[str, list[tuple[str, float | None]]] = {}
        self.hang_after_publish: float = 0.0  # seconds to sit on a publish's answer
        self.status_unavailable = False  # GET /uploads/<id> answers 503 (reconcile cannot tell)
        self.on_request = None  # callback(step_key), run before the request is handled
        self._ids = itertools.count(1)
        self.url_map = Map([
            Rule("/quota", endpoint="prepare", methods=["POST"]),
            Rule("/uploads", endpoint="create", methods=["POST"]),
            Rule("/uploads/<upload_id>", endpoint="chunk", methods=["PUT"]),
            Rule("/uploads/<upload_id>", endpoint="upload_status", methods=["GET"]),
            Rule("/uploads/<upload_id>/processing", endpoint="processing", methods=["GET"]),
            Rule("/uploads/<upload_id>/publish", endpoint="finalize", methods=["POST"]),
            Rule("/posts/<post_id>", endpoint="confirm", methods=["GET"]),
        ])

    # Test controls ----------------------------------------------------------------------------

    def hold(self, key: str, published: bool = True, skip: int = 0) -> Hold:
        """The next request of `key` (prepare, create, chunk, processing, finalize, confirm),
        after `skip` others, waits until `.release` is set; `.entered` is set when it arrives."""
        hold = Hold(published=published, skip=skip)
        self.holds[key] = hold
        return hold

    def fail_next(self, key: str, code: str, retry_after: float | None = None) -> None:
        """The next request of `key` fails with the platform error `code`."""
        self.failures.setdefault(key, []).append((code, retry_after))

    def publishes_of(self, upload_id: str | None = None) -> int:
        """How many publishes the platform performed (of one upload, or in all)."""
        return len(self.published) if upload_id is None else self.published.count(upload_id)

    def published_posts(self) -> list[str]:
        """The post ids the platform published, oldest first."""
        return list(self.posts)

    # The app ----------------------------------------------------------------------------------

    def app(self, environ, start_response):
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
        except Exception:
            return Response("not found", status=404)(environ, start_response)
        with self.lock:
            self.requests.append(endpoint)
        if self.on_request is not None:
            self.on_request(endpoint)
        response = self.handle(endpoint, request, **args)
        return response(environ, start_response)

    def handle(self, endpoint: str, request: Request, **args) -> Response:
        with self.lock:
            hold = self.holds.get(endpoint)
            if hold is not None and hold.skip > 0:
                hold.skip -= 1
                hold = None
            elif hold is not None:
                del self.holds[endpoint]
        if hold is not None:
            hold.entered.set()
            hold.release.wait(60)
            if endpoint == "finalize" and hold.published:
                self._publish(args["upload_id"])
            return _error("busy", 503)  # whoever asked is gone
        failures = self.failures.get(endpoint)
        if failures:
            code, retry_after = failures.pop(0)
            headers = {"Retry-After": str(retry_after)} if retry_after else {}
            return _error(code, 400 if ERRORS[code].kind == "permanent" else 503, headers)
        return getattr(self, f"_{endpoint}")(request, **args)

    def _prepare(self, request):
        return _json({"ok": True})

    def _create(self, request):
        size = request.get_json()["size"]
        upload_id = f"up-{next(self._ids)}"
        with self.lock:
            self.uploads[upload_id] = {"size": size, "received": 0, "polls": 0, "post_id": None}
        return _json({"id": upload_id})

    def _chunk(self, request, upload_id):
        upload = self.uploads.get(upload_id)
        if upload is None:
            return _error("expired", 404)
        offset = int(request.headers["Upload-Offset"])
        if offset != upload["received"]:
            return _json({"error": {"code": "offset_mismatch", "received": upload["received"]}}, 409)
        data = request.get_data()
        with self.lock:
            upload["received"] += len(data)
            self.bytes_received += len(data)
            if upload["received"] >= upload["size"]:
                upload["complete_at"] = time.monotonic()
        return _json({"received": upload["received"]})

    def _upload_status(self, request, upload_id):
        if self.status_unavailable:
            return _error("busy", 503)
        upload = self.uploads.get(upload_id)
        if upload is None:
            return _error("expired", 404)
        return _json({"received": upload["received"], "post_id": upload["post_id"],
                      "ready": upload["polls"] >= self.processing_polls})

    def _processing(self, request, upload_id):
        upload = self.uploads[upload_id]
        with self.lock:
            self.poll_order.append(upload_id)
            upload["polls"] += 1
            if self.processing_seconds is not None:
                ready = time.monotonic() - upload["complete_at"] >= self.processing_seconds
            else:
                ready = upload["polls"] > self.processing_polls
        return _json({"status": "ready" if ready else "processing"})

    def _finalize(self, request, upload_id):
        post_id = self._publish(upload_id)
        if self.hang_after_publish:
            time.sleep(self.hang_after_publish)
        return _json({"post_id": post_id}, headers={"X-Trace-Id": f"trace-{post_id}"})

    def _confirm(self, request, post_id):
        return _json({"url": f"https://counting.example/p/{post_id}"})

    def _publish(self, upload_id: str) -> str:
        with self.lock:
            post_id = f"post-{next(self._ids)}"
            self.published.append(upload_id)
            self.posts[post_id] = upload_id
            self.uploads[upload_id]["post_id"] = post_id
        return post_id


def _json(body, status: int = 200, headers=None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def _error(code: str, status: int, headers=None) -> Response:
    return _json({"error": {"code": code, "message": ERRORS[code].meaning,
                            "trace": f"trace-{code}"}}, status, headers)


class CountingClient(LiveClient):
    """The live client of the counting platform (registered for a platform by the tests)."""

    platform = "tiktok"
    name = "counting_fake"
    base_url = "http://127.0.0.1:9"  # set by the test to its FakeServer's URL
    chunk_size = 64 * 1024
    poll_wait = 0.2  # seconds between processing polls

    def _call(self, method: str, path: str, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._credentials['access_token']}",
                   **kw.pop("headers", {})}
        try:
            response = self.http.request(method, f"{self.base_url}{path}", headers=headers, **kw)
        except httpx.TimeoutException:
            # Only the publish call's effect may have happened without its answer.
            kind = "unknown" if path.endswith("/publish") else "transient"
            raise ProviderError(f"timed out waiting for {path}", kind=kind) from None
        except httpx.TransportError:
            raise ProviderError(f"could not reach the platform for {path}", kind="transient") from None
        if response.status_code >= 400 and response.status_code != 409:
            error = response.json()["error"]
            rule = ERRORS.get(error["code"], ErrorRule("transient", "unexpected"))
            retry_after = response.headers.get("Retry-After")
            raise ProviderError.from_rule(rule, error["message"], code=error["code"],
                                          trace_id=error.get("trace"), status=response.status_code,
                                          retry_after=float(retry_after) if retry_after else None)
        return response

    def prepare(self, job, state, checkpoint):
        self._call("POST", "/quota")
        return StepResult(state, "upload", details={"quota": "ok"})

    def upload_video(self, job, state, checkpoint):
        if "upload_id" not in state:
            created = self._call("POST", "/uploads", json={"size": job.media.size}).json()
            state["upload_id"] = created["id"]
            checkpoint({"upload_id": created["id"]})
        upload_id = state["upload_id"]
        # Resume where the platform says it is, whatever we saved.
        offset = self._call("GET", f"/uploads/{upload_id}").json()["received"]
        size = job.media.size
        while offset < size:
            length = min(self.chunk_size, size - offset)
            body = b"".join(job.media.read_range(offset, length))
            answer = self._call("PUT", f"/uploads/{upload_id}", content=body,
                                headers={"Upload-Offset": str(offset)}).json()
            offset = answer["received"]
            state["offset"] = offset
            checkpoint({"offset": offset})
        return StepResult(state, "processing", details={"upload_id": upload_id, "bytes": size})

    def wait_for_processing(self, job, state, checkpoint):
        status = self._call("GET", f"/uploads/{state['upload_id']}/processing").json()["status"]
        if status == "processing":
            return StepResult(state, "processing", wait_seconds=self.poll_wait,
                              details={"status": status})
        return StepResult(state, "finalize", details={"status": status})

    def publish_post(self, job, state, checkpoint):
        if state.get("publish_sent"):
            post_id = self._call("GET", f"/uploads/{state['upload_id']}").json()["post_id"]
            if post_id is None:
                raise ProviderError("the publish call was sent and its answer lost", kind="unknown")
        else:
            checkpoint({"publish_sent": True})
            answer = self._call("POST", f"/uploads/{state['upload_id']}/publish")
            post_id = answer.json()["post_id"]
            state["trace"] = answer.headers.get("X-Trace-Id")
        state["post_id"] = post_id
        return StepResult(state, "confirm", details={"post_id": post_id},
                          trace_id=state.get("trace"))

    def confirm(self, job, state, checkpoint):
        url = self._call("GET", f"/posts/{state['post_id']}").json()["url"]
        return StepResult(state, None, details={"url": url},
                          outcome=PlatformOutcome(True, external_post_id=state["post_id"],
                                                  external_url=url))

    def reconcile(self, job, state):
        upload_id = state.get("upload_id")
        if upload_id is None:
            return PlatformOutcome(False, error_message="nothing was uploaded", error_kind="transient")
        upload = self._call("GET", f"/uploads/{upload_id}").json()
        if upload["post_id"]:
            url = f"https://counting.example/p/{upload['post_id']}"
            return PlatformOutcome(True, external_post_id=upload["post_id"], external_url=url)
        return PlatformOutcome(False, error_message="the platform holds the upload, unpublished",
                               error_kind="transient")
