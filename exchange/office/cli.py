"""The ``exchange office`` verbs (keys, deposits, downloads, ST.96) and ``exchange verify``: the
office side of the command, over the exchange's HTTP API with :mod:`exchange.office.client`.
``api_options``, ``client`` and ``call`` also serve the operator's API-backed ``admin`` verbs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..clitools import echo_json, fail
from .st96_cli import export_st96, import_st96


def api_options(f):
    f = click.option("--client-secret", envvar="EXCHANGE_CLIENT_SECRET", required=True,
                     help="or EXCHANGE_CLIENT_SECRET")(f)
    f = click.option("--client-id", envvar="EXCHANGE_CLIENT_ID", required=True, help="or EXCHANGE_CLIENT_ID")(f)
    f = click.option("--url", envvar="EXCHANGE_URL", default="http://127.0.0.1:8000", show_default=True,
                     help="the exchange's base URL (or EXCHANGE_URL)")(f)
    return f


def client(url: str, client_id: str, client_secret: str):
    from .client import ExchangeClient

    return ExchangeClient(url, client_id, client_secret)


def call(fn):
    import httpx

    from .client import OfficeClientError

    try:
        return fn()
    except OfficeClientError as exc:
        fail(str(exc))
    except (OSError, httpx.TransportError) as exc:
        fail(f"cannot reach the exchange: {exc}")



# --- the office side ------------------------------------------------------------------------

@click.group()
def office() -> None:
    """Office-side client: keys, deposits, downloads."""


@office.command()
@click.option("--office", "office_code", required=True, help="the office's ST.3 code, e.g. SG")
@click.option("--alg", type=click.Choice(["ES256", "ES384", "RS256"]), default="ES256", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
def keygen(office_code: str, alg: str, out: Path) -> None:
    """Generate a signing key pair; the kid is the key's RFC 7638 thumbprint."""
    from crypto.keys import generate_private_key

    key = generate_private_key(alg)
    out.mkdir(parents=True, exist_ok=True)
    private = out / f"{office_code}-{key.kid}.private.pem"
    public = out / f"{office_code}-{key.kid}.public.pem"
    private.write_text(key.pem)
    private.chmod(0o600)
    public.write_text(key.public().pem)
    echo_json({"office": office_code, "kid": key.kid, "alg": alg, "private_key": str(private),
                "public_key": str(public)})


@office.command("register-key")
@click.argument("office_code", metavar="OFFICE")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--kid", help="defaults to the key's thumbprint")
@click.option("--alg", type=click.Choice(["ES256", "ES384", "RS256"]), default="ES256", show_default=True)
@click.option("--not-after", help="ISO 8601 end of validity")
@api_options
def register_key(office_code, public_key, kid, alg, not_after, url, client_id, client_secret) -> None:
    """Register an office's public key (exchange admin or the office's office-admin)."""
    from crypto.keys import thumbprint

    pem = public_key.read_text()
    try:
        kid = kid or thumbprint(pem, alg)
    except Exception as exc:  # noqa: BLE001 - any failure to read the key is the same answer
        fail(f"{public_key} is not a {alg} public key: {exc}")
    body = {"kid": kid, "alg": alg, "public_key_pem": pem}
    if not_after:
        body["not_after"] = not_after
    c = client(url, client_id, client_secret)
    echo_json(call(lambda: c.request("POST", f"/v1/offices/{office_code}/keys", json=body).json()))


@office.command("revoke-key")
@click.argument("office_code", metavar="OFFICE")
@click.argument("kid")
@click.option("--at", "revoked_at", help="ISO 8601 time from which the key is revoked (default now)")
@click.option("--reason")
@api_options
def revoke_key(office_code, kid, revoked_at, reason, url, client_id, client_secret) -> None:
    """Revoke a key from a time on (default now)."""
    body = {k: v for k, v in {"revoked_at": revoked_at, "reason": reason}.items() if v}
    c = client(url, client_id, client_secret)
    echo_json(call(lambda: c.request("POST", f"/v1/offices/{office_code}/keys/{kid}/revoke", json=body).json()))


@office.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="the office's private key (PEM)")
@click.option("--kid", help="defaults to the key's thumbprint")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--resign", is_flag=True, help="sign anew even if FOLDER/manifest.jws still matches")
@api_options
def deposit(folder, key_path, kid, quiet, resign, url, client_id, client_secret) -> None:
    """Sign FOLDER's dossier.json and documents, deposit them, and save the receipt.

    A retry after a failure re-sends the manifest signed the first time (FOLDER/manifest.jws)
    while the documents are unchanged, so the exchange keeps a single dossier."""
    from .client import OfficeClientError, load_private_key, prepare_folder, reusable_signature

    try:
        prepared = prepare_folder(folder)
        token = None if resign else reusable_signature(folder, prepared)
        if token is None:
            token = prepared.sign(load_private_key(key_path, kid))
    except OfficeClientError as exc:
        fail(str(exc))
    total = sum(p.stat().st_size for p in prepared.files.values())
    c = client(url, client_id, client_secret)
    if quiet or not total:
        result = call(lambda: c.deposit(token, prepared.files))
    else:
        with click.progressbar(length=total, label="uploading", file=sys.stderr, show_pos=True) as bar:
            result = call(lambda: c.deposit(token, prepared.files, progress=bar.update))
    (folder / "manifest.jws").write_text(token)
    (folder / "receipt.jws").write_text(result["receipt"])
    status = "created" if result["status"] == 201 else "already deposited"
    echo_json({"dossier_id": result["dossier_id"], "status": status,
                "received_at": result["received_at"], "receipt": str(folder / "receipt.jws")})


@office.command()
@click.argument("dossier_id")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@api_options
def fetch(dossier_id, out, url, client_id, client_secret) -> None:
    """Download a dossier with its signature, receipt and the keys to verify it offline."""
    c = client(url, client_id, client_secret)
    call(lambda: c.fetch(dossier_id, out))
    click.echo(f"saved to {out}; check it with: exchange verify {out}", err=True)


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--office-keys", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the office's key list (JSON from /v1/offices/{code}/keys); default FOLDER/keys/")
@click.option("--exchange-jwks", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the exchange's JWKS; default FOLDER/keys/exchange-jwks.json")
def verify(folder, office_keys, exchange_jwks) -> None:
    """Verify a fetched dossier offline: signature, documents and the exchange's receipt."""
    from crypto.errors import CryptoError

    from .client import verify_folder

    try:
        result = verify_folder(
            folder,
            office_keys=json.loads(office_keys.read_text()) if office_keys else None,
            exchange_jwks=json.loads(exchange_jwks.read_text()) if exchange_jwks else None,
        )
    except (OSError, ValueError, CryptoError) as exc:
        fail(f"cannot verify {folder}: {exc}")
    for line in result.lines:
        click.echo(line)
    if not result.ok:
        fail("verification FAILED")
    click.echo("verified")


office.add_command(import_st96)
office.add_command(export_st96)
