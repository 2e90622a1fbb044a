"""Security headers on every response: a strict CSP (scripts from this site only, none inline),
nosniff, framing refused, a Referrer-Policy, and no-store on pages and the API; and no page
carries an inline script or event handler that the CSP would block."""

from __future__ import annotations

import re

import pytest

PAGES = ["/", "/clips", "/history", "/ledger", "/accounts/", "/schedule", "/tokens/", "/profile",
         "/users/"]


def assert_secured(response, cached: bool = False):
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    if not cached:
        assert headers["Cache-Control"] == "no-store"


def assert_no_inline_script(html: str):
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    assert "hx-on" not in html


@pytest.mark.parametrize("url", PAGES)
def test_every_page_is_secured_and_has_no_inline_script(client, login, url):
    login("admin")
    response = client.get(url)
    assert response.status_code == 200
    assert_secured(response)
    assert_no_inline_script(response.get_data(as_text=True))


def test_the_clip_page_and_a_new_token_have_no_inline_script(client, login, make_clip):
    login("admin")
    clip = make_clip()
    assert_no_inline_script(client.get(f"/clips/{clip.id}").get_data(as_text=True))
    created = client.post("/tokens/", data={"name": "ci"})
    html = created.get_data(as_text=True)
    assert "new-token-value" in html
    assert_secured(created)
    assert_no_inline_script(html)


def test_sign_in_errors_api_and_static_are_secured(client, api_headers):
    assert_secured(client.get("/login"))
    assert_secured(client.get("/no-such-page"))
    assert_secured(client.get("/api/clips", headers=api_headers("viewer")))
    assert_secured(client.get("/api/clips"))  # 401
    assert_secured(client.get("/healthz"))
    assert_secured(client.get("/openapi.json"))
    assert_secured(client.delete("/login"))  # 405
    assert_secured(client.post("/api/clips", data="[" * 100, content_type="application/json",
                               headers=api_headers("editor")))  # 400 before parsing
    for path in ("/static/app.js", "/static/app.css", "/static/favicon.svg", "/static/no-such-file.js"):
        static = client.get(path)
        assert_secured(static, cached=True)
        assert static.headers.get("Cache-Control") != "no-store"
