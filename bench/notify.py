"""Notification benchmark: deposit -> signed webhook, on a real Redis, ``exchange serve`` and worker.

    python bench/notify.py [--quick]

Starts everything itself and removes it all at the end: a throwaway database ``bench_notify_<pid>``
on 127.0.0.1:5432, Redis database 14 on 127.0.0.1:6379 (flushed at the start and at the end),
one ``exchange serve`` process whose outbox relay thread publishes to that Redis, one
``exchange worker --pool=prefork --concurrency=2 --beat`` process, and a threaded HTTP receiver
on loopback in this process that checks every webhook's ``v1`` signature with its
subscription's secret. MY deposits small dossiers (one 1 KiB SR each) on an application that SG's
application claims as priority, under an ASPEC agreement, so SG's subscriptions hear
``dossier.deposited``. Prints a table, then one JSON line:

1. latency      one subscription; N dossiers (200, 60 with --quick) deposited back to back by 2
                client threads, then "paced": 50 (20) deposited one at a time, each waiting for
                its webhook (an idle pipeline). Latency = webhook arrival - the 201 coming back
                (and - the request's start); p50/p95/p99/max; goal p95 < 2 s. The "where" rows
                split it with the database's own timestamps: the outbox row's insert, the API
                relay thread's claim of it, the worker's fan-out writing the delivery row, the
                delivery's arrival here, the worker marking it delivered.
2. throughput   K = 20 subscriptions on SG (distinct paths, same receiver) and M deposits:
                webhook deliveries completed per second, first to last arrival, worker
                concurrency 2 (prefork).
3. retries      the same with the receiver answering 503 to the first attempt of each delivery
                (EXCHANGE_WEBHOOK_RETRY_SCHEDULE=1,1,1): completed deliveries per second, and
                the time from a delivery's first attempt to its success.

Timestamps are ``time.time()`` (this process and the database share the host's clock).
"worker CPU" / "server CPU" are the process groups' CPU time over the phase's wall time
(100 % = one core); "machine busy" is the whole machine's. PASS/MISS only reports against the
goal; the exit status is 0 whenever the bench ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402 - the project's packages come from ROOT
import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import migrations  # noqa: E402
from crypto import jws, webhooks  # noqa: E402
from crypto.keys import generate_private_key  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_DB = 14
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
QUEUE = "exchange"  # the Celery queue (a Redis list of that name)
MY_NUMBER = "PI2022001234"
RETRY_SCHEDULE = "1,1,1"
CONCURRENCY = 2


# --- helpers ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def signed_deposit(key, n: str) -> tuple[dict, bytes]:
    """(headers, body) of a multipart deposit of one 1 KiB SR by MY, signed now."""
    doc = b"%PDF-1.4 bench " + n.encode() + b" " + os.urandom(1000)
    m = {"office": "MY", "application": {
        "number": MY_NUMBER, "filing_date": "2022-03-02", "title": "Apparatus for notification benchmarks",
        "ipc": ["H04L 9/32"], "priorities": [], "pct": None,
        "publication": {"number": f"MY{MY_NUMBER}A", "date": "2023-09-01"}},
        "documents": [{"id": "sr-1", "type": "SR", "title": f"Search report {n}", "language": "en",
                       "issued_on": "2023-09-10", "media_type": "application/pdf",
                       "sha256": hashlib.sha256(doc).hexdigest(), "size": len(doc)}],
        "citations": [{"cited": "US2019123456A1", "category": "X", "claims": [1, 2]}],
        "signed_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    token = jws.sign(json.dumps(m, separators=(",", ":")).encode(), key)
    b = "bench-" + secrets.token_hex(8)
    body = (f'--{b}\r\nContent-Disposition: form-data; name="manifest"\r\nContent-Type: application/jose\r\n\r\n'
            f'{token}\r\n--{b}\r\nContent-Disposition: form-data; name="sr-1"; filename="sr-1.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n").encode() + doc + f"\r\n--{b}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={b}"}, body


def pct(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN when empty."""
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def dist_ms(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "min": None, "p50": None, "p95": None, "p99": None, "max": None}
    return {"n": len(values), "min": round(1000 * min(values), 1), "p50": round(1000 * pct(values, 50), 1),
            "p95": round(1000 * pct(values, 95), 1), "p99": round(1000 * pct(values, 99), 1),
            "max": round(1000 * max(values), 1)}


def group_cpu(pgid: int) -> float:
    """CPU seconds of the live processes of a process group (the worker's prefork children too)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine(since: tuple[int, int] | None = None):
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    now = (sum(v), v[3] + v[4])
    return now if since is None else round(100 * (1 - (now[1] - since[1]) / max(1, now[0] - since[0])))


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class Proc:
    """A subprocess in its own session (process group), logging to a file."""

    def __init__(self, args: list[str], env: dict, log: Path):
        self.log_path = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.pgid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                # the group may outlive its leader (prefork children): make sure it is gone
                if sig == signal.SIGTERM:
                    time.sleep(0.5)
                    os.killpg(self.pgid, signal.SIGKILL)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break


# --- the receiver ----------------------------------------------------------------------------

class Receiver:
    """A threaded HTTP server on loopback. Each POST is stamped on arrival (body read), its
    signature checked with the secret of its path's subscription, then answered 200, or 503
    the first time a webhook-id is seen while ``fail_first`` is on."""

    def __init__(self):
        self.secrets: dict[str, str] = {}  # path -> whsec_
        self.records: list[dict] = []
        self.bad_signatures = 0
        self.fail_first = False
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                arrived = time.time()
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = True
                try:
                    webhooks.verify(body, headers, secret=rec.secrets[self.path])
                except Exception:  # noqa: BLE001 - counted
                    ok = False
                wid = headers.get("webhook-id", "")
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {}
                with rec._lock:
                    first = wid not in rec._seen
                    rec._seen.add(wid)
                    status = 503 if (rec.fail_first and first) else (200 if ok else 400)
                    if not ok:
                        rec.bad_signatures += 1
                    rec.records.append({"t": arrived, "path": self.path, "id": wid, "status": status,
                                        "type": payload.get("type"),
                                        "dossier": (payload.get("data") or {}).get("dossier_id")})
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def of(self, dossiers: set[str], status: int | None = 200) -> list[dict]:
        with self._lock:
            return [r for r in self.records if r["dossier"] in dossiers and (status is None or r["status"] == status)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class QueueSampler(threading.Thread):
    """Peak length of the Celery queue in Redis, sampled every 100 ms."""

    def __init__(self, client: redis.Redis):
        super().__init__(daemon=True)
        self.client, self.peak, self.running = client, 0, True
        self.start()

    def run(self):
        while self.running:
            try:
                self.peak = max(self.peak, self.client.llen(QUEUE))
            except redis.RedisError:
                pass
            time.sleep(0.1)

    def stop(self) -> int:
        self.running = False
        self.join(2)
        return self.peak


# --- the phases ------------------------------------------------------------------------------

def deposit_all(url: str, headers: dict, prepared: list, n_threads: int, deadline: float,
                after=None) -> tuple[list[dict], int]:
    """Deposit the prepared bodies from n_threads threads: [{dossier, start, done}], errors.
    ``after(dossier_id)``, if given, runs after each deposit (paced runs wait there)."""
    lock, nxt, out, errors = threading.Lock(), [0], [], [0]

    def loop():
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            while time.monotonic() < deadline:
                with lock:
                    i, nxt[0] = nxt[0], nxt[0] + 1
                if i >= len(prepared):
                    return
                h, body = prepared[i]
                t0 = time.time()
                try:
                    r = http.post("/v1/dossiers", content=body, headers=h)
                    t1 = time.time()
                    if r.status_code != 201:
                        raise RuntimeError(f"{r.status_code} {r.text[:200]}")
                    did = r.json()["dossier_id"]
                    with lock:
                        out.append({"dossier": did, "start": t0, "done": t1})
                    if after is not None:
                        after(did)
                except Exception as exc:  # noqa: BLE001 - counted, the first one shown
                    with lock:
                        errors[0] += 1
                        if errors[0] == 1:
                            print(f"  first deposit error: {exc}", file=sys.stderr)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(n_threads)]
    [t.start() for t in threads]
    [t.join(max(1.0, deadline - time.monotonic() + 60)) for t in threads]
    return out, errors[0]


def breakdown(engine, dossiers: dict[str, dict], arrivals: dict[str, float]) -> dict:
    """Split each dossier's latency with the database's timestamps (one subscription)."""
    q = sa.text("""
        SELECT e.payload->>'dossier_id', extract(epoch FROM e.created_at), extract(epoch FROM e.sent_at),
               extract(epoch FROM d.created_at), extract(epoch FROM d.delivered_at)
        FROM outbox_event e JOIN webhook_delivery d ON d.event_id = e.id
        WHERE e.topic = 'dossier.deposited'""")
    seg = {"event_row_to_201": [], "201_to_relay_claim": [], "relay_claim_to_fanout_row": [],
           "fanout_row_to_arrival": [], "arrival_to_delivered_mark": []}
    with engine.connect() as c:
        for did, created, sent, d_created, delivered in c.execute(q):
            if did not in dossiers or did not in arrivals or sent is None:
                continue
            done, arr = dossiers[did]["done"], arrivals[did]
            seg["event_row_to_201"].append(done - float(created))
            seg["201_to_relay_claim"].append(float(sent) - done)
            seg["relay_claim_to_fanout_row"].append(float(d_created) - float(sent))
            seg["fanout_row_to_arrival"].append(arr - float(d_created))
            if delivered is not None:
                seg["arrival_to_delivered_mark"].append(float(delivered) - arr)
    return {k: {"p50": round(1000 * pct(v, 50), 1) if v else None, "p95": round(1000 * pct(v, 95), 1) if v else None}
            for k, v in seg.items()}


def latency(ctx: dict, n: int, deadline: float, paced: bool = False) -> dict:
    """paced: one client, each deposit waits for its webhook (an idle pipeline); else 2 threads
    back to back."""
    rec, path = ctx["receiver"], "/hooks/sg-00"
    prepared = [signed_deposit(ctx["key"], f"{'P' if paced else 'L'}{i}") for i in range(n)]
    m0, c0 = machine(), (group_cpu(ctx["server"].pgid), group_cpu(ctx["worker"].pgid))
    after = (lambda did: wait_until(lambda: rec.of({did}), 10, 0.005)) if paced else None
    t0 = time.time()
    deps, errors = deposit_all(ctx["url"], ctx["my"], prepared, 1 if paced else 2, deadline, after)
    t_dep = time.time() - t0
    ids = {d["dossier"] for d in deps}
    wait_until(lambda: len({r["dossier"] for r in rec.of(ids)}) >= len(ids), max(5.0, deadline - time.monotonic()))
    wall = time.time() - t0
    arrivals: dict[str, float] = {}
    for r in rec.of(ids):
        if r["path"] == path:
            arrivals.setdefault(r["dossier"], r["t"])
    by_id = {d["dossier"]: d for d in deps}
    after_201 = [arrivals[i] - by_id[i]["done"] for i in arrivals]
    after_start = [arrivals[i] - by_id[i]["start"] for i in arrivals]
    dl = dist_ms(after_201)
    return {"dossiers": len(deps), "deposit_errors": errors, "received": len(arrivals),
            "missing": len(ids) - len(arrivals), "deposits_per_s": round(len(deps) / t_dep, 1),
            "deposit_ms": dist_ms([d["done"] - d["start"] for d in deps]),
            "after_201_ms": dl, "after_start_ms": dist_ms(after_start),
            "where_ms": breakdown(ctx["engine"], by_id, arrivals),
            "goal_p95_ms": 2000, "pass": bool(arrivals) and len(ids) == len(arrivals) and dl["p95"] < 2000,
            "server_cpu_pct": round(100 * (group_cpu(ctx["server"].pgid) - c0[0]) / wall),
            "worker_cpu_pct": round(100 * (group_cpu(ctx["worker"].pgid) - c0[1]) / wall),
            "machine_busy_pct": machine(m0)}


def throughput(ctx: dict, m: int, k: int, deadline: float, fail_first: bool) -> dict:
    rec = ctx["receiver"]
    prepared = [signed_deposit(ctx["key"], f"{'R' if fail_first else 'T'}{i}") for i in range(m)]
    rec.fail_first = fail_first
    sampler = QueueSampler(ctx["redis"])
    m0, c0 = machine(), (group_cpu(ctx["server"].pgid), group_cpu(ctx["worker"].pgid))
    t0 = time.time()
    try:
        deps, errors = deposit_all(ctx["url"], ctx["my"], prepared, 2, deadline)
        t_dep = time.time() - t0
        ids = {d["dossier"] for d in deps}
        expected = len(ids) * k
        # done when every (dossier, path) pair has a 200, or nothing new arrives for 20 s
        last = [0, time.monotonic()]

        def done():
            got = rec.of(ids, None)
            if len(got) != last[0]:
                last[:] = [len(got), time.monotonic()]
            ok = {(r["dossier"], r["path"]) for r in got if r["status"] == 200}
            return len(ok) >= expected or time.monotonic() - last[1] > 20

        wait_until(done, max(5.0, deadline - time.monotonic()), 0.2)
        wall = time.time() - t0
    finally:
        rec.fail_first = False
        peak = sampler.stop()
    attempts = rec.of(ids, None)
    ok = rec.of(ids)
    pairs = {(r["dossier"], r["path"]) for r in ok}
    out = {"subscriptions": k, "deposits": len(deps), "deposit_errors": errors,
           "deposit_span_s": round(t_dep, 2), "expected": expected, "delivered": len(pairs),
           "duplicates": len(ok) - len(pairs), "attempts": len(attempts),
           "answered_503": sum(1 for r in attempts if r["status"] == 503),
           "bad_signatures": sum(1 for r in attempts if r["status"] == 400), "queue_peak": peak,
           "server_cpu_pct": round(100 * (group_cpu(ctx["server"].pgid) - c0[0]) / wall),
           "worker_cpu_pct": round(100 * (group_cpu(ctx["worker"].pgid) - c0[1]) / wall),
           "machine_busy_pct": machine(m0)}
    if len(ok) >= 2:
        first, last_t = min(r["t"] for r in attempts), max(r["t"] for r in ok)
        out["span_s"] = round(last_t - first, 2)
        out["per_s"] = round(len(pairs) / max(last_t - first, 1e-6), 1)
        out["first_deposit_to_last_arrival_s"] = round(last_t - t0, 2)
    else:
        out["span_s"], out["per_s"] = None, 0.0
    if fail_first:
        firsts: dict[str, float] = {}
        for r in sorted(attempts, key=lambda r: r["t"]):
            firsts.setdefault(r["id"], r["t"])
        out["first_attempt_to_success_ms"] = dist_ms([r["t"] - firsts[r["id"]] for r in ok])
    return out


# --- main ------------------------------------------------------------------------------------

def main(quick: bool) -> dict:
    from dossiers import registry
    from dossiers.db import make_engine, make_session_factory

    n_lat, n_paced, m_tp, m_retry, k = (60, 20, 10, 5, 20) if quick else (200, 50, 40, 15, 20)
    out: dict = {"mode": "quick" if quick else "full", "cpus": os.cpu_count(), "worker_concurrency": CONCURRENCY,
                 "retry_schedule": RETRY_SCHEDULE}
    db = f"bench_notify_{os.getpid()}"
    tmp = tempfile.TemporaryDirectory(prefix="bench-notify-")
    home = Path(tmp.name)
    procs: list[Proc] = []
    admin_engine = engine = receiver = rds = None
    try:
        rds = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=3)
        rds.flushdb()
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
        env = {**os.environ, "EXCHANGE_DATABASE_URL": db_url, "EXCHANGE_STORAGE_URL": f"file://{home / 'blobs'}",
               "EXCHANGE_BROKER_URL": BROKER_URL, "EXCHANGE_WEBHOOK_ALLOW_HOSTS": "127.0.0.0/8",
               "EXCHANGE_WEBHOOK_RETRY_SCHEDULE": RETRY_SCHEDULE, "EXCHANGE_PUBLIC_URL": "http://exchange.test",
               "EXCHANGE_LOG_LEVEL": "WARNING"}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        (home / "server").mkdir()
        (home / "worker").mkdir()
        server = Proc([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)],
                      {**env, "EXCHANGE_HOME": str(home / "server")}, home / "server.log")
        procs.append(server)

        def healthy():
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False
        if not wait_until(lambda: healthy() or not server.alive(), 30, 0.1) or not server.alive():
            raise RuntimeError("the server did not start:\n" + server.tail())
        worker = Proc([sys.executable, "-m", "exchange.cli", "worker", "--pool=prefork",
                       f"--concurrency={CONCURRENCY}", "--beat"],
                      {**env, "EXCHANGE_HOME": str(home / "worker")}, home / "worker.log")
        procs.append(worker)

        def token(client_id: str, secret: str) -> dict:
            r = httpx.post(f"{url}/oauth/token", timeout=30, data={
                "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
            return {"Authorization": f"Bearer {r.raise_for_status().json()['access_token']}"}

        # Offices, MY's key, clients, the agreement, SG's corresponding application.
        key = generate_private_key("ES256")
        kits = {}
        with httpx.Client(base_url=url, headers=token(admin_id, admin_secret), timeout=30) as http:
            for code in ("SG", "MY"):
                http.post("/v1/offices", json={"code": code, "name": f"Office {code}"}).raise_for_status()
                c = http.post(f"/v1/offices/{code}/clients", json={"roles": ["depositor", "examiner", "office-admin"]})
                kits[code] = c.raise_for_status().json()
            http.post("/v1/offices/MY/keys", json={"kid": key.kid, "alg": "ES256",
                                                   "public_key_pem": key.public().pem}).raise_for_status()
            http.post("/v1/agreements", json={
                "name": "ASPEC", "program": "ASPEC", "members": ["SG", "MY"], "document_types": ["SR", "ER"],
                "valid_from": "2020-01-01T00:00:00Z"}).raise_for_status()
        sg = token(kits["SG"]["client_id"], kits["SG"]["client_secret"])
        my = token(kits["MY"]["client_id"], kits["MY"]["client_secret"])
        httpx.post(f"{url}/v1/applications", headers=sg, timeout=30, json={
            "number": "10202301234X", "filing_date": "2023-03-01", "title": "t",
            "priorities": [{"office": "MY", "number": MY_NUMBER, "date": "2022-03-02"}]}).raise_for_status()

        receiver = Receiver()

        def subscribe(i: int) -> None:
            path = f"/hooks/sg-{i:02d}"
            r = httpx.post(f"{url}/v1/offices/SG/webhooks", headers=sg, timeout=30,
                           json={"url": receiver.base + path, "events": ["dossier.deposited"]})
            receiver.secrets[path] = r.raise_for_status().json()["secret"]

        subscribe(0)
        ctx = {"url": url, "my": my, "key": key, "receiver": receiver, "engine": engine, "redis": rds,
               "server": server, "worker": worker}

        # Warm-up: the worker's start, its children's first connections, the server's first deposits.
        print("# warm-up: 3 deposits until their webhooks arrive", flush=True)
        warm, _ = deposit_all(url, my, [signed_deposit(key, f"W{i}") for i in range(3)], 1, time.monotonic() + 60)
        if not wait_until(lambda: len(receiver.of({d["dossier"] for d in warm})) >= len(warm), 60, 0.1):
            raise RuntimeError("no webhook after the warm-up deposits:\n" + worker.tail() + "\n" + server.tail())

        print(f"# latency, paced: {n_paced} deposits one at a time, each waiting for its webhook", flush=True)
        out["latency_paced"] = latency(ctx, n_paced, time.monotonic() + 60, paced=True)
        print(f"# latency: {n_lat} deposits from 2 threads, 1 subscription", flush=True)
        out["latency"] = latency(ctx, n_lat, time.monotonic() + (90 if quick else 150))
        for i in range(1, k):
            subscribe(i)
        print(f"# throughput: {m_tp} deposits x {k} subscriptions", flush=True)
        out["throughput"] = throughput(ctx, m_tp, k, time.monotonic() + (90 if quick else 150), False)
        print(f"# retries: {m_retry} deposits x {k} subscriptions, 503 to each first attempt", flush=True)
        out["retries"] = throughput(ctx, m_retry, k, time.monotonic() + (90 if quick else 150), True)
        out["receiver_bad_signatures"] = receiver.bad_signatures
        for p in procs:
            if not p.alive():
                out.setdefault("died", []).append(p.log_path.name)
    except BaseException:
        for p in procs:
            print(f"--- {p.log_path.name} (tail) ---\n{p.tail()}", file=sys.stderr)
        raise
    finally:
        for p in reversed(procs):
            p.stop()
        if receiver is not None:
            receiver.stop()
        if engine is not None:
            engine.dispose()
        if admin_engine is not None:
            with admin_engine.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin_engine.dispose()
        if rds is not None:
            rds.flushdb()
            rds.close()
        tmp.cleanup()
    return out


def report(out: dict) -> None:
    ok = lambda cond: "PASS" if cond else "MISS"  # noqa: E731
    ms = lambda x: "-" if x is None else f"{x:.0f}"  # noqa: E731
    row = lambda name, value, goal="", note="": print(f"{name:<44}{value:>14}  {goal:<16}{note}")  # noqa: E731
    print(f"\n== notification benchmark ({out['mode']}, {out['cpus']} CPUs, worker prefork x "
          f"{out['worker_concurrency']}) ==")
    row("figure", "value", "goal", "notes")
    for label, lat in (("2 threads", out["latency"]), ("paced", out["latency_paced"])):
        a, s = lat["after_201_ms"], lat["after_start_ms"]
        row(f"deposit -> webhook ({label}), after 201, p50", f"{ms(a['p50'])} ms", "",
            f"{lat['received']}/{lat['dossiers']} received, {lat['missing']} missing, "
            f"{lat['deposit_errors']} deposit errors" + ("" if label == "paced" else
                                                        f", {lat['deposits_per_s']} deposits/s"))
        row("  p95", f"{ms(a['p95'])} ms", f"< 2000 {ok(lat['pass'])}")
        row("  min / p99 / max", f"{ms(a['min'])}/{ms(a['p99'])}/{ms(a['max'])} ms")
        row("  after the request start, p50", f"{ms(s['p50'])} ms", "",
            f"p95 {ms(s['p95'])}, p99 {ms(s['p99'])}, max {ms(s['max'])} ms; the deposit itself p50 "
            f"{ms(lat['deposit_ms']['p50'])}, p95 {ms(lat['deposit_ms']['p95'])} ms")
        for name, v in lat["where_ms"].items():
            row(f"  where: {name.replace('_', ' ')}", f"{ms(v['p50'])} ms", "", f"p95 {ms(v['p95'])} ms")
        row("  CPU", "", "", f"server {lat['server_cpu_pct']} %, worker {lat['worker_cpu_pct']} %, "
            f"machine busy {lat['machine_busy_pct']} %")
    for label, t in (("deliveries/s", out["throughput"]), ("deliveries/s, 503 first", out["retries"])):
        row(f"{label} ({t['subscriptions']} subs x {t['deposits']} deposits)", f"{t['per_s']}/s", "",
            f"{t['delivered']}/{t['expected']} delivered in {t['span_s']} s (first to last arrival), "
            f"{t['attempts']} attempts, {t['answered_503']} x 503, {t['duplicates']} duplicates, "
            f"{t['bad_signatures']} bad signatures")
        row("", "", "", f"deposits took {t['deposit_span_s']} s; queue peak {t['queue_peak']}; server CPU "
            f"{t['server_cpu_pct']} %, worker CPU {t['worker_cpu_pct']} %, machine busy {t['machine_busy_pct']} %")
        if "first_attempt_to_success_ms" in t:
            f = t["first_attempt_to_success_ms"]
            row("  first attempt (503) -> success", f"{ms(f['p50'])} ms", "",
                f"p95 {ms(f['p95'])}, max {ms(f['max'])} ms (retry schedule {out['retry_schedule']} s)")
    if out.get("died"):
        print(f"!! died during the run: {', '.join(out['died'])}")
    print(json.dumps(out))


if __name__ == "__main__":
    report(main("--quick" in sys.argv[1:]))
