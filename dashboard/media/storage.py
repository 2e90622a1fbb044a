"""Where uploaded videos and thumbnails live, behind one interface.

- `LocalStorage`: a folder (`MEDIA_STORAGE_URL=file:///path`, by default `instance/media`);
  nothing to start.
- `S3Storage`: an S3-compatible bucket (`MEDIA_STORAGE_URL=s3://bucket/prefix`, with
  `MEDIA_S3_ENDPOINT_URL` for MinIO, Ceph, R2, ... and keys from the settings or boto3's own
  chain), for web processes and workers on several machines.

Keys are made by the dashboard (`clips/<clip id>/<upload id>.<ext>`): a new key for every
upload, so that a replaced video is never overwritten under a reader's feet.

Bytes always move in blocks: a file is put from a path, read as a stream or a byte range, and
never held whole in memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from flask import current_app

from ..config import ConfigError

BLOCK = 1024 * 1024


class MediaMissing(FileNotFoundError):
    """The storage holds no object under this key."""


def _checked_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a storage key: {key!r}")
    return key


@dataclass(frozen=True)
class StoredObject:
    """A key in the storage and when its object was written (timezone-aware UTC)."""

    key: str
    written_at: datetime


class Storage(ABC):
    """Put, read (whole or a byte range), measure, list and delete objects by key."""

    @abstractmethod
    def put_file(self, key: str, path: str | os.PathLike, *, move: bool = False) -> int:
        """Store the file at `path` under `key` (moving it when `move`); return its size."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store a small object (a thumbnail)."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The object, opened for streaming reads (a context manager); MediaMissing if absent."""

    @abstractmethod
    def stream(self, key: str, start: int = 0, length: int | None = None,
               block: int = BLOCK) -> Iterator[bytes]:
        """The bytes [start, start + length) of the object, in blocks."""

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes; MediaMissing if absent."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; nothing happens when it is already gone."""

    @abstractmethod
    def local_path(self, key: str) -> str:
        """A path on this machine holding the object's bytes (the file itself, or a cached copy)."""

    @abstractmethod
    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with `prefix` (e.g. "clips/"), with when it was
        written; in no particular order."""

    def exists(self, key: str) -> bool:
        """True when the object is there."""
        try:
            self.size(key)
        except MediaMissing:
            return False
        return True


class LocalStorage(Storage):
    """Objects are files under `root` (created on first use)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"<LocalStorage {self.root}>"

    def path(self, key: str) -> Path:
        return self.root / _checked_key(key)

    def put_file(self, key: str, path, *, move: bool = False) -> int:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.replace(path, target)  # same file system: a rename, no copy
                os.utime(target)  # a rename keeps the old date; the orphan sweep needs this one
                return target.stat().st_size
            except OSError:
                pass
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(path, partial)
        os.replace(partial, target)
        if move:
            os.unlink(path)
        return target.stat().st_size

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, target)

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise MediaMissing(key) from None

    def stream(self, key: str, start: int = 0, length: int | None = None,
               block: int = BLOCK) -> Iterator[bytes]:
        with self.open(key) as handle:
            handle.seek(start)
            left = length
            while left is None or left > 0:
                data = handle.read(block if left is None else min(block, left))
                if not data:
                    break
                if left is not None:
                    left -= len(data)
                yield data

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise MediaMissing(key) from None

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        for parent in path.parents:  # drop the clip's folder once empty
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def local_path(self, key: str) -> str:
        path = self.path(key)
        if not path.exists():
            raise MediaMissing(key)
        return str(path)

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """The files under the folder, dated by their modification time (a `.partial` file left
        by a crashed write is listed too, so that the sweep can remove it)."""
        start = self.root / prefix.rpartition("/")[0]
        for folder, _, names in os.walk(start):
            for name in names:
                path = Path(folder, name)
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    mtime = path.stat().st_mtime
                except FileNotFoundError:  # deleted while we walk
                    continue
                yield StoredObject(key, datetime.fromtimestamp(mtime, UTC))


class S3Storage(Storage):
    """Objects in an S3-compatible bucket under `prefix`; local copies cached in `cache_dir`."""

    list_page_size = 1000  # keys per ListObjectsV2 request (S3's largest page)

    def __init__(self, bucket: str, prefix: str, client, cache_dir: str | os.PathLike):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.cache_dir = Path(cache_dir)

    def __repr__(self) -> str:  # never the keys of the client
        return f"<S3Storage s3://{self.bucket}/{self.prefix}>"

    def object_key(self, key: str) -> str:
        key = _checked_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _missing(self, exc, key: str) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def put_file(self, key: str, path, *, move: bool = False) -> int:
        size = os.path.getsize(path)
        # upload_file sends large files as a multipart upload, part by part from the file.
        self.client.upload_file(str(path), self.bucket, self.object_key(key))
        if move:
            os.unlink(path)
        return size

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data,
                               ContentType=content_type)

    def _get(self, key: str, byte_range: str | None = None):
        from botocore.exceptions import ClientError

        kwargs = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if byte_range:
            kwargs["Range"] = byte_range
        try:
            return self.client.get_object(**kwargs)["Body"]
        except ClientError as exc:
            if self._missing(exc, key):
                raise MediaMissing(key) from None
            raise

    def open(self, key: str) -> BinaryIO:
        return self._get(key)

    def stream(self, key: str, start: int = 0, length: int | None = None,
               block: int = BLOCK) -> Iterator[bytes]:
        if length == 0:
            return
        end = "" if length is None else str(start + length - 1)
        body = self._get(key, f"bytes={start}-{end}" if (start or length is not None) else None)
        try:
            yield from body.iter_chunks(block)
        finally:
            body.close()

    def size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if self._missing(exc, key):
                raise MediaMissing(key) from None
            raise
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        (self.cache_dir / _checked_key(key)).unlink(missing_ok=True)

    def local_path(self, key: str) -> str:
        """A copy in the cache folder, downloaded (streamed) the first time it is needed."""
        target = self.cache_dir / _checked_key(key)
        if target.exists():
            os.utime(target)  # recently used: the sweep keeps it
            return str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".partial")
        os.close(fd)
        try:
            size = self.size(key)  # MediaMissing before any download
            self.client.download_file(self.bucket, self.object_key(key), partial)
            if os.path.getsize(partial) != size:
                raise OSError(f"incomplete copy of {key}")
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return str(target)

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """The bucket's objects under the storage's prefix, page by page, dated by LastModified."""
        start = f"{self.prefix}/" if self.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start + prefix, PaginationConfig={"PageSize": self.list_page_size})
        for page in pages:
            for item in page.get("Contents", []):
                yield StoredObject(item["Key"][len(start):], item["LastModified"])


def make_storage(config) -> Storage:
    """The storage MEDIA_STORAGE_URL names (file:///path or s3://bucket/prefix)."""
    url = config["MEDIA_STORAGE_URL"]
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(unquote(parsed.path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError("MEDIA_STORAGE_URL=s3://... needs a bucket: s3://bucket/prefix")
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=config.get("MEDIA_S3_ENDPOINT_URL"),
            region_name=config.get("MEDIA_S3_REGION"),
            aws_access_key_id=config.get("MEDIA_S3_ACCESS_KEY_ID"),
            aws_secret_access_key=config.get("MEDIA_S3_SECRET_ACCESS_KEY"),
            # Path-style addressing works with every S3-compatible server, not only AWS.
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": 5, "mode": "standard"}),
        )
        return S3Storage(parsed.netloc, parsed.path, client, config["MEDIA_CACHE_DIR"])
    raise ConfigError(f"MEDIA_STORAGE_URL must start with file:// or s3://, got {url.split(':', 1)[0]}:")


def get_storage() -> Storage:
    """The current app's storage (made once per app)."""
    storage = current_app.extensions.get("media_storage")
    if storage is None:
        storage = current_app.extensions["media_storage"] = make_storage(current_app.config)
    return storage


@contextmanager
def staged_file(directory: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A new empty file in `directory` (the upload staging folder), removed afterwards unless
    it was moved away."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, suffix=suffix)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
