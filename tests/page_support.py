"""Helpers for the page tests (tests/web): reading what the server-rendered pages answer."""

from __future__ import annotations

import re
from collections.abc import Callable

HTMX = {"HX-Request": "true"}


def field_error(html: str, field_id: str) -> str:
    """The inline error shown under the field `field_id` ("" when there is none)."""
    match = re.search(rf'<small id="{field_id}-error"[^>]*>(.*?)</small>', html, re.S)
    return match.group(1).strip() if match else ""


def walk_pages(client, url: str, next_id: str, row_ids: Callable[[str], list[str]],
               kept: str) -> tuple[list[str], int]:
    """Follow a keyset-paginated list from `url` through its `next_id` links, as htmx fragments,
    checking that every link keeps the filter `kept` and carries a cursor.
    Returns (the row ids of every page in order, the number of pages)."""
    seen: list[str] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        html = client.get(next_url, headers=HTMX).get_data(as_text=True)
        seen += row_ids(html)
        pages += 1
        link = re.search(rf'id="{next_id}"[^>]*href="([^"]+)"', html)
        next_url = link.group(1).replace("&amp;", "&") if link else None
        if next_url:
            assert kept in next_url and "cursor=" in next_url
    return seen, pages
