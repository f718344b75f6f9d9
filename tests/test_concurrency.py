"""Nothing lost under concurrency: deposits that share a document's bytes, where some are refused
or cut off while others are acknowledged; many deposits of one new application at once; the
genuine bytes repairing a blob found missing or corrupt.

Every case runs on both stores and both databases (PostgreSQL and SQLite, each with the local
directory and with S3 over HTTP), several times over, against a real server over HTTP.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dossiers.storage import blob_key
from tests.conftest import _database, _make_stack, s3_url
from tests.support import deposit, manifest, sha, sign

ROUNDS = int(os.environ.get("EXCHANGE_TEST_RACE_ROUNDS", "4"))


@pytest.fixture(scope="module")
def pg_local_url():
    yield from _database("race")


@pytest.fixture(scope="module")
def extra_stacks(pg_local_url, s3_server, tmp_path_factory):
    """The two pairings the session's stacks leave out: PostgreSQL + local, SQLite + S3."""
    import migrations

    made = {}
    tmp = tmp_path_factory.mktemp("pg-local")
    made["pg-local"] = _make_stack("pg-local", pg_local_url, f"file://{tmp / 'blobs'}", tmp, None)
    tmp = tmp_path_factory.mktemp("sqlite-s3")
    url = f"sqlite:///{tmp / 'exchange.db'}"
    migrations.upgrade(url)
    made["sqlite-s3"] = _make_stack("sqlite-s3", url, s3_url(s3_server, bucket="race-sqlite"), tmp, s3_server)
    yield made
    for st in made.values():
        st.server.stop()
        st.engine.dispose()


@pytest.fixture(params=["sqlite-local", "pg-local", "pg-s3", "sqlite-s3"])
def any_stack(request):
    if request.param == "pg-s3":
        s = request.getfixturevalue("pg_s3_stack")
    elif request.param == "sqlite-local":
        s = request.getfixturevalue("sqlite_local_stack")
    else:
        s = request.getfixturevalue("extra_stacks")[request.param]
    s.reset()
    return s


# --- a multipart body a test can hold back between parts -------------------------------------

BOUNDARY = "race-boundary-7d2f"


def _head(name: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode()


class HeldBody:
    """Yields the manifest and the parts; stops after part ``hold_after`` (the next part's
    header already sent, so the server has closed the held part) until ``release`` is set. With
    ``cut`` the body then ends abruptly: the client goes away mid-upload."""

    def __init__(self, token: str, parts: list[tuple[str, bytes]], *, hold_after: int | None = None,
                 cut: bool = False):
        self.token, self.parts, self.hold_after, self.cut = token, parts, hold_after, cut
        self.release = threading.Event()
        self.held = threading.Event()

    def __iter__(self):
        yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{self.token}\r\n").encode()
        for i, (name, data) in enumerate(self.parts):
            yield _head(name)
            if self.hold_after is not None and i == self.hold_after + 1:
                yield data[: len(data) // 2]
                self.held.set()
                assert self.release.wait(60), "never released"
                if self.cut:
                    raise ConnectionAbortedError("the client goes away")
                yield data[len(data) // 2:]
            else:
                yield data
            yield b"\r\n"
        if self.hold_after is not None and self.hold_after + 1 >= len(self.parts):
            self.held.set()
            assert self.release.wait(60), "never released"
        yield f"--{BOUNDARY}--\r\n".encode()


def send(kit, body: HeldBody) -> httpx.Response | Exception:
    try:
        return httpx.post(f"{kit.base_url}/v1/dossiers", headers={
            **kit.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, content=iter(body),
            timeout=60)
    except Exception as exc:  # noqa: BLE001 - the cut client's own error
        return exc


def read_document(kit, dossier_id: str, doc_id: str) -> httpx.Response:
    return httpx.get(f"{kit.base_url}/v1/dossiers/{dossier_id}/documents/{doc_id}", headers=kit.headers, timeout=30)


def wait_stored(stack, sha256: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not stack.store.exists(blob_key(sha256)):
        assert time.monotonic() < deadline, "the held part never reached storage"
        time.sleep(0.01)


def pins(stack) -> int:
    return stack.count("blob_pin")


def blob_rows(stack) -> set[str]:
    with stack.engine.connect() as c:
        return set(c.execute(sa.text("SELECT key FROM blob")).scalars())


def assert_no_orphans(stack) -> None:
    """Stored objects are exactly the recorded blobs, and no deposit is left pinning anything."""
    assert {o.key for o in stack.store.list("sha256/")} == blob_rows(stack)
    assert pins(stack) == 0


def number() -> str:
    """A fresh SG application number, in the office's format."""
    return f"1020{uuid.uuid4().int % 10**7:07d}X"


def pdf(tag: str) -> bytes:
    return b"%PDF-1.7 " + tag.encode() + b" " + os.urandom(200_000)


# --- the race the issue reported ------------------------------------------------------------

@pytest.mark.parametrize("refusal", ["later-part-differs", "client-disconnects"])
def test_a_refused_deposit_never_removes_bytes_an_acknowledged_one_needs(any_stack, refusal):
    """A uploads the shared document and stalls on its next part; B uploads the same bytes, then
    is refused (a later part differs from its manifest, or its client goes away); A completes.
    A's 201 must mean A's document is readable: B's refusal may not take its bytes away."""
    kit = any_stack.office("SG")
    for _ in range(ROUNDS):
        shared, a_extra, b_extra = pdf("shared"), pdf("a"), pdf("b")
        a_docs = {"shared": shared, "a2": a_extra}
        b_docs = {"shared": shared, "b2": b_extra}
        a_tok = sign(manifest("SG", a_docs, number=number()), kit.key)
        b_tok = sign(manifest("SG", b_docs, number=number()), kit.key)
        a = HeldBody(a_tok, list(a_docs.items()), hold_after=0)
        bad = b_extra if refusal == "client-disconnects" else b_extra[:-1] + bytes([b_extra[-1] ^ 1])
        b = HeldBody(b_tok, [("shared", shared), ("b2", bad)],
                     hold_after=0 if refusal == "client-disconnects" else None,
                     cut=refusal == "client-disconnects")
        with ThreadPoolExecutor(2) as pool:
            fa = pool.submit(send, kit, a)
            assert a.held.wait(30)
            wait_stored(any_stack, sha(shared))
            fb = pool.submit(send, kit, b)
            if refusal == "client-disconnects":
                assert b.held.wait(30)
                b.release.set()
            rb = fb.result()
            if isinstance(rb, httpx.Response):
                assert rb.status_code in (400, 422), rb.text
            a.release.set()
            ra = fa.result()
        assert isinstance(ra, httpx.Response) and ra.status_code == 201, ra
        dossier = ra.json()["dossier_id"]
        for doc_id, data in a_docs.items():
            r = read_document(kit, dossier, doc_id)
            assert r.status_code == 200, r.text
            assert r.content == data
        _wait_no_pins(any_stack)
        assert_no_orphans(any_stack)


def test_an_acknowledged_deposit_before_the_refusal_keeps_its_bytes(any_stack):
    """The other order: B stalls after the shared part, A deposits and is acknowledged, then B
    is refused."""
    kit = any_stack.office("SG")
    for _ in range(ROUNDS):
        shared = pdf("shared")
        b_extra = pdf("b")
        a_docs = {"shared": shared}
        b_tok = sign(manifest("SG", {"shared": shared, "b2": b_extra}, number=number()), kit.key)
        b = HeldBody(b_tok, [("shared", shared), ("b2", b_extra[:-1])], hold_after=0)
        with ThreadPoolExecutor(1) as pool:
            fb = pool.submit(send, kit, b)
            assert b.held.wait(30)
            wait_stored(any_stack, sha(shared))
            ra = deposit(kit, sign(manifest("SG", a_docs, number=number()), kit.key), a_docs)
            assert ra.status_code == 201, ra.text
            b.release.set()
            rb = fb.result()
        assert rb.status_code in (400, 422), rb.text
        r = read_document(kit, ra.json()["dossier_id"], "shared")
        assert r.status_code == 200 and r.content == shared
        _wait_no_pins(any_stack)
        assert_no_orphans(any_stack)


def test_when_every_deposit_of_the_bytes_is_refused_nothing_is_left(any_stack):
    kit = any_stack.office("SG")
    shared = pdf("shared")
    other = pdf("other")
    bodies = []
    for i in range(4):
        tok = sign(manifest("SG", {"shared": shared, "x": other}, number=f"10202399{i:04d}X"), kit.key)
        bodies.append(HeldBody(tok, [("shared", shared), ("x", other[:-7])]))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda b: send(kit, b), bodies))
    assert all(r.status_code in (400, 422) for r in results), [r.text for r in results]
    _wait_no_pins(any_stack)
    assert list(any_stack.store.list("sha256/")) == []
    assert any_stack.count("dossier") == 0 and any_stack.count("blob") == 0


def test_many_deposits_sharing_bytes_at_once_some_refused(any_stack):
    """Eight clients at once, every deposit carrying the same shared document; half are refused
    (a later part differs). Every acknowledged dossier reads back whole; nothing else is kept."""
    kit = any_stack.office("SG")
    for _ in range(max(1, ROUNDS // 2)):
        shared = pdf("shared")
        jobs = []
        for i in range(8):
            own = pdf(f"own{i}")
            docs = {"shared": shared, "own": own}
            tok = sign(manifest("SG", docs, number=number()), kit.key)
            good = i % 2 == 0
            jobs.append((docs, HeldBody(tok, [("shared", shared), ("own", own if good else own[:-3])]), good))
        start = threading.Barrier(8)

        def run(job):
            start.wait()  # noqa: B023 - the pool runs inside this iteration
            return send(kit, job[1])

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(run, jobs))
        for (docs, _, good), r in zip(jobs, results):
            if not good:
                assert r.status_code in (400, 422), r.text
                continue
            assert r.status_code == 201, r.text
            for doc_id, data in docs.items():
                got = read_document(kit, r.json()["dossier_id"], doc_id)
                assert got.status_code == 200 and got.content == data
        _wait_no_pins(any_stack)
        assert_no_orphans(any_stack)


def _wait_no_pins(stack, timeout: float = 10) -> None:
    """A refused deposit releases its pins as its response is sent; give it that moment."""
    deadline = time.monotonic() + timeout
    while pins(stack):
        assert time.monotonic() < deadline, f"{pins(stack)} pin(s) left behind"
        time.sleep(0.02)


# --- one new application, many dossiers at once ----------------------------------------------

def test_eight_dossiers_for_one_new_application_at_once_are_all_acknowledged(any_stack):
    kit = any_stack.office("SG")
    for _ in range(max(1, ROUNDS // 2)):
        shared_number = number()
        work = []
        for i in range(8):
            docs = {f"sr-{i}": pdf(f"sr{i}")}
            work.append((sign(manifest("SG", docs, number=shared_number), kit.key), docs))
        start = threading.Barrier(8)

        def run(item):
            start.wait()  # noqa: B023 - the pool runs inside this iteration
            return deposit(kit, *item)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(run, work))
        assert [r.status_code for r in results] == [201] * 8, [r.text for r in results if r.status_code != 201]
        assert len({r.json()["dossier_id"] for r in results}) == 8
        with any_stack.engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM application WHERE office_code = 'SG' AND number = :n"),
                             {"n": shared_number}).scalar_one() == 1
        found = httpx.get(f"{kit.base_url}/v1/applications", params={"number": shared_number}, headers=kit.headers)
        assert found.status_code == 200 and len(found.json()) == 1


def test_the_same_manifest_many_times_at_once_gives_one_dossier(any_stack):
    kit = any_stack.office("SG")
    docs = {"sr": pdf("sr"), "claims": pdf("claims")}
    tok = sign(manifest("SG", docs, number="10202377777X"), kit.key)
    start = threading.Barrier(8)

    def run(_):
        start.wait()
        return deposit(kit, tok, docs)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(8)))
    assert sorted(r.status_code for r in results) == [200] * 7 + [201] or \
        all(r.status_code in (200, 201) for r in results)
    assert [r.status_code for r in results].count(201) == 1
    assert len({r.json()["dossier_id"] for r in results}) == 1
    assert any_stack.count("dossier") == 1
    _wait_no_pins(any_stack)
    assert_no_orphans(any_stack)


# --- repair by re-deposit --------------------------------------------------------------------

def _damage(stack, sha256: str, how: str) -> None:
    key = blob_key(sha256)
    if how == "missing":
        if stack.store.kind == "local":
            (Path(stack.settings.storage_url[len("file://"):]) / key).unlink()
        else:
            # A versioned bucket under retention: a delete without a version id adds a delete
            # marker, and the object is gone for every reader.
            stack.store._client.remove_object(stack.store.bucket, key)
        return
    _overwrite(stack, key, b"not the document at all")


def _overwrite(stack, key: str, data: bytes) -> None:
    """Put other bytes under a document's key behind the exchange's back."""
    if stack.store.kind == "local":
        path = Path(stack.settings.storage_url[len("file://"):]) / key
        path.chmod(0o644)
        path.write_bytes(data)
    else:
        w = stack.store.writer(key, repair=True)
        w.write(data)
        w.commit()


@pytest.mark.parametrize("how", ["missing", "corrupt"])
def test_re_depositing_the_genuine_bytes_repairs_the_blob(any_stack, how):
    kit = any_stack.office("SG")
    data = pdf("report")
    first = deposit(kit, sign(manifest("SG", {"sr": data}, number="10202311111X"), kit.key), {"sr": data})
    assert first.status_code == 201, first.text
    _damage(any_stack, sha(data), how)
    broken = read_document(kit, first.json()["dossier_id"], "sr")
    assert broken.status_code >= 500 or broken.content != data
    with any_stack.engine.connect() as c:
        assert c.execute(sa.text("SELECT integrity FROM blob")).scalar_one() in ("missing", "corrupt")

    again = deposit(kit, sign(manifest("SG", {"sr-again": data}, number="10202311111X"), kit.key),
                    {"sr-again": data})
    assert again.status_code == 201, again.text
    for dossier, doc in ((again.json()["dossier_id"], "sr-again"), (first.json()["dossier_id"], "sr")):
        r = read_document(kit, dossier, doc)
        assert r.status_code == 200, r.text
        assert r.content == data
    with any_stack.engine.connect() as c:
        assert c.execute(sa.text("SELECT integrity FROM blob")).scalar_one() == "ok"
        restored = c.execute(sa.text("SELECT count(*) FROM audit_entry WHERE action = 'blob.integrity' "
                                     "AND outcome = 'restored'")).scalar_one()
    assert restored == 1


def test_a_repair_found_by_the_scrub_is_recorded_and_repaired(any_stack):
    """Corrupt bytes of the same size are found by the scrub; the next deposit of the genuine
    bytes repairs them, and the next scrub finds them whole."""
    from dossiers.scrub import scrub

    kit = any_stack.office("SG")
    data = pdf("report")
    first = deposit(kit, sign(manifest("SG", {"sr": data}, number="10202322222X"), kit.key), {"sr": data})
    assert first.status_code == 201
    key = blob_key(sha(data))
    _overwrite(any_stack, key, bytes([data[0] ^ 0xFF]) + data[1:])  # the same size: only a re-hash finds it
    assert scrub(any_stack.session_factory, any_stack.store).corrupt == 1
    again = deposit(kit, sign(manifest("SG", {"sr2": data}, number="10202322222X"), kit.key), {"sr2": data})
    assert again.status_code == 201
    assert read_document(kit, first.json()["dossier_id"], "sr").content == data
    result = scrub(any_stack.session_factory, any_stack.store)
    assert (result.ok, result.corrupt, result.missing) == (1, 0, 0)
