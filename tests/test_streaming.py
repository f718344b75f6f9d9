"""Documents stream through the exchange in constant memory, measured on a real server process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import s3_url
from tests.support import manifest, new_key, sign
from tests.support import token as get_token

SIZE = 256 * 1024 * 1024
BLOCK = os.urandom(1024 * 1024)
LIMIT = 64 * 1024 * 1024


def blocks():
    for i in range(SIZE // len(BLOCK)):
        yield i.to_bytes(8, "big") + BLOCK[8:]


def vm(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


class RssSampler(threading.Thread):
    """Samples a process's current RSS (the peak counter also holds Argon2's 64 MiB spikes)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, vm(self.pid, "VmRSS"))
            time.sleep(0.01)

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak


@pytest.fixture(params=["local", "s3"])
def server_process(request, tmp_path, s3_server, pg_url):
    storage = (f"file://{tmp_path / 'blobs'}" if request.param == "local"
               else s3_url(s3_server, bucket=f"mem{os.getpid()}"))
    env = {**os.environ, "EXCHANGE_HOME": str(tmp_path), "EXCHANGE_DATABASE_URL": pg_url,
           "EXCHANGE_STORAGE_URL": storage, "EXCHANGE_PUBLIC_URL": "http://exchange.test"}
    from dossiers import registry
    from dossiers.db import make_engine, make_session_factory
    from tests.conftest import empty_tables

    engine = make_engine(pg_url)
    empty_tables(engine)
    with make_session_factory(engine).begin() as s:
        admin, admin_secret = registry.create_client(s, office_code=None, roles=["admin"], name="a", actor="t")
    engine.dispose()
    port = 18000 + os.getpid() % 1000
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            log.close()
            raise RuntimeError((tmp_path / "server.log").read_text()[-2000:])
        time.sleep(0.1)
    yield proc, url, admin.client_id, admin_secret
    proc.terminate()
    proc.wait(10)
    log.close()


def test_a_large_document_streams_in_constant_memory(server_process):
    proc, url, admin_id, admin_secret = server_process
    admin = {"Authorization": f"Bearer {get_token(url, admin_id, admin_secret)}"}
    key = new_key()
    with httpx.Client(base_url=url, headers=admin) as http:
        assert http.post("/v1/offices", json={"code": "SG", "name": "SG"}).status_code == 201
        assert http.post("/v1/offices/SG/keys", json={"kid": key.kid, "alg": "ES256",
                                                       "public_key_pem": key.public().pem}).status_code == 201
        c = http.post("/v1/offices/SG/clients", json={"roles": ["depositor"]}).json()
    headers = {"Authorization": f"Bearer {get_token(url, c['client_id'], c['client_secret'])}"}
    h = hashlib.sha256()
    for b in blocks():
        h.update(b)
    m = manifest("SG", {"big": b""})
    m["documents"][0].update(sha256=h.hexdigest(), size=SIZE)
    token = sign(m, key)
    # Warm up (imports, pools, first deposit path), then take the baseline.
    small = {"s": b"warm"}
    r = httpx.post(f"{url}/v1/dossiers", headers=headers,
                   data={"manifest": sign(manifest("SG", small, number="1"), key)},
                   files={"s": ("s.pdf", small["s"])})
    assert r.status_code == 201, r.text
    baseline = vm(proc.pid, "VmRSS")
    sampler = RssSampler(proc.pid)
    sampler.start()

    boundary = "bnd"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"big\"; filename=\"big.pdf\"\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        yield from blocks()
        yield tail

    r = httpx.post(f"{url}/v1/dossiers", content=body(), timeout=300,
                   headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}",
                            "Content-Length": str(len(head) + SIZE + len(tail))})
    assert r.status_code == 201, r.text
    dossier_id = r.json()["dossier_id"]
    got = hashlib.sha256()
    with httpx.stream("GET", f"{url}/v1/dossiers/{dossier_id}/documents/big", headers=headers, timeout=300) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_bytes():
            got.update(chunk)
    assert got.hexdigest() == h.hexdigest()
    growth = sampler.stop() - baseline
    print(json.dumps({"document_mib": SIZE >> 20, "baseline_rss_mib": round(baseline / 2**20, 1),
                      "peak_rss_growth_mib": round(growth / 2**20, 1)}))
    assert growth < LIMIT, f"server peak RSS grew by {growth >> 20} MiB for a {SIZE >> 20} MiB document"
