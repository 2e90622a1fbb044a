"""The sign-in throttle across real processes: a gunicorn with two workers (each its own memory)
behind a trusted proxy. A concurrent burst of guesses from one client gets no more than the
limit in all; another client behind the same proxy keeps its own limit."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from conftest import PASSWORD
from server_support import GunicornProcess, process_env

LIMIT = 3


def sign_in(server: GunicornProcess, email: str, password: str, client_ip: str) -> int:
    """GET the form (for its CSRF token and session cookie), then POST it: the answer's status."""
    forwarded = {"X-Forwarded-For": client_ip}
    status, headers, body = server.request("GET", "/login", headers=forwarded)
    assert status == 200
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', body).group(1).decode()
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    form = urllib.parse.urlencode({"csrf_token": token, "email": email, "password": password})
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:  # not urllib: it would follow the success's redirect
        connection.request("POST", "/login", form, {
            **forwarded, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_burst_across_two_gunicorn_workers_gets_no_more_guesses_than_the_limit(
        app, db, database_uri, make_user, tmp_path):
    email = make_user("viewer").email
    db.session.remove()
    env = process_env(app, database_uri, TRUSTED_PROXIES=1, LOGIN_THROTTLE_MAX_FAILURES=LIMIT,
                      GUNICORN_WORKER_CONNECTIONS=1)  # one connection at a time: both workers serve
    with GunicornProcess(env, tmp_path / "gunicorn.log", workers=2) as server, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: sign_in(server, email, "not the password", "203.0.113.7"),
                                 range(16)))
        assert statuses.count(400) <= LIMIT and statuses.count(429) >= 16 - LIMIT, statuses
        assert sign_in(server, email, PASSWORD, "203.0.113.7") == 429  # the right password too
        # Another client behind the same proxy: its own limit (the real address counts).
        assert sign_in(server, email, PASSWORD, "203.0.113.8") == 302
