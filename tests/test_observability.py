"""Observability: log lines as JSON naming the request they belong to, in the API and in the
worker that a request's event reaches; ``/metrics`` in the Prometheus text format with the
figures operations watch, parsed strictly."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from dossiers.db import utcnow
from dossiers.models import OutboxEvent, WebhookDelivery
from exchange.logs import JsonFormatter, TextFormatter
from tests.support import OfficeKit, deposit, manifest, new_key, sign, token
from tests.test_sharing import DOCS, make_world
from workers import logs as worker_logs

ROOT = Path(__file__).resolve().parents[1]


# --- log lines -----------------------------------------------------------------------------------

def capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"tests.observability.{uuid.uuid4().hex}")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.DEBUG
    return logger, stream


def test_a_json_line_holds_time_level_logger_message_request_id_and_exception():
    logger, stream = capture(JsonFormatter())
    with worker_logs.bound("req-123"):
        logger.info("deposit of %s\nreceived", "SG", extra={"office": "SG"})
        try:
            raise ValueError("storage went away")
        except ValueError:
            logger.exception("deposit failed")
    logger.warning("outside any request")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # a newline in a message stays inside its line
    first, failed, outside = (json.loads(line) for line in lines)
    assert first["message"] == "deposit of SG\nreceived" and first["office"] == "SG"
    assert (first["level"], first["logger"], first["request_id"]) == ("INFO", logger.name, "req-123")
    assert "exception" not in first
    at = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert first["time"].endswith("Z") and abs((datetime.now(UTC) - at).total_seconds()) < 60
    assert failed["level"] == "ERROR" and failed["request_id"] == "req-123"
    assert "Traceback" in failed["exception"] and "ValueError: storage went away" in failed["exception"]
    assert outside["request_id"] is None and outside["level"] == "WARNING"


def test_the_text_format_names_the_request_too():
    logger, stream = capture(TextFormatter())
    with worker_logs.bound("req-456"):
        logger.info("hello")
    logger.info("bye")
    first, second = stream.getvalue().splitlines()
    assert first.endswith(f"INFO {logger.name} [req-456] hello")
    assert second.endswith(f"INFO {logger.name} [-] bye")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.strip()]


@dataclass
class Served:
    url: str
    home: Path
    log: Path
    proc: subprocess.Popen
    kits: dict = field(default_factory=dict)


@pytest.fixture
def served(tmp_path):
    """``exchange serve`` on the embedded default (SQLite, local files, a file-system broker and
    a Celery worker beside the API), logging JSON, as a process of its own."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(EXCHANGE_HOME=str(home), EXCHANGE_LOG_FORMAT="json", EXCHANGE_LOG_LEVEL="INFO",
               EXCHANGE_PUBLIC_URL="http://exchange.test",
               # This checkout's code, run from the test's folder: the file-system broker keeps
               # its remote-control files in the working directory.
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        # A session of its own: the API and its worker are stopped together, as a group.
        proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"exchange serve exited: {log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, 60, "exchange serve")
        yield Served(url, home, log, proc)
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            proc.poll()
            time.sleep(0.1)
        else:
            continue
        break
    proc.wait(timeout=10)


def office_on(served: Served, code: str) -> OfficeKit:
    from dossiers import registry
    from dossiers.db import make_engine, make_session_factory

    engine = make_engine(f"sqlite:///{served.home / 'exchange.db'}")
    try:
        with make_session_factory(engine).begin() as s:
            admin, secret = registry.create_client(s, office_code=None, roles=["admin"], name="a", actor="test")
    finally:
        engine.dispose()
    headers = {"Authorization": f"Bearer {token(served.url, admin.client_id, secret)}"}
    with httpx.Client(base_url=served.url, headers=headers) as http:
        assert http.post("/v1/offices", json={"code": code, "name": f"Office {code}"}).status_code == 201
        key = new_key()
        r = http.post(f"/v1/offices/{code}/keys", json={"kid": key.kid, "alg": "ES256",
                                                         "public_key_pem": key.public().pem})
        assert r.status_code == 201, r.text
        c = http.post(f"/v1/offices/{code}/clients", json={"roles": ["depositor"]}).json()
    return OfficeKit(code, key, c["client_id"], c["client_secret"], served.url, ["depositor"])


def test_api_and_worker_log_lines_are_json_and_name_the_originating_request(served):
    sg = office_on(served, "SG")
    rid = f"obs-{uuid.uuid4().hex[:12]}"
    files = {"sr-1": b"%PDF search report for the log test"}
    r = httpx.post(f"{served.url}/v1/dossiers", headers={**sg.headers, "X-Request-Id": rid},
                   data={"manifest": sign(manifest("SG", files), sg.key)},
                   files={k: (f"{k}.pdf", v, "application/pdf") for k, v in files.items()}, timeout=60)
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == rid
    bad = httpx.get(f"{served.url}/healthz", headers={"X-Request-Id": "no spaces allowed"})
    assert bad.headers["x-request-id"] != "no spaces allowed" and re.fullmatch(r"[0-9a-f]{32}",
                                                                                 bad.headers["x-request-id"])

    # The API: every line is a JSON object; the deposit's access line names the request.
    def access_line():
        return [e for e in json_lines(served.log)
                if e["logger"] == "uvicorn.access" and "POST /v1/dossiers" in e["message"]]

    [line] = wait_for(access_line, 10, "the deposit's access line")
    assert line["request_id"] == rid and line["level"] == "INFO"
    assert {"time", "level", "logger", "message", "request_id"} <= set(line)

    # The worker: the event the deposit wrote was published with the request id in the task's
    # headers, and the worker's lines about that task name it.
    worker_log = served.home / "worker.log"

    def fan_out_done():
        return [e for e in json_lines(worker_log)
                if e["logger"] == "celery.app.trace" and "events.fan_out" in e["message"]
                and "succeeded" in e["message"] and e["request_id"] == rid]

    wait_for(fan_out_done, 60, f"the worker's line for the deposit's event (log: {worker_log})")
    others = [e for e in json_lines(worker_log) if e["logger"] == "celery.app.trace" and "outbox.relay" in e["message"]]
    assert all(e["request_id"] is None for e in others)  # a scheduled task names no request


# --- /metrics ------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)(?: -?\d+)?$")
_PAIR = re.compile(r'(?P<k>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<v>(?:[^"\\\n]|\\[\\"n])*)"(?:,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


@dataclass
class Exposition:
    types: dict[str, str]
    samples: dict[tuple[str, frozenset], float]

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> dict[frozenset, float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def parse_prometheus(text: str) -> Exposition:
    """A strict reader of the text exposition format 0.0.4: every line is a HELP, a TYPE or a
    sample of a declared family; label values are escaped; histograms are cumulative."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples: dict[tuple[str, frozenset], float] = {}
    for line in text[:-1].split("\n"):
        assert line.strip(), "no blank lines"
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, f"HELP twice for {name}"
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in _TYPES and name not in types, line
            own = {name, f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            assert not any(n in own for n, _ in samples), f"TYPE after samples: {line}"
            types[name] = kind
        elif line.startswith("#"):
            continue
        else:
            m = _SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            labels, rest = {}, m["labels"] or ""
            while rest:
                pair = _PAIR.match(rest)
                assert pair, f"bad labels in {line!r}"
                labels[pair["k"]] = pair["v"].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                rest = rest[pair.end():]
            name = m["name"]
            family = next((f for f in (name, re.sub(r"_(bucket|sum|count)$", "", name)) if f in types), None)
            assert family is not None, f"sample of an undeclared family: {line}"
            if types[family] != "histogram":
                assert family == name, line
            raw = m["value"]
            value = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(raw)
            samples[(name, frozenset(labels.items()))] = value if value is not None else float(raw)
    for name, kind in types.items():
        if kind != "histogram":
            continue
        groups: dict[frozenset, list[tuple[float, float]]] = {}
        for (n, labels), v in samples.items():
            if n == name + "_bucket":
                le = dict(labels)["le"]
                groups.setdefault(frozenset((k, x) for k, x in labels if k != "le"), []).append(
                    (math.inf if le == "+Inf" else float(le), v))
        for labels, buckets in groups.items():
            buckets.sort()
            assert buckets[-1][0] == math.inf, f"{name} has no +Inf bucket"
            assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), f"{name} buckets are not cumulative"
            assert samples[(name + "_count", labels)] == buckets[-1][1]
            assert (name + "_sum", labels) in samples
    return Exposition(types, samples)


def scrape(stack) -> Exposition:
    r = httpx.get(f"{stack.url}/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse_prometheus(r.text)


def test_the_parser_is_strict():
    good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"uote\"} 1\n"
    assert parse_prometheus(good).value("a_total", x='q"uote') == 1
    for bad in ("a_total 1\n", "# TYPE a_total counter\na_total{x=q} 1\n", "# TYPE a_total counter\na_total 1",
                "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 1\n"):
        with pytest.raises(AssertionError):
            parse_prometheus(bad)


def test_metrics_count_deposits_refusals_and_reads_and_read_the_database(stack):
    stack.server.config.app.state.relay.paused = True  # events wait in the outbox: the lag shows
    before = scrape(stack)
    assert before.types["exchange_deposits_total"] == "counter"
    assert before.types["exchange_http_request_duration_seconds"] == "histogram"
    assert before.types["exchange_outbox_oldest_unsent_age_seconds"] == "gauge"

    w = make_world(stack)  # MY and SG deposit; an ASPEC agreement among SG, MY and TH
    sg = w.offices["SG"]
    files = {"sr-1": b"%PDF another search report by SG"}
    again = sign(manifest("SG", files, number="10202305555X"), sg.key)
    assert deposit(sg, again, files).status_code == 201
    assert deposit(sg, again, files).status_code == 200  # the same manifest: the first receipt
    tampered = {"sr-1": files["sr-1"].replace(b"another", b"ANOTHER")}
    r = deposit(sg, sign(manifest("SG", files, number="10202306666X"), sg.key), tampered)
    assert r.status_code == 422 and r.json()["code"] == "document-digest-mismatch"
    assert w.get("SG", f"/v1/dossiers/{w.my_dossier}").status_code == 200  # a partner's read
    assert w.get("TH", f"/v1/dossiers/{w.my_dossier}").status_code == 404  # no corresponding application
    assert w.get("JP", f"/v1/dossiers/{uuid.uuid4()}").status_code == 404

    after = scrape(stack)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    my_bytes = sum(len(v) for v in DOCS.values())
    sg_bytes = len(b"%PDF SG search report") + len(files["sr-1"])
    assert delta("exchange_deposits_total", office="MY", result="created") == 1
    assert delta("exchange_deposits_total", office="SG", result="created") == 2
    assert delta("exchange_deposits_total", office="SG", result="already-deposited") == 1
    assert delta("exchange_deposit_bytes_total", office="MY") == my_bytes
    assert delta("exchange_deposit_bytes_total", office="SG") == sg_bytes
    assert delta("exchange_deposit_refusals_total", code="document-digest-mismatch") == 1
    assert delta("exchange_access_decisions_total", outcome="granted", rule="agreement") == 1
    assert delta("exchange_access_decisions_total", outcome="denied", rule="deny") == 1
    assert delta("exchange_access_decisions_total", outcome="denied", rule="unknown-dossier") == 1
    route = "/v1/dossiers/{dossier_id}"
    assert delta("exchange_http_requests_total", method="POST", route="/v1/dossiers", status="201") == 3
    assert delta("exchange_http_requests_total", method="POST", route="/v1/dossiers", status="200") == 1
    assert delta("exchange_http_requests_total", method="POST", route="/v1/dossiers", status="422") == 1
    assert delta("exchange_http_requests_total", method="GET", route=route, status="200") == 1
    assert delta("exchange_http_requests_total", method="GET", route=route, status="404") == 2
    assert delta("exchange_http_request_duration_seconds_count", method="POST", route="/v1/dossiers") == 5
    assert delta("exchange_http_request_duration_seconds_sum", method="POST", route="/v1/dossiers") > 0
    assert not any("dossier_id" in dict(labels) or w.my_dossier in str(labels)
                   for (_, labels) in after.samples)  # ids never become labels

    # Read from the database at scrape time.
    assert after.value("exchange_metrics_database_up") == 1
    with stack.engine.connect() as c:
        import sqlalchemy as sa

        waiting = c.execute(sa.text("SELECT count(*) FROM outbox_event WHERE sent_at IS NULL")).scalar_one()
    assert waiting >= 3 and after.value("exchange_outbox_unsent_events") == waiting
    assert 0 < after.value("exchange_outbox_oldest_unsent_age_seconds") < 600
    assert after.value("exchange_outbox_dead_events") == 0
    assert after.series("exchange_blobs") == {frozenset({("integrity", s)}): n for s, n in
                                              (("unverified", 5), ("ok", 0), ("corrupt", 0), ("missing", 0))}
    assert after.value("exchange_blob_last_verified_timestamp_seconds") == 0
    assert {dict(k)["status"]: v for k, v in after.series("exchange_webhook_deliveries").items()} == {
        "pending": 0, "delivered": 0, "dead": 0}

    # A dead letter of each kind, and a scrub: the next scrape shows them.
    hook = httpx.post(f"{stack.url}/v1/offices/SG/webhooks", headers=sg.headers,
                      json={"url": "https://93.184.216.34/hooks"})
    assert hook.status_code == 201, hook.text
    now = utcnow()
    with stack.session_factory.begin() as s:
        s.add(WebhookDelivery(id=f"msg_{uuid.uuid4().hex}", subscription_id=hook.json()["id"], office_code="SG",
                              event_id=str(uuid.uuid4()), topic="dossier.deposited", payload={}, status="dead",
                              attempts=10, next_attempt_at=now, created_at=now, dead_at=now))
        s.add(OutboxEvent(id=str(uuid.uuid4()), topic="dossier.deposited", payload={}, attempts=20, dead_at=now))
    from dossiers.scrub import scrub

    assert scrub(stack.session_factory, stack.store).ok == 5
    later = scrape(stack)
    assert later.value("exchange_webhook_deliveries", status="dead") == 1
    assert later.value("exchange_outbox_dead_events") == 1
    assert later.value("exchange_outbox_unsent_events") == waiting  # the dead one is not waiting
    assert later.value("exchange_blobs", integrity="ok") == 5
    assert later.value("exchange_blobs", integrity="unverified") == 0
    assert abs(later.value("exchange_blob_last_verified_timestamp_seconds") - time.time()) < 120

    # The relay publishes; this stack runs no worker, so the tasks wait in the broker's queue.
    assert later.value("exchange_metrics_broker_up") == 1
    queued = later.value("exchange_broker_queue_messages")
    stack.server.config.app.state.relay.paused = False
    stack.server.config.app.state.relay._wake.set()
    deadline = time.monotonic() + 30
    while (final := scrape(stack)).value("exchange_outbox_unsent_events") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert final.value("exchange_outbox_unsent_events") == 0
    assert final.value("exchange_broker_queue_messages") == queued + waiting


def test_a_broker_that_does_not_answer_is_a_zero_not_a_failed_scrape():
    from exchange.metrics import broker_metrics, exposition

    down = {m.name: m for m in broker_metrics(f"redis://127.0.0.1:{free_port()}/0")}
    assert "exchange_broker_queue_messages" not in down
    assert parse_prometheus(exposition(down.values())).samples == {("exchange_metrics_broker_up", frozenset()): 0}


def _worker_pids(home: Path) -> list[int]:
    """The Celery workers (any process whose environment names this exchange's home)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in cmd and f"EXCHANGE_HOME={home}".encode() in env:
            pids.append(int(proc.name))
    return pids


def test_sigterm_to_serve_stops_its_embedded_worker(served):
    """An init system or ``docker stop`` signals the server process only: its worker must not
    be left running (it would keep the file-system broker's queue and the SQLite file busy)."""
    workers = wait_for(lambda: _worker_pids(served.home), 30, "the embedded worker")
    served.proc.send_signal(signal.SIGTERM)
    served.proc.wait(timeout=40)
    wait_for(lambda: not [p for p in workers if _running(p)], 30, "the embedded worker to stop")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only its parent's wait is missing
