"""``exchange serve --workers 2`` as a real process tree: /metrics reports one set of figures
for the API processes (prometheus-client's multiprocess mode under EXCHANGE_HOME/metrics),
whichever process answers the scrape."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.test_observability import _stop_group, free_port, parse_prometheus, wait_for

ROOT = Path(__file__).resolve().parents[1]


def test_serve_with_two_workers_reports_one_sum_of_their_counters(tmp_path):
    home = tmp_path / "home"
    stale = home / "metrics"
    stale.mkdir(parents=True)
    (stale / "counter_999999.db").write_bytes(b"left by a former run")  # cleaned at start
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXCHANGE_", "PROMETHEUS_"))}
    env.update(EXCHANGE_HOME=str(home), EXCHANGE_LOG_FORMAT="text", EXCHANGE_LOG_LEVEL="WARNING",
               EXCHANGE_READY_REQUIRES_WORKER="false",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port), "--workers", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    healthz = 0

    def up() -> bool:
        nonlocal healthz
        if proc.poll() is not None:
            raise AssertionError(f"exchange serve exited: {log.read_text()[-3000:]}")
        try:
            r = httpx.get(f"{url}/healthz", timeout=2)
        except httpx.TransportError:
            return False
        healthz += 1
        return r.status_code == 200

    try:
        wait_for(up, 90, "exchange serve --workers 2")
        # Both API processes up: each has written its figures (every request is a new connection,
        # which either process may accept).
        pids: set[str] = set()
        misses = 0
        for _ in range(200):
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            healthz += 1
            assert httpx.get(f"{url}/v1/nothing-here", timeout=5).status_code == 404
            misses += 1
            pids = {m[1] for f in (home / "metrics").iterdir() if (m := re.match(r"counter_(\d+)\.db$", f.name))}
            if len(pids) >= 2 and healthz >= 20:
                break
        assert len(pids) >= 2, f"one API process answered everything: {pids}"
        assert "999999" not in pids
        figures = []
        for _ in range(8):
            r = httpx.get(f"{url}/metrics", timeout=10)
            assert r.status_code == 200 and r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
            figures.append(parse_prometheus(r.text))
        for seen in figures:
            # The sum over both processes, not one process's share, at every scrape.
            assert seen.value("exchange_http_requests_total", method="GET", route="/healthz", status="200") == healthz
            assert seen.value("exchange_http_request_duration_seconds_count", method="GET", route="/healthz") == healthz
            assert seen.value("exchange_http_requests_total", method="GET", route="unmatched", status="404") == misses
            assert seen.value("exchange_metrics_database_up") == 1
            assert seen.types["exchange_deposits_total"] == "counter"
            assert not any("pid" in dict(labels) for (_, labels) in seen.samples)
        # Each scrape counted once, by whichever process answered it.
        scrapes = [seen.value("exchange_http_requests_total", method="GET", route="/metrics", status="200")
                   for seen in figures]
        assert scrapes == sorted(scrapes) and scrapes[-1] - scrapes[0] == len(figures) - 1
    finally:
        _stop_group(proc)
