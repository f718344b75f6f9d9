"""Real parts for the notification tests: Redis as the broker, Celery worker *processes*
(`exchange worker`), an HTTP receiver and an SMTP server on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis

from dossiers.db import make_engine, make_session_factory
from dossiers.storage import store_from_url
from exchange.app import create_app
from exchange.settings import Settings
from tests.conftest import REDIS_URL, Stack, empty_tables, missing
from tests.support import ServerThread

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition", explain=None):
    """Poll until ``predicate()`` is truthy; on time-out fail with ``explain()``'s account, if given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f"\n{explain()}" if explain else ""))


# --- an HTTP receiver ----------------------------------------------------------------------------

@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers with the statuses in ``script`` (then 200), records every request."""

    script: list = field(default_factory=list)
    hold_first: float = 0.0
    requests: list[Received] = field(default_factory=list)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.hold_first and len(receiver.requests) == 1:
                    time.sleep(receiver.hold_first)
                step = receiver.script.pop(0) if receiver.script else 200
                status, headers = (step if isinstance(step, tuple) else (step, {}))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, topic: str) -> list[Received]:
        return [r for r in self.requests if r.json.get("type") == topic]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


# --- an SMTP server --------------------------------------------------------------------------

@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.url = f"smtp://127.0.0.1:{port}"
    yield handler
    controller.stop()


# --- Redis ---------------------------------------------------------------------------------------

@pytest.fixture
def broker_url():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        missing("Redis", str(exc))
    client.flushdb()
    client.close()
    return REDIS_URL


class RedisServer:
    """A Redis of the test's own, so the test can stop and restart the broker."""

    def __init__(self, tmp: Path):
        if not shutil.which("redis-server"):
            missing("redis-server", "not on PATH")
        self.port = free_port()
        self.tmp = tmp
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no", "--dir", str(self.tmp)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            wait_for(lambda: _ping(client), 10, what="redis-server")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _ping(client) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False


# --- the exchange with workers ---------------------------------------------------------------

class NotifyStack(Stack):
    workers: list

    def env(self) -> dict:
        s = self.settings
        return {**os.environ, "EXCHANGE_HOME": str(s.home), "EXCHANGE_DATABASE_URL": s.database_url,
                "EXCHANGE_STORAGE_URL": s.storage_url, "EXCHANGE_BROKER_URL": s.broker_url,
                "EXCHANGE_WEBHOOK_ALLOW_HOSTS": ",".join(s.webhook_allow_hosts),
                "EXCHANGE_WEBHOOK_RETRY_SCHEDULE": ",".join(map(str, s.webhook_retry_schedule)),
                "EXCHANGE_WEBHOOK_LEASE_SECONDS": str(s.webhook_lease_seconds),
                "EXCHANGE_SMTP_URL": s.smtp_url or "", "EXCHANGE_PUBLIC_URL": s.public_url,
                "EXCHANGE_OUTBOX_REPUBLISH_SECONDS": str(s.outbox_republish_seconds),
                "EXCHANGE_LOG_LEVEL": "WARNING"}

    def start_worker(self, beat: bool = True) -> subprocess.Popen:
        log = open(self.settings.home / f"worker-{len(self.workers)}.log", "ab")
        args = [sys.executable, "-m", "exchange.cli", "worker", "--pool=prefork", "--concurrency=1"]
        if beat:
            args.append("--beat")
        proc = subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT),
                                start_new_session=True)
        log.close()
        self.workers.append(proc)
        return proc

    def kill_workers(self, sig=signal.SIGKILL) -> None:
        for p in self.workers:
            if p.poll() is None:
                os.killpg(p.pid, sig)
                p.wait(20)
        self.workers.clear()

    def worker_log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.settings.home.glob("worker-*.log")))


@pytest.fixture
def make_notify_stack(workers_pg_url, tmp_path):
    pg_url = workers_pg_url
    stacks = []

    def make(broker: str, *, smtp_url: str | None = None, schedule=(1, 1, 2), lease: int = 60,
             republish: int = 300) -> NotifyStack:
        settings = Settings.from_env(
            {}, home=tmp_path, database_url=pg_url, storage_url=f"file://{tmp_path / 'blobs'}", broker_url=broker,
            public_url="http://exchange.test", webhook_allow_hosts=("127.0.0.0/8",),
            webhook_retry_schedule=tuple(schedule), webhook_lease_seconds=lease, smtp_url=smtp_url,
            outbox_republish_seconds=republish)
        engine = make_engine(pg_url)
        empty_tables(engine)
        sf = make_session_factory(engine)
        store = store_from_url(settings.storage_url)
        store.ensure_ready()
        server = ServerThread(create_app(settings, store=store, session_factory=sf)).start()
        stack = NotifyStack("pg-redis", settings, engine, sf, store, server)
        stack.workers = []
        stacks.append(stack)
        return stack

    yield make
    for s in stacks:
        s.kill_workers()
        s.server.stop()
        s.engine.dispose()
