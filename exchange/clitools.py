"""What every verb of the ``exchange`` command shares: JSON output and clear errors."""

from __future__ import annotations

import json
from typing import NoReturn

import click


def echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(message: str) -> NoReturn:
    """End the command with exit status 1 and ``message`` (never a traceback)."""
    raise click.ClickException(message)
