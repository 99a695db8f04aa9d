"""Object stores: the configured S3 bucket, or a local folder for ``talent process --out``.

Both expose the same few operations so the assets never care which one they talk to. Keys
are always relative to the store; a key that would escape the store (``..``, absolute paths)
is refused before any I/O.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from talent_assets.core.objects import (
    ObjectChangedError,
    ObjectInfo,
    ObjectNotFoundError,
    UnsafeKeyError,
    check_key,
)


class ObjectStore(Protocol):
    """The operations the pipeline needs from a bucket."""

    bucket: str

    def head(self, key: str) -> ObjectInfo: ...
    def download(self, key: str, dest: Path) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...
    def put_file(self, key: str, source: Path, content_type: str) -> None: ...
    def put_bytes_if(
        self, key: str, data: bytes, content_type: str, *, etag: str | None
    ) -> str: ...
    def copy(self, src_key: str, dst_key: str) -> None: ...
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def delete(self, keys: list[str]) -> None: ...
    def url(self, key: str) -> str: ...
    def location(self, key: str) -> str: ...


class S3ObjectStore:
    """One S3 bucket through a boto3 client (which never logs credentials)."""

    def __init__(self, client: Any, bucket: str, *, presign_seconds: int = 7 * 24 * 3600):
        self.client = client
        self.bucket = bucket
        self.presign_seconds = presign_seconds

    def head(self, key: str) -> ObjectInfo:
        check_key(key)
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise ObjectNotFoundError(f"no such object: s3://{self.bucket}/{key}") from None
            raise
        return ObjectInfo(
            key=key,
            size=int(meta["ContentLength"]),
            etag=str(meta.get("ETag", "")).strip('"'),
            last_modified=meta["LastModified"],
        )

    def download(self, key: str, dest: Path) -> None:
        check_key(key)
        try:
            self.client.download_file(self.bucket, key, str(dest))
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise ObjectNotFoundError(f"no such object: s3://{self.bucket}/{key}") from None
            raise

    def get_bytes(self, key: str) -> bytes:
        check_key(key)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey"):
                raise ObjectNotFoundError(f"no such object: s3://{self.bucket}/{key}") from None
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        check_key(key)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def put_file(self, key: str, source: Path, content_type: str) -> None:
        """Upload a file, in parts when large, without reading it into memory."""
        check_key(key)
        self.client.upload_file(
            str(source), self.bucket, key, ExtraArgs={"ContentType": content_type}
        )

    def put_bytes_if(self, key: str, data: bytes, content_type: str, *, etag: str | None) -> str:
        """Write only if the object still has ``etag`` (None: only if it does not exist);
        :class:`ObjectChangedError` otherwise. Returns the new ETag. (S3 conditional writes.)"""
        check_key(key)
        condition = {"IfMatch": f'"{etag}"'} if etag is not None else {"IfNoneMatch": "*"}
        try:
            reply = self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **condition
            )
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            changed = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
            # AWS answers If-Match on a key that is gone with 404 (SeaweedFS with 412).
            gone = etag is not None and code in ("NoSuchKey", "404", "NotFound")
            if code in changed or gone:
                raise ObjectChangedError(f"s3://{self.bucket}/{key} changed") from None
            raise
        return str(reply.get("ETag", "")).strip('"')

    def copy(self, src_key: str, dst_key: str) -> None:
        check_key(src_key)
        check_key(dst_key)
        self.client.copy_object(
            Bucket=self.bucket, Key=dst_key, CopySource={"Bucket": self.bucket, "Key": src_key}
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"],
                    size=int(item["Size"]),
                    etag=str(item.get("ETag", "")).strip('"'),
                    last_modified=item["LastModified"],
                )

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": check_key(k)} for k in keys[start : start + 1000]]
            if chunk:
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}
                )

    def url(self, key: str) -> str:
        """A presigned (SigV4) GET URL, so links work without making the bucket public."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=self.presign_seconds,
        )

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


class LocalObjectStore:
    """A folder that behaves like a bucket; writes are atomic (temp file, then rename)."""

    def __init__(self, root: Path, bucket: str = "local"):
        self.root = Path(root).resolve()
        self.bucket = bucket

    def path(self, key: str) -> Path:
        """The file for ``key``; refuses anything that would resolve outside the root."""
        check_key(key)
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise UnsafeKeyError(f"unsafe object key: {key!r}")
        return path

    def head(self, key: str) -> ObjectInfo:
        path = self.path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no such file: {path}")
        stat = path.stat()
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",
            last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
        )

    def download(self, key: str, dest: Path) -> None:
        path = self.path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no such file: {path}")
        shutil.copyfile(path, dest)

    def get_bytes(self, key: str) -> bytes:
        path = self.path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no such file: {path}")
        return path.read_bytes()

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        # Under the same lock as conditional writes, so none lands between their check and
        # their replace.
        with self._write_lock():
            self._write(key, data)

    def put_file(self, key: str, source: Path, content_type: str) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            with self._write_lock():
                os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        # The lock file lives in the temp folder, named after the root, so the store's own
        # folder holds only objects.
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:24]
        folder = Path(tempfile.gettempdir()) / "talent-store-locks"
        folder.mkdir(exist_ok=True)
        with open(folder / f"{digest}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes_if(self, key: str, data: bytes, content_type: str, *, etag: str | None) -> str:
        """Write only if the file still has ``etag`` (None: only if it does not exist);
        :class:`ObjectChangedError` otherwise. A lock file serialises writers on this host."""
        path = self.path(key)
        with self._write_lock():
            try:
                current = self.head(key).etag
            except ObjectNotFoundError:
                current = None
            if current != etag:
                raise ObjectChangedError(f"{path} changed")
            self._write(key, data)
            return self.head(key).etag

    def copy(self, src_key: str, dst_key: str) -> None:
        self.put_bytes(dst_key, self.get_bytes(src_key), "application/octet-stream")

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for path in sorted(self.root.rglob("*")):
            if not path.is_file() or path.name.startswith(".tmp-"):
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                yield self.head(key)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self.path(key)
            path.unlink(missing_ok=True)
            # Drop folders emptied by the delete, as S3 has no folders to leave behind.
            parent = path.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def url(self, key: str) -> str:
        return self.path(key).as_uri()

    def location(self, key: str) -> str:
        return str(self.path(key))
