"""Deposit benchmark: a real ``exchange serve`` process on loopback, PostgreSQL and moto's S3.

    python bench/deposit.py [--quick] [--api-processes N]

``--api-processes N`` runs each ``exchange serve`` with N API processes (``--workers N``); server
CPU then sums them, and the memory figures are only meaningful with 1 (the default), where
the one process is the one sampled.

Starts everything itself (moto's S3 server as a process of its own, so that it does not share
this client's interpreter lock, as a real S3 store would not; a throwaway database
``bench_<pid>`` on 127.0.0.1:5432, one ``exchange serve`` on S3 and one on a local directory,
sharing the database) and removes it all at the end. Prints a table, then one JSON line:

1. throughput  16 MiB documents deposited through the API into S3, in MB/s (10^6 bytes), next to
               raw ``minio`` ``put_object`` of the same bytes (in parts of the exchange's size) to
               the same moto server, alternating document by document. The figure is the median
               over rounds of exchange/raw; goal >= 0.8. moto is the slow side of any S3 figure
               here: read the ratio, not the MB/s.
2. small       dossiers of 5 x 64 KiB (distinct content and manifest each, signed and hashed
               before the clock starts) sent by 4 client threads: dossiers/s, p50/p95 latency,
               on each store; goal >= 100/s on 2 cores. "raw minio 5 puts" is the moto ceiling:
               the same five objects put straight into S3 by the same 4 threads.
3. memory      peak growth of the server's VmRSS (sampled every 10 ms) over a baseline taken
               after a warm-up deposit and download, while depositing one 1 GiB document
               (256 MiB with --quick) and then while downloading it (hashed and checked); both
               against the same pre-deposit baseline. Goal <= 64 MiB.

"server CPU" is the exchange process's CPU time over the phase's wall time (100 % = one core);
"machine busy" is the whole machine's, other tenants included: high means a noisy run.
PASS/MISS only reports against the goals; the exit status is 0 whenever the bench ran.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402 - the project's packages come from ROOT
import sqlalchemy as sa  # noqa: E402
from minio import Minio  # noqa: E402

import migrations  # noqa: E402
from crypto import jws  # noqa: E402
from crypto.keys import generate_private_key  # noqa: E402

MiB = 1024 * 1024
from dossiers.storage.s3 import PART_SIZE  # noqa: E402 - the raw puts use the exchange's parts

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
OFFICE = "BN"
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request


# --- helpers ---------------------------------------------------------------------------------

def manifest(docs: list[tuple[str, str, int]], number: str) -> dict:
    return {"office": OFFICE, "application": {
        "number": number, "filing_date": "2023-03-01", "title": "Apparatus for benchmarks", "ipc": ["H04L 9/32"],
        "priorities": [], "pct": None, "publication": {"number": f"{OFFICE}{number}A", "date": "2024-09-01"}},
        "documents": [{"id": i, "type": "SR", "title": f"Document {i}", "language": "en", "issued_on": "2023-09-10",
                       "media_type": "application/pdf", "sha256": sha, "size": size} for i, sha, size in docs],
        "citations": [{"cited": "US2019123456A1", "category": "X", "claims": [1, 2]}],
        "signed_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}


def signed(docs: list[tuple[str, str, int]], number: str, key) -> str:
    return jws.sign(json.dumps(manifest(docs, number), separators=(",", ":")).encode(), key)


def multipart(token: str, parts: list[tuple[str, int, object]]):
    """Headers with a known Content-Length and a generator; parts are (name, size, chunks)."""
    b = "bench-" + secrets.token_hex(8)
    head = (f'--{b}\r\nContent-Disposition: form-data; name="manifest"\r\nContent-Type: application/jose\r\n\r\n'
            f"{token}\r\n").encode()
    heads = [(f'--{b}\r\nContent-Disposition: form-data; name="{n}"; filename="{n}.pdf"\r\n'
              f"Content-Type: application/pdf\r\n\r\n").encode() for n, _, _ in parts]
    tail = f"--{b}--\r\n".encode()
    length = len(head) + len(tail) + sum(len(h) + p[1] + 2 for h, p in zip(heads, parts))

    def gen():
        yield head
        for h, (_, _, chunks) in zip(heads, parts):
            yield h
            yield from chunks
            yield b"\r\n"
        yield tail
    return {"Content-Type": f"multipart/form-data; boundary={b}", "Content-Length": str(length)}, gen()


def deposit(http: httpx.Client, token: str, parts) -> str:
    headers, body = multipart(token, parts)
    r = http.post("/v1/dossiers", content=body, headers=headers)
    if r.status_code != 201:
        raise RuntimeError(f"deposit refused: {r.status_code} {r.text[:300]}")
    return r.json()["dossier_id"]


def vm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(x.split()[1]) * 1024 for x in f if x.startswith("VmRSS:"))


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and of its live children (the API processes of ``--workers N``)."""
    total = 0
    for p in (pid, *children(pid)):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def machine(since: tuple[int, int] | None = None):
    """(total, idle) jiffies of the machine; given an earlier reading, the busy % since (other
    tenants' load included: this is how noisy the machine was)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    now = (sum(v), v[3] + v[4])
    return now if since is None else round(100 * (1 - (now[1] - since[1]) / max(1, now[0] - since[0])))


class RssSampler(threading.Thread):
    """The server's current RSS every 10 ms (VmHWM also holds Argon2's 64 MiB token checks)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True
        self.start()

    def run(self):
        while self.running:
            self.peak = max(self.peak, vm_rss(self.pid))
            time.sleep(0.01)

    def take(self, stop: bool = False) -> int:
        self.running = not stop
        if stop:
            self.join()
        peak, self.peak = self.peak, vm_rss(self.pid)
        return peak


class Server:
    """``exchange serve`` as a subprocess on a free loopback port."""

    def __init__(self, label: str, db_url: str, storage_url: str, home: Path, processes: int = 1):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.label, self.url = label, f"http://127.0.0.1:{port}"
        home.mkdir(parents=True, exist_ok=True)
        self.log = open(home / "server.log", "wb")
        env = {**os.environ, "EXCHANGE_HOME": str(home), "EXCHANGE_DATABASE_URL": db_url,
               "EXCHANGE_STORAGE_URL": storage_url, "EXCHANGE_PUBLIC_URL": "http://exchange.test"}
        self.proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port),
                                      "--workers", str(processes)],
                                     env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{label} server did not start:\n" + (home / "server.log").read_text()[-2000:])
            time.sleep(0.1)

    def token(self, client_id: str, secret: str) -> dict:
        r = httpx.post(f"{self.url}/oauth/token", timeout=30, data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
        return {"Authorization": f"Bearer {r.raise_for_status().json()['access_token']}"}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def start_moto(home: Path) -> tuple[subprocess.Popen, int]:
    """moto's S3 server in a process of its own on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(home / "moto.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=2)
            return proc, port
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto's server did not start:\n" + (home / "moto.log").read_text()[-2000:]) from None
            time.sleep(0.1)


# --- the three measurements ------------------------------------------------------------------

def throughput(srv: Server, headers: dict, key, raw: Minio, rounds: int, per_round: int, deadline: float) -> dict:
    size, ex_rates, raw_rates, ratios, cpu, ex_wall, m0 = 16 * MiB, [], [], [], 0.0, 0.0, machine()
    with httpx.Client(base_url=srv.url, headers=headers, timeout=300) as http:
        for r in range(rounds):
            datas = [os.urandom(size) for _ in range(per_round)]
            tokens = [signed([("doc", hashlib.sha256(d).hexdigest(), size)], f"T{os.getpid()}-{r}-{i}", key)
                      for i, d in enumerate(datas)]
            t = [0.0, 0.0]  # exchange, raw
            for i, (data, tok) in enumerate(zip(datas, tokens)):
                for step in ((0, 1) if i % 2 == 0 else (1, 0)):  # alternate which goes first
                    t0, c0 = time.perf_counter(), cpu_seconds(srv.proc.pid)
                    if step == 0:
                        deposit(http, tok, [("doc", size, (data[i:i + MiB] for i in range(0, size, MiB)))])
                        cpu += cpu_seconds(srv.proc.pid) - c0
                    else:
                        raw.put_object("raw", f"t{r}-{i}", io.BytesIO(data), length=size, part_size=PART_SIZE)
                    t[step] += time.perf_counter() - t0
            ex_rates.append(per_round * size / t[0] / 1e6)
            raw_rates.append(per_round * size / t[1] / 1e6)
            ratios.append(ex_rates[-1] / raw_rates[-1])
            ex_wall += t[0]
            if time.monotonic() > deadline:
                break
    return {"exchange_mb_s": round(statistics.median(ex_rates), 1), "raw_mb_s": round(statistics.median(raw_rates), 1),
            "ratio": round(statistics.median(ratios), 3), "rounds": len(ratios), "docs_per_round": per_round,
            "per_round_ratios": [round(x, 3) for x in ratios], "server_cpu_pct": round(100 * cpu / ex_wall),
            "machine_busy_pct": machine(m0)}


def concurrently(n_threads: int, total: int, work, deadline: float, pid: int | None = None) -> dict:
    """work(i, state) for i in range(total) from n_threads threads (state: a dict per thread)."""
    lock, nxt, lat, errors = threading.Lock(), [0], [], [0]

    def loop(state):
        while time.monotonic() < deadline:
            with lock:
                i, nxt[0] = nxt[0], nxt[0] + 1
            if i >= total:
                break
            t0 = time.perf_counter()
            try:
                work(i, state)
                with lock:
                    lat.append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001 - counted, the first one shown
                with lock:
                    errors[0] += 1
                    if errors[0] == 1:
                        print(f"  first error: {exc}", file=sys.stderr)
        if "http" in state:
            state["http"].close()

    threads = [threading.Thread(target=loop, args=({},), daemon=True) for _ in range(n_threads)]
    t0, c0, m0 = time.perf_counter(), cpu_seconds(pid) if pid else 0.0, machine()
    [th.start() for th in threads]
    [th.join(max(1.0, deadline - time.monotonic() + 60)) for th in threads]
    wall, done = time.perf_counter() - t0, len(lat)
    q = statistics.quantiles(lat, n=20) if done > 1 else [float("nan")] * 19
    out = {"dossiers": done, "errors": errors[0], "per_s": round(done / wall, 1), "p50_ms": round(1000 * q[9], 1),
           "p95_ms": round(1000 * q[18], 1), "machine_busy_pct": machine(m0)}
    if pid:
        cpu = cpu_seconds(pid) - c0
        out.update(server_cpu_pct=round(100 * cpu / wall),
                   server_cpu_ms_per_dossier=round(1000 * cpu / max(done, 1), 1))
    return out


def small(srv: Server, headers: dict, key, total: int, n_threads: int, deadline: float) -> tuple[dict, list]:
    """Dossiers of 5 x 64 KiB, each with its own content and manifest, built and signed before timing."""
    prepared = []
    for n in range(total):
        docs = {f"d{j}": os.urandom(64 * 1024) for j in range(5)}
        token = signed([(i, hashlib.sha256(d).hexdigest(), len(d)) for i, d in docs.items()],
                       f"S{srv.label}{os.getpid()}-{n:06d}", key)
        h, body = multipart(token, [(i, len(d), [d]) for i, d in docs.items()])
        prepared.append((h, b"".join(body), list(docs.values())))

    def work(i, state):
        if "http" not in state:
            state["http"] = httpx.Client(base_url=srv.url, headers=headers, timeout=60)
        r = state["http"].post("/v1/dossiers", content=prepared[i][1], headers=prepared[i][0])
        if r.status_code != 201:
            raise RuntimeError(f"{r.status_code} {r.text[:200]}")

    return concurrently(n_threads, total, work, deadline, srv.proc.pid), [p[2] for p in prepared]


def memory(srv: Server, headers: dict, key, size: int) -> dict:
    """Peak RSS growth of the server while one document of ``size`` bytes goes in and out."""
    base, tag = os.urandom(MiB), f"{srv.label:8.8}".encode()

    def blocks():  # deterministic, so it can be hashed first and never held whole
        for i in range(size // MiB):
            yield i.to_bytes(8, "big") + tag + base[16:]

    h = hashlib.sha256()
    for b in blocks():
        h.update(b)
    token = signed([("big", h.hexdigest(), size)], f"M{srv.label}{os.getpid()}", key)
    with httpx.Client(base_url=srv.url, headers=headers, timeout=900) as http:
        w = os.urandom(4096)  # warm-up: a small deposit and its download, then the baseline
        wid = deposit(http, signed([("w", hashlib.sha256(w).hexdigest(), len(w))], f"W{srv.label}{os.getpid()}", key),
                      [("w", len(w), [w])])
        http.get(f"/v1/dossiers/{wid}/documents/w").raise_for_status()
        baseline = vm_rss(srv.proc.pid)
        sampler = RssSampler(srv.proc.pid)
        try:
            t0 = time.perf_counter()
            did = deposit(http, token, [("big", size, blocks())])
            t_dep, dep_peak = time.perf_counter() - t0, sampler.take()
            got, t0 = hashlib.sha256(), time.perf_counter()
            with http.stream("GET", f"/v1/dossiers/{did}/documents/big") as resp:
                for chunk in resp.raise_for_status().iter_bytes():
                    got.update(chunk)
            t_dl = time.perf_counter() - t0
        finally:
            dl_peak = sampler.take(stop=True)
    if got.hexdigest() != h.hexdigest():
        raise RuntimeError("the downloaded document does not match what was deposited")
    return {"size_mib": size // MiB, "baseline_rss_mib": round(baseline / MiB, 1),
            "deposit_growth_mib": round((dep_peak - baseline) / MiB, 1),
            "download_growth_mib": round((dl_peak - baseline) / MiB, 1),
            "deposit_mb_s": round(size / t_dep / 1e6, 1), "download_mb_s": round(size / t_dl / 1e6, 1)}


# --- main ------------------------------------------------------------------------------------

def main(quick: bool, processes: int = 1) -> dict:
    from dossiers import registry
    from dossiers.db import make_engine, make_session_factory

    big = (256 if quick else 1024) * MiB
    rounds, per_round, total, n_threads = (3, 4, 100, 4) if quick else (5, 8, 200, 4)
    out: dict = {"mode": "quick" if quick else "full", "api_processes": processes}
    servers: list[Server] = []
    moto = admin_engine = None
    db = f"bench_{os.getpid()}"
    tmp = tempfile.TemporaryDirectory(prefix="bench-")
    try:
        moto, s3_port = start_moto(Path(tmp.name))
        raw = Minio(f"127.0.0.1:{s3_port}", "k", "s", secure=False, region="us-east-1")
        raw.make_bucket("raw", object_lock=True)  # as the exchange's bucket
        admin_engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{db}"'))
        db_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
        migrations.upgrade(db_url)
        engine = make_engine(db_url)
        with make_session_factory(engine).begin() as s:
            admin, admin_secret = registry.create_client(s, office_code=None, roles=["admin"], name="bench",
                                                         actor="bench")
            admin_id = admin.client_id
        engine.dispose()
        # Both servers share the database; every run deposits distinct bytes, so no blob is shared.
        servers.append(s3 := Server("s3", db_url, f"s3://k:s@127.0.0.1:{s3_port}/bench?secure=false",
                                    Path(tmp.name) / "s3", processes))
        servers.append(local := Server("local", db_url, f"file://{tmp.name}/blobs", Path(tmp.name) / "local",
                                       processes))
        key = generate_private_key("ES256")
        with httpx.Client(base_url=s3.url, headers=s3.token(admin_id, admin_secret), timeout=30) as http:
            http.post("/v1/offices", json={"code": OFFICE, "name": "Bench office"}).raise_for_status()
            http.post(f"/v1/offices/{OFFICE}/keys", json={"kid": key.kid, "alg": "ES256",
                                                          "public_key_pem": key.public().pem}).raise_for_status()
            c = http.post(f"/v1/offices/{OFFICE}/clients", json={"roles": ["depositor", "examiner"]})
            c = c.raise_for_status().json()
        hdr = {srv.label: srv.token(c["client_id"], c["client_secret"]) for srv in servers}

        print(f"# memory: one {big // MiB} MiB document in and out, local then s3", flush=True)
        out["memory"] = {srv.label: memory(srv, hdr[srv.label], key, big) for srv in (local, s3)}
        print(f"# throughput: {rounds} rounds of {per_round} x 16 MiB, exchange vs raw put_object", flush=True)
        out["throughput"] = throughput(s3, hdr["s3"], key, raw, rounds, per_round, time.monotonic() + 150)
        print(f"# small dossiers: {total} x (5 x 64 KiB), {n_threads} threads, local then s3 then raw", flush=True)
        out["small"] = {}
        for srv in (local, s3):
            out["small"][srv.label], docs = small(srv, hdr[srv.label], key, total, n_threads, time.monotonic() + 120)

        def raw_puts(i, state):  # the moto ceiling: the same 5 objects, straight to S3
            for j, d in enumerate(docs[i]):
                raw.put_object("raw", f"s{i}-{j}", io.BytesIO(d), length=len(d))
        out["small"]["raw_s3"] = concurrently(n_threads, len(docs), raw_puts, time.monotonic() + 120)
    finally:
        for srv in servers:
            srv.stop()
        if moto is not None:
            moto.terminate()
            moto.wait(10)
        if admin_engine is not None:
            with admin_engine.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin_engine.dispose()
        tmp.cleanup()
    return out


def report(out: dict) -> None:
    ok = lambda cond: "PASS" if cond else "MISS"  # noqa: E731
    row = lambda name, value, goal="", note="": print(f"{name:<40}{value:>14}  {goal:<16}{note}")  # noqa: E731
    t = out["throughput"]
    print(f"\n== deposit benchmark ({out['mode']}, {os.cpu_count()} CPUs) ==")
    row("figure", "value", "goal", "notes")
    row("16 MiB docs -> S3, exchange API", f"{t['exchange_mb_s']} MB/s", "",
        f"server CPU {t['server_cpu_pct']} %, machine busy {t['machine_busy_pct']} %")
    row("16 MiB docs -> S3, raw minio put", f"{t['raw_mb_s']} MB/s")
    row(f"  exchange / raw (median of {t['rounds']})", f"{t['ratio']:.2f}", f">= 0.80 {ok(t['ratio'] >= 0.8)}",
        "rounds " + " ".join(f"{x:.2f}" for x in t["per_round_ratios"]))
    for label, s in out["small"].items():
        raw = label == "raw_s3"
        note = f"p50 {s['p50_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms, {s['dossiers']} ok, {s['errors']} errors"
        if not raw:
            note += f", server CPU {s['server_cpu_pct']} % ({s['server_cpu_ms_per_dossier']} ms/dossier)"
        row("5 x 64 KiB, raw minio 5 puts (S3)" if raw else f"5 x 64 KiB dossiers/s ({label} store)",
            f"{s['per_s']}/s", "" if raw else f">= 100/s {ok(s['per_s'] >= 100)}",
            note + f", machine busy {s['machine_busy_pct']} %")
    for label, m in out["memory"].items():
        for phase in ("deposit", "download"):
            g = m[f"{phase}_growth_mib"]
            row(f"RSS growth, {m['size_mib']} MiB {phase} ({label})", f"{g} MiB", f"<= 64 {ok(g <= 64)}",
                f"{m[f'{phase}_mb_s']} MB/s, baseline RSS {m['baseline_rss_mib']} MiB")
    print(json.dumps(out))


if __name__ == "__main__":
    args = sys.argv[1:]
    processes = int(args[args.index("--api-processes") + 1]) if "--api-processes" in args else 1
    report(main("--quick" in args, processes))
