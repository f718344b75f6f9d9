"""Test support: real servers (uvicorn, moto's S3, a cuttable TCP proxy), and helpers that
build offices, keys and signed manifests through the public API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import uvicorn

from crypto import jws
from crypto.keys import PrivateKey, generate_private_key

IN_CI = os.environ.get("CI", "").lower() == "true"


class ServerThread:
    """A real uvicorn server on a free loopback port, in a background thread."""

    def __init__(self, app):
        self.config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                     timeout_keep_alive=5)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class TcpProxy:
    """A loopback TCP proxy in front of a real server that a test can cut mid-transfer."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.bytes_forwarded = 0
        self.cut_after: int | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while self.up:
                data = src.recv(65536)
                if not data:
                    break
                if upstream:
                    self.bytes_forwarded += len(data)
                    if self.cut_after is not None and self.bytes_forwarded > self.cut_after:
                        self.cut()
                        break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Refuse new connections and reset the open ones (storage 'goes down')."""
        self.up = False
        with self._lock:
            for c in self._conns:
                for step in (lambda: c.shutdown(socket.SHUT_RDWR), c.close):  # noqa: B023 - called at once
                    try:
                        step()
                    except OSError:
                        pass
            self._conns.clear()

    def restore(self) -> None:
        self.up = True
        self.cut_after = None

    def close(self) -> None:
        self.cut()
        self.listener.close()


# --- API helpers ----------------------------------------------------------------------------

def token(base_url: str, client_id: str, secret: str) -> str:
    r = httpx.post(f"{base_url}/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                     "client_secret": secret})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@dataclass
class OfficeKit:
    code: str
    key: PrivateKey
    client_id: str
    client_secret: str
    base_url: str
    roles: list[str] = field(default_factory=list)
    _token: str | None = None

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = token(self.base_url, self.client_id, self.client_secret)
        return self._token

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=60)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(office: str, docs: dict[str, bytes], *, number: str = "10202301234X", types: dict | None = None,
             signed_at: datetime | None = None, **extra) -> dict:
    types = types or {}
    m = {
        "office": office,
        "application": {
            "number": number, "filing_date": "2023-03-01", "title": "Apparatus for sharing search results",
            "ipc": ["H04L 9/32"],
            "priorities": [{"office": "MY", "number": "PI2022001234", "date": "2022-03-02"}],
            "pct": None,
            "publication": {"number": f"{office}{number}A", "date": "2024-09-01"},
        },
        "documents": [
            {"id": doc_id, "type": types.get(doc_id, "SR"), "title": f"Document {doc_id}", "language": "en",
             "issued_on": "2023-09-10", "media_type": "application/pdf", "sha256": sha(data), "size": len(data)}
            for doc_id, data in docs.items()
        ],
        "citations": [{"cited": "US2019123456A1", "category": "X", "claims": [1, 2, 3]}],
        "signed_at": (signed_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    }
    m.update(extra)
    return m


def sign(m: dict | bytes, key: PrivateKey, headers: dict | None = None) -> str:
    payload = m if isinstance(m, bytes) else json.dumps(m, separators=(",", ":")).encode()
    return jws.sign(payload, key, headers=headers)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_hs256(m: dict, secret: bytes, kid: str) -> str:
    """A token signed with HMAC-SHA256 keyed by ``secret`` (e.g. the office's public key)."""
    header = b64u(json.dumps({"alg": "HS256", "kid": kid}).encode())
    payload = b64u(json.dumps(m).encode())
    sig = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64u(sig)}"


def unsigned(m: dict, kid: str) -> str:
    header = b64u(json.dumps({"alg": "none", "kid": kid}).encode())
    return f"{header}.{b64u(json.dumps(m).encode())}."


def deposit(kit: OfficeKit, token_text: str, files: dict[str, bytes], **kw) -> httpx.Response:
    """POST a deposit as httpx builds multipart: the manifest field first, then the files."""
    return httpx.post(f"{kit.base_url}/v1/dossiers", headers=kit.headers, data={"manifest": token_text},
                      files={k: (f"{k}.pdf", v, "application/pdf") for k, v in files.items()}, timeout=60, **kw)


def new_key(alg: str = "ES256") -> PrivateKey:
    return generate_private_key(alg)
