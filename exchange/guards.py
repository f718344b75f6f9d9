"""Refuse, before any route runs, input that no route can store or parse safely.

* A NUL character (U+0000), in the path, the query, a form-encoded body or a string of a JSON
  body: PostgreSQL keeps no NUL in ``text`` or ``jsonb``, so it would otherwise surface as a
  database error (a 500) wherever the value reaches a query.
* A JSON body nested more deeply than any body of the API (Python's parsers recurse once per
  level), or holding a lone UTF-16 surrogate (``"\\ud800"``), which no database driver can
  encode as UTF-8.

Each is answered with a ``400`` problem (RFC 9457) naming what was refused. Multipart bodies
(deposits) are streamed, not buffered: the deposit checks its own parts.
"""

from __future__ import annotations

import json
from email.message import Message

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from crypto.jws import json_depth

from .errors import PROBLEM

MAX_JSON_DEPTH = 32  # the deepest body the API takes (office settings) is a few levels deep
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Refused(Exception):
    def __init__(self, code: str, title: str, detail: str):
        super().__init__(detail)
        self.code, self.title, self.detail = code, title, detail


def _nul(where: str) -> Refused:
    return Refused("nul-character", "Request holds a NUL character",
                   f"{where} holds a NUL character (U+0000), which the exchange does not accept anywhere")


def _body_kind(headers: Headers) -> str | None:
    """``json`` or ``form`` for the bodies buffered and checked here, else ``None``."""
    value = headers.get("content-type")
    if not value:
        return "json"  # FastAPI parses a body without a content type as JSON
    msg = Message()
    msg["content-type"] = value
    maintype, subtype = msg.get_content_maintype(), msg.get_content_subtype()
    if maintype == "application" and (subtype == "json" or subtype.endswith("+json")):
        return "json"
    if maintype == "application" and subtype == "x-www-form-urlencoded":
        return "form"
    return None


def _check_json(body: bytes) -> None:
    if json_depth(body) > MAX_JSON_DEPTH:
        raise Refused("json-too-deep", "JSON body nested too deeply",
                      f"the JSON body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return  # not JSON: the route's own parsing answers that
    todo = [("", value)]
    while todo:
        pointer, v = todo.pop()
        if isinstance(v, dict):
            for k, item in v.items():
                todo.append((f"{pointer}/{k.replace('~', '~0').replace('/', '~1')}", item))
                _check_string(k, pointer or "/")
        elif isinstance(v, list):
            todo.extend((f"{pointer}/{i}", item) for i, item in enumerate(v))
        elif isinstance(v, str):
            _check_string(v, pointer or "/")


def _check_string(s: str, pointer: str) -> None:
    if "\x00" in s:
        raise _nul(f"the JSON body at {_printable(pointer)}")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused("invalid-unicode", "JSON body holds an unpaired surrogate",
                      f"the JSON body at {_printable(pointer)} holds an unpaired UTF-16 surrogate escape, "
                      "which is no character") from None


def _printable(text: str) -> str:
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()[:200]


def _check_query(query: bytes) -> None:
    # "%00" can only be an escaped NUL ("%2500" is the text "%00"); h11 lets no raw NUL through.
    if b"%00" in query or b"\x00" in query:
        raise _nul("the query string")


def _check_form(body: bytes) -> None:
    if b"%00" in body or b"\x00" in body:
        raise _nul("the form")


class InputGuard:
    """ASGI middleware applying the checks above to every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if "\x00" in scope["path"]:
                raise _nul("the path")
            _check_query(scope.get("query_string", b""))
            kind = _body_kind(Headers(scope=scope)) if scope["method"] in _BODY_METHODS else None
            if kind is not None:
                body, disconnected = await _read_body(receive)
                if not disconnected:
                    (_check_json if kind == "json" else _check_form)(body)
                receive = _replay(body, disconnected, receive)
        except Refused as exc:
            await _problem(scope, send, exc)
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, disconnected: bool, receive: Receive) -> Receive:
    pending = [{"type": "http.disconnect"} if disconnected else
               {"type": "http.request", "body": body, "more_body": False}]

    async def replay():
        return pending.pop() if pending else await receive()

    return replay


async def _problem(scope: Scope, send: Send, exc: Refused) -> None:
    body = {"type": f"/problems/{exc.code}", "title": exc.title, "status": 400, "code": exc.code,
            "detail": exc.detail, "instance": _printable(scope["path"])}
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
