"""Security headers on every response.

The Content-Security-Policy allows scripts, styles, fonts and images from this site only: no
inline script or style, no eval (htmx's hx-on and inline indicator styles are off in
base.html's htmx-config), nothing framed. Every response but the static files is `no-store`:
pages and API answers carry a user's data and must not stay in a shared or back-button cache.
"""

from __future__ import annotations

import re

from flask import Flask, request

from .errors import InvalidInput

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
))


# Our request bodies nest four levels at most; Python's JSON parser overflows its stack near a
# thousand (a RecursionError, a 500). Deeper bodies are refused before they are parsed.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays/objects deeper than `limit` (strings don't count)."""
    depth = 0
    for char in _JSON_STRING.sub(b'""', raw).translate(None, _NOT_BRACKETS):
        depth += 1 if char in b"[{" else -1
        if depth > limit:
            return True
    return False


def init_app(app: Flask) -> None:
    """Register the hooks: refuse over-deep JSON bodies, set the headers on every response."""

    @app.before_request
    def refuse_deep_json():
        if request.is_json and json_too_deep(request.get_data(cache=True)):
            raise InvalidInput.field("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.endpoint != "static":
            headers["Cache-Control"] = "no-store"
        return response
