"""Streaming a ``multipart/form-data`` deposit body into a :class:`dossiers.deposit.Deposit`.

The body is parsed incrementally (python-multipart's push parser) as it arrives; each
document part is hashed and written to the blob store chunk by chunk, in constant
memory. Blocking work (storage, database) runs in worker threads, in batches of about
1 MiB so the event loop is not hopping threads for every network read.
"""

from __future__ import annotations

import asyncio
from email.message import Message

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from dossiers.deposit import Deposit, DepositResult
from dossiers.errors import BodyTooLarge, DomainError, ManifestMissing, MultipartMalformed
from dossiers.storage import StorageError

from . import metrics

MAX_MANIFEST_BYTES = 2 * 1024 * 1024
BATCH_BYTES = 1024 * 1024


def _boundary(content_type: str | None) -> bytes:
    if not content_type:
        raise MultipartMalformed("send the deposit as multipart/form-data")
    msg = Message()
    msg["content-type"] = content_type
    if msg.get_content_type() != "multipart/form-data":
        raise MultipartMalformed(f"send the deposit as multipart/form-data, not {msg.get_content_type()}")
    boundary = msg.get_param("boundary")
    if not boundary or not isinstance(boundary, str) or len(boundary) > 200:
        raise MultipartMalformed("the multipart/form-data content type has no boundary")
    return boundary.encode("latin-1")


def _part_name(raw_headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in raw_headers:
        if name.lower() == b"content-disposition":
            msg = Message()
            msg["content-disposition"] = value.decode("latin-1")
            part = msg.get_param("name", header="content-disposition")
            if isinstance(part, str) and part:
                if not part.isprintable():  # NUL and other controls: no document id has them
                    raise MultipartMalformed("a part's name holds a control character")
                return part
    raise MultipartMalformed("a part has no Content-Disposition name")


class _Events:
    """Collects python-multipart callbacks into a list the async side consumes."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._field = b""
        self._value = b""
        self.ended = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._set("_field", self._field + d[s:e]),
            "on_header_value": lambda d, s, e: self._set("_value", self._value + d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.events.append(("headers", list(self._headers))),
            "on_part_data": lambda d, s, e: self.events.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.events.append(("end",)),
            "on_end": lambda: self._set("ended", True),
        }

    def _set(self, name, value):
        setattr(self, name, value)

    def _begin(self):
        self._headers = []

    def _header_end(self):
        self._headers.append((self._field, self._value))
        self._field, self._value = b"", b""


async def receive(request: Request, deposit: Deposit, *, max_bytes: int) -> DepositResult:
    """Drive ``deposit`` from the request body; return its result or raise a refusal.

    On any failure ``deposit.refuse`` undoes what reached storage and audits it.
    """
    try:
        result = await _receive(request, deposit, max_bytes=max_bytes)
    except BaseException as exc:
        metrics.deposit_refused(_refusal_code(exc))
        # Shielded: a request cancelled mid-upload (server shutdown, a time limit) must still
        # undo what reached storage and release its pins.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(deposit.refuse, exc)
        raise
    manifest = deposit.manifest
    metrics.deposit_accepted(deposit.caller.office, result.created,
                             sum(d.size for d in manifest.documents) if manifest is not None else 0)
    return result


def _refusal_code(exc: BaseException) -> str:
    """The problem code the client is answered with (as ``exchange/errors.py`` maps it)."""
    if isinstance(exc, DomainError):
        return exc.code
    if isinstance(exc, StorageError):
        return "storage-unavailable"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"  # the server gave up on the request (the client went away)
    return "internal-error"


async def _receive(request: Request, deposit: Deposit, *, max_bytes: int) -> DepositResult:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise BodyTooLarge(f"the body declares {int(declared)} bytes; the limit is {max_bytes}",
                                   limit=max_bytes)
        except ValueError:
            raise MultipartMalformed("Content-Length is not a number") from None
    parser_events = _Events()
    parser = MultipartParser(_boundary(request.headers.get("content-type")),
                             parser_events.callbacks(),  # type: ignore[arg-type]
                             max_size=max_bytes)
    received = 0
    state = "start"  # start -> manifest -> between -> document
    manifest_buf = bytearray()
    part = None
    batch: list[bytes] = []
    batch_len = 0

    async def flush() -> None:
        nonlocal batch, batch_len
        if batch and part is not None:
            chunks, batch, batch_len = batch, [], 0
            await run_in_threadpool(lambda: [part.write(c) for c in chunks])

    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise BodyTooLarge(f"the body exceeds the limit of {max_bytes} bytes", limit=max_bytes)
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise MultipartMalformed(f"the multipart body is malformed: {exc}") from None
            events, parser_events.events = parser_events.events, []
            for ev in events:
                kind = ev[0]
                if kind == "headers":
                    name = _part_name(ev[1])
                    if state == "start":
                        if name != "manifest":
                            raise ManifestMissing("the first part must be 'manifest' (the compact JWS)")
                        state = "manifest"
                    else:
                        state = "document"
                        part = await run_in_threadpool(deposit.open_part, name)
                elif kind == "data":
                    if state == "manifest":
                        manifest_buf += ev[1]
                        if len(manifest_buf) > MAX_MANIFEST_BYTES:
                            raise BodyTooLarge(f"the manifest part exceeds {MAX_MANIFEST_BYTES} bytes")
                    elif state == "document":
                        batch.append(ev[1])
                        batch_len += len(ev[1])
                        if batch_len >= BATCH_BYTES:
                            await flush()
                elif kind == "end":
                    if state == "manifest":
                        try:
                            token = manifest_buf.decode("ascii")
                        except UnicodeDecodeError:
                            token = "\x00"
                        await run_in_threadpool(deposit.accept_manifest, token)
                    elif state == "document":
                        await flush()
                        current = part
                        assert current is not None  # a document part is open in this state
                        await run_in_threadpool(deposit.close_part, current)
                        part = None
                    state = "between"
    except ClientDisconnect:
        raise MultipartMalformed("the client disconnected before the body was complete") from None
    if not parser_events.ended:
        raise MultipartMalformed("the multipart body ended before its closing boundary")
    if state == "start":
        raise ManifestMissing("the body holds no 'manifest' part")
    return await run_in_threadpool(deposit.complete)
