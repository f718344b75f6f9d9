"""The office side: build and sign a manifest from a folder, deposit it, fetch a dossier
back and verify it offline. Used by ``exchange office …`` and ``exchange verify``.

The client streams: documents are hashed and uploaded chunk by chunk, never loaded
whole into memory.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from crypto import jws, receipts
from crypto.errors import CryptoError
from crypto.keys import PrivateKey, PublicKey, alg_of_private_key, public_pem_from_jwk, public_pem_of, thumbprint

CHUNK = 1024 * 1024
METADATA_FILE = "dossier.json"
MEDIA_TYPES = {".pdf": "application/pdf", ".xml": "application/xml", ".txt": "text/plain",
               ".tif": "image/tiff", ".tiff": "image/tiff", ".png": "image/png", ".jpg": "image/jpeg",
               ".jpeg": "image/jpeg", ".zip": "application/zip"}
EXTENSIONS = {"application/pdf": ".pdf", "application/xml": ".xml", "text/xml": ".xml", "text/plain": ".txt",
              "image/tiff": ".tif", "image/png": ".png", "image/jpeg": ".jpg", "application/zip": ".zip"}


class OfficeClientError(Exception):
    """A clear, user-facing failure of the office client."""


def file_digest(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


@dataclass
class PreparedDossier:
    manifest: dict
    files: dict[str, Path]

    def sign(self, key: PrivateKey) -> str:
        payload = json.dumps(self.manifest, ensure_ascii=False, separators=(",", ":")).encode()
        return jws.sign(payload, key)


def prepare_folder(folder: Path, *, signed_at: datetime | None = None) -> PreparedDossier:
    """Read ``folder/dossier.json`` and hash the documents it lists into a manifest."""
    meta_path = folder / METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OfficeClientError(f"{meta_path} is missing: it lists the office, application and documents") from None
    except ValueError as exc:
        raise OfficeClientError(f"{meta_path} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("documents"), list) or not meta["documents"]:
        raise OfficeClientError(f"{meta_path} needs a non-empty 'documents' list")
    documents, files = [], {}
    for entry in meta["documents"]:
        entry = dict(entry)
        name = entry.pop("file", None)
        if not name:
            raise OfficeClientError("every document in dossier.json needs a 'file'")
        path = (folder / name).resolve()
        if not path.is_file():
            raise OfficeClientError(f"document file {path} does not exist")
        doc_id = entry.get("id") or re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:64]
        sha, size = file_digest(path)
        doc = {"id": doc_id, **{k: v for k, v in entry.items() if k != "id"}}
        doc.setdefault("media_type", MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
                       or "application/octet-stream")
        doc.update({"sha256": sha, "size": size})
        documents.append(doc)
        files[doc_id] = path
    manifest = {
        "office": meta.get("office"),
        "application": meta.get("application"),
        "documents": documents,
        "citations": meta.get("citations", []),
        "signed_at": (signed_at or datetime.now(UTC)).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    return PreparedDossier(manifest, files)


def reusable_signature(folder: Path, prepared: PreparedDossier) -> str | None:
    """The manifest signed on an earlier run, if it still describes the folder exactly, so that
    a retried deposit is the same manifest (the exchange then answers with the first receipt)."""
    path = folder / "manifest.jws"
    if not path.exists():
        return None
    try:
        _, payload = jws.split_compact(path.read_text())
        earlier = json.loads(payload)
    except (CryptoError, ValueError):
        return None
    same = {k: v for k, v in earlier.items() if k != "signed_at"} == \
        {k: v for k, v in prepared.manifest.items() if k != "signed_at"}
    return path.read_text().strip() if same else None


def load_private_key(path: Path, kid: str | None = None) -> PrivateKey:
    """A PEM private key; its ``kid`` defaults to the RFC 7638 thumbprint, as ``keygen`` names it."""
    try:
        pem = path.read_text()
    except OSError as exc:
        raise OfficeClientError(f"cannot read the private key {path}: {exc}") from None
    try:
        alg = alg_of_private_key(pem)
        return PrivateKey(kid or thumbprint(public_pem_of(pem), alg), alg, pem)
    except CryptoError as exc:
        raise OfficeClientError(str(exc)) from None


# --- multipart body, streamed with a known length -------------------------------------------

def multipart_body(manifest_jws: str, files: dict[str, Path], *, progress: Callable[[int], None] | None = None,
                   boundary: str | None = None) -> tuple[str, int, Iterator[bytes]]:
    boundary = boundary or "exchange-" + secrets.token_hex(16)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n"
            f"Content-Type: application/jose\r\n\r\n").encode() + manifest_jws.encode() + b"\r\n"
    heads = {doc_id: (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{doc_id}\"; "
                      f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
             for doc_id, path in files.items()}
    tail = f"--{boundary}--\r\n".encode()
    length = len(head) + len(tail) + sum(len(h) + os.path.getsize(files[i]) + 2 for i, h in heads.items())

    def gen() -> Iterator[bytes]:
        yield head
        for doc_id, path in files.items():
            yield heads[doc_id]
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    if progress:
                        progress(len(chunk))
                    yield chunk
            yield b"\r\n"
        yield tail

    return f"multipart/form-data; boundary={boundary}", length, gen()


# --- talking to the exchange ----------------------------------------------------------------

@dataclass
class ExchangeClient:
    base_url: str
    client_id: str
    client_secret: str
    timeout: float = 600.0
    _token: str | None = field(default=None, repr=False)

    def _http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url.rstrip("/"), timeout=self.timeout)

    def token(self) -> str:
        if self._token is None:
            with self._http() as http:
                r = http.post("/oauth/token", data={"grant_type": "client_credentials",
                                                     "client_id": self.client_id,
                                                     "client_secret": self.client_secret})
            _raise_for(r, "getting an access token")
            self._token = r.json()["access_token"]
        return self._token

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token()}"}

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        with self._http() as http:
            r = http.request(method, path, headers={**self._auth(), **kw.pop("headers", {})}, **kw)
        _raise_for(r, f"{method} {path}")
        return r

    def deposit(self, manifest_jws: str, files: dict[str, Path], progress: Callable[[int], None] | None = None) -> dict:
        ctype, length, body = multipart_body(manifest_jws, files, progress=progress)
        with self._http() as http:
            r = http.post("/v1/dossiers", content=body,
                          headers={**self._auth(), "Content-Type": ctype, "Content-Length": str(length)})
        _raise_for(r, "depositing")
        out = r.json()
        out["status"] = r.status_code
        return out

    def fetch(self, dossier_id: str, out: Path) -> Path:
        """Download a dossier with everything needed to verify it offline."""
        out.mkdir(parents=True, exist_ok=True)
        dossier = self.request("GET", f"/v1/dossiers/{dossier_id}").json()
        (out / "dossier.json").write_text(json.dumps(dossier, indent=2, ensure_ascii=False))
        (out / "manifest.jws").write_text(self.request("GET", f"/v1/dossiers/{dossier_id}/signature").text)
        (out / "receipt.jws").write_text(dossier["receipt"])
        docs = out / "documents"
        docs.mkdir(exist_ok=True)
        with self._http() as http:
            for d in dossier["documents"]:
                target = docs / (d["id"] + EXTENSIONS.get(d["media_type"], ""))
                with http.stream("GET", d["href"], headers=self._auth()) as r:
                    if r.status_code != 200:
                        r.read()
                        _raise_for(r, f"downloading {d['id']}")
                    with open(target, "wb") as f:
                        for chunk in r.iter_bytes(CHUNK):
                            f.write(chunk)
        keys = out / "keys"
        keys.mkdir(exist_ok=True)
        office = dossier["office"]
        (keys / f"office-{office}.json").write_text(
            json.dumps(self.request("GET", f"/v1/offices/{office}/keys").json(), indent=2))
        with self._http() as http:
            jwks = http.get("/.well-known/jwks.json")
        _raise_for(jwks, "reading the exchange's keys")
        (keys / "exchange-jwks.json").write_text(jwks.text)
        return out


def _raise_for(r: httpx.Response, what: str) -> None:
    if r.status_code < 400:
        return
    try:
        body = r.json()
        msg = body.get("detail") or body.get("error_description") or body.get("title")
        code = body.get("code") or body.get("error")
    except ValueError:
        msg, code = r.text[:300], None
    raise OfficeClientError(f"{what} failed: HTTP {r.status_code} {code or ''}: {msg}".replace("  ", " "))


# --- offline verification -------------------------------------------------------------------

@dataclass
class Verification:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def check(self, ok: bool, text: str) -> None:
        self.lines.append(("OK    " if ok else "FAIL  ") + text)
        self.ok = self.ok and ok


def _parse_time(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None


def verify_folder(folder: Path, *, office_keys: list[dict] | None = None,
                  exchange_jwks: dict | None = None) -> Verification:
    """Check a fetched dossier offline: the depositor's signature against the office's key
    valid at ``signed_at``, every document's digest and size, and the exchange's receipt."""
    v = Verification()
    token = (folder / "manifest.jws").read_text().strip()
    header, payload = jws.split_compact(token)
    manifest = json.loads(payload)
    office = manifest.get("office")
    if office_keys is None:
        office_keys = json.loads((folder / "keys" / f"office-{office}.json").read_text())
    if exchange_jwks is None:
        exchange_jwks = json.loads((folder / "keys" / "exchange-jwks.json").read_text())
    record = next((k for k in office_keys if k.get("kid") == header.get("kid")), None)
    if record is None:
        v.check(False, f"office {office} has no key {header.get('kid')!r}")
        return v
    try:
        verified = jws.verify(token, PublicKey(record["kid"], record["alg"], record["public_key_pem"]),
                              algorithms=[record["alg"]])
        v.check(verified == payload, f"manifest signed by {office} with key {record['kid']} ({record['alg']})")
    except CryptoError as exc:
        v.check(False, f"manifest signature: {exc}")
        return v
    signed_at = _parse_time(manifest.get("signed_at"))
    revoked = _parse_time(record.get("revoked_at"))
    nb, na = _parse_time(record.get("not_before")), _parse_time(record.get("not_after"))
    valid = signed_at is not None and ((revoked is None or signed_at < revoked) and (nb is None or signed_at >= nb)
                                       and (na is None or signed_at < na))
    v.check(valid, f"key {record['kid']} valid at signed_at {manifest.get('signed_at')}"
            + (f" (revoked {record['revoked_at']})" if revoked else ""))
    for d in manifest.get("documents", []):
        path = folder / "documents" / (d["id"] + EXTENSIONS.get(d.get("media_type"), ""))
        if not path.exists():
            v.check(False, f"document {d['id']}: file {path.name} missing")
            continue
        sha, size = file_digest(path)
        v.check(sha == d["sha256"] and size == d["size"], f"document {d['id']}: sha256 {sha[:16]}… {size} bytes")
    try:
        keys = {k["kid"]: PublicKey(k["kid"], k["alg"], public_pem_from_jwk(k)) for k in exchange_jwks.get("keys", [])}
        receipt = receipts.verify((folder / "receipt.jws").read_text().strip(), keys)
        v.check(receipt.manifest_sha256 == hashlib.sha256(payload).hexdigest()
                and receipt.signature_sha256 == hashlib.sha256(token.encode()).hexdigest(),
                f"receipt by the exchange for dossier {receipt.dossier_id}, received {receipt.received_at}")
        dossier_json = folder / "dossier.json"
        if dossier_json.exists():
            v.check(json.loads(dossier_json.read_text()).get("dossier_id") == receipt.dossier_id,
                    "receipt names this dossier")
    except (CryptoError, KeyError, ValueError) as exc:
        v.check(False, f"receipt: {exc}")
    return v
