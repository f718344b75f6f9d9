"""Real parts failing mid-request: storage cut during a deposit and during a download,
corrupted stored objects. Nothing is half-kept and no wrong byte is served as right."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from dossiers.storage import blob_key, store_from_url
from exchange.app import create_app
from tests.conftest import s3_url
from tests.support import ServerThread, TcpProxy, deposit, manifest, sign

BIG = {"sr-1": b"S" * (12 * 1024 * 1024), "claims-1": b"C" * 2048}


@pytest.fixture
def cut_stack(pg_stack):
    """The PostgreSQL stack's app again, but reaching S3 through a proxy the test can cut."""
    proxy = TcpProxy(pg_stack.s3_port)
    store = store_from_url(s3_url(proxy.port))
    app = create_app(pg_stack.settings, store=store, session_factory=pg_stack.session_factory)
    server = ServerThread(app).start()
    pg_stack.cut_url = server.url
    yield pg_stack, proxy
    server.stop()
    proxy.close()


def test_storage_down_mid_deposit_keeps_nothing(cut_stack):
    stack, proxy = cut_stack
    sg = stack.office("SG")
    sg.base_url = stack.cut_url
    proxy.cut_after = proxy.bytes_forwarded + 3 * 1024 * 1024  # part-way through the first document
    r = deposit(sg, sign(manifest("SG", BIG), sg.key), BIG)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "storage-unavailable"
    proxy.restore()
    assert stack.count("dossier") == 0 and stack.count("blob") == 0
    assert stack.stored_objects() == []
    # Once storage is back, the same deposit goes through.
    r = deposit(sg, sign(manifest("SG", BIG), sg.key), BIG)
    assert r.status_code == 201, r.text


def test_storage_down_before_deposit_answers_503(cut_stack):
    stack, proxy = cut_stack
    sg = stack.office("SG")
    sg.base_url = stack.cut_url
    proxy.cut()
    r = deposit(sg, sign(manifest("SG", BIG), sg.key), BIG)
    assert r.status_code == 503 and r.json()["code"] == "storage-unavailable"
    ready = httpx.get(f"{stack.cut_url}/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["storage"]["status"] == "down"
    assert "storage" in ready.json()["detail"]
    proxy.restore()
    assert stack.count("dossier") == 0 and stack.stored_objects() == []


def test_storage_down_mid_download_breaks_the_transfer(cut_stack):
    stack, proxy = cut_stack
    sg = stack.office("SG")
    sg.base_url = stack.cut_url
    r = deposit(sg, sign(manifest("SG", BIG), sg.key), BIG)
    assert r.status_code == 201
    dossier_id = r.json()["dossier_id"]
    received = 0
    with pytest.raises(httpx.HTTPError):
        with httpx.stream("GET", f"{stack.cut_url}/v1/dossiers/{dossier_id}/documents/sr-1", headers=sg.headers,
                          timeout=30) as resp:
            assert resp.status_code == 200
            for chunk in resp.iter_bytes():
                received += len(chunk)
                if received > 1024 * 1024 and proxy.up:
                    proxy.cut()
    assert received < len(BIG["sr-1"])


def test_corrupted_stored_object_is_never_served_as_right(stack):
    sg = stack.office("SG")
    files = {"sr-1": b"%PDF original bytes " * 5000}
    r = deposit(sg, sign(manifest("SG", files), sg.key), files)
    assert r.status_code == 201
    dossier_id = r.json()["dossier_id"]
    key = blob_key(hashlib.sha256(files["sr-1"]).hexdigest())
    corrupt = bytearray(files["sr-1"])
    corrupt[-10] ^= 0xFF  # same size, one byte flipped near the end
    if stack.s3_port is not None:
        # A new version written behind the exchange's back, as bit rot or an intruder would.
        import io

        from minio import Minio

        raw = Minio(f"127.0.0.1:{stack.s3_port}", "k", "s", secure=False, region="us-east-1")
        raw.put_object("exchange", key, io.BytesIO(bytes(corrupt)), len(corrupt))
    else:
        path = stack.store._path(key)
        path.chmod(0o644)
        path.write_bytes(bytes(corrupt))
    got = bytearray()
    with pytest.raises(httpx.HTTPError):
        with httpx.stream("GET", f"{stack.url}/v1/dossiers/{dossier_id}/documents/sr-1", headers=sg.headers) as resp:
            for chunk in resp.iter_bytes():
                got += chunk
    assert bytes(got) != bytes(corrupt)  # the last chunk, which holds the flipped byte, never arrives whole
    admin = stack.admin()
    entries = httpx.get(f"{stack.url}/v1/audit", params={"action": "blob.integrity"}, headers=admin).json()["items"]
    assert entries and entries[0]["outcome"] == "failed"


def test_truncated_stored_object_answers_500_before_any_byte(stack):
    sg = stack.office("SG")
    files = {"sr-1": b"%PDF original bytes " * 100}
    r = deposit(sg, sign(manifest("SG", files), sg.key), files)
    key = blob_key(hashlib.sha256(files["sr-1"]).hexdigest())
    if stack.s3_port is not None:
        import io

        from minio import Minio

        raw = Minio(f"127.0.0.1:{stack.s3_port}", "k", "s", secure=False, region="us-east-1")
        raw.put_object("exchange", key, io.BytesIO(b"short"), 5)
    else:
        path = stack.store._path(key)
        path.chmod(0o644)
        path.write_bytes(b"short")
    resp = httpx.get(f"{stack.url}/v1/dossiers/{r.json()['dossier_id']}/documents/sr-1", headers=sg.headers)
    assert resp.status_code == 500 and resp.json()["code"] == "stored-object-corrupt"
    entries = httpx.get(f"{stack.url}/v1/audit", params={"action": "blob.integrity"}, headers=stack.admin()).json()
    assert [e["reason"] for e in entries["items"]] == [f"stored size 5 != {len(files['sr-1'])}"]
