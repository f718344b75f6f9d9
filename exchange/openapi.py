"""The OpenAPI document says what the API really answers: every error is an RFC 9457 problem.

FastAPI documents a ``422`` with its own validation-error list (``HTTPValidationError``), as
``application/json``; the exchange answers every 4xx with ``application/problem+json`` (see
``exchange/errors.py`` and ``exchange/guards.py``). This rewrites the generated document
once: each operation's 4xx responses carry the ``Problem`` schema, and a ``4XX`` entry covers
the refusals every operation may give (400 bad input, 401, 403, 404, 413, 429...). Routes
keep declaring their particular ones (``responses={409: {"description": …}}``).
"""

from __future__ import annotations

from fastapi import FastAPI

PROBLEM_MEDIA_TYPE = "application/problem+json"

PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` names the check that failed.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "URI reference naming the problem type"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}}},
        },
    },
    "additionalProperties": True,
}
_PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_REFUSED = "Refused: the problem's `code` and `detail` say why (bad input, authentication, access, …)"


def document_problems(spec: dict) -> dict:
    """Rewrite ``spec`` (in place, and return it) as described in the module docstring."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for item in spec.get("paths", {}).values():
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                continue
            responses = op.setdefault("responses", {})
            for code, response in responses.items():
                if str(code).startswith("4"):
                    if str(code) == "422" and response.get("description") == "Validation Error":
                        response["description"] = "The request does not have the required shape"
                    response["content"] = dict(_PROBLEM)
            responses.setdefault("4XX", {"description": _REFUSED, "content": dict(_PROBLEM)})
    text = repr(spec.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}'" not in text:
            schemas.pop(name, None)
    return spec


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
