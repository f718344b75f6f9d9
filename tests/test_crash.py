"""A server process killed mid-deposit (SIGKILL, no clean-up of any kind): the next process serves
everything that was acknowledged, accepts the same bytes again, and the sweep removes what the
dead process left (a partial temporary file, a committed file no row names, its pins) and
nothing else. On the local store, with SQLite and with PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

import migrations
from dossiers import registry
from dossiers.db import make_engine, make_session_factory, utcnow
from dossiers.scrub import sweep_orphans
from dossiers.storage import blob_key, store_from_url
from tests.conftest import _database
from tests.support import manifest, new_key, sha, sign
from tests.support import token as get_token

MiB = 1024 * 1024


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'exchange.db'}"
        migrations.upgrade(url)
        yield url
    else:
        yield from _database("crash")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, database: str, storage: str):
        self.env = {**os.environ, "EXCHANGE_HOME": str(tmp), "EXCHANGE_DATABASE_URL": database,
                    "EXCHANGE_STORAGE_URL": storage, "EXCHANGE_PUBLIC_URL": "http://exchange.test"}
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        port = free_port()
        self.log = open(self.tmp / f"server-{port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 40
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                (self.tmp / f"server-{port}.log").read_text()[-2000:]
            time.sleep(0.1)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
            self.log.close()


def test_a_process_killed_mid_deposit_loses_nothing_and_leaves_nothing(tmp_path, database):
    root = tmp_path / "blobs"
    storage = f"file://{root}"
    engine = make_engine(database)
    sf = make_session_factory(engine)
    with sf.begin() as s:
        admin, admin_secret = registry.create_client(s, office_code=None, roles=["admin"], name="a", actor="t")
    server = Server(tmp_path, database, storage)
    try:
        url = server.start()
        admin_h = {"Authorization": f"Bearer {get_token(url, admin.client_id, admin_secret)}"}
        key = new_key()
        with httpx.Client(base_url=url, headers=admin_h) as http:
            assert http.post("/v1/offices", json={"code": "SG", "name": "SG"}).status_code == 201
            assert http.post("/v1/offices/SG/keys", json={"kid": key.kid, "alg": "ES256",
                                                           "public_key_pem": key.public().pem}).status_code == 201
            c = http.post("/v1/offices/SG/clients", json={"roles": ["depositor", "examiner"]}).json()

        def headers():
            return {"Authorization": f"Bearer {get_token(url, c['client_id'], c['client_secret'])}"}

        kept = b"%PDF-1.7 acknowledged before the crash " + os.urandom(100_000)
        first = httpx.post(f"{url}/v1/dossiers", headers=headers(),
                           data={"manifest": sign(manifest("SG", {"kept": kept}, number="10202300001X"), key)},
                           files={"kept": ("kept.pdf", kept)})
        assert first.status_code == 201, first.text

        # The dying deposit: one document complete (its file committed to storage, its row not),
        # the next one half sent when the process is killed.
        done = b"%PDF-1.7 complete part " + os.urandom(300_000)
        big = os.urandom(24 * MiB)
        token = sign(manifest("SG", {"done": done, "big": big}, number="10202300002X"), key)
        boundary = "crash"

        def body():
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{token}\r\n"
                   f"--{boundary}\r\nContent-Disposition: form-data; name=\"done\"; "
                   "filename=\"d.pdf\"\r\n\r\n").encode()
            yield done
            yield (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"big\"; "
                   f"filename=\"b.pdf\"\r\n\r\n").encode()
            yield big[: 8 * MiB]
            deadline = time.monotonic() + 20
            while not list((root / ".tmp").iterdir()) or not (root / blob_key(sha(done))).exists():
                assert time.monotonic() < deadline, "the dying deposit never reached storage"
                time.sleep(0.05)
            server.kill()
            yield big[8 * MiB:]

        with pytest.raises(httpx.TransportError):
            httpx.post(f"{url}/v1/dossiers", content=body(), timeout=60,
                       headers={**headers(), "Content-Type": f"multipart/form-data; boundary={boundary}"})

        # What the dead process left: a partial temporary file, a committed file no row names, pins.
        assert list((root / ".tmp").iterdir())
        assert (root / blob_key(sha(done))).exists()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM blob_pin").scalar_one() == 2
            assert conn.exec_driver_sql("SELECT count(*) FROM dossier").scalar_one() == 1

        # A new process serves what was acknowledged and takes the same bytes again.
        url = server.start()
        r = httpx.get(f"{url}/v1/dossiers/{first.json()['dossier_id']}/documents/kept", headers=headers())
        assert r.status_code == 200 and r.content == kept
        again = httpx.post(f"{url}/v1/dossiers", headers=headers(),
                           data={"manifest": sign(manifest("SG", {"done": done}, number="10202300003X"), key)},
                           files={"done": ("d.pdf", done)})
        assert again.status_code == 201, again.text

        # A sweep inside the grace period removes nothing; once it has passed, only the leftovers.
        store = store_from_url(storage)
        early = sweep_orphans(sf, store)
        assert (early.partial_removed, early.deleted) == (0, 0)
        orphan = os.urandom(1000)  # bytes a dead deposit committed and no later deposit wanted
        w = store.writer(blob_key(sha(orphan)))
        w.write(orphan)
        w.commit()
        later = sweep_orphans(sf, store, now=utcnow() + timedelta(days=2))
        assert (later.partial_removed, later.deleted, later.stale_pins) == (1, 1, 2), later
        assert list((root / ".tmp").iterdir()) == []
        assert not store.exists(blob_key(sha(orphan)))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM blob_pin").scalar_one() == 0
        for dossier, doc, data in ((first.json()["dossier_id"], "kept", kept),
                                   (again.json()["dossier_id"], "done", done)):
            r = httpx.get(f"{url}/v1/dossiers/{dossier}/documents/{doc}", headers=headers())
            assert r.status_code == 200 and r.content == data
    finally:
        server.stop()
        engine.dispose()
