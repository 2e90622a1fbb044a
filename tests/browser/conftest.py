"""Browser tests: the real app served in a background thread, driven by Debian's Chromium.

The server lives for the whole package on 127.0.0.1 (a free port in 5600-5699) with its own
database: a temporary SQLite file built by the migrations (`flask db upgrade`), or DATABASE_URL's
PostgreSQL database (schema by create_all, like the rest of the suite) emptied before and after
every test. CSRF stays on, as in production. Tests switch the simulator by changing the live app's
config (the engine reads it at each publish): `live.simulator(failure_rate=1.0)`.

Chromium is never downloaded: the tests use /usr/bin/chromium and skip with a reason when it is
absent, except in CI (CI=true), where .ci/run installs it and its absence is a failure.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from werkzeug.security import generate_password_hash
from werkzeug.serving import WSGIRequestHandler, make_server

from dashboard import accounts, clips, create_app, credentials, users
from dashboard.config import normalise_database_url
from dashboard.extensions import db
from dashboard.publishing.models import PublishRequest
from dashboard.publishing.service import publish_clip
from dashboard.schemas import AccountIn, ClipIn

from conftest import TEST_CREDENTIALS_KEY, _empty_all_tables, media_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"]
PORTS = range(5600, 5700)
ADMIN_EMAIL = "admin@example.com"
PASSWORD = "correct horse battery"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
# The simulator answers in 0.1-0.2 s: long enough for the spinner to show, short for the suite.
SIMULATOR_DEFAULTS = {"SIMULATOR_MIN_DELAY": 0.1, "SIMULATOR_MAX_DELAY": 0.2,
                      "SIMULATOR_FAILURE_RATE": 0.0, "SIMULATOR_SEED": None,
                      # forced failures are plain failures: the page offers Retry
                      "SIMULATOR_FAILURE_KINDS": ("permanent",)}

CHROMIUM_MISSING = "Debian's chromium is not installed: apt-get install chromium; .ci/run installs it"

# Auto-waiting assertions give up after 5 s (the default too); the app answers in well under one.
expect.set_options(timeout=5_000)


class QuietHandler(WSGIRequestHandler):
    """No access log line per request (errors are still logged)."""

    def log_request(self, code="-", size="-"):
        pass


@contextmanager
def _logging_kept():
    """Alembic's env.py runs logging.fileConfig, which would silence the loggers of later tests."""
    manager = logging.root.manager
    disabled = {name: logger.disabled for name, logger in manager.loggerDict.items()
                if isinstance(logger, logging.Logger)}
    root_level, root_handlers = logging.root.level, list(logging.root.handlers)
    try:
        yield
    finally:
        for name, logger in manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.disabled = disabled.get(name, False)
        logging.root.setLevel(root_level)
        logging.root.handlers[:] = root_handlers


def _build_schema(app, migrate: bool) -> None:
    with app.app_context():
        if migrate:
            import flask_migrate

            with _logging_kept(), warnings.catch_warnings():
                # migrations/env.py (Flask-Migrate's template) calls the deprecated get_engine().
                warnings.filterwarnings("ignore", "'get_engine' is deprecated", DeprecationWarning)
                flask_migrate.upgrade()
        else:
            db.create_all()
        _empty_all_tables()


def _serve(app):
    """Bind the first free port of PORTS; return the server."""
    last_error = None
    for port in PORTS:
        try:
            return make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
        except (OSError, SystemExit) as exc:  # taken (werkzeug exits on EADDRINUSE): try the next one
            last_error = exc
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}: {last_error}")


@dataclass
class LiveServer:
    """The running app: its URL, the app object (config changes apply at once) and helpers."""

    app: object
    url: str

    def simulator(self, failure_rate: float | None = None, **settings) -> None:
        """Change the simulator for the next publishes, e.g. simulator(failure_rate=1.0)."""
        if failure_rate is not None:
            settings["SIMULATOR_FAILURE_RATE"] = failure_rate
        self.app.config.update(settings)

    @contextmanager
    def db(self):
        """The database session of the live app, for arranging data and checking it."""
        with self.app.app_context():
            yield db
            db.session.remove()

    def create_user(self, email: str, role: str):
        """A user with PASSWORD (a cheap hash: scrypt costs ~0.1 s a user)."""
        cheap = partial(generate_password_hash, method="pbkdf2:sha256:1000")
        with self.db() as session_db, mock.patch.object(users, "generate_password_hash", cheap):
            user = users.create_user(session_db, email, PASSWORD, role)
            return user.id

    def add_clip(self, title: str = "Launch teaser", **fields):
        """A clip made by the service (with its ledger event); returns its id."""
        values = {"title": title, "media": "https://cdn.example.com/launch.mp4",
                  "duration_seconds": 30.0, **fields}
        with self.db() as session_db:
            return clips.create_clip(session_db, ClipIn(**values)).id

    def add_account(self, platform: str = "instagram", handle: str = "acme.sports", **fields):
        """An account made by the service (no credentials: the simulator publishes); returns its id."""
        with self.db() as session_db:
            return accounts.create_account(
                session_db, AccountIn(platform=platform, handle=handle, **fields)).id

    def set_credentials(self, account_id, values: dict[str, str]) -> None:
        """Store (encrypted) credentials for an account, as the credentials form does."""
        with self.db() as session_db:
            credentials.set_account_credentials(session_db, account_id, values)

    def publish(self, clip_id, account_id=None, platform: str = "instagram", fail: bool = False):
        """One publish through the engine, forced to succeed or fail; returns the result."""
        keys = ("SIMULATOR_FAILURE_RATE", "SIMULATOR_MIN_DELAY", "SIMULATOR_MAX_DELAY")
        previous = {key: self.app.config[key] for key in keys}
        # No delay: this arranges data, nobody is watching a spinner.
        self.simulator(failure_rate=1.0 if fail else 0.0, SIMULATOR_MIN_DELAY=0.0,
                       SIMULATOR_MAX_DELAY=0.0)
        try:
            with self.db() as session_db:
                return publish_clip(session_db, PublishRequest(
                    clip_id=clip_id, platform=platform, social_account_id=account_id))
        finally:
            self.app.config.update(previous)

    def reset(self) -> None:
        """Empty tables and the queue, default simulator, forget failed sign-ins."""
        self.app.config.update(SIMULATOR_DEFAULTS)
        self.app.extensions["huey"].flush()
        with self.app.app_context():
            _empty_all_tables()


@pytest.fixture(scope="package")
def live_server(tmp_path_factory):
    """The app in a thread for this package's tests; CSRF on, no TESTING flag: as deployed."""
    database_url = os.environ.get("DATABASE_URL")
    migrate = not database_url
    if migrate:
        database_url = f"sqlite:///{tmp_path_factory.mktemp('browser-db') / 'live.sqlite3'}"
    # The task queue too is the test run's own, never the instance folder's.
    queue_url = (os.environ.get("TEST_QUEUE_URL")
                 or f"sqlite:///{tmp_path_factory.mktemp('browser-queue') / 'queue.sqlite3'}")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "CREDENTIALS_KEYS": [TEST_CREDENTIALS_KEY],
        "QUEUE_URL": queue_url,
        **media_config(tmp_path_factory.mktemp("browser-media")),
        **SIMULATOR_DEFAULTS,
    })
    _build_schema(app, migrate)
    server = _serve(app)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    live = LiveServer(app, f"http://127.0.0.1:{server.server_port}")
    try:
        yield live
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            _empty_all_tables()
            db.engine.dispose()


@pytest.fixture
def live(live_server):
    """The live server with empty tables and an admin user; emptied again afterwards."""
    live_server.reset()
    live_server.create_user(ADMIN_EMAIL, "admin")
    yield live_server
    live_server.reset()


@pytest.fixture
def live_worker(live):
    """A queue worker (2 threads) in this process running the live app's tasks: retries and
    cross-posts go through the queue. Stopped after the test."""
    from queue_support import InProcessWorker

    worker = InProcessWorker(live.app, 2).start()
    yield worker
    worker.stop()


@pytest.fixture(scope="package")
def browser():
    """Debian's Chromium, headless; a skip when it is absent, a failure in CI (which installs it)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing. {CHROMIUM_MISSING}", pytrace=False)
        pytest.skip(CHROMIUM_MISSING)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, live):
    """Open pages on the live server, each in a fresh browser context; all closed after the test.

    `open_page(width)` is a page `width` px wide signed in as the admin; `email=` signs in as
    someone else, `email=None` not at all; other keywords go to Chromium's new_context
    (`java_script_enabled=False`, `timezone_id=...`). The test's own injected scripts (axe-core,
    measuring functions) are inline, which the app's Content-Security-Policy rightly refuses, so
    the policy is bypassed unless `bypass_csp=False`; the app's pages are unchanged.
    """
    contexts = []

    def open_one(width: int = 1280, *, email: str | None = ADMIN_EMAIL, **options) -> Page:
        context = browser.new_context(**{"base_url": live.url, "bypass_csp": True,
                                         "viewport": {"width": width, "height": 800}, **options})
        contexts.append(context)
        page = context.new_page()
        if email is not None:
            sign_in(page, email)
        return page

    yield open_one
    for context in contexts:
        context.close()


class ClipPage(NamedTuple):
    """A signed-in page open on a clip's page, and that clip's id."""

    page: Page
    clip_id: uuid.UUID


@pytest.fixture
def clip_page(live, open_page):
    """`clip_page(width)`: the clip "Spring launch", the Instagram account @acme.sports, and a page
    `width` px wide signed in as the admin on the clip's page (keywords as for `open_page`)."""

    def open_clip(width: int = 1280, **options) -> ClipPage:
        clip_id = live.add_clip("Spring launch")
        live.add_account("instagram", "acme.sports")
        page = open_page(width, **options)
        page.goto(f"/clips/{clip_id}")
        return ClipPage(page, clip_id)

    return open_clip


@pytest.fixture
def page(open_page, request) -> Page:
    """A fresh browser context (no cookies) on the live server, signed out; closed after the test.

    The app's Content-Security-Policy applies, so the pages are tested as users get them; a
    module whose test code evaluates strings in the page (wait_for_function) sets
    `BYPASS_CSP = True` for its own tooling.
    """
    bypass = getattr(request.module, "BYPASS_CSP", False)
    page = open_page(email=None, viewport={"width": 1280, "height": 860}, bypass_csp=bypass)
    refused = []  # Chromium reports what the policy blocked on the console
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    yield page
    page.context.close()
    assert bypass or not refused, f"the Content-Security-Policy blocked something: {refused}"


def sign_in(page: Page, email: str = ADMIN_EMAIL, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person would, and wait for the home page."""
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(r"/$"))


@pytest.fixture
def admin_page(page) -> Page:
    """`page`, signed in as the admin."""
    sign_in(page)
    return page


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot under test-output/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
