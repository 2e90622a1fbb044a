"""Sentry's ingest endpoint, as the SDK speaks to it: `POST /api/<project>/envelope/`, a body
(gzip-compressed or not) of newline-separated JSON: the envelope header, then for each item its
header and its payload (`length` bytes when the header gives one, else up to the newline).

A DSN `http://<key>@127.0.0.1:<port>/<project>` sends a process's events here; the fake keeps
each envelope's raw text (to look for secrets anywhere in it) and its items.
"""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response


@dataclass
class Envelope:
    text: str  # the decoded body, every byte the SDK sent
    items: list[tuple[dict, dict]] = field(default_factory=list)  # (item header, payload)


def parse_envelope(body: bytes) -> Envelope:
    """An envelope body split into its items (payloads that are not JSON are skipped)."""
    envelope = Envelope(body.decode("utf-8", errors="replace"))
    _, _, rest = body.partition(b"\n")
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].removeprefix(b"\n")
        try:
            envelope.items.append((header, json.loads(payload)))
        except ValueError:
            pass
    return envelope


class SentryIngest:
    """A WSGI app that accepts envelopes for any project and keeps them."""

    def __init__(self):
        self.envelopes: list[Envelope] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.method != "POST" or not request.path.endswith("/envelope/"):
            return Response("not found", 404)(environ, start_response)
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with self._lock:
            self.envelopes.append(parse_envelope(body))
        return Response(json.dumps({"id": uuid.uuid4().hex}), 200,
                        content_type="application/json")(environ, start_response)

    def events(self) -> list[dict]:
        """Every error event received so far (transactions and sessions left out)."""
        with self._lock:
            return [payload for envelope in self.envelopes for header, payload in envelope.items
                    if header.get("type") == "event"]

    def raw(self) -> str:
        """Everything received, as text."""
        with self._lock:
            return "\n".join(envelope.text for envelope in self.envelopes)
