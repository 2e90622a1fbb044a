"""Page or fragment: the one place that knows how pages answer htmx.

Every page URL answers a browser with the whole page and htmx with the fragment it swaps
(contact-app style), decided by `wants_fragment()`. The helpers here build the htmx-specific
answers (retargeting a refused form, sending the browser elsewhere) so that views say what they
mean instead of spelling headers.
"""

from __future__ import annotations

from flask import Flask, redirect
from htmx_flask import request  # flask's request, typed with its .htmx


def wants_fragment() -> bool:
    """An htmx request that swaps part of the page (a history restore needs the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def retarget(body: str, target: str, swap: str = "outerHTML", status: int = 200):
    """Swap `body` into `target` instead of the element's own target.

    Refused forms come back with 200 and this, since htmx 2 does not swap 4xx answers.
    """
    return body, status, {"HX-Retarget": target, "HX-Reswap": swap}


def go_to(url: str):
    """Send the browser to `url`: htmx follows HX-Redirect, a plain form post a 303."""
    if wants_fragment():
        return "", 204, {"HX-Redirect": url}
    return redirect(url, 303)


def init_app(app: Flask) -> None:
    """Pages and their fragments share URLs: caches must keep them apart (Vary: HX-Request)."""

    @app.after_request
    def vary_on_htmx(response):
        if request.blueprint not in (None, "api", "publishing"):
            response.vary.add("HX-Request")
        return response
