"""Fixtures shared by every test.

The suite runs on SQLite by default and on PostgreSQL when DATABASE_URL names one. The schema
is built once per run with create_all (test_migrations.py checks that the migrations produce the
same schema) and every table is emptied after each test.

The app is built once per distinct configuration and shared by the tests that use it (building
one costs ~0.1 s, most of it werkzeug compiling the URL rules): before each test its settings
are restored to what they were when it was built and what tests added to `app.extensions` is
dropped. The task queue is one SQLite file per run, or the storage TEST_QUEUE_URL names (e.g.
redis://127.0.0.1:6379/15), flushed before and after each test.
"""

from __future__ import annotations

import copy
import os
import uuid
from functools import partial

import pytest
from cryptography.fernet import Fernet
from werkzeug.security import generate_password_hash

# Set before the app reads them, so tests never write generated secrets into instance/.
os.environ.setdefault("SECRET_KEY", "test-secret-key")
TEST_CREDENTIALS_KEY = Fernet.generate_key().decode()
os.environ["CREDENTIALS_KEYS"] = TEST_CREDENTIALS_KEY

from dashboard import create_app, users  # noqa: E402
from dashboard.extensions import db as _db  # noqa: E402
from dashboard.models import Clip, Role, SocialAccount  # noqa: E402
from dashboard.users import create_token, create_user  # noqa: E402

PASSWORD = "correct horse battery"


def database_url(tmp_path_factory) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory):
    return database_url(tmp_path_factory)


def base_config(database_uri: str) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "WTF_CSRF_ENABLED": False,
        "SIMULATOR_MIN_DELAY": 0.0,
        "SIMULATOR_MAX_DELAY": 0.0,
        "SIMULATOR_FAILURE_RATE": 0.0,
        "SIMULATOR_SEED": 1234,
        # A forced failure is a plain platform failure unless a test asks for other kinds
        # (transient ones are retried by workers, unknown ones become 'unconfirmed').
        "SIMULATOR_FAILURE_KINDS": ("permanent",),
        "CREDENTIALS_KEYS": [TEST_CREDENTIALS_KEY],
    }


def _empty_all_tables():
    _db.session.remove()
    # DELETE, children first, on every backend: PostgreSQL's TRUNCATE costs ~90 ms a call on
    # these near-empty tables against ~1 ms, and it runs twice per test.
    with _db.engine.begin() as conn:
        for table in reversed(_db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def app_config(database_uri):
    """Override in a test module (or parametrize) to change settings."""
    return base_config(database_uri)


@pytest.fixture(scope="session")
def session_queue_url(tmp_path_factory):
    return (os.environ.get("TEST_QUEUE_URL")
            or f"sqlite:///{tmp_path_factory.mktemp('queue') / 'queue.sqlite3'}")


@pytest.fixture
def queue_url(session_queue_url):
    """The task queue's storage for the tests (never the instance folder's)."""
    return session_queue_url


# One app per distinct configuration: (app, its settings as built, its extensions as built).
_APPS: dict[str, tuple] = {}


def shared_app(config: dict):
    """The app built from `config`, reset to how it was built."""
    key = repr(sorted(config.items()))
    if key not in _APPS:
        app = create_app(config)
        with app.app_context():
            _db.create_all()
        _APPS[key] = (app, copy.deepcopy(dict(app.config)), dict(app.extensions))
    app, settings, extensions = _APPS[key]
    app.config.clear()
    app.config.update(copy.deepcopy(settings))
    app.extensions.clear()  # e.g. the sign-in throttle's counts, made on first use
    app.extensions.update(extensions)
    return app


def media_config(folder) -> dict:
    """Media storage, uploads in progress and the S3 cache in `folder`, never in instance/."""
    return {"MEDIA_STORAGE_URL": (folder / "media").as_uri(),
            "MEDIA_UPLOAD_DIR": str(folder / "uploads"),
            "MEDIA_CACHE_DIR": str(folder / "media-cache")}


@pytest.fixture(scope="session")
def media_root(tmp_path_factory):
    """One media folder for the run (the app stays shared), emptied around each test."""
    return tmp_path_factory.mktemp("media")


def _empty_folder(folder) -> None:
    import shutil

    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


@pytest.fixture
def app(app_config, queue_url, media_root, tmp_path):
    from dashboard.config import normalise_database_url

    app_config = dict(app_config)
    app_config.setdefault("OUTCOME_JOURNAL_DIR", str(tmp_path / "unrecorded-outcomes"))
    app_config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app_config["SQLALCHEMY_DATABASE_URI"])
    app_config.setdefault("QUEUE_URL", queue_url)
    for name, value in media_config(media_root).items():
        app_config.setdefault(name, value)
    _empty_folder(media_root)
    app = shared_app(app_config)
    app.extensions["huey"].flush()
    with app.app_context():
        _empty_all_tables()
    ctx = app.app_context()
    ctx.push()
    yield app
    ctx.pop()
    app.extensions["huey"].flush()
    with app.app_context():
        _empty_all_tables()
        _db.engine.dispose()
    _empty_folder(media_root)


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Cheap password hashes: scrypt costs ~0.1 s a user and most tests make a few users."""
    monkeypatch.setattr(users, "generate_password_hash",
                        partial(generate_password_hash, method="pbkdf2:sha256:1000"))


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def make_user(db):
    """make_user(role="editor", email=None) -> User."""

    def make(role: str = "editor", email: str | None = None):
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        return create_user(db, email, PASSWORD, role)

    return make


@pytest.fixture
def api_headers(db, make_user):
    """api_headers(role="editor") -> headers with a fresh Bearer token for a user of that role."""

    def headers(role: str = "editor") -> dict[str, str]:
        user = make_user(role)
        token = create_token(db, user.id, "test").plaintext
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def sign_in_as(db):
    """sign_in_as(a_client, user_id): that client signed in as the user through a server-side
    session, as the form would (a cookie naming a user without a live session signs nobody in)."""

    def sign_in(a_client, user_id):
        from dashboard.sessions import start_session

        session_id = start_session(_db, user_id)
        with a_client.session_transaction() as session:
            session.update({"_user_id": str(user_id), "_fresh": True, "sid": str(session_id)})

    return sign_in


@pytest.fixture
def login(client, make_user, sign_in_as):
    """login(role="editor") -> User signed in on `client` (through the session, not the form)."""

    def sign_in(role: str = "editor"):
        user = make_user(role)
        sign_in_as(client, user.id)
        return user

    return sign_in


@pytest.fixture
def user_in(db, login):
    """user_in(zone="UTC", role="editor") -> a user signed in like `login` whose profile zone is
    `zone`."""

    def sign_in(zone: str = "UTC", role: str = "editor"):
        user = login(role)
        user.timezone = zone
        db.session.commit()
        return user

    return sign_in


@pytest.fixture
def make_clip(db):
    def make(**fields) -> Clip:
        values = {"title": "Launch teaser", "description": "", "media": "https://cdn.example.com/a.mp4",
                  "duration_seconds": 30.0}
        values.update(fields)
        clip = Clip(**values)
        db.session.add(clip)
        db.session.commit()
        return clip

    return make


@pytest.fixture
def make_account(db):
    def make(platform: str = "instagram", handle: str | None = None, **fields) -> SocialAccount:
        account = SocialAccount(platform=platform, handle=handle or f"acct{uuid.uuid4().hex[:6]}",
                                display_name=fields.pop("display_name", "Account"), **fields)
        db.session.add(account)
        db.session.commit()
        return account

    return make


ROLES = [role.value for role in Role]


@pytest.fixture(scope="session")
def video_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


@pytest.fixture
def videos(video_cache, tmp_path):
    """Real small videos (tests/media_support.py): videos.video(VERTICAL), .truncated(), ..."""
    from media_support import VideoFactory

    work = tmp_path / "files"
    work.mkdir()
    return VideoFactory(video_cache, work)
