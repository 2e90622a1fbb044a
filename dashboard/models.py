"""Typed SQLAlchemy 2 models.

Ids are UUIDs (native on PostgreSQL, CHAR(32) on SQLite); timestamps are timezone-aware UTC.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from flask_login import UserMixin
from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    Uuid,
    event,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from .extensions import db

if TYPE_CHECKING:
    # mypy cannot take an attribute (db.Model) as a base class (python/mypy#8603). At run time
    # db.Model is Flask-SQLAlchemy's declarative base: the same keyword constructor and mapping
    # rules as SQLAlchemy's DeclarativeBase, which stands in for it here.
    from sqlalchemy.orm import DeclarativeBase as Model
else:
    Model = db.Model


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Platform(enum.StrEnum):
    INSTAGRAM = "instagram"
    TIKTOK = "tiktok"
    YOUTUBE = "youtube"


class PublishStatus(enum.StrEnum):
    """Where a publish log is in its life; the log is the source of truth, the queue carries work.

    scheduled -> queued -> publishing -> success | failed | unconfirmed, with queued again for an
    automatic retry; scheduled/queued -> cancelled. `pending` is the immediate (synchronous) path.
    """

    PENDING = "pending"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    PUBLISHING = "publishing"
    SUCCESS = "success"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """The word pages show for this status, in badges and filters alike ("Published")."""
        return "Published" if self is PublishStatus.SUCCESS else self.value.capitalize()


# States a worker may still pick up, and states nothing will change any more by itself.
WAITING_STATUSES = (PublishStatus.SCHEDULED.value, PublishStatus.QUEUED.value)
FINAL_STATUSES = (PublishStatus.SUCCESS.value, PublishStatus.FAILED.value,
                  PublishStatus.UNCONFIRMED.value, PublishStatus.CANCELLED.value)
# What a person may do to a post in each state: the one source for the services that decide and
# the pages that offer the buttons (PublishLog.can_retry, can_cancel, can_mark).
RETRYABLE_STATUSES = (PublishStatus.FAILED.value, PublishStatus.UNCONFIRMED.value)
CANCELLABLE_STATUSES = WAITING_STATUSES
MARKABLE_STATUSES = (PublishStatus.UNCONFIRMED.value,)
# States that use a slot of the account's 24-hour posting quota: posted, or possibly posted (in
# flight in a worker or in a request, or of unknown outcome). PublishLog.counts_at is computed
# from this list by the database: changing it needs a migration that redefines that column.
QUOTA_STATUSES = (PublishStatus.SUCCESS.value, PublishStatus.PUBLISHING.value,
                  PublishStatus.PENDING.value, PublishStatus.UNCONFIRMED.value)
_QUOTA_STATUSES_SQL = ", ".join(f"'{status}'" for status in QUOTA_STATUSES)


class Role(enum.StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return ["viewer", "editor", "admin"].index(self.value)

    def allows(self, needed: Role) -> bool:
        """True when this role has at least the rights of `needed`."""
        return self.rank >= needed.rank


PLATFORMS = [p.value for p in Platform]
# How people write the platforms' names, in messages and on pages.
PLATFORM_NAMES = {"instagram": "Instagram", "tiktok": "TikTok", "youtube": "YouTube"}


def platform_name(platform: str) -> str:
    """A platform as people write it ("TikTok"); an unknown value as it is."""
    return PLATFORM_NAMES.get(platform, platform)
ROLES = [r.value for r in Role]


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


CLIP_SEARCH_COLUMNS = ("title", "description", "media")


class Clip(TimestampMixin, Model):
    __tablename__ = "clips"
    __table_args__ = (
        Index("ix_clips_created_at_id", "created_at", "id"),
        # Clip search (`?q=`, a substring ILIKE) through trigram indexes: PostgreSQL's pg_trgm
        # here, SQLite's FTS5 table below (CLIP_SEARCH_DDL).
        *(Index(f"ix_clips_{name}_trgm", name, postgresql_using="gin", postgresql_ops={name: "gin_trgm_ops"})
          .ddl_if(dialect="postgresql") for name in CLIP_SEARCH_COLUMNS),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # A URL or path string; for an uploaded video, the file's original name (media_key is set).
    media: Mapped[str] = mapped_column(String(2000))
    duration_seconds: Mapped[float | None] = mapped_column(db.Float)
    # An uploaded video: its storage key (new for each upload) and what the probe found.
    media_key: Mapped[str | None] = mapped_column(String(300))
    thumbnail_key: Mapped[str | None] = mapped_column(String(300))
    media_content_type: Mapped[str | None] = mapped_column(String(100))
    media_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    media_container: Mapped[str | None] = mapped_column(String(20))
    video_codec: Mapped[str | None] = mapped_column(String(30))
    width: Mapped[int | None] = mapped_column()
    height: Mapped[int | None] = mapped_column()
    frame_rate: Mapped[float | None] = mapped_column(db.Float)
    bit_rate: Mapped[int | None] = mapped_column(BigInteger)
    video_bit_rate: Mapped[int | None] = mapped_column(BigInteger)
    rotation: Mapped[int | None] = mapped_column()
    audio_codec: Mapped[str | None] = mapped_column(String(30))
    audio_channels: Mapped[int | None] = mapped_column()
    audio_sample_rate: Mapped[int | None] = mapped_column()
    # The cover frame (thumbnail, and the platforms' cover in live mode), ms into the video.
    cover_offset_ms: Mapped[int | None] = mapped_column()
    media_uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def has_upload(self) -> bool:
        """True when the clip's video is a file the dashboard stores (not a URL string)."""
        return self.media_key is not None


@dataclass(frozen=True, slots=True)
class TargetClip:
    """What publishing reads of a clip to check a post and build its job, read with one Core
    statement (publishing.service.load_target) rather than loaded as a Clip."""

    id: uuid.UUID
    title: str
    description: str
    media: str
    duration_seconds: float | None
    media_key: str | None
    media_container: str | None
    media_content_type: str | None
    media_size_bytes: int | None
    video_codec: str | None
    width: int | None
    height: int | None
    frame_rate: float | None
    bit_rate: int | None
    video_bit_rate: int | None
    rotation: int | None
    audio_codec: str | None
    audio_channels: int | None
    audio_sample_rate: int | None

    @property
    def has_upload(self) -> bool:
        """True when the clip's video is a file the dashboard stores (not a URL string)."""
        return self.media_key is not None


# SQLite's side of clip search: an FTS5 table with the trigram tokenizer (case-insensitive
# substrings of 3 or more characters), one row per clip, kept by triggers. It copies the three
# columns and the clip's id rather than pointing at clips' rowid, which VACUUM may renumber in a
# table without an INTEGER PRIMARY KEY; the triggers find a clip's row by a phrase match on its
# 32-hex-digit id, which the same index answers.
CLIP_SEARCH_TABLE = "clip_search"
_SEARCHED = ", ".join(CLIP_SEARCH_COLUMNS)
_ROW_OF_OLD = f"{CLIP_SEARCH_TABLE} MATCH 'clip_id : \"' || OLD.id || '\"'"
CLIP_SEARCH_DDL = {
    "sqlite": [
        f"""CREATE VIRTUAL TABLE IF NOT EXISTS {CLIP_SEARCH_TABLE}
        USING fts5(clip_id, {_SEARCHED}, tokenize = 'trigram')""",
        f"""CREATE TRIGGER IF NOT EXISTS clip_search_insert AFTER INSERT ON clips BEGIN
          INSERT INTO {CLIP_SEARCH_TABLE} (clip_id, {_SEARCHED}) VALUES (NEW.id, NEW.title, NEW.description, NEW.media);
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS clip_search_update AFTER UPDATE OF {_SEARCHED} ON clips BEGIN
          UPDATE {CLIP_SEARCH_TABLE} SET title = NEW.title, description = NEW.description, media = NEW.media
          WHERE {_ROW_OF_OLD};
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS clip_search_delete AFTER DELETE ON clips BEGIN
          DELETE FROM {CLIP_SEARCH_TABLE} WHERE {_ROW_OF_OLD};
        END""",
    ],
}
# The trigram operator class must exist before create_all (the tests) makes the indexes.
event.listen(db.metadata, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))
for _statement in CLIP_SEARCH_DDL["sqlite"]:
    event.listen(db.metadata, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
event.listen(db.metadata, "before_drop",
             DDL(f"DROP TABLE IF EXISTS {CLIP_SEARCH_TABLE}").execute_if(dialect="sqlite"))


# Clip search of 1 or 2 characters, which no trigram answers: the set of every 1- and
# 2-character substring of each searched column, lowercased by the database's lower() (what the
# ILIKE compares by), so that the clips holding a short query are looked up, not scanned.
# PostgreSQL: a GIN index on CLIP_SHORT_TERMS_FUNCTION's array. SQLite: an FTS5 table of the
# substrings' UTF-8 bytes in hex (plain ASCII tokens; detail=none keeps only which rows), kept by
# triggers, its rows found by the clip's 32-hex-digit id (a term is at most 16 hex digits). A
# column's positions come from json_each over a run of zeros as long as the column, since a
# trigger body may not use a recursive WITH.
CLIP_SHORT_TERMS = 2
CLIP_SHORT_SEARCH_TABLE = "clip_short_search"
CLIP_SHORT_TERMS_FUNCTION = """CREATE OR REPLACE FUNCTION clip_short_terms(title text, description text, media text)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(v, i, n)), '{}')
  FROM unnest(ARRAY[lower(title), lower(description), lower(media)]) AS v,
       generate_series(1, length(v)) AS i, (VALUES (1), (2)) AS sizes(n)
  WHERE i + n - 1 <= length(v)
$$"""


def _sqlite_short_terms(row: str) -> str:
    columns = " UNION ALL ".join(f"SELECT lower({row}.{name}) AS v" for name in CLIP_SEARCH_COLUMNS)
    positions = "json_each('[' || rtrim(replace(printf('%.*c', length(v), 'x'), 'x', '0,'), ',') || ']')"
    return f"""(SELECT group_concat(term, ' ') FROM (SELECT DISTINCT hex(substr(v, key + 1, n)) AS term
      FROM ({columns}), {positions}, (SELECT 1 AS n UNION ALL SELECT 2) WHERE key + n <= length(v)))"""


_SHORT_ROW_OF_OLD = f"{CLIP_SHORT_SEARCH_TABLE} MATCH '\"' || OLD.id || '\"'"
CLIP_SHORT_SEARCH_DDL = {
    "sqlite": [
        f"""CREATE VIRTUAL TABLE IF NOT EXISTS {CLIP_SHORT_SEARCH_TABLE}
        USING fts5(clip_id, terms, tokenize = 'ascii', detail = none)""",
        f"""CREATE TRIGGER IF NOT EXISTS clip_short_search_insert AFTER INSERT ON clips BEGIN
          INSERT INTO {CLIP_SHORT_SEARCH_TABLE} (clip_id, terms) VALUES (NEW.id, {_sqlite_short_terms("NEW")});
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS clip_short_search_update AFTER UPDATE OF {_SEARCHED} ON clips BEGIN
          UPDATE {CLIP_SHORT_SEARCH_TABLE} SET terms = {_sqlite_short_terms("NEW")} WHERE {_SHORT_ROW_OF_OLD};
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS clip_short_search_delete AFTER DELETE ON clips BEGIN
          DELETE FROM {CLIP_SHORT_SEARCH_TABLE} WHERE {_SHORT_ROW_OF_OLD};
        END""",
    ],
}
# The same terms for the clips that exist already (the migration).
CLIP_SHORT_SEARCH_FILL = (f"INSERT INTO {CLIP_SHORT_SEARCH_TABLE} (clip_id, terms) "
                          f"SELECT id, {_sqlite_short_terms('clips')} FROM clips")
# The function must exist before create_all (the tests) makes the index.
event.listen(db.metadata, "before_create", DDL(CLIP_SHORT_TERMS_FUNCTION).execute_if(dialect="postgresql"))
Index("ix_clips_short_terms", func.clip_short_terms(Clip.title, Clip.description, Clip.media),
      postgresql_using="gin").ddl_if(dialect="postgresql")
for _statement in CLIP_SHORT_SEARCH_DDL["sqlite"]:  # DDL() formats with %: printf's is doubled
    event.listen(db.metadata, "after_create", DDL(_statement.replace("%", "%%")).execute_if(dialect="sqlite"))
event.listen(db.metadata, "before_drop",
             DDL(f"DROP TABLE IF EXISTS {CLIP_SHORT_SEARCH_TABLE}").execute_if(dialect="sqlite"))


class MediaUpload(TimestampMixin, Model):
    """A resumable (tus) upload: its declared length and what to do with the file when complete.

    The bytes received so far are the staged file under MEDIA_UPLOAD_DIR; its size is the
    upload's offset. `clip_id` is the clip whose video it replaces, or, once finished, the clip
    it made. Unfinished uploads older than MEDIA_UPLOAD_EXPIRY_SECONDS are swept.
    """

    __tablename__ = "media_uploads"
    __table_args__ = (Index("ix_media_uploads_finished_updated", "finished_at", "updated_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    length: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(255), default="")
    # title/description of the clip to create (unused when it replaces a clip's video).
    clip_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    clip_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clips.id"), index=True)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SocialAccount(TimestampMixin, Model):
    __tablename__ = "social_accounts"
    __table_args__ = (
        Index("ix_social_accounts_platform_handle", "platform", "handle", unique=True),
        Index("ix_social_accounts_platform_external_id", "platform", "external_id", unique=True),
        Index("ix_social_accounts_token_expires_at", "token_expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    platform: Mapped[str] = mapped_column(String(20))
    handle: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    parent_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("social_accounts.id"), index=True
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fernet token of the JSON credentials; only credentials.py reads or writes it.
    credentials_ciphertext: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    # Set by a permanent authentication error; cleared when credentials are saved again.
    needs_credentials: Mapped[bool] = mapped_column(default=False, server_default=false())
    needs_credentials_reason: Mapped[str | None] = mapped_column(Text)
    # Linked by OAuth (dashboard/linking.py): non-secret metadata about the tokens, which stay in
    # the encrypted credentials. `external_id` is who was connected (Instagram user id, TikTok
    # open_id, YouTube channel id): connecting the same one again updates this account.
    external_id: Mapped[str | None] = mapped_column(String(200))
    connected_as: Mapped[str | None] = mapped_column(String(200))
    avatar_url: Mapped[str | None] = mapped_column(String(2000))
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    granted_scopes: Mapped[list[str] | None] = mapped_column(JSON)
    # A worker's claim on refreshing the tokens (one conditional UPDATE takes it).
    token_refresh_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the platform refused a refresh; cleared by connecting again.
    needs_reconnect: Mapped[bool] = mapped_column(default=False, server_default=false())
    needs_reconnect_reason: Mapped[str | None] = mapped_column(Text)

    parent: Mapped[SocialAccount | None] = relationship(
        remote_side=[id], back_populates="satellites"
    )
    satellites: Mapped[list[SocialAccount]] = relationship(
        back_populates="parent", order_by="SocialAccount.handle"
    )

    @property
    def is_main(self) -> bool:
        return self.parent_account_id is None

    def forget_token_metadata(self) -> None:
        """The tokens are no longer the linked ones (disconnected, or entered by hand): nothing
        is refreshed or reported about them any more. Who was connected stays, so connecting
        the same identity again finds this account."""
        self.linked_at = None
        self.token_expires_at = self.refresh_expires_at = self.token_refreshed_at = None
        self.granted_scopes = None
        self.token_refresh_lease_until = None
        self.needs_reconnect = False
        self.needs_reconnect_reason = None

    def __repr__(self) -> str:  # never includes the credentials
        return f"<SocialAccount {self.platform}:{self.handle}>"


class PublishLog(TimestampMixin, Model):
    __tablename__ = "publish_logs"
    __table_args__ = (
        Index("ix_publish_logs_clip_requested", "clip_id", "requested_at"),
        Index("ix_publish_logs_status_requested", "status", "requested_at"),
        Index("ix_publish_logs_platform_requested", "platform", "requested_at"),
        Index("ix_publish_logs_account_requested", "social_account_id", "requested_at"),
        Index("ix_publish_logs_requested_id", "requested_at", "id"),
        Index("ix_publish_logs_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_publish_logs_account_published", "social_account_id", "published_at"),
        Index("ix_publish_logs_quota_project_counted", "quota_project", "quota_counted_at"),
        Index("ix_publish_logs_account_counts_at", "social_account_id", "counts_at"),
        # Unique: a log is retried at most once (retry the retry if that fails too), so two
        # clicks or two managers can never publish it twice. An index, not a table constraint,
        # so that adding it leaves SQLite's table (and its triggers) in place.
        Index("uq_publish_logs_retry_of_id", "retry_of_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    clip_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clips.id"))
    platform: Mapped[str] = mapped_column(String(20))
    social_account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("social_accounts.id"))
    status: Mapped[str] = mapped_column(String(20), default=PublishStatus.PENDING.value)
    provider: Mapped[str | None] = mapped_column(String(50))
    external_post_id: Mapped[str | None] = mapped_column(String(200))
    external_url: Mapped[str | None] = mapped_column(String(500))
    error_message: Mapped[str | None] = mapped_column(Text)
    caption: Mapped[str] = mapped_column(Text, default="")
    hashtags: Mapped[list[str]] = mapped_column(JSON, default=list)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Background publishing: when it should go out, how often it was tried, when to try next.
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("publish_batches.id"), index=True)
    # The attempt this one retries (unique: see uq_publish_logs_retry_of_id).
    retry_of_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("publish_logs.id"))
    # YouTube's daily upload quota belongs to the Google Cloud project (the app's client id), not
    # the account: a fingerprint of that project and when this attempt was counted against it
    # (publishing/project_quota.py).
    quota_project: Mapped[str | None] = mapped_column(String(16))
    quota_counted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When this log uses a quota slot (successes by their publish time, the rest by their start),
    # NULL when it uses none. Computed and stored by the database on every insert and update,
    # whichever code path changes the status, and indexed with the account: counting a quota
    # reads only the 24-hour window of one account. (A generated column cannot be written: an
    # Alembic batch migration that recreates this table on SQLite must leave it out of the copy.)
    counts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, Computed(
        f"CASE WHEN status IN ({_QUOTA_STATUSES_SQL}) THEN coalesce(published_at, started_at) END",
        persisted=True))
    # Live publishing (publishing/pipeline.py): the step to run next (or running now) and the
    # platform's non-secret ids the client saved (container id, publish id, upload session URI,
    # acknowledged offset). NULL `step` means a one-shot attempt (stub client or simulator).
    step: Mapped[str | None] = mapped_column(String(20))
    platform_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The platform's request id of the latest call (fbtrace_id, log_id, X-GUploader-UploadID).
    trace_id: Mapped[str | None] = mapped_column(String(200))
    # Set while a runner executes `step` (and refreshed by each checkpoint): the runner's claim
    # and heartbeat. NULL between steps, while waiting for `next_attempt_at`.
    step_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Times the attempt started again from the first step with fresh platform objects.
    restarts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # Times the platform was asked about an unknown outcome without a clear answer.
    reconcile_checks: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    clip: Mapped[Clip] = relationship()
    social_account: Mapped[SocialAccount | None] = relationship()
    batch: Mapped[PublishBatch | None] = relationship(back_populates="logs")
    # The attempt that retries this one, if a person retried it.
    retried_by: Mapped[PublishLog | None] = relationship(
        primaryjoin="PublishLog.id == foreign(PublishLog.retry_of_id)", uselist=False, viewonly=True)
    # The attempt this one retries (retry_of_id's row).
    retry_of: Mapped[PublishLog | None] = relationship(
        primaryjoin="foreign(PublishLog.retry_of_id) == remote(PublishLog.id)", viewonly=True)

    @property
    def chain_attempts(self) -> int:
        """Attempts made at this post so far: this log's and those of the attempts it retries
        (a person's Retry makes a new log, whose own count starts again at 1)."""
        total = 0
        row: PublishLog | None = self
        while row is not None:
            total += row.attempts
            row = row.retry_of
        return total

    @property
    def can_retry(self) -> bool:
        """A failed or unconfirmed post may be retried."""
        return self.status in RETRYABLE_STATUSES

    @property
    def can_cancel(self) -> bool:
        """A post that has not started may be cancelled."""
        return self.status in CANCELLABLE_STATUSES

    @property
    def can_mark(self) -> bool:
        """A post of unknown outcome may be marked as published by a person."""
        return self.status in MARKABLE_STATUSES


class PublishDayCount(Model):
    """Finished publish attempts (success, failed) per UTC day of request and platform: what the
    home page's 7-day chart sums, so that it reads a bounded number of rows whatever the volume.

    Kept by triggers on publish_logs (below; the migration creates the same), so every way a log
    is written or its status changes, bulk UPDATEs included, moves its count with it. On
    PostgreSQL each count is split in `PUBLISH_DAY_COUNT_SHARDS` rows, one per group of
    connections (`shard`, the connection's backend pid modulo that); a shard's figure can be
    negative, only their sum means anything. SQLite writes one at a time and keeps shard 0.
    """

    __tablename__ = "publish_day_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("0"))
    logs: Mapped[int] = mapped_column(default=0)


DAY_COUNTED_STATUSES = (PublishStatus.SUCCESS.value, PublishStatus.FAILED.value)
# Every outcome of one platform on one day moves the same count. Held from the outcome's UPDATE
# to its COMMIT, one row made PostgreSQL's outcomes wait for each other: under 64 clients 4-19 of
# them stood in "Lock: transactionid" behind that row while its holder's thread waited for the
# GIL and a core to send its COMMIT, and the connections held meanwhile overflowed the pool. A
# connection runs one transaction at a time, so two outcomes only meet on a row when their
# connections share a shard.
PUBLISH_DAY_COUNT_SHARDS = 16
_DAY = "', '".join(DAY_COUNTED_STATUSES)
# One statement per trigger (SQLite) / the function and trigger (PostgreSQL); migrations reuse them.
PUBLISH_DAY_COUNT_TRIGGERS = {
    "sqlite": [
        f"""CREATE TRIGGER IF NOT EXISTS publish_day_counts_insert AFTER INSERT ON publish_logs
        WHEN NEW.status IN ('{_DAY}')
        BEGIN
          INSERT INTO publish_day_counts (day, platform, status, shard, logs)
          VALUES (date(NEW.requested_at), NEW.platform, NEW.status, 0, 1)
          ON CONFLICT (day, platform, status, shard) DO UPDATE SET logs = logs + 1;
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS publish_day_counts_update AFTER UPDATE OF status ON publish_logs
        WHEN OLD.status IN ('{_DAY}') OR NEW.status IN ('{_DAY}')
        BEGIN
          UPDATE publish_day_counts SET logs = logs - 1
          WHERE OLD.status IN ('{_DAY}') AND day = date(OLD.requested_at)
            AND platform = OLD.platform AND status = OLD.status AND shard = 0;
          INSERT INTO publish_day_counts (day, platform, status, shard, logs)
          SELECT date(NEW.requested_at), NEW.platform, NEW.status, 0, 1 WHERE NEW.status IN ('{_DAY}')
          ON CONFLICT (day, platform, status, shard) DO UPDATE SET logs = logs + 1;
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS publish_day_counts_delete AFTER DELETE ON publish_logs
        WHEN OLD.status IN ('{_DAY}')
        BEGIN
          UPDATE publish_day_counts SET logs = logs - 1
          WHERE day = date(OLD.requested_at) AND platform = OLD.platform AND status = OLD.status
            AND shard = 0;
        END""",
    ],
    "postgresql": [
        f"""CREATE OR REPLACE FUNCTION publish_day_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          this_shard smallint := mod(pg_backend_pid(), {PUBLISH_DAY_COUNT_SHARDS});
        BEGIN
          IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('{_DAY}') THEN
            INSERT INTO publish_day_counts (day, platform, status, shard, logs)
            VALUES ((OLD.requested_at AT TIME ZONE 'UTC')::date, OLD.platform, OLD.status, this_shard, -1)
            ON CONFLICT (day, platform, status, shard) DO UPDATE SET logs = publish_day_counts.logs - 1;
          END IF;
          IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status IN ('{_DAY}') THEN
            INSERT INTO publish_day_counts (day, platform, status, shard, logs)
            VALUES ((NEW.requested_at AT TIME ZONE 'UTC')::date, NEW.platform, NEW.status, this_shard, 1)
            ON CONFLICT (day, platform, status, shard) DO UPDATE SET logs = publish_day_counts.logs + 1;
          END IF;
          RETURN NULL;
        END $$""",
        "DROP TRIGGER IF EXISTS publish_day_counts_keep ON publish_logs",
        """CREATE TRIGGER publish_day_counts_keep AFTER INSERT OR DELETE OR UPDATE OF status
        ON publish_logs FOR EACH ROW EXECUTE FUNCTION publish_day_counts_keep()""",
    ],
}
for _dialect, _statements in PUBLISH_DAY_COUNT_TRIGGERS.items():
    for _statement in _statements:
        # After every table exists (create_all in the tests); the migration runs them itself.
        event.listen(db.metadata, "after_create", DDL(_statement).execute_if(dialect=_dialect))


class RowCount(Model):
    """The number of rows of a table a page shows whole, kept by triggers on that table
    (ROW_COUNT_TRIGGERS; the migration creates the same), so that the page reads one row rather
    than counting them all. Only clips (home's "clips" figure) for now.
    """

    __tablename__ = "row_counts"

    table_name: Mapped[str] = mapped_column(String(50), primary_key=True)
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)


# An insert adds its rows, creating the count if it is missing; a delete takes its rows away
# from an existing count (never creates one: emptying both tables in any order leaves 0).
# PostgreSQL moves the count at COMMIT, so that its row is locked for the commit only, not while
# a transaction that added a clip goes on (an upload stores its video between its INSERT and its
# COMMIT): each statement adds its rows to a tally local to the transaction (a setting, undone
# with it or its savepoint), and a deferred constraint trigger moves the tally into the count
# once. (Updating the count's row once per clip at COMMIT made a COPY of 100,000 clips take
# 224 s: each update of one row in one transaction walks every version before it.)
ROW_COUNT_TRIGGERS = {
    "sqlite": [
        """CREATE TRIGGER IF NOT EXISTS clips_row_count_insert AFTER INSERT ON clips
        BEGIN
          INSERT INTO row_counts (table_name, row_count) VALUES ('clips', 1)
          ON CONFLICT (table_name) DO UPDATE SET row_count = row_count + 1;
        END""",
        """CREATE TRIGGER IF NOT EXISTS clips_row_count_delete AFTER DELETE ON clips
        BEGIN
          UPDATE row_counts SET row_count = row_count - 1 WHERE table_name = 'clips';
        END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION clips_row_count_tally() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          tally bigint := coalesce(nullif(current_setting('dashboard.clips_tally', true), ''), '0')::bigint;
        BEGIN
          IF TG_OP = 'INSERT' THEN
            tally := tally + (SELECT count(*) FROM inserted_rows);
          ELSE
            tally := tally - (SELECT count(*) FROM deleted_rows);
          END IF;
          PERFORM set_config('dashboard.clips_tally', tally::text, true);
          RETURN NULL;
        END $$""",
        """CREATE OR REPLACE FUNCTION clips_row_count_keep() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          tally bigint := coalesce(nullif(current_setting('dashboard.clips_tally', true), ''), '0')::bigint;
        BEGIN
          IF TG_OP = 'TRUNCATE' THEN
            UPDATE row_counts SET row_count = 0 WHERE table_name = 'clips';
          ELSIF tally <> 0 THEN
            PERFORM set_config('dashboard.clips_tally', '0', true);
            IF tally > 0 THEN
              INSERT INTO row_counts (table_name, row_count) VALUES ('clips', tally)
              ON CONFLICT (table_name) DO UPDATE SET row_count = row_counts.row_count + tally;
            ELSE
              UPDATE row_counts SET row_count = row_count + tally WHERE table_name = 'clips';
            END IF;
          END IF;
          RETURN NULL;
        END $$""",
        *(statement for event, rows in (("insert", "NEW TABLE AS inserted_rows"),
                                         ("delete", "OLD TABLE AS deleted_rows")) for statement in (
            f"DROP TRIGGER IF EXISTS clips_row_tally_{event} ON clips",
            f"""CREATE TRIGGER clips_row_tally_{event} AFTER {event.upper()} ON clips
            REFERENCING {rows} FOR EACH STATEMENT EXECUTE FUNCTION clips_row_count_tally()""",
            f"DROP TRIGGER IF EXISTS clips_row_count_{event} ON clips",
            f"""CREATE CONSTRAINT TRIGGER clips_row_count_{event} AFTER {event.upper()} ON clips
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION clips_row_count_keep()""")),
        "DROP TRIGGER IF EXISTS clips_row_count_truncate ON clips",
        """CREATE TRIGGER clips_row_count_truncate AFTER TRUNCATE ON clips
        FOR EACH STATEMENT EXECUTE FUNCTION clips_row_count_keep()""",
    ],
}
for _dialect, _statements in ROW_COUNT_TRIGGERS.items():
    for _statement in _statements:
        event.listen(db.metadata, "after_create", DDL(_statement).execute_if(dialect=_dialect))


class PublishBatch(TimestampMixin, Model):
    """One cross-posting action: a clip sent to several accounts, one publish log per target."""

    __tablename__ = "publish_batches"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    clip_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clips.id"), index=True)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))

    clip: Mapped[Clip] = relationship()
    logs: Mapped[list[PublishLog]] = relationship(back_populates="batch", order_by="PublishLog.requested_at")


class IdempotencyRecord(Model):
    """The first answer to a request sent with an Idempotency-Key, replayed for repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (Index("ix_idempotency_records_user_key", "user_id", "key", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    # NULL until the first request finishes; a repeat meanwhile is told to wait (409).
    response_status: Mapped[int | None] = mapped_column()
    response_body: Mapped[Any | None] = mapped_column(JSON)
    # What the first request created, written in the same transaction as it: a repeat whose
    # first request never answered (its process died) answers from this log's or batch's state
    # instead of doing the work again.
    publish_log_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("publish_logs.id"))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("publish_batches.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LedgerEvent(Model):
    """One step in the SocialSyncLedger. Append-only: see the guard below."""

    __tablename__ = "ledger_events"
    __table_args__ = (
        Index("ix_ledger_events_entity_created", "entity_type", "entity_id", "created_at"),
        Index("ix_ledger_events_type_created", "event_type", "created_at"),
        Index("ix_ledger_events_created_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_type: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # "metadata" is reserved on declarative classes, hence the attribute name.
    event_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppendOnlyError(RuntimeError):
    """Someone tried to change or delete a ledger event."""


@event.listens_for(Session, "before_flush")
def _ledger_is_append_only(session, _flush_context, _instances):
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, LedgerEvent):
            raise AppendOnlyError("ledger events are append-only")


class User(UserMixin, TimestampMixin, Model):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default=Role.VIEWER.value)
    active: Mapped[bool] = mapped_column(default=True)
    # IANA name; pages show and take times in it, the database keeps UTC.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    def has_role(self, needed: Role | str) -> bool:
        """True when the user's role includes the rights of `needed`."""
        return Role(self.role).allows(Role(needed))


class UserSession(Model):
    """A signed-in browser session, kept on the server so that signing out, deactivation and
    the idle and absolute time limits end it even for a copy of its cookie."""

    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class SignInAttempt(Model):
    """One sign-in whose password was (or is being) checked, kept for the throttle's window.

    In the database, not a process's memory, so the limit holds across every process and
    machine. Keys are SHA-256 digests: per email and client address, and per email alone.
    """

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_pair_created", "pair_key", "created_at"),
        Index("ix_sign_in_attempts_account_created", "account_key", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pair_key: Mapped[str] = mapped_column(String(64))
    account_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ApiToken(TimestampMixin, Model):
    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the token; the plaintext is shown once at creation and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
