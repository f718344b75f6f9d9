"""Slow clients are cut: request headers trickled a byte at a time (``exchange serve``'s HTTP
protocol), request bodies trickled or stalled (the ASGI guard), with a 408 problem and a closed
connection, and a deposit cut this way keeps nothing. A large body sent at a normal pace is
never cut. Raw sockets against real servers: ``exchange serve`` as a process of its own, and the
stacks' uvicorn servers."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import manifest, sign

ROOT = Path(__file__).resolve().parents[1]
HEADER_TIMEOUT = 2.0
BODY_IDLE = 1.5


# --- helpers ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_open: list[socket.socket] = []


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _open.append(sock)
    return sock


@pytest.fixture(autouse=True)
def _close_sockets():
    yield
    while _open:
        _open.pop().close()


def read_until_closed(sock: socket.socket, limit: float = 30) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(limit)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return data
        if not chunk:
            return data
        data += chunk


def trickle(sock: socket.socket, data: bytes, every: float, deadline: float) -> float | None:
    """Send ``data`` a byte every ``every`` seconds until the server closes the connection (or
    answers); return the time that happened, or None if it never did before ``deadline``."""
    sock.setblocking(False)
    try:
        for byte in data:
            if time.monotonic() > deadline:
                return None
            try:
                sock.recv(1, socket.MSG_PEEK)
                return time.monotonic()  # the server answered, or closed (b"")
            except BlockingIOError:
                pass
            except OSError:
                return time.monotonic()
            try:
                sock.send(bytes([byte]))
            except OSError:
                return time.monotonic()
            time.sleep(every)
        return None
    finally:
        sock.setblocking(True)


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def assert_408_problem(response: bytes) -> dict:
    status, headers, body = parse(response)
    assert status == 408, response[:300]
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 408 and problem["code"] == "request-timeout", problem
    return problem


# --- exchange serve: the header limit, and the body limit where no route answers ----------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeouts")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(EXCHANGE_HOME=str(tmp / "home"), EXCHANGE_LOG_FORMAT="text",
               EXCHANGE_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT), EXCHANGE_BODY_IDLE_TIMEOUT_SECONDS=str(BODY_IDLE),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    port = free_port()
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"exchange serve exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "exchange serve did not start"
        time.sleep(0.2)
    yield url
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)


def test_headers_trickled_a_byte_at_a_time_are_cut_with_408(served):
    sock = connect(served)
    start = time.monotonic()
    request = b"GET /healthz HTTP/1.1\r\nHost: exchange.test\r\nUser-Agent: " + b"s" * 200 + b"\r\n\r\n"
    ended = trickle(sock, request, every=0.1, deadline=start + 4 * HEADER_TIMEOUT)
    assert ended is not None, "the server kept waiting for the headers"
    response = read_until_closed(sock)
    elapsed = time.monotonic() - start
    assert HEADER_TIMEOUT - 0.2 <= elapsed <= HEADER_TIMEOUT + 1.5, elapsed
    problem = assert_408_problem(response)
    assert f"within {HEADER_TIMEOUT:g} s" in problem["detail"]


def test_a_connection_that_sends_nothing_is_closed(served):
    sock = connect(served)
    start = time.monotonic()
    assert read_until_closed(sock) == b""
    assert time.monotonic() - start <= HEADER_TIMEOUT + 1.5


def test_the_next_request_on_a_kept_alive_connection_has_its_own_time(served):
    """A connection reused after its first request gets the full limit again for the next one,
    and a request sent at once is answered however long the connection lived."""
    sock = connect(served)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: exchange.test\r\n\r\n")
    time.sleep(HEADER_TIMEOUT * 1.25)  # longer than the limit, shorter than the keep-alive time (5 s)
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: exchange.test\r\nConnection: close\r\n\r\n")
    assert read_until_closed(sock).startswith(b"HTTP/1.1 200")


def test_a_form_body_trickled_to_the_token_endpoint_is_cut_with_408(served):
    """The token endpoint's form body is read before any route runs (the input guard): the cut
    is answered there too, as a problem, not a 500."""
    body = b"grant_type=client_credentials&client_id=someone&client_secret=" + b"x" * 400
    sock = connect(served)
    sock.sendall(b"POST /oauth/token HTTP/1.1\r\nHost: exchange.test\r\nContent-Type: application/x-www-form-urlencoded"
                 b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
    start = time.monotonic()
    ended = trickle(sock, body[10:], every=0.25, deadline=start + 10 * BODY_IDLE)
    assert ended is not None, "the server kept reading the trickled body"
    response = read_until_closed(sock)
    assert time.monotonic() - start <= BODY_IDLE + 2.0
    problem = assert_408_problem(response)
    assert "too slowly" in problem["detail"]


# --- deposits on both stacks: the body limits ---------------------------------------------------

@contextmanager
def body_limits(stack, idle: float, rate: int):
    """The stack's app with other body limits (read from its settings at each request)."""
    state = stack.server.config.app.state
    before = state.settings
    state.settings = before.replace(body_idle_timeout_seconds=idle, body_min_rate_bytes=rate)
    try:
        yield stack
    finally:
        state.settings = before


@pytest.fixture
def limits(stack):
    with body_limits(stack, BODY_IDLE, 1000):
        yield stack


def multipart(token: str, files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = f"b-{uuid.uuid4().hex}"
    out = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{token}\r\n".encode()]
    for name, data in files.items():
        out.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.pdf\"\r\n"
                   f"Content-Type: application/pdf\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), boundary


def deposit_head(kit, url: str, body: bytes, boundary: str) -> bytes:
    host = url.removeprefix("http://")
    return (f"POST /v1/dossiers HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {kit.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n").encode()


FILES = {"sr-1": b"%PDF-1.7 search report " * 20000, "claims-1": b"%PDF-1.7 claims examined " * 400}


def assert_nothing_kept(stack) -> None:
    assert stack.count("dossier") == 0 and stack.count("blob") == 0 and stack.count("document") == 0
    assert stack.stored_objects() == []


def test_a_deposit_trickled_after_its_first_document_is_cut_and_keeps_nothing(limits):
    stack = limits
    sg = stack.office("SG")
    body, boundary = multipart(sign(manifest("SG", FILES), sg.key), FILES)
    # The manifest and the whole first document at once (stored by then), then a byte every 0.2 s:
    # under the idle limit each time, far under the minimum rate.
    cut = body.index(b'name="claims-1"') + 200
    sock = connect(stack.url)
    sock.sendall(deposit_head(sg, stack.url, body, boundary) + body[:cut])
    start = time.monotonic()
    time.sleep(0.5)
    assert stack.stored_objects(), "the first document should be in storage before the cut"
    ended = trickle(sock, body[cut:], every=0.2, deadline=start + 10 * BODY_IDLE)
    assert ended is not None, "the server kept reading the trickled deposit"
    response = read_until_closed(sock)
    assert time.monotonic() - start <= BODY_IDLE + 2.5
    problem = assert_408_problem(response)
    assert "too slowly" in problem["detail"] and problem["instance"] == "/v1/dossiers"
    assert_nothing_kept(stack)
    with stack.engine.connect() as c:
        refusals = c.exec_driver_sql("SELECT outcome FROM audit_entry WHERE action = 'dossier.deposit'").scalars().all()
    assert refusals == ["refused"]

    # The same deposit sent at a normal pace goes through.
    r = httpx.post(f"{stack.url}/v1/dossiers", headers={**sg.headers, "Content-Type": f"multipart/form-data; "
                   f"boundary={boundary}"}, content=body, timeout=60)
    assert r.status_code == 201, r.text


def test_a_deposit_that_stalls_is_cut_after_the_idle_limit(limits):
    stack = limits
    sg = stack.office("SG")
    body, boundary = multipart(sign(manifest("SG", FILES), sg.key), FILES)
    sock = connect(stack.url)
    sock.sendall(deposit_head(sg, stack.url, body, boundary) + body[:len(body) // 2])
    start = time.monotonic()
    response = read_until_closed(sock)
    elapsed = time.monotonic() - start
    assert BODY_IDLE - 0.2 <= elapsed <= BODY_IDLE + 2.0, elapsed
    problem = assert_408_problem(response)
    assert f"no part of the request body arrived for {BODY_IDLE:g} s" == problem["detail"]
    assert_nothing_kept(stack)


def test_a_large_deposit_sent_at_a_normal_pace_is_not_cut(sqlite_local_stack):
    """1 GiB under limits far tighter than the defaults (5 s idle, at least 1 MiB a second):
    the allowance grows with what arrived, so a body that keeps coming is never cut, and time
    spent storing it (not waiting for the client) does not count."""
    stack = sqlite_local_stack
    stack.reset()
    sg = stack.office("SG")
    size, chunk = 1024 * 1024 * 1024, b"%PDF" + os.urandom(1024 * 1024 - 4)
    digest = hashlib.sha256()
    for _ in range(size // len(chunk)):
        digest.update(chunk)
    m = manifest("SG", {"sr-1": b""})
    m["documents"][0].update(sha256=digest.hexdigest(), size=size)
    boundary = f"b-{uuid.uuid4().hex}"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{sign(m, sg.key)}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"sr-1\"; filename=\"sr-1.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def stream():
        yield head
        for _ in range(size // len(chunk)):
            yield chunk
        yield tail

    with body_limits(stack, 5.0, 1024 * 1024):
        r = httpx.post(f"{stack.url}/v1/dossiers", headers={**sg.headers, "Content-Type": f"multipart/form-data; "
                       f"boundary={boundary}", "Content-Length": str(len(head) + size + len(tail))},
                       content=stream(), timeout=300)
    assert r.status_code == 201, r.text
    assert stack.count("blob") == 1
