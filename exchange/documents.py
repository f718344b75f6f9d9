"""The one HTTP answer of a document read, for the API (``GET /v1/dossiers/{id}/documents/{doc}``)
and the examiner's view and download pages: the access gate (rule, audit, ``dossier.accessed``
event) through :func:`dossiers.families.document`, the headers (Content-Length, Repr-Digest,
ETag, nosniff, a sandboxing CSP) and the bytes re-hashed as they are served."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from dossiers import families, retrieval
from dossiers.access import Gate
from dossiers.storage import BlobStore

EXTENSIONS = {"application/pdf": ".pdf", "application/xml": ".xml", "text/xml": ".xml", "text/plain": ".txt"}


def document_response(request: Request, store: BlobStore, gate: Gate, dossier_id: str, document_id: str, *,
                      download: bool = False) -> Response:
    doc = families.document(gate, dossier_id, document_id)
    etag = f'"sha256-{doc.sha256}"'
    headers = {
        "Content-Length": str(doc.size),
        "Repr-Digest": retrieval.repr_digest(doc.sha256),
        "ETag": etag,
        "Cache-Control": "private, max-age=0, must-revalidate",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    filename = f"{doc.document_id}{EXTENSIONS.get(doc.media_type, '')}"
    disposition = "inline" if doc.media_type == "application/pdf" and not download else "attachment"
    headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    if request.headers.get("if-none-match") == etag:
        headers.pop("Content-Length")
        return Response(status_code=304, headers=headers)
    reader = retrieval.Viewer(gate.actor, gate.scope, gate.request_id)
    body = retrieval.open_verified(store, doc, request.app.state.session_factory, reader)
    return StreamingResponse(body, media_type=doc.media_type, headers=headers)
