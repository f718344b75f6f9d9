"""S3 through the ``minio`` client: MinIO in production, any S3 store, moto's server in tests.

Only the S3 API is used (nothing MinIO-only). The bucket is created with object
lock; every committed document gets COMPLIANCE retention (:meth:`S3Store.retain`).
A writer streams into a multipart upload from a background thread; the upload is
completed only on :meth:`commit`, so an aborted writer leaves no object behind.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import MinioException, S3Error
from minio.retention import Retention

from . import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFound,
    ObjectRetained,
    StorageError,
    StorageUnavailable,
    check_key,
)

PART_SIZE = 6 * 1024 * 1024
# The pipe holds up to a part's worth of bytes, so the request keeps arriving while the
# previous part uploads (bounded in bytes: the request's chunks are small and many).
PIPE_BYTES = PART_SIZE
# minio queues parts for its upload threads without bound: with a slow store, parallel
# uploads would buffer the whole document. One part in flight keeps memory at ~3 parts.
PARALLEL_UPLOADS = 1
_NOT_FOUND = {"NoSuchKey", "NoSuchVersion", "NoSuchObject", "ResourceNotFound"}
_EOF = object()


def _map(exc: BaseException, key: str = "") -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, S3Error):
        if exc.code in _NOT_FOUND:
            return ObjectNotFound(key)
        if exc.code == "AccessDenied" and "retention" in (exc.message or "").lower():
            return ObjectRetained(key)
        if exc.code == "NoSuchBucket":
            return StorageUnavailable(f"bucket missing: {exc.message}")
        return StorageError(f"S3 error {exc.code}: {exc.message}")
    return StorageUnavailable(f"S3 store unavailable: {type(exc).__name__}: {exc}")


_TRANSPORT_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError)


class _Aborted(Exception):
    pass


class _Pipe:
    """A file-like object that ``put_object`` reads while another thread writes into it,
    holding at most about ``limit`` bytes.

    ``read(n)`` returns as soon as some bytes are there (at most ``n``), as a raw stream may;
    minio's part reader loops until its part is full."""

    def __init__(self, limit: int = PIPE_BYTES) -> None:
        self._cond = threading.Condition()
        self._items: collections.deque = collections.deque()
        self._bytes = 0
        self._limit = limit
        self._drained = False  # the reader gave up: writers must never wait again
        self._rest = b""
        self._eof = False

    def put(self, item, timeout: float | None = None) -> bool:
        """Queue ``item``; False if ``timeout`` passed while the pipe was full. A chunk larger
        than the limit still goes in once the pipe is empty; markers never wait."""
        size = len(item) if isinstance(item, bytes | bytearray | memoryview) else 0
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while size and self._bytes and self._bytes + size > self._limit and not self._drained:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            if not self._drained:
                self._items.append(item)
                self._bytes += size
            self._cond.notify_all()
            return True

    def abort(self) -> None:
        """Drop what is queued and make the reader's next read raise."""
        with self._cond:
            self._items.clear()
            self._bytes = 0
            self._items.append(_Aborted())
            self._cond.notify_all()

    def drain(self) -> None:
        """The reader stopped: drop what is queued, and let writers through from now on."""
        with self._cond:
            self._items.clear()
            self._bytes = 0
            self._drained = True
            self._cond.notify_all()

    def _get(self):
        with self._cond:
            while not self._items:
                self._cond.wait()
            item = self._items.popleft()
            if isinstance(item, bytes | bytearray | memoryview):
                self._bytes -= len(item)
            self._cond.notify_all()
            return item

    def read(self, n: int = -1) -> bytes:
        if not self._rest and not self._eof:
            item = self._get()
            if item is _EOF:
                self._eof = True
            elif isinstance(item, _Aborted):
                raise item
            else:
                self._rest = bytes(item)
        if n < 0 or n >= len(self._rest):
            out, self._rest = self._rest, b""
        else:
            out, self._rest = self._rest[:n], self._rest[n:]
        return out


class _S3Writer:
    def __init__(self, store: S3Store, key: str):
        self._store = store
        self._key = key
        self._pipe = _Pipe()
        self._size = 0
        self._result: object = None
        self._error: BaseException | None = None
        self._done = False
        self._thread = threading.Thread(target=self._run, name=f"s3-put-{key[-12:]}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._store._client.put_object(
                self._store.bucket, self._key, self._pipe, length=-1, part_size=PART_SIZE,  # type: ignore[arg-type]
                num_parallel_uploads=PARALLEL_UPLOADS,
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
            self._error = exc
            self._pipe.drain()  # unblock a writer waiting on a full pipe

    def _check(self) -> None:
        if self._error is not None and not isinstance(self._error, _Aborted):
            err, self._done = self._error, True
            raise _map(err, self._key)

    def write(self, chunk: bytes) -> None:
        self._check()
        while not self._pipe.put(chunk, timeout=0.5):
            self._check()
            if not self._thread.is_alive():
                raise StorageUnavailable("S3 upload stopped")
        self._size += len(chunk)

    def commit(self) -> ObjectInfo:
        self._check()
        self._pipe.put(_EOF)
        self._thread.join()
        self._done = True
        if self._error is not None:
            raise _map(self._error, self._key)
        return ObjectInfo(self._key, self._size, version=getattr(self._result, "version_id", None))

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if self._thread.is_alive():
            self._pipe.abort()
            self._thread.join(timeout=30)


class _S3Reader:
    def __init__(self, store: S3Store, key: str, chunk_size: int):
        self._key = key
        try:
            self._resp = store._client.get_object(store.bucket, key)
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc, key) from None
        self._chunk = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._resp.stream(self._chunk)
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc, self._key) from None
        finally:
            self.close()

    def close(self) -> None:
        self._resp.close()
        self._resp.release_conn()


class S3Store:
    kind = "s3"

    def __init__(self, *, endpoint: str, access_key: str, secret_key: str, bucket: str,
                 secure: bool = True, region: str = "us-east-1", object_lock: bool = True):
        self.endpoint = endpoint
        self.bucket = bucket
        self.object_lock = object_lock
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=120),
            maxsize=16,
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key,
                             secure=secure, region=region, http_client=http)

    def __repr__(self) -> str:
        return f"S3Store({self.endpoint!r}, bucket={self.bucket!r})"

    def ensure_ready(self) -> None:
        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket, object_lock=self.object_lock)
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc) from None

    def ping(self) -> None:
        try:
            if not self._client.bucket_exists(self.bucket):
                raise StorageUnavailable(f"bucket {self.bucket!r} does not exist")
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc) from None

    def writer(self, key: str, *, repair: bool = False) -> _S3Writer:
        # Every put is a new version of the key; readers get the latest. Writing bytes that are
        # already there is harmless (a refused deposit removes only what nothing relies on), and
        # a repair's verified bytes become the version that is read.
        return _S3Writer(self, check_key(key))

    def open(self, key: str, chunk_size: int = CHUNK_SIZE) -> _S3Reader:
        return _S3Reader(self, check_key(key), chunk_size)

    def stat(self, key: str) -> ObjectInfo:
        try:
            st = self._client.stat_object(self.bucket, check_key(key))
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc, key) from None
        until = None
        # get_object_retention does not parse against every server; the headers do.
        raw = (st.metadata or {}).get("x-amz-object-lock-retain-until-date")
        if raw:
            until = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return ObjectInfo(key, st.size or 0, last_modified=st.last_modified, retained_until=until,
                          version=st.version_id)

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
            return True
        except ObjectNotFound:
            return False

    def retain(self, key: str, until: datetime) -> None:
        if not self.object_lock:
            return
        current = self.stat(key).retained_until
        if current is not None and current >= until:
            return  # COMPLIANCE retention can only be extended
        try:
            self._client.set_object_retention(
                self.bucket, check_key(key), Retention(COMPLIANCE, until.astimezone(UTC))
            )
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc, key) from None

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            versions = [o for o in self._client.list_objects(self.bucket, prefix=key, include_version=True)
                        if o.object_name == key]
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc, key) from None
        if not versions:
            raise ObjectNotFound(key)
        info = self.stat(key) if any(not o.is_delete_marker for o in versions) else None
        if info is not None and info.retained_until and info.retained_until > datetime.now(UTC):
            raise ObjectRetained(f"{key} is retained until {info.retained_until.isoformat()}")
        for o in versions:
            try:
                self._client.remove_object(self.bucket, key, version_id=o.version_id)
            except S3Error as exc:
                if exc.code in ("AccessDenied", "InvalidRequest"):
                    raise ObjectRetained(key) from None
                raise _map(exc, key) from None
            except _TRANSPORT_ERRORS as exc:
                raise _map(exc, key) from None

    def discard(self, key: str, version: str | None) -> None:
        if version is None:
            try:
                self.delete(key)
            except ObjectNotFound:
                pass
            return
        try:
            self._client.remove_object(self.bucket, check_key(key), version_id=version)
        except S3Error as exc:
            if exc.code in ("AccessDenied", "InvalidRequest"):
                raise ObjectRetained(key) from None
            if exc.code not in _NOT_FOUND:
                raise _map(exc, key) from None
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc, key) from None

    def sweep_partial(self, older_than: datetime) -> int:
        """Abort multipart uploads initiated before ``older_than`` (a process killed mid-upload
        never completes or aborts its own). minio's client has no public call for listing
        uploads; its internal S3 calls are used here, inside the adapter, at the pinned version."""
        removed = 0
        key_marker = upload_marker = None
        try:
            while True:
                page = self._client._list_multipart_uploads(
                    self.bucket, prefix="sha256/", key_marker=key_marker, upload_id_marker=upload_marker,
                    max_uploads=1000)
                for up in page.uploads:
                    started = up.initiated_time
                    if started is not None and started.tzinfo is None:
                        started = started.replace(tzinfo=UTC)
                    if started is not None and started < older_than and up.upload_id:
                        self._client._abort_multipart_upload(self.bucket, up.object_name, up.upload_id)
                        removed += 1
                if not page.is_truncated or not page.next_key_marker:
                    return removed
                # minio 7.2 stores the next upload-id marker under a misspelt attribute name.
                key_marker = page.next_key_marker
                upload_marker = page.next_upload_id_marker or getattr(page, "self._next_upload_id_marker", None)
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc) from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        try:
            for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                yield ObjectInfo(o.object_name, o.size, last_modified=o.last_modified)
        except _TRANSPORT_ERRORS as exc:
            raise _map(exc, prefix) from None
