"""The embedded worker survives: the file-system broker hands out no half-written message under a
burst, every event of a burst of 2,448 is processed by the same worker, a worker that dies is
restarted (and counted), and ``/readyz`` says so while no worker consumes, on the file-system
broker and on Redis."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from queue import Empty

import httpx
import pytest
from kombu import Connection
from sqlalchemy import func, select

from exchange.app import create_app
from tests.conftest import REDIS_URL, missing
from tests.support import ServerThread
from workers import heartbeat

ROOT = Path(__file__).resolve().parents[1]
BURST = 2448


def env_for(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(EXCHANGE_HOME=str(home), EXCHANGE_LOG_FORMAT="text",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), **extra)
    return env


def wait_for(predicate, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- the broker: a producer and a consumer in different processes -------------------------------

PRODUCER = textwrap.dedent("""
    import sys
    from kombu import Connection
    transport, folder, n = sys.argv[1] or None, sys.argv[2], int(sys.argv[3])
    opts = {"data_folder_in": folder + "/queue", "data_folder_out": folder + "/queue",
            "processed_folder": folder + "/processed", "store_processed": False}
    with Connection("filesystem://", transport=transport, transport_options=opts) as c:
        for i in range(n):
            c.default_channel._put("exchange", {"i": i, "body": "x" * 4000})
""")


def race(folder: Path, transport: str | None, n: int) -> tuple[list[int], list[str]]:
    """A producer process puts ``n`` messages while this process takes them as fast as it can
    (as a worker that has caught up does); returns what was taken and what failed."""
    for sub in ("queue", "processed"):
        (folder / sub).mkdir(parents=True)
    opts = {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"), "store_processed": False}
    got, errors = [], []
    producer = subprocess.Popen([sys.executable, "-c", PRODUCER, transport or "", str(folder), str(n)],
                                env=env_for(folder))
    try:
        with Connection("filesystem://", transport=transport, transport_options=opts) as c:
            channel = c.default_channel
            deadline = time.monotonic() + 120
            while len(got) + len(errors) < n and time.monotonic() < deadline:
                try:
                    message = channel._get("exchange")
                except Empty:
                    if producer.poll() is not None and not channel._size("exchange"):
                        break
                    continue
                except Exception as exc:  # noqa: BLE001 - what a worker would die of
                    errors.append(repr(exc))
                    continue
                assert message["body"] == "x" * 4000
                got.append(message["i"])
    finally:
        producer.wait(timeout=60)
    return got, errors


def test_the_file_system_broker_hands_out_whole_messages_only(tmp_path):
    got, errors = race(tmp_path / "ours", "workers.fsbroker:Transport", 3000)
    assert errors == [] and sorted(got) == list(range(3000))
    assert not (tmp_path / "ours" / "rejected").exists()


def _half_written(folder: Path) -> dict:
    """A queue folder holding one message file as kombu's producer leaves it between creating the
    file and writing into it (empty), and one whole message after it."""
    for sub in ("queue", "processed"):
        (folder / sub).mkdir(parents=True)
    opts = {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"), "store_processed": False}
    with Connection("filesystem://", transport_options=opts) as c:
        c.default_channel._put("exchange", {"i": 1, "body": "whole"})
    (folder / "queue" / f"0_{uuid.uuid4()}.exchange.msg").touch()  # sorts first: taken first
    return opts


def test_kombus_transport_dies_of_a_half_written_message_and_ours_sets_it_aside(tmp_path):
    """What the race above produces, made deterministic: kombu's own transport hands the empty
    file out and the consumer gets the JSON error a worker dies of; ours sets it aside and goes
    on to the whole message (so the race test above can fail)."""
    opts = _half_written(tmp_path / "kombu")
    with Connection("filesystem://", transport_options=opts) as c, pytest.raises(json.JSONDecodeError):
        c.default_channel._get("exchange")

    opts = _half_written(tmp_path / "ours")
    with Connection("filesystem://", transport="workers.fsbroker:Transport", transport_options=opts) as c:
        assert c.default_channel._get("exchange")["body"] == "whole"
    assert len(list((tmp_path / "ours" / "rejected").iterdir())) == 1


# --- exchange serve on the embedded default -----------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes(home: Path) -> dict[int, int]:
    """The embedded worker's processes (Celery, whose environment names this home): pid -> ppid.
    The worker and the scheduler process it forks for --beat."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
            state, ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if b"worker" in cmd and f"EXCHANGE_HOME={home}".encode() in env and state not in ("Z", "X"):
            found[int(proc.name)] = int(ppid)
    return found


def worker_pid(served) -> int | None:
    """The worker that ``exchange serve`` started (its child)."""
    mine = [pid for pid, ppid in processes(served.home).items() if ppid == served.pid]
    assert len(mine) <= 1, mine
    return mine[0] if mine else None


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.split(" ")[1])
    raise AssertionError(f"{name} is not in /metrics")


@dataclasses.dataclass
class Served:
    url: str
    home: Path
    log: Path
    pid: int


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("embedded")
    home = tmp / "home"
    port = free_port()
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)],
                                env=env_for(home), stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"exchange serve exited: {log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, 90, "exchange serve and its worker to be ready")
        yield Served(url, home, log, proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_readyz_names_the_worker_it_requires(served):
    body = httpx.get(f"{served.url}/readyz").json()
    assert body["status"] == "ok" and body["checks"]["worker"]["status"] == "ok"


def test_a_burst_of_events_is_all_processed_by_one_surviving_worker(served):
    from dossiers.db import make_engine, make_session_factory
    from dossiers.models import OutboxEvent

    url, home = served.url, served.home
    pid = wait_for(lambda: worker_pid(served), 30, "the embedded worker")
    engine = make_engine(f"sqlite:///{home / 'exchange.db'}")
    sf = make_session_factory(engine)
    ids = []
    try:
        # In waves, as traffic writes them: the relays publish while the worker consumes.
        for _wave in range(24):
            with sf.begin() as s:
                for _ in range(BURST // 24):
                    ids.append(str(uuid.uuid4()))
                    s.add(OutboxEvent(id=ids[-1], topic="dossier.accessed", payload={
                        "office": "SG", "dossier_id": str(uuid.uuid4()), "document_id": "sr-1",
                        "accessed_by": "MY", "at": "2026-01-01T00:00:00Z"}))
            time.sleep(0.2)
        assert len(ids) == BURST

        def processed():
            with sf() as s:
                return s.scalar(select(func.count()).select_from(OutboxEvent)
                                .where(OutboxEvent.id.in_(ids), OutboxEvent.processed_at.is_not(None)))

        wait_for(lambda: processed() == BURST, 600, f"the {BURST} events to be processed", every=1)
    finally:
        engine.dispose()
    assert worker_pid(served) == pid  # the same worker did it all
    assert metric(url, "exchange_embedded_worker_restarts_total") == 0
    assert "Unrecoverable error" not in (home / "worker.log").read_text(errors="replace")
    assert not (home / "broker" / "rejected").exists()


def test_a_killed_worker_is_restarted_and_readyz_says_so_meanwhile(served):
    url, log = served.url, served.log
    pid = wait_for(lambda: worker_pid(served), 30, "the embedded worker")
    group = set(wait_for(lambda: len(processes(served.home)) == 2 and processes(served.home), 30,
                         "the worker and its scheduler"))
    assert httpx.get(f"{url}/readyz").status_code == 200
    before = metric(url, "exchange_embedded_worker_restarts_total")

    os.kill(pid, signal.SIGKILL)
    down = wait_for(lambda: (r := httpx.get(f"{url}/readyz")).status_code == 503 and r, 15,
                    "/readyz to answer 503", every=0.05)
    problem = down.json()
    assert down.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "not-ready" and "worker" in problem["detail"]
    assert problem["checks"]["worker"]["status"] == "down"
    assert {k for k, c in problem["checks"].items() if c["status"] != "ok"} == {"worker"}

    wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 90, "the worker to be back")
    again = worker_pid(served)
    assert again not in (None, pid)
    assert not group & set(processes(served.home))  # the killed worker's scheduler went with it
    assert metric(url, "exchange_embedded_worker_restarts_total") == before + 1
    assert metric(url, "exchange_embedded_worker_up") == 1
    assert f"the embedded worker (pid {pid}) exited with status -9" in log.read_text(errors="replace")


# --- a Redis broker: the workers' heartbeats ----------------------------------------------------

@pytest.fixture
def redis_url():
    import redis

    url = REDIS_URL.rsplit("/", 1)[0] + "/13"  # not the workers tests' database: their workers beat too
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.delete(heartbeat.REDIS_KEY)
    except redis.RedisError as exc:
        missing("Redis", str(exc))
    yield url
    client.delete(heartbeat.REDIS_KEY)
    client.close()


def test_on_redis_readyz_follows_the_heartbeat_of_a_real_worker(pg_stack, redis_url, tmp_path):
    settings = pg_stack.settings.replace(broker_url=redis_url, ready_requires_worker=True)
    server = ServerThread(create_app(settings, store=pg_stack.store, session_factory=pg_stack.session_factory)).start()
    worker = None
    try:
        r = httpx.get(f"{server.url}/readyz")
        assert r.status_code == 503 and r.json()["checks"]["worker"]["status"] == "down"
        assert "no worker has consumed" in r.json()["checks"]["worker"]["error"]

        env = env_for(tmp_path / "home", EXCHANGE_BROKER_URL=redis_url, EXCHANGE_DATABASE_URL=settings.database_url,
                      EXCHANGE_STORAGE_URL=settings.storage_url)
        with open(tmp_path / "worker.log", "wb") as out:
            worker = subprocess.Popen([sys.executable, "-m", "exchange.cli", "worker", "--pool=solo",
                                       "--concurrency=1"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        wait_for(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 60, "the worker's heartbeat")
        assert httpx.get(f"{server.url}/readyz").json()["checks"]["worker"]["status"] == "ok"

        worker.terminate()  # a clean stop takes its heartbeat away at once
        worker.wait(timeout=30)
        r = httpx.get(f"{server.url}/readyz")
        assert r.status_code == 503 and "worker" in r.json()["detail"]
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        server.stop()


def test_a_heartbeat_goes_stale(redis_url, tmp_path):
    """A worker killed outright cannot take its beat away: it stops counting after a while."""
    now = time.time()
    heartbeat.beat(redis_url, "1@gone", now=now - heartbeat.STALE_AFTER - 5)
    with pytest.raises(RuntimeError, match="no worker heartbeat for 25 s"):
        heartbeat.require_fresh(redis_url, now=now)
    heartbeat.beat(redis_url, "2@alive", now=now - 1)
    assert heartbeat.require_fresh(redis_url, now=now) == pytest.approx(1, abs=0.01)

    folder = f"filesystem://{tmp_path / 'broker'}"
    with pytest.raises(RuntimeError, match="no worker has consumed"):
        heartbeat.require_fresh(folder)
    heartbeat.beat(folder, "3@host", now=now - 60)
    with pytest.raises(RuntimeError, match="no worker heartbeat for 60 s"):
        heartbeat.require_fresh(folder, now=now)
    with pytest.raises(heartbeat.NoHeartbeat):
        heartbeat.require_fresh("amqp://guest@localhost//")
    assert json.dumps(heartbeat.node_name(42)).startswith('"42@')
