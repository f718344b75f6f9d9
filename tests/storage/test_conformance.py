"""One conformance suite for every blob store: a local directory and S3 over real HTTP (moto).

Each test in the first part runs once per backend; the behaviour the rest of the exchange
relies on must not depend on which store is configured.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dossiers.storage import (
    CHUNK_SIZE,
    ObjectNotFound,
    ObjectRetained,
    StorageConfigError,
    StorageError,
    StorageUnavailable,
    blob_key,
    store_from_url,
)
from dossiers.storage.local import LocalStore
from dossiers.storage.s3 import S3Store
from tests.conftest import s3_url
from tests.support import TcpProxy

MiB = 1024 * 1024


def unique_bucket() -> str:
    return f"conf-{uuid.uuid4().hex[:20]}"


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        s = store_from_url(f"file://{tmp_path / 'blobs'}")
        assert isinstance(s, LocalStore)
    else:
        port = request.getfixturevalue("s3_server")
        s = store_from_url(s3_url(port, bucket=unique_bucket()))
        assert isinstance(s, S3Store)
    s.ensure_ready()
    return s


def put(store, key: str, data: bytes, chunk: int = CHUNK_SIZE, repair: bool = False):
    w = store.writer(key, repair=repair)
    try:
        for i in range(0, len(data), chunk):
            w.write(data[i:i + chunk])
        return w.commit()
    except BaseException:
        w.abort()
        raise


def read(store, key: str, chunk_size: int = CHUNK_SIZE) -> bytes:
    return b"".join(store.open(key, chunk_size))  # iterating to the end closes the reader


def keys_of(store, prefix: str = "") -> list[str]:
    return [o.key for o in store.list(prefix)]


def in_a_day() -> datetime:
    # whole seconds: S3 keeps retain-until dates to the second (or millisecond)
    return (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)


# --- write, read, stat ----------------------------------------------------------------------

def test_write_commit_then_read_back(store):
    data = b"%PDF-1.7 search report\n" + os.urandom(1000)
    key = blob_key(hashlib.sha256(data).hexdigest())
    info = put(store, key, data)
    assert info.key == key
    assert info.size == len(data)
    assert isinstance(info.version, str) and info.version
    assert read(store, key) == data
    st = store.stat(key)
    assert st.key == key and st.size == len(data)
    assert st.last_modified is not None
    assert st.retained_until is None
    assert store.exists(key)


def test_an_empty_object_roundtrips(store):
    info = put(store, "empty/object", b"")
    assert info.size == 0
    assert store.stat("empty/object").size == 0
    assert read(store, "empty/object") == b""


def test_a_20_mib_object_written_in_1_mib_chunks_roundtrips(store):
    """Larger than one S3 part (8 MiB): the S3 store completes a multipart upload."""
    data = os.urandom(20 * MiB)
    key = blob_key(hashlib.sha256(data).hexdigest())
    info = put(store, key, data, chunk=MiB)
    assert info.size == 20 * MiB
    assert store.stat(key).size == 20 * MiB
    chunks = list(store.open(key, chunk_size=MiB))
    assert all(len(c) <= MiB for c in chunks)
    got = b"".join(chunks)
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_a_reader_can_be_closed_before_the_end(store):
    put(store, "partial/read", os.urandom(3 * MiB))
    r = store.open("partial/read", chunk_size=64 * 1024)
    first = next(iter(r))
    assert len(first) <= 64 * 1024
    r.close()
    assert read(store, "partial/read", chunk_size=MiB)  # the store is still usable


def test_a_repair_commit_under_a_key_replaces_the_content(store):
    put(store, "k/replace", b"first")
    put(store, "k/replace", b"second!", repair=True)
    assert read(store, "k/replace") == b"second!"
    assert store.stat("k/replace").size == 7


def test_a_second_commit_of_the_same_bytes_keeps_the_object_whole(store):
    """Two deposits of one document commit under one content-derived key: whichever way the
    store resolves it, the object stays whole and readable, also to a reader already reading."""
    data = os.urandom(3 * MiB)
    key = blob_key(hashlib.sha256(data).hexdigest())
    put(store, key, data)
    reader = iter(store.open(key, chunk_size=MiB))
    first = next(reader)
    put(store, key, data)
    assert first + b"".join(reader) == data
    assert read(store, key) == data
    assert keys_of(store, key) == [key]


def test_partial_uploads_are_swept_when_old_and_only_then(store):
    """What a writer killed mid-upload leaves (a temporary file, an incomplete multipart upload)
    is removed by sweep_partial once untouched for long enough; a young one stays."""
    key = blob_key("ab" * 32)
    w = store.writer(key)
    w.write(os.urandom(7 * MiB))  # past one S3 part: the multipart upload exists
    time.sleep(0.5 if store.kind == "s3" else 0)
    deadline = time.monotonic() + 10
    while store.kind == "s3" and not store._client._list_multipart_uploads(store.bucket).uploads:
        assert time.monotonic() < deadline, "the multipart upload never started"
        time.sleep(0.1)
    if store.kind == "local":
        # moto reports every multipart upload as initiated in 2010: only the local store's
        # "young" case can be checked here.
        assert store.sweep_partial(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.sweep_partial(datetime.now(UTC) + timedelta(minutes=5)) >= 1
    if store.kind == "s3":
        assert store._client._list_multipart_uploads(store.bucket).uploads == []
    else:
        assert list((store.root / ".tmp").iterdir()) == []
    w.abort()
    assert not store.exists(key)
    assert store.sweep_partial(datetime.now(UTC) + timedelta(minutes=5)) == 0


def test_ensure_ready_is_idempotent_and_ping_answers(store):
    store.ensure_ready()
    store.ensure_ready()
    store.ping()


# --- abort ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [3, 9 * MiB], ids=["small", "past-first-part"])
def test_abort_before_commit_leaves_nothing(store, size):
    key = "aborted/object"
    w = store.writer(key)
    data = os.urandom(size)
    for i in range(0, size, MiB):
        w.write(data[i:i + MiB])
    w.abort()
    assert not store.exists(key)
    assert key not in keys_of(store)
    with pytest.raises(ObjectNotFound):
        store.stat(key)
    with pytest.raises(ObjectNotFound):
        store.open(key)
    if isinstance(store, LocalStore):
        assert list((store.root / ".tmp").iterdir()) == []


def test_abort_twice_is_safe(store):
    w = store.writer("aborted/twice")
    w.write(b"x" * 100)
    w.abort()
    w.abort()
    assert not store.exists("aborted/twice")


def test_abort_after_commit_keeps_the_object(store):
    w = store.writer("committed/then-aborted")
    w.write(b"kept")
    w.commit()
    w.abort()
    assert read(store, "committed/then-aborted") == b"kept"


def test_abort_without_writing_leaves_nothing(store):
    w = store.writer("never/written")
    w.abort()
    assert not store.exists("never/written")


def _settled_threads(before: set, wait: float = 3.0) -> list[str]:
    deadline = time.monotonic() + wait
    while True:
        # moto's server runs in this process: its per-connection handler threads are not ours
        extra = [t for t in threading.enumerate()
                 if t not in before and t.is_alive() and "process_request_thread" not in t.name]
        if not extra or time.monotonic() > deadline:
            return [f"{t.name} {type(t).__module__}.{type(t).__qualname__}" for t in extra]
        time.sleep(0.05)


def test_an_aborted_large_upload_leaves_no_threads_behind(store):
    """A failed deposit must not cost a thread for the life of the process."""
    put(store, "warm/up", b"x")  # the connection pool and server threads exist already
    before = set(threading.enumerate())
    w = store.writer("aborted/large")
    for _ in range(9):  # past the first 8 MiB part: a multipart upload has started on S3
        w.write(b"y" * MiB)
    w.abort()
    assert _settled_threads(before) == []


# --- versions and discard -------------------------------------------------------------------

def test_discard_removes_exactly_that_version(store):
    first = put(store, "k/versioned", b"first deposit")
    second = put(store, "k/versioned", b"second deposit", repair=True)
    assert first.version != second.version
    store.discard("k/versioned", first.version)
    assert read(store, "k/versioned") == b"second deposit"  # a later write stays
    store.discard("k/versioned", second.version)
    assert not store.exists("k/versioned")
    assert "k/versioned" not in keys_of(store)


def test_discard_of_a_missing_key_or_version_is_a_no_op(store):
    other = put(store, "k/other", b"other")
    store.discard("k/missing", None)
    store.discard("k/missing", other.version)
    gone = put(store, "k/gone", b"gone")
    store.discard("k/gone", gone.version)
    store.discard("k/gone", gone.version)  # twice
    assert not store.exists("k/gone")
    assert read(store, "k/other") == b"other"


def test_discard_without_version_removes_the_object(store):
    put(store, "k/no-version", b"x")
    store.discard("k/no-version", None)
    assert not store.exists("k/no-version")


# --- missing objects ------------------------------------------------------------------------

def test_a_missing_key_raises_object_not_found(store):
    key = blob_key("0" * 64)
    with pytest.raises(ObjectNotFound):
        store.stat(key)
    with pytest.raises(ObjectNotFound):
        store.open(key)
    with pytest.raises(ObjectNotFound):
        store.delete(key)
    with pytest.raises(ObjectNotFound):
        store.retain(key, in_a_day())
    assert store.exists(key) is False
    assert issubclass(ObjectNotFound, StorageError)


# --- retention ------------------------------------------------------------------------------

def test_a_retained_object_cannot_be_deleted(store):
    put(store, "k/retained", b"evidence")
    until = in_a_day()
    store.retain("k/retained", until)
    assert store.stat("k/retained").retained_until == until
    with pytest.raises(ObjectRetained):
        store.delete("k/retained")
    assert store.exists("k/retained")
    assert read(store, "k/retained") == b"evidence"
    assert "k/retained" in keys_of(store)


def test_a_retained_version_cannot_be_discarded(store):
    """Retention is WORM: discarding the retained version must fail as a retention refusal."""
    info = put(store, "k/retained-version", b"evidence")
    store.retain("k/retained-version", in_a_day())
    with pytest.raises(ObjectRetained):
        store.discard("k/retained-version", info.version)
    assert read(store, "k/retained-version") == b"evidence"


def test_retention_is_never_shortened(store):
    put(store, "k/retain-longer", b"x")
    later = in_a_day() + timedelta(days=30)
    store.retain("k/retain-longer", later)
    store.retain("k/retain-longer", later - timedelta(days=29))
    assert store.stat("k/retain-longer").retained_until == later
    store.retain("k/retain-longer", later)  # the same date again is fine
    assert store.stat("k/retain-longer").retained_until == later


def test_retention_can_be_extended(store):
    put(store, "k/retain-extend", b"x")
    first = in_a_day()
    store.retain("k/retain-extend", first)
    store.retain("k/retain-extend", first + timedelta(days=365))
    assert store.stat("k/retain-extend").retained_until == first + timedelta(days=365)


def test_retention_accepts_any_utc_offset(store):
    put(store, "k/retain-offset", b"x")
    until = in_a_day()
    store.retain("k/retain-offset", until.astimezone(timezone(timedelta(hours=8))))
    assert store.stat("k/retain-offset").retained_until == until


# --- delete and list ------------------------------------------------------------------------

def test_delete_of_an_unretained_object_removes_it(store):
    put(store, "k/deleted", b"x")
    put(store, "k/deleted", b"y")  # on S3: two versions, both go
    store.delete("k/deleted")
    assert not store.exists("k/deleted")
    assert "k/deleted" not in keys_of(store)
    with pytest.raises(ObjectNotFound):
        store.stat("k/deleted")
    with pytest.raises(ObjectNotFound):
        store.delete("k/deleted")


def test_list_returns_exactly_the_keys_under_a_prefix(store):
    sizes = {"a/1": 1, "a/2": 22, "a/sub/3": 333, "ab/4": 4, "b/5": 5, "top": 6}
    for key, size in sizes.items():
        put(store, key, b"z" * size)
    assert sorted(keys_of(store)) == sorted(sizes)
    assert sorted(keys_of(store, "a/")) == ["a/1", "a/2", "a/sub/3"]
    assert sorted(keys_of(store, "a")) == ["a/1", "a/2", "a/sub/3", "ab/4"]
    assert keys_of(store, "b/") == ["b/5"]
    assert keys_of(store, "nothing/") == []
    assert {o.key: o.size for o in store.list()} == sizes


def test_list_of_a_content_addressed_tree(store):
    datas = [f"document {i}".encode() for i in range(6)]
    keys = {blob_key(hashlib.sha256(d).hexdigest()) for d in datas}
    for d in datas:
        put(store, blob_key(hashlib.sha256(d).hexdigest()), d)
    listed = keys_of(store, "sha256/")
    assert set(listed) == keys and len(listed) == len(keys)
    assert listed == sorted(listed)


def test_list_does_not_show_internal_or_uncommitted_files(store):
    put(store, "k/visible", b"x")
    store.retain("k/visible", in_a_day())
    w = store.writer("k/in-flight")
    w.write(b"partial")
    try:
        assert keys_of(store) == ["k/visible"]
    finally:
        w.abort()


# --- keys -----------------------------------------------------------------------------------

BAD_KEYS = ["../x", "/abs", "a//b", "", ".", "..", "a/../b", "a/./b", "a/", "sha256/../../etc/passwd"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_refused(store, key):
    operations = {
        "writer": lambda: store.writer(key),
        "open": lambda: store.open(key),
        "stat": lambda: store.stat(key),
        "exists": lambda: store.exists(key),
        "retain": lambda: store.retain(key, in_a_day()),
        "delete": lambda: store.delete(key),
        "discard": lambda: store.discard(key, None),
        "discard-version": lambda: store.discard(key, "1"),
    }
    for name, op in operations.items():
        with pytest.raises(StorageConfigError):
            op()
            pytest.fail(f"{name} accepted {key!r}")


def test_blob_key_derives_from_the_digest():
    h = hashlib.sha256(b"x").hexdigest()
    assert blob_key(h) == f"sha256/{h[:2]}/{h[2:4]}/{h}"
    assert blob_key(h.upper()) == blob_key(h)


# --- store_from_url -------------------------------------------------------------------------

def test_store_from_url_file(tmp_path):
    s = store_from_url(f"file://{tmp_path}/blobs")
    assert isinstance(s, LocalStore) and s.kind == "local"
    assert s.root == tmp_path / "blobs"
    s = store_from_url(f"file://{tmp_path}/with%20space")
    assert s.root == tmp_path / "with space"


def test_store_from_url_s3_fields():
    s = store_from_url("s3://AK%2Fx:SK%40y@minio.internal:9000/dossiers?secure=false&region=eu-west-1")
    assert isinstance(s, S3Store) and s.kind == "s3"
    assert s.endpoint == "minio.internal:9000"
    assert s.bucket == "dossiers"
    assert s.object_lock is True
    s = store_from_url("s3://k:s@s3.example.org/archive/?object_lock=false")
    assert s.endpoint == "s3.example.org" and s.bucket == "archive" and s.object_lock is False


def test_store_from_url_s3_secure_flag_is_honoured(s3_server):
    """Over the plain-HTTP moto server, secure=false works; the default (TLS) cannot connect."""
    bucket = unique_bucket()
    plain = store_from_url(s3_url(s3_server, bucket))  # ...?secure=false
    plain.ensure_ready()
    plain.ping()
    tls = store_from_url(f"s3://testkey:testsecret@127.0.0.1:{s3_server}/{bucket}")
    with pytest.raises(StorageUnavailable):
        tls.ping()
    tls_explicit = store_from_url(f"s3://testkey:testsecret@127.0.0.1:{s3_server}/{bucket}?secure=true")
    with pytest.raises(StorageUnavailable):
        tls_explicit.ping()


@pytest.mark.parametrize(
    "url",
    ["ftp://host/bucket", "http://127.0.0.1:9000/bucket", "gs://bucket", "/plain/path", "", "S4://h/b"],
)
def test_store_from_url_rejects_unknown_schemes(url):
    with pytest.raises(StorageConfigError):
        store_from_url(url)


@pytest.mark.parametrize("url", ["s3://k:s@host:9000", "s3://k:s@host:9000/", "s3:///bucket"])
def test_store_from_url_s3_needs_host_and_bucket(url):
    with pytest.raises(StorageConfigError):
        store_from_url(url)


# --- storage down ---------------------------------------------------------------------------

@pytest.fixture
def proxy(s3_server):
    p = TcpProxy(s3_server)
    yield p
    p.close()


@pytest.fixture
def s3_behind_proxy(s3_server, proxy):
    """(store through the proxy, the same bucket reached directly)."""
    bucket = unique_bucket()
    direct = store_from_url(s3_url(s3_server, bucket))
    direct.ensure_ready()
    return store_from_url(s3_url(proxy.port, bucket)), direct


def test_s3_operations_after_the_store_goes_down_raise_storage_unavailable(s3_behind_proxy, proxy):
    via, _ = s3_behind_proxy
    put(via, "k/before", b"stored before the outage")
    via.ping()
    proxy.cut()
    assert issubclass(StorageUnavailable, StorageError)
    with pytest.raises(StorageUnavailable):
        via.ping()
    with pytest.raises(StorageUnavailable):
        via.stat("k/before")
    with pytest.raises(StorageUnavailable):
        via.open("k/before")
    with pytest.raises(StorageUnavailable):
        via.exists("k/before")
    with pytest.raises(StorageUnavailable):
        list(via.list())
    with pytest.raises(StorageUnavailable):
        via.ensure_ready()
    w = via.writer("k/during")
    try:
        with pytest.raises(StorageUnavailable):
            w.write(b"written while the store is down")
            w.commit()
    finally:
        w.abort()


def test_s3_cut_mid_upload_raises_storage_unavailable_and_leaves_nothing(s3_behind_proxy, proxy):
    via, direct = s3_behind_proxy
    via.ping()
    proxy.cut_after = 3 * MiB
    w = via.writer("k/cut-mid-upload")
    try:
        with pytest.raises(StorageUnavailable):
            for _ in range(20):
                w.write(b"q" * MiB)
            w.commit()
    finally:
        w.abort()
    assert not direct.exists("k/cut-mid-upload")


def test_s3_cut_mid_download_raises_storage_unavailable(s3_behind_proxy, proxy):
    via, direct = s3_behind_proxy
    put(direct, "k/cut-mid-download", os.urandom(20 * MiB), chunk=4 * MiB)
    reader = via.open("k/cut-mid-download", chunk_size=MiB)
    chunks = iter(reader)
    received = len(next(chunks))
    proxy.cut()
    with pytest.raises(StorageUnavailable):
        for chunk in chunks:
            received += len(chunk)
    assert received < 20 * MiB
    reader.close()  # closing again after the failure is harmless


def test_s3_recovers_when_the_store_comes_back(s3_behind_proxy, proxy):
    via, _ = s3_behind_proxy
    put(via, "k/outage", b"x")
    proxy.cut()
    with pytest.raises(StorageUnavailable):
        via.ping()
    proxy.restore()
    via.ping()
    assert read(via, "k/outage") == b"x"


def test_s3_missing_bucket_is_unavailable_not_not_found(s3_server):
    s = store_from_url(s3_url(s3_server, unique_bucket()))
    with pytest.raises(StorageUnavailable):
        s.ping()
    with pytest.raises(StorageUnavailable):
        s.open("k/any")
    with pytest.raises(StorageUnavailable):
        list(s.list())
    # (stat is a HEAD request: S3 sends a 404 without a body, so a missing bucket cannot be
    # told from a missing object there; ping() at start-up is what catches a wrong bucket.)


@pytest.fixture
def unwritable_local(tmp_path) -> LocalStore:
    # Tests run as root, which chmod does not stop; a regular file in the path stops anyone.
    (tmp_path / "afile").write_bytes(b"not a directory")
    return LocalStore(tmp_path / "afile" / "store")


def test_local_store_whose_root_cannot_exist_is_unavailable(unwritable_local):
    s = unwritable_local
    with pytest.raises(StorageUnavailable):
        s.ensure_ready()
    with pytest.raises(StorageUnavailable):
        s.ping()
    with pytest.raises(StorageUnavailable):
        s.writer("k/any")
    with pytest.raises(StorageUnavailable):
        s.stat("k/any")
    with pytest.raises(StorageUnavailable):
        s.open("k/any")


@pytest.mark.parametrize("op", ["list", "exists"])
def test_local_store_unavailable_does_not_look_empty(unwritable_local, op):
    """As on S3, a store that cannot be reached raises; it does not answer 'nothing here'."""
    with pytest.raises(StorageUnavailable):
        if op == "list":
            list(unwritable_local.list())
        else:
            unwritable_local.exists("k/any")


def test_local_store_losing_its_tmp_dir_is_unavailable(tmp_path):
    s = LocalStore(tmp_path / "blobs")
    s.ensure_ready()
    (s.root / ".tmp").rmdir()
    (s.root / ".tmp").write_bytes(b"")  # a file where the directory was
    with pytest.raises(StorageUnavailable):
        s.ping()
    with pytest.raises(StorageUnavailable):
        s.writer("k/any")


def test_local_commit_failure_is_unavailable_and_leaves_nothing(tmp_path):
    s = LocalStore(tmp_path / "blobs")
    s.ensure_ready()
    (s.root / "blocked").write_bytes(b"")  # the key's parent directory cannot be created
    w = s.writer("blocked/k")
    w.write(b"data")
    with pytest.raises(StorageUnavailable):
        w.commit()
    w.abort()
    assert list((s.root / ".tmp").iterdir()) == []
    assert not s.exists("blocked/k")


def test_local_root_path_is_used_as_given(tmp_path):
    s = LocalStore(str(tmp_path / "blobs"))
    s.ensure_ready()
    put(s, "k/x", b"x")
    assert (Path(tmp_path) / "blobs" / "k" / "x").read_bytes() == b"x"
