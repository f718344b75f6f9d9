"""The integrity scrub and the orphan sweep, on both stacks: corrupt, missing and unretained
objects behind the exchange's back, objects without a row, storage going away mid-run."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dossiers.db import utcnow
from dossiers.models import AuditEntry, Blob, OutboxEvent
from dossiers.scrub import scrub, sweep_orphans
from dossiers.storage import StorageUnavailable, blob_key
from tests.support import deposit, manifest, sign

FILES = {"sr-1": b"%PDF-1.7 search report " * 2000, "claims-1": b"%PDF-1.7 claims examined"}
SR = hashlib.sha256(FILES["sr-1"]).hexdigest()
CLAIMS = hashlib.sha256(FILES["claims-1"]).hexdigest()


# --- helpers ---------------------------------------------------------------------------------

def deposit_dossier(stack, kit, number="10202301234X", files=FILES) -> str:
    r = deposit(kit, sign(manifest(kit.code, files, number=number), kit.key), files)
    assert r.status_code == 201, r.text
    return r.json()["dossier_id"]


def raw_minio(stack):
    from minio import Minio

    return Minio(f"127.0.0.1:{stack.s3_port}", "k", "s", secure=False, region="us-east-1")


def overwrite(stack, key: str, data: bytes) -> None:
    """New bytes at ``key`` behind the exchange's back, as bit rot or an intruder would."""
    if stack.s3_port is not None:
        raw_minio(stack).put_object("exchange", key, io.BytesIO(data), len(data))
    else:
        path = stack.store._path(key)
        path.chmod(0o644)
        path.write_bytes(data)


def lose(stack, key: str) -> None:
    """Make the object disappear. On S3 its versions are under COMPLIANCE retention and cannot
    be removed (moto enforces it); a delete marker hides it exactly as a lost object looks."""
    if stack.s3_port is not None:
        raw_minio(stack).remove_object("exchange", key)
    else:
        stack.store._path(key).unlink()
    assert not stack.store.exists(key)


def blob(stack, sha: str) -> Blob:
    with stack.session_factory() as s:
        return s.get(Blob, sha)


def alerts(stack) -> list[dict]:
    with stack.session_factory() as s:
        return [e.payload for e in s.scalars(select(OutboxEvent).where(OutboxEvent.topic == "integrity.alert")
                                             .order_by(OutboxEvent.created_at))]


def audits(stack, action: str) -> list[AuditEntry]:
    with stack.session_factory() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))


def flipped(data: bytes) -> bytes:
    b = bytearray(data)
    b[-10] ^= 0xFF
    return bytes(b)


# --- scrub -----------------------------------------------------------------------------------

def test_scrub_verifies_every_blob_and_a_rerun_changes_nothing_but_the_time(stack):
    sg = stack.office("SG")
    deposit_dossier(stack, sg)
    assert {blob(stack, h).integrity for h in (SR, CLAIMS)} == {"unverified"}
    audit_before, outbox_before = stack.count("audit_entry"), stack.count("outbox_event")

    first = scrub(stack.session_factory, stack.store)
    assert (first.checked, first.ok, first.corrupt, first.missing) == (2, 2, 0, 0)
    assert first.retention_repaired == 0 and first.errors == []
    rows = [blob(stack, h) for h in (SR, CLAIMS)]
    assert {b.integrity for b in rows} == {"ok"} and all(b.verified_at is not None for b in rows)

    later = utcnow() + timedelta(hours=1)
    again = scrub(stack.session_factory, stack.store, now=later)
    assert (again.checked, again.ok, again.retention_repaired, again.errors) == (2, 2, 0, [])
    assert {blob(stack, h).verified_at for h in (SR, CLAIMS)} == {later}
    assert stack.count("audit_entry") == audit_before and stack.count("outbox_event") == outbox_before


@pytest.mark.parametrize("damage, reason", [
    (flipped, f"stored sha256 {hashlib.sha256(flipped(FILES['sr-1'])).hexdigest()} != {SR}"),
    (lambda data: b"short", f"stored size 5 != {len(FILES['sr-1'])}"),
])
def test_corrupt_object_is_marked_audited_and_alerted_once(stack, damage, reason):
    sg = stack.office("SG")
    first = deposit_dossier(stack, sg, number="10202301111A")
    second = deposit_dossier(stack, sg, number="10202302222B")  # shares both blobs with the first
    overwrite(stack, blob_key(SR), damage(FILES["sr-1"]))

    result = scrub(stack.session_factory, stack.store)
    assert (result.checked, result.ok, result.corrupt, result.missing, result.errors) == (2, 1, 1, 0, [])
    assert blob(stack, SR).integrity == "corrupt" and blob(stack, CLAIMS).integrity == "ok"
    [entry] = audits(stack, "blob.integrity")
    assert (entry.outcome, entry.subject, entry.reason) == ("failed", SR, reason)
    assert entry.detail["dossiers"] == sorted([first, second])
    assert alerts(stack) == [{"sha256": SR, "state": "corrupt", "reason": reason,
                              "dossiers": sorted([first, second])}]

    # The next run finds the same failure: recorded, not reported again.
    later = utcnow() + timedelta(hours=1)
    again = scrub(stack.session_factory, stack.store, now=later)
    assert (again.corrupt, again.ok) == (1, 1)
    assert blob(stack, SR).verified_at == later
    assert len(audits(stack, "blob.integrity")) == 1 and len(alerts(stack)) == 1


def test_missing_object_is_marked_missing_and_alerted(stack):
    sg = stack.office("SG")
    dossier_id = deposit_dossier(stack, sg)
    lose(stack, blob_key(CLAIMS))
    result = scrub(stack.session_factory, stack.store)
    assert (result.checked, result.ok, result.corrupt, result.missing, result.errors) == (2, 1, 0, 1, [])
    assert blob(stack, CLAIMS).integrity == "missing"
    [entry] = audits(stack, "blob.integrity")
    assert (entry.outcome, entry.subject, entry.reason) == ("failed", CLAIMS, "missing from storage")
    assert alerts(stack) == [{"sha256": CLAIMS, "state": "missing", "reason": "missing from storage",
                              "dossiers": [dossier_id]}]
    scrub(stack.session_factory, stack.store)
    assert len(alerts(stack)) == 1


def test_failure_first_seen_by_a_download_is_alerted_by_the_scrub_then_restored(stack):
    import httpx

    sg = stack.office("SG")
    dossier_id = deposit_dossier(stack, sg)
    overwrite(stack, blob_key(SR), b"short")
    r = httpx.get(f"{stack.url}/v1/dossiers/{dossier_id}/documents/sr-1", headers=sg.headers)
    assert r.status_code == 500 and blob(stack, SR).integrity == "corrupt"
    assert alerts(stack) == []  # the read path audits, it does not alert

    scrub(stack.session_factory, stack.store)
    assert [a["sha256"] for a in alerts(stack)] == [SR]
    assert [e.actor for e in audits(stack, "blob.integrity")] == [sg.client_id, "worker:scrub"]
    scrub(stack.session_factory, stack.store)
    assert len(alerts(stack)) == 1

    overwrite(stack, blob_key(SR), FILES["sr-1"])  # an operator restores the right bytes
    result = scrub(stack.session_factory, stack.store)
    assert (result.ok, result.corrupt, result.errors) == (2, 0, [])
    assert blob(stack, SR).integrity == "ok"
    assert audits(stack, "blob.integrity")[-1].outcome == "restored"
    # On S3 the restored bytes are a new version, without retention until the scrub locks it.
    assert result.retention_repaired == (1 if stack.s3_port is not None else 0)
    assert stack.store.stat(blob_key(SR)).retained_until is not None


def test_retention_missing_or_short_in_storage_is_reapplied(stack):
    sg = stack.office("SG")
    deposit_dossier(stack, sg)
    key = blob_key(SR)
    stored = stack.store.stat(key).retained_until
    assert stored is not None
    longer = stored + timedelta(days=30)
    with stack.session_factory.begin() as s:
        s.execute(update(Blob).where(Blob.sha256 == SR).values(retained_until=longer))

    result = scrub(stack.session_factory, stack.store)
    assert (result.ok, result.retention_repaired, result.errors) == (2, 1, [])
    assert stack.store.stat(key).retained_until >= longer - timedelta(seconds=1)
    assert scrub(stack.session_factory, stack.store).retention_repaired == 0

    if stack.s3_port is None:
        # The local store keeps retention in a sidecar file: lose it, the scrub writes it back.
        sidecar = stack.store._retention_path(key)
        sidecar.unlink()
        assert stack.store.stat(key).retained_until is None
        assert scrub(stack.session_factory, stack.store).retention_repaired == 1
        assert sidecar.exists() and stack.store.stat(key).retained_until == longer


def test_least_recently_verified_first_within_the_limit(stack):
    sg = stack.office("SG")
    files = {"a": b"%PDF a", "b": b"%PDF b", "c": b"%PDF c"}
    deposit_dossier(stack, sg, files=files)
    shas = [hashlib.sha256(v).hexdigest() for v in files.values()]
    t0 = utcnow()
    assert scrub(stack.session_factory, stack.store, limit=1, now=t0).checked == 1
    [seen] = [h for h in shas if blob(stack, h).verified_at == t0]
    t1 = t0 + timedelta(minutes=1)
    assert scrub(stack.session_factory, stack.store, limit=2, now=t1).checked == 2
    # The two never verified came first; the one verified at t0 waited.
    assert blob(stack, seen).verified_at == t0
    assert all(blob(stack, h).verified_at == t1 for h in shas if h != seen)
    scrub(stack.session_factory, stack.store, limit=1, now=t1 + timedelta(minutes=1))
    assert blob(stack, seen).verified_at == t1 + timedelta(minutes=1)


class GoesDown:
    """The stack's store, answering ``stat`` ``healthy`` times and then unavailable."""

    def __init__(self, store, healthy: int):
        self._store, self._healthy = store, healthy

    def __getattr__(self, name):
        return getattr(self._store, name)

    def stat(self, key):
        if self._healthy <= 0:
            raise StorageUnavailable("storage went away")
        self._healthy -= 1
        return self._store.stat(key)

    def list(self, prefix=""):
        yield from self._store.list(prefix)
        raise StorageUnavailable("listing broke off")


def test_storage_unavailable_ends_the_run_without_raising(stack):
    sg = stack.office("SG")
    deposit_dossier(stack, sg)
    result = scrub(stack.session_factory, GoesDown(stack.store, healthy=1))
    assert (result.checked, result.ok) == (1, 1)
    assert len(result.errors) == 1 and "storage went away" in result.errors[0]
    assert sorted(blob(stack, h).integrity for h in (SR, CLAIMS)) == ["ok", "unverified"]
    assert alerts(stack) == []

    swept = sweep_orphans(stack.session_factory, GoesDown(stack.store, healthy=0), grace=timedelta(0))
    assert swept.examined == 2 and swept.deleted == 0
    assert len(swept.errors) == 1 and "listing broke off" in swept.errors[0]


# --- orphan sweep ----------------------------------------------------------------------------

def write_orphan(stack, data: bytes) -> str:
    key = blob_key(hashlib.sha256(data).hexdigest())
    w = stack.store.writer(key)
    w.write(data)
    w.commit()
    return key


def test_sweep_deletes_old_orphans_only(stack):
    sg = stack.office("SG")
    deposit_dossier(stack, sg)
    orphan = write_orphan(stack, b"%PDF left behind by a failed deposit")

    young = sweep_orphans(stack.session_factory, stack.store, grace=timedelta(days=1))
    assert (young.examined, young.deleted, young.kept_retained, young.errors) == (3, 0, 0, [])
    assert stack.store.exists(orphan)

    swept = sweep_orphans(stack.session_factory, stack.store, grace=timedelta(0))
    assert (swept.examined, swept.deleted, swept.kept_retained, swept.errors) == (3, 1, 0, [])
    assert not stack.store.exists(orphan)
    assert all(stack.store.exists(blob_key(h)) for h in (SR, CLAIMS))
    [entry] = audits(stack, "blob.sweep")
    assert (entry.outcome, entry.subject, entry.actor) == ("deleted", orphan, "worker:scrub")

    assert sweep_orphans(stack.session_factory, stack.store, grace=timedelta(0)).deleted == 0


def test_sweep_never_deletes_an_object_with_a_row_and_keeps_retained_orphans(stack):
    sg = stack.office("SG")
    deposit_dossier(stack, sg)
    retained = write_orphan(stack, b"%PDF orphan under retention")
    stack.store.retain(retained, utcnow() + timedelta(days=1))
    plain = write_orphan(stack, b"%PDF plain orphan")

    # Two days on, with the default grace: every object is old; only the plain orphan goes.
    result = sweep_orphans(stack.session_factory, stack.store, now=utcnow() + timedelta(days=2))
    assert (result.examined, result.deleted, result.kept_retained, result.errors) == (4, 1, 1, [])
    assert not stack.store.exists(plain) and stack.store.exists(retained)
    assert all(stack.store.exists(blob_key(h)) for h in (SR, CLAIMS))
    assert stack.count("blob") == 2


def test_a_later_deposit_sharing_a_blob_extends_its_recorded_retention(stack):
    """Retention runs from the latest deposit that holds a document; a new blob costs no
    second statement, a shared one gets its date moved forward."""
    sg = stack.office("SG")
    deposit_dossier(stack, sg, number="10202301111A")
    first = blob(stack, SR).retained_until
    with stack.session_factory.begin() as s:  # as if the first deposit were a year old
        s.execute(update(Blob).values(retained_until=first - timedelta(days=365)))
    deposit_dossier(stack, sg, number="10202302222B")  # shares both blobs with the first
    assert blob(stack, SR).retained_until >= first and blob(stack, CLAIMS).retained_until >= first
