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
# Set on every response unless its view set its own: (lower-case name, name, value), built once.
SECURITY_HEADERS = tuple((name.lower(), name, value) for name, value in (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
))


# Our request bodies nest four levels at most; Python's JSON parser overflows its stack near a
# thousand (a RecursionError, a 500). Deeper bodies are refused before they are parsed.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays/objects deeper than `limit` (strings don't count)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # nesting needs at least as many opening brackets as levels
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
        # One pass over the few headers the view set (Headers.setdefault looks each name up
        # with an exception for every one that is missing).
        present = {name.lower() for name in headers.keys()}
        headers.extend([(name, value) for lower, name, value in SECURITY_HEADERS if lower not in present])
        if request.endpoint != "static":
            if "cache-control" in present:
                headers["Cache-Control"] = "no-store"
            else:
                headers.add("Cache-Control", "no-store")
        return response
