"""Token-request benchmark: what one ``POST /oauth/token`` costs the exchange, with client secrets
hashed as before (Argon2id, RFC 9106) and as now (SHA-256 of the 256-bit random secret), in
the same run against the same server.

    python bench/token.py [--old N] [--new N]

Starts one embedded ``exchange serve`` (SQLite and a local directory in a temporary folder,
rate limits off) and creates admin clients straight through the services, with production
hashing. "Before" clients get the Argon2id hash the exchange stored until now, each the same
one (hashed once here). Every request is sent one after another over one connection; the figure
is the server process's CPU time (user + system, from /proc) over the batch, per request:

1. before, wrong secret   a client with an Argon2id hash: what every token request cost until
                          now, known client or not (an unknown one was checked against a dummy
                          Argon2id hash)
2. before, first token    a client with an Argon2id hash and its right secret, once each: the
                          one Argon2id verification left, after which the hash is replaced
3. now, right secret      a client with the fast hash: the token issued (an ES256 signature)
4. now, wrong secret      the same client, a wrong secret
5. now, unknown client    a client_id that does not exist

Then 16 threads ask for tokens without pause (before: wrong secrets on Argon2id hashes; now:
right secrets) while /healthz is timed every 50 ms: the token requests answered per second, and
p50 and max of /healthz's latency.

"machine busy" is the whole machine's CPU over the run (other tenants included: high means a
noisy run). Prints a table, then one JSON line.
"""

from __future__ import annotations

import sys

# Run as ``python bench/token.py``, this folder comes first on the path, where this file would
# stand in for the standard library's ``token`` module: take the folder off before importing.
sys.path[:] = [p for p in sys.path if p != sys.path[0] or not p.endswith("bench")]

import argparse  # noqa: E402 - after the path is fixed
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402 - the project's packages come from ROOT

from crypto import secrets  # noqa: E402
from dossiers import registry  # noqa: E402
from dossiers.db import make_engine, make_session_factory  # noqa: E402
from dossiers.models import Client  # noqa: E402


def cpu_seconds_of(pid: int) -> float:
    """CPU time (user + system) of the one process ``pid``: the API, not the embedded worker."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine(since: tuple[int, int] | None = None):
    """(total, idle) jiffies of the machine; given an earlier reading, the busy % since."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    now = (sum(v), v[3] + v[4])
    return now if since is None else round(100 * (1 - (now[1] - since[1]) / max(1, now[0] - since[0])))


class Server:
    """``exchange serve`` on the embedded default, as a subprocess on a free loopback port."""

    def __init__(self, home: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(home / "server.log", "wb")
        env = {**os.environ, "EXCHANGE_HOME": str(home), "EXCHANGE_PUBLIC_URL": "http://exchange.test",
               "EXCHANGE_TOKEN_LIMIT_PER_ADDRESS": "off", "EXCHANGE_TOKEN_LIMIT_PER_CLIENT": "off",
               "EXCHANGE_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)],
                                     env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("the server did not start:\n" + (home / "server.log").read_text()[-2000:])
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def clients(sf, n: int, *, old_hash: str | None = None) -> list[str]:
    """``n`` admin clients; with ``old_hash``, that stored instead of the fast hash."""
    ids = []
    with sf.begin() as s:
        for _ in range(n):
            client, _secret = registry.create_client(s, office_code=None, roles=["admin"], name="bench", actor="bench")
            if old_hash is not None:
                client.secret_hash = old_hash
            ids.append(client.client_id)
    return ids


def batch(srv: Server, requests: list[tuple[str, str]], expect: int) -> dict:
    """The requests one after another; the server's CPU and the wall time per request."""
    with httpx.Client(base_url=srv.url, timeout=60) as http:
        http.get("/healthz")  # the connection is open before the clock starts
        c0, t0 = cpu_seconds_of(srv.proc.pid), time.perf_counter()
        for client_id, secret in requests:
            r = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                "client_secret": secret})
            if r.status_code != expect:
                raise RuntimeError(f"expected {expect}, got {r.status_code}: {r.text[:300]}")
        cpu, wall = cpu_seconds_of(srv.proc.pid) - c0, time.perf_counter() - t0
    n = len(requests)
    return {"requests": n, "cpu_ms_per_request": round(1000 * cpu / n, 2),
            "wall_ms_per_request": round(1000 * wall / n, 2)}


def burst(srv: Server, requests: list[tuple[str, str]], expect: int, threads: int = 16) -> dict:
    """``threads`` clients asking for tokens at once while /healthz is timed every 50 ms."""
    stop, failures, answered = threading.Event(), [], []

    def ask(client_id: str, secret: str) -> None:
        with httpx.Client(base_url=srv.url, timeout=120) as http:
            while not stop.is_set():
                r = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                    "client_secret": secret})
                if r.status_code != expect:
                    failures.append(r.status_code)
                answered.append(time.perf_counter())

    workers = [threading.Thread(target=ask, args=requests[i % len(requests)]) for i in range(threads)]
    for w in workers:
        w.start()
    latencies = []
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as http:
            time.sleep(0.5)  # the burst is under way
            t_start, n_start = time.perf_counter(), len(answered)
            while len(latencies) < 30:
                t0 = time.perf_counter()
                http.get("/healthz").raise_for_status()
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.05)
            rate = (len(answered) - n_start) / (time.perf_counter() - t_start)
    finally:
        stop.set()
        for w in workers:
            w.join()
    if failures:
        raise RuntimeError(f"unexpected answers during the burst: {sorted(set(failures))}")
    return {"healthz_p50_ms": round(1000 * statistics.median(latencies)),
            "healthz_max_ms": round(1000 * max(latencies)),
            "token_requests_per_s": round(rate, 1)}


def main(n_old: int, n_new: int) -> dict:
    m0 = machine()
    with tempfile.TemporaryDirectory(prefix="bench-token-") as tmp:
        home = Path(tmp)
        srv = Server(home)
        try:
            sf = make_session_factory(make_engine(f"sqlite:///{home / 'exchange.db'}"))
            secret = secrets.new_secret()
            old_hash = secrets.PRODUCTION.hash(secret)  # what create_client stored until now
            old_ids = clients(sf, n_old + 16, old_hash=old_hash)
            with sf.begin() as s:
                new_client, new_secret = registry.create_client(s, office_code=None, roles=["admin"], name="bench",
                                                                actor="bench")
                new_id = new_client.client_id
            wrong = secrets.new_secret()
            out = {
                "before_wrong_secret": batch(srv, [(old_ids[0], wrong)] * n_old, 401),
                "before_first_token": batch(srv, [(cid, secret) for cid in old_ids[1:n_old + 1]], 200),
                "now_right_secret": batch(srv, [(new_id, new_secret)] * n_new, 200),
                "now_wrong_secret": batch(srv, [(new_id, wrong)] * n_new, 401),
                "now_unknown_client": batch(srv, [("cl_" + "0" * 20, wrong)] * n_new, 401),
            }
            with sf() as s:
                upgraded = sum(s.get(Client, cid).secret_hash.startswith(secrets.CLIENT_HASH_PREFIX)
                               for cid in old_ids[1:n_old + 1])
            out["upgraded_after_first_token"] = f"{upgraded}/{n_old}"
            out["burst_before"] = burst(srv, [(cid, wrong) for cid in old_ids[n_old + 1:]], 401)
            out["burst_now"] = burst(srv, [(new_id, new_secret)], 200)
        finally:
            srv.stop()
    out["ratio_cpu_before_over_now"] = round(out["before_wrong_secret"]["cpu_ms_per_request"]
                                             / max(out["now_right_secret"]["cpu_ms_per_request"], 0.01), 1)
    out["machine_busy_pct"] = machine(m0)
    return out


def report(out: dict) -> None:
    print(f"\n== token benchmark ({os.cpu_count()} CPUs, machine busy {out['machine_busy_pct']} %) ==")
    print(f"{'case':<24}{'requests':>10}{'server CPU ms/req':>20}{'wall ms/req':>14}")
    for key, label in (("before_wrong_secret", "before, wrong secret"), ("before_first_token", "before, first token"),
                       ("now_right_secret", "now, right secret"), ("now_wrong_secret", "now, wrong secret"),
                       ("now_unknown_client", "now, unknown client")):
        b = out[key]
        print(f"{label:<24}{b['requests']:>10}{b['cpu_ms_per_request']:>20}{b['wall_ms_per_request']:>14}")
    print(f"CPU per token request, before / now: {out['ratio_cpu_before_over_now']} x; "
          f"old hashes replaced after their first token: {out['upgraded_after_first_token']}")
    for key, label in (("burst_before", "before"), ("burst_now", "now")):
        b = out[key]
        print(f"16 clients asking for tokens at once ({label}): {b['token_requests_per_s']} requests/s answered; "
              f"/healthz p50 {b['healthz_p50_ms']} ms, max {b['healthz_max_ms']} ms")
    print(json.dumps(out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=int, default=10, help="requests per case with Argon2id hashes")
    parser.add_argument("--new", type=int, default=200, help="requests per case with the fast hash")
    args = parser.parse_args()
    report(main(args.old, args.new))
