"""A local directory as blob store: the embedded default.

Objects are written to a temporary file and renamed into place on commit, so a
reader never sees a partial object. Retention is recorded beside the tree and
enforced by :meth:`delete`; a local directory is not WORM storage against root.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from . import CHUNK_SIZE, ObjectInfo, ObjectNotFound, ObjectRetained, StorageUnavailable, check_key

_TMP = ".tmp"
_RETENTION = ".retention"


class _LocalWriter:
    def __init__(self, store: LocalStore, key: str, repair: bool = False):
        self._store = store
        self._key = key
        self._repair = repair
        fd, self._tmp = tempfile.mkstemp(dir=store.root / _TMP, prefix=uuid.uuid4().hex)
        self._f = os.fdopen(fd, "wb")
        self._size = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        try:
            self._f.write(chunk)
        except OSError as exc:
            self.abort()
            raise StorageUnavailable(f"local store write failed: {exc}") from None
        self._size += len(chunk)

    def commit(self) -> ObjectInfo:
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            final = self._store._path(self._key)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self._tmp, 0o444)
            inode = os.stat(self._tmp).st_ino
            if self._repair:
                # The caller checked these bytes against their digest and the stored file
                # failed its own check: the genuine bytes take its place.
                os.replace(self._tmp, final)
            else:
                inode = self._link_no_replace(final, inode)
        except OSError as exc:
            self.abort()
            raise StorageUnavailable(f"local store commit failed: {exc}") from None
        self._done = True
        return ObjectInfo(self._key, self._size, version=str(inode))

    def _link_no_replace(self, final: Path, inode: int) -> int:
        """Put the file in place unless one is there already, which is then kept as it is:
        keys derive from the content, and another deposit may be relying on that very file.
        Returns the inode now under the key."""
        try:
            os.link(self._tmp, final)
        except FileExistsError:
            inode = os.stat(final).st_ino
        finally:
            os.unlink(self._tmp)
        return inode

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._f.close()
        except OSError:
            pass
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


class _LocalReader:
    def __init__(self, path: Path, chunk_size: int):
        try:
            self._f = open(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(str(path.name)) from None
        except OSError as exc:
            raise StorageUnavailable(str(exc)) from None
        self._chunk = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._f.read(self._chunk):
                yield chunk
        except OSError as exc:
            raise StorageUnavailable(f"local store read failed: {exc}") from None
        finally:
            self.close()

    def close(self) -> None:
        self._f.close()


class LocalStore:
    kind = "local"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _retention_path(self, key: str) -> Path:
        return self.root / _RETENTION / check_key(key)

    def ensure_ready(self) -> None:
        try:
            (self.root / _TMP).mkdir(parents=True, exist_ok=True)
            (self.root / _RETENTION).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create {self.root}: {exc}") from None

    def ping(self) -> None:
        if not (self.root / _TMP).is_dir() or not os.access(self.root / _TMP, os.W_OK):
            raise StorageUnavailable(f"local store {self.root} is not writable")

    def writer(self, key: str, *, repair: bool = False) -> _LocalWriter:
        check_key(key)
        try:
            return _LocalWriter(self, key, repair)
        except OSError as exc:
            raise StorageUnavailable(f"local store unavailable: {exc}") from None

    def open(self, key: str, chunk_size: int = CHUNK_SIZE) -> _LocalReader:
        return _LocalReader(self._path(key), chunk_size)

    def _retained_until(self, key: str) -> datetime | None:
        try:
            text = self._retention_path(key).read_text().strip()
        except FileNotFoundError:
            return None
        return datetime.fromisoformat(text)

    def stat(self, key: str) -> ObjectInfo:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageUnavailable(str(exc)) from None
        return ObjectInfo(
            key,
            st.st_size,
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
            retained_until=self._retained_until(key),
        )

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(f"local store {self.root} is not a directory")

    def exists(self, key: str) -> bool:
        path = self._path(key)
        if path.is_file():
            return True
        self._check_root()
        return False

    def retain(self, key: str, until: datetime) -> None:
        if not self.exists(key):
            raise ObjectNotFound(key)
        p = self._retention_path(key)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            # Deposits sharing a blob retain it at once, in several processes: read, compare and
            # write under one lock, and replace the file whole (a reader never sees it half-written).
            with open(self.root / _RETENTION / ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                current = self._retained_until(key)
                if current is not None and current >= until:
                    return  # COMPLIANCE retention is never shortened
                fd, tmp = tempfile.mkstemp(dir=self.root / _TMP, prefix="retention-")
                with os.fdopen(fd, "w") as f:
                    f.write(until.astimezone(UTC).isoformat())
                os.replace(tmp, p)
        except OSError as exc:
            raise StorageUnavailable(f"local store retention failed: {exc}") from None

    def delete(self, key: str) -> None:
        until = self._retained_until(key)
        if until is not None and until > datetime.now(UTC):
            raise ObjectRetained(f"{key} is retained until {until.isoformat()}")
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        self._retention_path(key).unlink(missing_ok=True)

    def discard(self, key: str, version: str | None) -> None:
        path = self._path(key)
        until = self._retained_until(key)
        if until is not None and until > datetime.now(UTC):
            raise ObjectRetained(f"{key} is retained until {until.isoformat()}")
        try:
            # A version is the inode a writer put in place; with no version, whatever is there.
            if version is None or str(path.stat().st_ino) == version:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageUnavailable(str(exc)) from None

    def sweep_partial(self, older_than: datetime) -> int:
        """Remove temporary files that no writer touched since ``older_than``: what a process
        killed mid-upload left behind (a live writer's file is modified as bytes arrive)."""
        removed = 0
        cutoff = older_than.timestamp()
        try:
            entries = list(os.scandir(self.root / _TMP))
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StorageUnavailable(f"local store listing failed: {exc}") from None
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue  # committed or aborted meanwhile
            except OSError as exc:
                raise StorageUnavailable(f"removing {entry.path} failed: {exc}") from None
        return removed

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._check_root()

        def fail(exc: OSError):
            raise StorageUnavailable(f"local store listing failed: {exc}")

        for dirpath, dirnames, filenames in os.walk(self.root, onerror=fail):
            rel_dir = os.path.relpath(dirpath, self.root)
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d not in (_TMP, _RETENTION)]
            dirnames.sort()
            for name in sorted(filenames):
                key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if key.startswith(prefix):
                    yield self.stat(key)
