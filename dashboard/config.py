"""Settings, read once from the environment (a `.env` file is honoured).

Embedded defaults need no variable at all: the SQLite database, the generated secret key and the
generated credentials key live in Flask's instance folder. A production config
(`DASHBOARD_ENV=production`) refuses to start without `DATABASE_URL`, `SECRET_KEY` and
`CREDENTIALS_KEYS`.
"""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
from pathlib import Path
from typing import overload

from cryptography.fernet import Fernet
from dotenv import load_dotenv

PRODUCTION_REQUIRED = ("DATABASE_URL", "SECRET_KEY", "CREDENTIALS_KEYS", "QUEUE_URL")

MB = 1024 * 1024
GB = 1024 * MB

# Platform facts from shared/platforms.md (November 2026; media: "Media specifications", December
# 2026). Platforms change these numbers, so each is a setting: override with e.g.
# INSTAGRAM_CAPTION_MAX_CHARS=2000, TIKTOK_FRAME_RATE_MIN=24, INSTAGRAM_CONTAINERS=mp4,mov.
# Integers, decimals (aspect ratios: width / height) and comma-separated lists (containers and
# codecs as the probe names them: mp4 mov webm mkv; h264 hevc vp8 vp9 av1; aac opus mp3).
PLATFORM_LIMIT_DEFAULTS: dict[str, dict[str, int | float | tuple[str, ...]]] = {
    "instagram": {
        "caption_max_chars": 2200,
        "caption_preview_chars": 125,  # what the feed shows before "more"
        "hashtags_max": 30,
        "mentions_max": 20,
        "duration_min_seconds": 3,
        "duration_max_seconds": 15 * 60,
        "posts_per_24h": 50,
        "containers": ("mp4", "mov"),
        "video_codecs": ("h264", "hevc"),
        "audio_codecs": ("aac",),
        "audio_sample_rate_max_hz": 48000,
        "audio_channels_max": 2,
        "frame_rate_min": 23,
        "frame_rate_max": 60,
        "width_max_pixels": 1920,
        "aspect_ratio_min": 0.01,
        "aspect_ratio_max": 10.0,
        "file_max_bytes": 300 * MB,
        "video_bit_rate_max": 25_000_000,
    },
    "tiktok": {
        "caption_max_chars": 2200,  # counted in UTF-16 code units
        "duration_max_seconds": 600,
        "posts_per_24h": 15,
        "containers": ("mp4", "webm", "mov"),
        "video_codecs": ("h264", "hevc", "vp8", "vp9"),
        "frame_rate_min": 23,
        "frame_rate_max": 60,
        "side_min_pixels": 360,
        "side_max_pixels": 4096,
        "file_max_bytes": 4 * GB,
    },
    "youtube": {
        "title_max_chars": 100,
        "description_max_bytes": 5000,
        "tags_max_chars": 500,
        "duration_max_seconds": 180,
        "posts_per_24h": 100,
        "aspect_ratio_max": 1.0,  # Shorts are vertical or square
        "file_max_bytes": 256 * GB,
    },
}


class ConfigError(RuntimeError):
    """The environment is missing something the chosen configuration needs."""


ENVIRONMENTS = ("development", "production")
# The sensible range of each numeric setting (inclusive). A value outside it is
# a typo or a misunderstanding (a negative timeout, a failure rate of 10), refused at start-up.
SETTING_RANGES: dict[str, tuple[float, float]] = {
    "SIMULATOR_MIN_DELAY": (0, 3600),
    "SIMULATOR_MAX_DELAY": (0, 3600),
    "SIMULATOR_FAILURE_RATE": (0, 1),
    "WORKER_THREADS": (1, 1024),
    "PUBLISH_MAX_ATTEMPTS": (1, 100),
    "RETRY_BASE_DELAY": (0, 24 * 3600),
    "RETRY_MAX_DELAY": (0, 7 * 24 * 3600),
    "PUBLISH_TIMEOUT_SECONDS": (0.1, 7 * 24 * 3600),
    "REQUEUE_GRACE_SECONDS": (0, 24 * 3600),
    "WORKER_SHUTDOWN_TIMEOUT": (0, 24 * 3600),
    "IDEMPOTENCY_KEY_TTL_SECONDS": (60, 365 * 24 * 3600),
    "WEB_SWEEP_INTERVAL_SECONDS": (0, 24 * 3600),  # 0: off
    "QUEUE_WATCH_INTERVAL_SECONDS": (0, 3600),  # 0: off
    "PROVIDER_HTTP_TIMEOUT": (0.1, 3600),
    "PUBLISH_SYNC_WAIT": (0, 3600),
    "PUBLISH_MAX_RESTARTS": (0, 100),
    "RECONCILE_INTERVAL_SECONDS": (0.1, 7 * 24 * 3600),
    "RECONCILE_MAX_CHECKS": (0, 1000),
    "LOGIN_THROTTLE_MAX_FAILURES": (1, 1000),
    "LOGIN_THROTTLE_ACCOUNT_MAX_FAILURES": (1, 10000),
    "LOGIN_THROTTLE_WINDOW_SECONDS": (1, 7 * 24 * 3600),
    "SESSION_IDLE_TIMEOUT_SECONDS": (60, 30 * 24 * 3600),
    "SESSION_ABSOLUTE_LIFETIME_SECONDS": (60, 90 * 24 * 3600),
    "TRUSTED_PROXIES": (0, 10),
    "WORKER_HEARTBEAT_SECONDS": (0.1, 3600),
    "WORKER_STALE_SECONDS": (0.1, 24 * 3600),
    "MEDIA_MAX_UPLOAD_BYTES": (1, 1024 ** 4),
    "MEDIA_UPLOAD_CHUNK_BYTES": (1024, 1024 ** 3),
    "MEDIA_UPLOAD_EXPIRY_SECONDS": (60, 365 * 24 * 3600),
    "MEDIA_ORPHAN_GRACE_SECONDS": (3600, 365 * 24 * 3600),
    "MEDIA_URL_TTL_SECONDS": (60, 7 * 24 * 3600),
    "MEDIA_THUMBNAIL_MAX_SIDE": (16, 4096),
    "DATABASE_PING_IDLE_SECONDS": (0, 24 * 3600),  # 0: a round trip on every checkout
    "DATABASE_POOL_SIZE": (1, 1000),
    "DATABASE_MAX_OVERFLOW": (0, 1000),
}
# A production SECRET_KEY signs sessions and CSRF tokens: long, and not a word or a repeat.
SECRET_KEY_MIN_LENGTH = 32
SECRET_KEY_MIN_BITS = 128


def _estimated_bits(value: str) -> float:
    """A rough entropy estimate: the Shannon bits of its character frequencies, scaled by the
    share of distinct 4-character runs (so "password" * 6 scores low, a generated token of 32+
    characters far above 128 bits)."""
    if not value:
        return 0.0
    counts = {char: value.count(char) for char in set(value)}
    bits = -sum(n * math.log2(n / len(value)) for n in counts.values())
    runs = [value[i:i + 4] for i in range(len(value) - 3)]
    return bits * (len(set(runs)) / len(runs) if runs else 0.0)


def _check_secret_key(value: str) -> None:
    if len(value) < SECRET_KEY_MIN_LENGTH or _estimated_bits(value) < SECRET_KEY_MIN_BITS:
        # Never the value itself: it is a secret.
        raise ConfigError(
            f"SECRET_KEY is too short or too predictable for production: use at least "
            f"{SECRET_KEY_MIN_LENGTH} random characters, e.g. python -c 'import secrets; "
            "print(secrets.token_hex(32))'")


def _check_ranges(config: dict) -> None:
    """Refuse numbers outside SETTING_RANGES (and NaN), naming the setting."""
    for name, (low, high) in SETTING_RANGES.items():
        value = config.get(name)
        if value is None:
            continue
        if value != value or not low <= value <= high:
            raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    if config["SIMULATOR_MIN_DELAY"] > config["SIMULATOR_MAX_DELAY"]:
        raise ConfigError("SIMULATOR_MIN_DELAY must not be above SIMULATOR_MAX_DELAY")
    for platform, rules in config["PLATFORM_LIMITS"].items():
        for rule, value in rules.items():
            if isinstance(value, int | float) and value < 0:
                raise ConfigError(f"{platform.upper()}_{rule.upper()} must not be negative, got {value}")


def _instance_secret(instance_path: Path, name: str, make) -> str:
    """Read a generated secret from the instance folder, creating it (mode 0600) on first use."""
    path = instance_path / name
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text().strip()


def _float(env, name: str, default: float) -> float:
    raw = env.get(name)
    try:
        value = default if raw in (None, "") else float(raw)
        if math.isinf(value) or math.isnan(value):
            raise ValueError(raw)
        return value
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


@overload
def _int(env, name: str, default: int) -> int: ...
@overload
def _int(env, name: str, default: None) -> int | None: ...


def _int(env, name: str, default: int | None) -> int | None:
    raw = env.get(name)
    try:
        return default if raw in (None, "") else int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _sample_rate(env, name: str) -> float:
    """A fraction of events to sample, 0 (the default: none) to 1 (all)."""
    value = _float(env, name, 0.0)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be between 0 and 1, got {value:g}")
    return value


def _list(env, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    return tuple(item.strip().lower() for item in raw.split(",") if item.strip())


def _limit(env, name: str, default):
    """A platform limit from the environment, of the type of its default."""
    if isinstance(default, tuple):
        return _list(env, name, default)
    if isinstance(default, float):
        return _float(env, name, default)
    return _int(env, name, default)


def _choice(env, name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _tiktok_chunk_bytes(env) -> int:
    """TIKTOK_CHUNK_BYTES (default 10 MiB) within TikTok's chunk rule, read strictly: 5 MiB to
    64,000,000 bytes, valid whether the platform counts MB in binary or decimal."""
    low, high = 5 * 1024 * 1024, 64 * 1000 * 1000
    value = _int(env, "TIKTOK_CHUNK_BYTES", 10 * 1024 * 1024)
    if not low <= value <= high:
        raise ConfigError(f"TIKTOK_CHUNK_BYTES must be between {low} and {high} bytes "
                          f"(TikTok's chunk rule), got {value}")
    return value


TIKTOK_PRIVACY_LEVELS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR",
                         "SELF_ONLY")


def _tiktok_privacy_level(env) -> str | None:
    """TIKTOK_DEFAULT_PRIVACY_LEVEL: unset (the default) means no default privacy level."""
    raw = (env.get("TIKTOK_DEFAULT_PRIVACY_LEVEL") or "").strip().upper()
    if raw and raw not in TIKTOK_PRIVACY_LEVELS:
        raise ConfigError("TIKTOK_DEFAULT_PRIVACY_LEVEL must be one of "
                          f"{', '.join(TIKTOK_PRIVACY_LEVELS)}, got {raw!r}")
    return raw or None


YOUTUBE_CHUNK_UNIT = 256 * 1024


def _youtube_chunk_bytes(env) -> int:
    value = _int(env, "YOUTUBE_CHUNK_BYTES", 8 * 1024 * 1024)
    if value <= 0 or value % YOUTUBE_CHUNK_UNIT:
        raise ConfigError(
            f"YOUTUBE_CHUNK_BYTES must be a positive multiple of 262144 (256 KiB), got {value}"
        )
    return value


def _credentials_keys(raw: str) -> list[str]:
    """The comma-separated Fernet keys, newest first; a bad one stops the start, not a publish."""
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        raise ConfigError("CREDENTIALS_KEYS holds no key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            # Name the position only: the value is a secret.
            raise ConfigError(
                f"CREDENTIALS_KEYS: key {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with Fernet.generate_key())"
            ) from None
    return keys


def _networks(env, name: str, default: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated CIDR networks ("" allows none)."""
    raw = env.get(name, default)
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated networks like 10.0.0.0/8: {exc}") from None


def normalise_database_url(url: str) -> str:
    """Point plain `postgresql://` URLs at psycopg 3, the driver this project ships."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(instance_path: str | Path, env: dict[str, str] | None = None) -> dict:
    """Build the Flask config mapping from the environment.

    A `.env` file beside the instance folder (the project root) fills in variables the
    environment does not set, for gunicorn and workers as for `flask` commands.
    """
    instance_path = Path(instance_path)
    if env is None:
        load_dotenv(instance_path.parent / ".env", override=False)
        env = dict(os.environ)
    else:
        env = dict(env)
    production = _choice(env, "DASHBOARD_ENV", ENVIRONMENTS, "development") == "production"
    if production:
        missing = [name for name in PRODUCTION_REQUIRED if not env.get(name)]
        if missing:
            raise ConfigError(
                "DASHBOARD_ENV=production needs these environment variables: " + ", ".join(missing)
            )
        _check_secret_key(env["SECRET_KEY"])

    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'dashboard.sqlite3'}"
    secret_key = env.get("SECRET_KEY") or _instance_secret(
        instance_path, "secret_key", lambda: secrets.token_hex(32)
    )
    keys_raw = env.get("CREDENTIALS_KEYS") or _instance_secret(
        instance_path, "credentials.key", lambda: Fernet.generate_key().decode()
    )
    credentials_keys = _credentials_keys(keys_raw)

    limits = {
        platform: {
            rule: _limit(env, f"{platform.upper()}_{rule.upper()}", default)
            for rule, default in rules.items()
        }
        for platform, rules in PLATFORM_LIMIT_DEFAULTS.items()
    }

    config = {
        "DASHBOARD_ENV": "production" if production else "development",
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        # A pooled connection is checked before each use so that one the server dropped (a
        # restart, an idle timeout) is replaced instead of failing a request: by polling its
        # socket, and with a round trip only when that finds something or the connection sat
        # idle longer than DATABASE_PING_IDLE_SECONDS (dashboard/database_connections.py). A SQLite
        # file has no server to drop it: no check there by default.
        "DATABASE_PRE_PING": _int(
            env, "DATABASE_PRE_PING", 0 if database_url.startswith("sqlite") else 1) == 1,
        "DATABASE_PING_IDLE_SECONDS": _float(env, "DATABASE_PING_IDLE_SECONDS", 60.0),
        # Connections a process keeps open to a database server, and how many more it may open
        # at busy times (each closed again as it is returned: a new PostgreSQL connection costs
        # the server a process and the client a few milliseconds, and loses its prepared
        # statements). Each of a gunicorn worker's 64 threads may hold one, and while threads wait
        # for the GIL they hold theirs longer: with a pool of ten, 64 clients publishing at the
        # simulator's 0.1-0.3 s made PostgreSQL start 30 processes a second (0.6 of the 2 cores,
        # 0.37 of P2's bound); with thirty, one in five seconds (0.60). Two workers then hold up
        # to 80, under PostgreSQL's default max_connections of 100.
        "DATABASE_POOL_SIZE": _int(env, "DATABASE_POOL_SIZE", 30),
        "DATABASE_MAX_OVERFLOW": _int(env, "DATABASE_MAX_OVERFLOW", 10),
        "CREDENTIALS_KEYS": credentials_keys,
        "SIMULATOR_MIN_DELAY": _float(env, "SIMULATOR_MIN_DELAY", 0.1),
        "SIMULATOR_MAX_DELAY": _float(env, "SIMULATOR_MAX_DELAY", 0.3),
        "SIMULATOR_FAILURE_RATE": _float(env, "SIMULATOR_FAILURE_RATE", 0.1),
        "SIMULATOR_SEED": _int(env, "SIMULATOR_SEED", None),
        "SIMULATOR_FAILURE_KINDS": tuple(
            kind.strip() for kind in env.get("SIMULATOR_FAILURE_KINDS", "transient,permanent,auth,unknown").split(",")
            if kind.strip()
        ),
        "PLATFORM_LIMITS": limits,
        # The task queue: SQLite under instance/ by default; redis://... or postgresql://... to
        # share one queue between workers on several machines.
        "QUEUE_URL": env.get("QUEUE_URL") or f"sqlite:///{instance_path / 'queue.sqlite3'}",
        "WORKER_THREADS": _int(env, "WORKER_THREADS", 8),
        # Platform answers the database could not take yet (publishing/journal.py).
        "OUTCOME_JOURNAL_DIR": env.get("OUTCOME_JOURNAL_DIR") or str(instance_path / "unrecorded-outcomes"),
        # Seconds a stopping worker (SIGTERM or SIGINT) waits for its publishes in flight.
        "WORKER_SHUTDOWN_TIMEOUT": _float(env, "WORKER_SHUTDOWN_TIMEOUT", 60.0),
        "PUBLISH_MAX_ATTEMPTS": _int(env, "PUBLISH_MAX_ATTEMPTS", 5),
        "RETRY_BASE_DELAY": _float(env, "RETRY_BASE_DELAY", 30.0),
        "RETRY_MAX_DELAY": _float(env, "RETRY_MAX_DELAY", 3600.0),
        # A log left in `publishing` longer than this was interrupted (worker killed).
        "PUBLISH_TIMEOUT_SECONDS": _float(env, "PUBLISH_TIMEOUT_SECONDS", 600.0),
        # Seconds between sweeps inside each web process (0: only workers sweep).
        "WEB_SWEEP_INTERVAL_SECONDS": _float(env, "WEB_SWEEP_INTERVAL_SECONDS", 30.0),
        # How often a worker checks that its queue answers (and is the same Redis): on its
        # return every due post is queued again at once (0: off).
        "QUEUE_WATCH_INTERVAL_SECONDS": _float(env, "QUEUE_WATCH_INTERVAL_SECONDS", 1.0),
        # The sweep re-enqueues a due post this long overdue (its message was lost).
        "REQUEUE_GRACE_SECONDS": _float(env, "REQUEUE_GRACE_SECONDS", 60.0),
        # stub: the seed's pretend provider calls; live: the platforms' protocols over HTTP.
        "PROVIDER_MODE": _choice(env, "PROVIDER_MODE", ("stub", "live"), "stub"),
        # Each platform endpoint is a setting, so any faithful implementation can stand in.
        "INSTAGRAM_GRAPH_URL": env.get("INSTAGRAM_GRAPH_URL") or "https://graph.facebook.com/v24.0",
        # Instagram container polling: Meta suggests once a minute (the first wait); each later
        # wait doubles up to the backoff cap; processing longer than the timeout gives up (the
        # unpublished container expires by itself after 24 h).
        "INSTAGRAM_POLL_INTERVAL_SECONDS": _float(env, "INSTAGRAM_POLL_INTERVAL_SECONDS", 60.0),
        "INSTAGRAM_POLL_BACKOFF_MAX_SECONDS": _float(env, "INSTAGRAM_POLL_BACKOFF_MAX_SECONDS",
                                                     300.0),
        "INSTAGRAM_PROCESSING_TIMEOUT_SECONDS": _float(env, "INSTAGRAM_PROCESSING_TIMEOUT_SECONDS",
                                                       3600.0),
        # Bytes per POST of a resumable upload; each acknowledged offset is saved, so a killed
        # worker resends at most one chunk.
        "INSTAGRAM_UPLOAD_CHUNK_BYTES": _int(env, "INSTAGRAM_UPLOAD_CHUNK_BYTES", 64 * 1024 * 1024),
        # When the publishing limit is used up: the window is rolling and the platform does not
        # say when a slot frees, so check again this much later (at most the window's length).
        "INSTAGRAM_QUOTA_RECHECK_SECONDS": _float(env, "INSTAGRAM_QUOTA_RECHECK_SECONDS", 3600.0),
        "TIKTOK_API_URL": env.get("TIKTOK_API_URL") or "https://open.tiktokapis.com",
        "YOUTUBE_API_URL": env.get("YOUTUBE_API_URL") or "https://www.googleapis.com",
        # TikTok Direct Post (live mode): upload chunk size within TikTok's 5-64 MB rule, polling
        # of status/fetch (interval doubling up to the max interval), how long processing may
        # take before the outcome counts as unknown, how long to wait for moderation to give the
        # public post id, and a privacy level used only when an admin sets one (TikTok's
        # guidelines want the user to pick it; without it an attempt with none is refused).
        "TIKTOK_CHUNK_BYTES": _tiktok_chunk_bytes(env),
        "TIKTOK_POLL_INTERVAL_SECONDS": _float(env, "TIKTOK_POLL_INTERVAL_SECONDS", 5.0),
        "TIKTOK_POLL_MAX_INTERVAL_SECONDS": _float(env, "TIKTOK_POLL_MAX_INTERVAL_SECONDS", 60.0),
        "TIKTOK_POLL_MAX_SECONDS": _float(env, "TIKTOK_POLL_MAX_SECONDS", 1800.0),
        "TIKTOK_MODERATION_WAIT_SECONDS": _float(env, "TIKTOK_MODERATION_WAIT_SECONDS", 300.0),
        "TIKTOK_DEFAULT_PRIVACY_LEVEL": _tiktok_privacy_level(env),
        # YouTube's resumable upload: chunks must be multiples of 256 KiB (all but the last).
        "YOUTUBE_CHUNK_BYTES": _youtube_chunk_bytes(env),
        # Videos uploaded by unverified API projects are locked private whatever is asked, so
        # private is the default; a project that passed Google's audit sets public (or unlisted).
        "YOUTUBE_PRIVACY_STATUS": _choice(env, "YOUTUBE_PRIVACY_STATUS",
                                          ("private", "unlisted", "public"), "private"),
        # 22 is "People & Blogs", YouTube's own default category.
        "YOUTUBE_CATEGORY_ID": (env.get("YOUTUBE_CATEGORY_ID") or "22").strip(),
        # videos.insert calls a day per Google Cloud project (the app's client id), shared by
        # every channel it publishes to; the day ends at midnight Pacific time.
        "YOUTUBE_UPLOADS_PER_DAY": _int(env, "YOUTUBE_UPLOADS_PER_DAY", 100),
        # Waiting for YouTube's processing: a poll every so many seconds, at most so many polls
        # (the video is already published; after the bound the attempt is confirmed anyway).
        "YOUTUBE_PROCESSING_POLL_SECONDS": _float(env, "YOUTUBE_PROCESSING_POLL_SECONDS", 15.0),
        "YOUTUBE_PROCESSING_MAX_POLLS": _int(env, "YOUTUBE_PROCESSING_MAX_POLLS", 20),
        # An interrupted upload (lost connection, 5xx) asks its session again this many times,
        # backing off from the base delay (doubling), before the step gives up for a later run.
        "YOUTUBE_UPLOAD_RETRIES": _int(env, "YOUTUBE_UPLOAD_RETRIES", 5),
        "YOUTUBE_RETRY_BASE_DELAY": _float(env, "YOUTUBE_RETRY_BASE_DELAY", 1.0),
        # Linking accounts by OAuth (dashboard/linking.py). The apps' own credentials, as
        # registered with each platform; a platform without them offers no Connect button.
        "INSTAGRAM_APP_ID": (env.get("INSTAGRAM_APP_ID") or "").strip(),
        "INSTAGRAM_APP_SECRET": (env.get("INSTAGRAM_APP_SECRET") or "").strip(),
        "TIKTOK_CLIENT_KEY": (env.get("TIKTOK_CLIENT_KEY") or "").strip(),
        "TIKTOK_CLIENT_SECRET": (env.get("TIKTOK_CLIENT_SECRET") or "").strip(),
        "GOOGLE_CLIENT_ID": (env.get("GOOGLE_CLIENT_ID") or "").strip(),
        "GOOGLE_CLIENT_SECRET": (env.get("GOOGLE_CLIENT_SECRET") or "").strip(),
        # The OAuth endpoints are settings for the same reason as the API endpoints. Instagram's
        # token exchange and account lookup go to INSTAGRAM_GRAPH_URL, TikTok's token and revoke
        # to TIKTOK_API_URL, the YouTube channel lookup to YOUTUBE_API_URL.
        "INSTAGRAM_AUTHORIZE_URL": env.get("INSTAGRAM_AUTHORIZE_URL")
        or "https://www.facebook.com/v24.0/dialog/oauth",
        "TIKTOK_AUTHORIZE_URL": env.get("TIKTOK_AUTHORIZE_URL")
        or "https://www.tiktok.com/v2/auth/authorize/",
        "GOOGLE_AUTHORIZE_URL": env.get("GOOGLE_AUTHORIZE_URL")
        or "https://accounts.google.com/o/oauth2/v2/auth",
        "GOOGLE_TOKEN_URL": env.get("GOOGLE_TOKEN_URL") or "https://oauth2.googleapis.com/token",
        "GOOGLE_REVOKE_URL": env.get("GOOGLE_REVOKE_URL") or "https://oauth2.googleapis.com/revoke",
        # The redirect URIs are built on this base when set (behind a proxy, or to match exactly
        # what was registered); otherwise on the URL the admin's browser used.
        "PUBLIC_BASE_URL": (env.get("PUBLIC_BASE_URL") or "").strip().rstrip("/"),
        # The worker refreshes an access token this long before it expires (YouTube's last about
        # 1 h, TikTok's 2-24 h), and Instagram's 60-day long-lived tokens this long before theirs.
        "TOKEN_REFRESH_AHEAD_SECONDS": _float(env, "TOKEN_REFRESH_AHEAD_SECONDS", 900.0),
        "INSTAGRAM_REFRESH_AHEAD_SECONDS": _float(env, "INSTAGRAM_REFRESH_AHEAD_SECONDS",
                                                  14 * 86400.0),
        # A worker's claim on an account's refresh; a claim older than this was interrupted.
        "TOKEN_REFRESH_LEASE_SECONDS": _float(env, "TOKEN_REFRESH_LEASE_SECONDS", 120.0),
        # Seconds one platform HTTP call may take before it counts as lost.
        "PROVIDER_HTTP_TIMEOUT": _float(env, "PROVIDER_HTTP_TIMEOUT", 60.0),
        # How long a publish from the page or the API waits for a live attempt before it answers
        # 202 and lets the worker finish it.
        "PUBLISH_SYNC_WAIT": _float(env, "PUBLISH_SYNC_WAIT", 10.0),
        # A live attempt whose platform objects are spoiled (an expired container, a dead upload
        # session) starts again from the first step at most this many times.
        "PUBLISH_MAX_RESTARTS": _int(env, "PUBLISH_MAX_RESTARTS", 2),
        # An unknown outcome the platform could not settle is asked about again after this many
        # seconds (doubling each time), at most RECONCILE_MAX_CHECKS times; then a person decides.
        "RECONCILE_INTERVAL_SECONDS": _float(env, "RECONCILE_INTERVAL_SECONDS", 300.0),
        "RECONCILE_MAX_CHECKS": _int(env, "RECONCILE_MAX_CHECKS", 5),
        "API_PAGE_SIZE_MAX": 200,
        # How long an Idempotency-Key is remembered; a repeat after that is a new request.
        "IDEMPOTENCY_KEY_TTL_SECONDS": _float(env, "IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600.0),
        # Failed sign-ins per email and client IP within the window before sign-in is refused.
        "LOGIN_THROTTLE_MAX_FAILURES": _int(env, "LOGIN_THROTTLE_MAX_FAILURES", 5),
        "LOGIN_THROTTLE_WINDOW_SECONDS": _float(env, "LOGIN_THROTTLE_WINDOW_SECONDS", 15 * 60),
        # Failed sign-ins per account (from any address) within the window before it is refused.
        "LOGIN_THROTTLE_ACCOUNT_MAX_FAILURES": _int(env, "LOGIN_THROTTLE_ACCOUNT_MAX_FAILURES", 20),
        # A signed-in session ends after this long without a request, and after this long at all.
        "SESSION_IDLE_TIMEOUT_SECONDS": _float(env, "SESSION_IDLE_TIMEOUT_SECONDS", 30 * 60),
        "SESSION_ABSOLUTE_LIFETIME_SECONDS": _float(env, "SESSION_ABSOLUTE_LIFETIME_SECONDS", 12 * 3600),
        # How many reverse proxies in front of the app set X-Forwarded-For/-Proto/-Host (ProxyFix);
        # 0 trusts none of those headers.
        "TRUSTED_PROXIES": _int(env, "TRUSTED_PROXIES", 0),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        # Every other request body; the upload endpoints allow MEDIA_MAX_UPLOAD_BYTES.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Operations (dashboard/ops/): logs, metrics, worker heartbeats, key rotation.
        "LOG_LEVEL": _choice(env, "LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper(),
        "LOG_FORMAT": _choice(env, "LOG_FORMAT", ("text", "json"), "text"),
        # /metrics answers a request bearing this token, or one from these networks.
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        "METRICS_ALLOW_NETWORKS": _networks(env, "METRICS_ALLOW_NETWORKS", "127.0.0.0/8,::1/128"),
        "WORKER_HEARTBEAT_SECONDS": _float(env, "WORKER_HEARTBEAT_SECONDS", 5.0),
        # No heartbeat for this long: the worker is gone (the home page warns when posts are due).
        "WORKER_STALE_SECONDS": _float(env, "WORKER_STALE_SECONDS", 60.0),
        # Optional error tracking (dashboard/ops/error_tracking.py): off unless SENTRY_DSN is set.
        "SENTRY_DSN": env.get("SENTRY_DSN") or None,
        "SENTRY_ENVIRONMENT": env.get("SENTRY_ENVIRONMENT")
        or ("production" if production else "development"),
        "SENTRY_TRACES_SAMPLE_RATE": _sample_rate(env, "SENTRY_TRACES_SAMPLE_RATE"),
        # Old secret keys, newest first, still accepted for sessions and CSRF tokens while they
        # expire after a SECRET_KEY rotation (Flask signs with SECRET_KEY only).
        "SECRET_KEY_FALLBACKS": [key.strip() for key in env.get("SECRET_KEY_FALLBACKS", "").split(",")
                                 if key.strip()],
        **_media_settings(env, instance_path),
    }
    _check_ranges(config)
    return config


def _media_settings(env, instance_path: Path) -> dict:
    """Where uploaded videos live and how they are received and handed out."""
    return {
        # file:///path (a folder, the default under instance/) or s3://bucket/prefix.
        "MEDIA_STORAGE_URL": env.get("MEDIA_STORAGE_URL") or (instance_path / "media").as_uri(),
        # S3-compatible storage: the endpoint (empty: AWS), region and keys (empty: boto3's own
        # chain, i.e. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles).
        "MEDIA_S3_ENDPOINT_URL": env.get("MEDIA_S3_ENDPOINT_URL") or None,
        "MEDIA_S3_REGION": env.get("MEDIA_S3_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "MEDIA_S3_ACCESS_KEY_ID": env.get("MEDIA_S3_ACCESS_KEY_ID") or None,
        "MEDIA_S3_SECRET_ACCESS_KEY": env.get("MEDIA_S3_SECRET_ACCESS_KEY") or None,
        # Uploads in progress (and copies of S3 objects for probing and live uploads): a local
        # folder. Several web machines share resumable uploads only if they share this folder.
        "MEDIA_UPLOAD_DIR": env.get("MEDIA_UPLOAD_DIR") or str(instance_path / "uploads"),
        "MEDIA_CACHE_DIR": env.get("MEDIA_CACHE_DIR") or str(instance_path / "media-cache"),
        "MEDIA_MAX_UPLOAD_BYTES": _int(env, "MEDIA_MAX_UPLOAD_BYTES", 8 * GB),
        # An unfinished resumable upload untouched this long is deleted by the sweep.
        "MEDIA_UPLOAD_EXPIRY_SECONDS": _float(env, "MEDIA_UPLOAD_EXPIRY_SECONDS", 24 * 3600.0),
        # A storage object no clip points at is deleted by the sweep once this old: it must be
        # longer than a request takes from writing a video into the storage to its commit (an
        # 8 GiB upload to a slow bucket), or the sweep would take an object being written.
        "MEDIA_ORPHAN_GRACE_SECONDS": _float(env, "MEDIA_ORPHAN_GRACE_SECONDS", 24 * 3600.0),
        # The dashboard's public base URL (https://dash.example.com): platforms that pull by URL
        # get a signed link to the video under it, valid MEDIA_URL_TTL_SECONDS.
        "MEDIA_PUBLIC_URL": (env.get("MEDIA_PUBLIC_URL") or "").rstrip("/") or None,
        "MEDIA_URL_TTL_SECONDS": _int(env, "MEDIA_URL_TTL_SECONDS", 6 * 3600),
        "MEDIA_THUMBNAIL_MAX_SIDE": _int(env, "MEDIA_THUMBNAIL_MAX_SIDE", 480),
        # The pages send a file in PATCHes of this size: a dropped connection loses at most one.
        "MEDIA_UPLOAD_CHUNK_BYTES": _int(env, "MEDIA_UPLOAD_CHUNK_BYTES", 16 * MB),
    }
