"""Where an application lives, in the API and on the examiner's pages."""

from __future__ import annotations

from urllib.parse import quote

from dossiers.models import Application


def path_number(app: Application) -> str:
    """The number as a path segment: as written, or its key when it holds a slash."""
    return quote(app.number if "/" not in app.number else app.number_key, safe="")


def application_path(app: Application, prefix: str = "/v1/applications") -> str:
    return f"{prefix}/{app.office_code}/{path_number(app)}"
