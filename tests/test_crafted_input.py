"""No 500 on crafted input: cursors that decode to nested arrays or dates out of range,
`since`/`until`/`to`/`week` at the ends of the calendar, JSON nested a thousand deep. Each is a
400 problem+json naming the field for the API, and for a page's filter the message next to its
field (a page's crafted cursor is a 400 page)."""

from __future__ import annotations

import base64
import json
import re

import pytest


def cursor_of(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


CURSORS = [
    cursor_of([["2026-01-01T00:00:00+00:00"], "00000000-0000-0000-0000-000000000000"]),
    cursor_of([[[[]]], [[]]]),
    cursor_of(["9999-12-31T23:59:59+00:00", "00000000-0000-0000-0000-000000000000"]),
    cursor_of(["0001-01-01T00:00:00+14:00", "00000000-0000-0000-0000-000000000000"]),
    cursor_of(["2026-01-01T00:00:00+00:00", ["not", "a", "uuid"]]),
    cursor_of({"a": 1}),
    cursor_of([1, 2, 3]),
    cursor_of("x" * 10),
    "%%%%",
]


@pytest.mark.parametrize("cursor", CURSORS)
def test_a_crafted_cursor_is_a_400_naming_cursor(client, api_headers, login, cursor):
    response = client.get("/api/ledger", query_string={"cursor": cursor}, headers=api_headers("viewer"))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("cursor", CURSORS)
@pytest.mark.parametrize("page", ["/ledger", "/history", "/clips"])
def test_a_crafted_cursor_on_a_page_is_a_400(client, login, page, cursor):
    login("viewer")
    assert client.get(page, query_string={"cursor": cursor}).status_code == 400


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+14:00",
                                   "9999-12-31T23:59:59-14:00", "0001-01-01", "9999-12-31"])
def test_api_dates_at_the_ends_of_the_calendar(client, api_headers, name, value):
    response = client.get("/api/ledger", query_string={name: value}, headers=api_headers("viewer"))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["errors"][0]["field"] == name


def assert_inline_error(response, field_id: str):
    """A page's filter refused with 200 and the message next to its field (htmx swaps only 2xx)."""
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    slot = re.search(rf'<small id="{field_id}-error" class="field-error">([^<]*)</small>', html)
    assert slot and "must be between 1900-01-01 and 9998-12-31" in slot.group(1), html[:500]


@pytest.mark.parametrize("page", ["/ledger", "/history"])
@pytest.mark.parametrize("name", ["from", "to"])
@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01"])
def test_page_date_filters_at_the_ends_of_the_calendar(client, login, page, name, value):
    login("viewer")
    assert_inline_error(client.get(page, query_string={name: value}), name)


@pytest.mark.parametrize("week", ["9999-12-31", "0001-01-01", "9999-12-27"])
def test_the_schedule_week_at_the_ends_of_the_calendar(client, login, week):
    login("viewer")
    assert_inline_error(client.get("/schedule", query_string={"week": week}), "week")


@pytest.mark.parametrize("url", ["/publishing/publish", "/publishing/schedule", "/api/clips",
                                 "/publishing/batches"])
def test_json_nested_a_thousand_deep_is_a_400(client, api_headers, url):
    body = "[" * 1000 + "]" * 1000
    response = client.post(url, data=body, content_type="application/json",
                           headers=api_headers("editor"))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"][0]["field"] == "body"
    deep = '{"metadata": ' * 1000 + "1" + "}" * 1000
    response = client.post(url, data=deep, content_type="application/json", headers=api_headers("editor"))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["errors"][0]["field"] == "body"
