"""The office-side workflow with the CLI alone: keys, registration, deposit, fetch, verify."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from exchange.cli import main


def run(args, env=None, ok=True):
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def write_folder(folder: Path) -> None:
    folder.mkdir()
    (folder / "search-report.pdf").write_bytes(b"%PDF-1.7\n" + b"search report " * 50000)
    (folder / "claims.xml").write_text("<claims><claim num='1'>A widget.</claim></claims>")
    (folder / "dossier.json").write_text(json.dumps({
        "office": "SG",
        "application": {"number": "10202301234X", "filing_date": "2023-03-01", "title": "Widget",
                        "ipc": ["H04L 9/32"], "priorities": [{"office": "MY", "number": "PI2022001234",
                                                               "date": "2022-03-02"}]},
        "documents": [
            {"file": "search-report.pdf", "id": "sr-1", "type": "SR", "title": "Search report", "language": "en",
             "issued_on": "2023-09-10"},
            {"file": "claims.xml", "id": "claims-1", "type": "CLAIMS", "language": "en"},
        ],
        "citations": [{"cited": "US2019123456A1", "category": "X", "claims": [1]}],
    }))


def test_office_workflow_with_the_cli_alone(stack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db_env = {"EXCHANGE_DATABASE_URL": stack.settings.database_url, "EXCHANGE_HOME": str(tmp_path / "home")}
    admin = json.loads(run(["admin", "bootstrap"], env=db_env).stdout)
    admin_env = {"EXCHANGE_URL": stack.url, "EXCHANGE_CLIENT_ID": admin["client_id"],
                 "EXCHANGE_CLIENT_SECRET": admin["client_secret"]}
    run(["admin", "add-office", "SG", "--name", "IPOS"], env=admin_env)
    key = json.loads(run(["office", "keygen", "--office", "SG", "--out", "keys"]).stdout)
    assert (tmp_path / key["private_key"]).stat().st_mode & 0o077 == 0
    run(["office", "register-key", "SG", "--public-key", key["public_key"]], env=admin_env)
    client = json.loads(run(["admin", "add-client", "SG", "--roles", "depositor,examiner"], env=admin_env).stdout)
    office_env = {"EXCHANGE_URL": stack.url, "EXCHANGE_CLIENT_ID": client["client_id"],
                  "EXCHANGE_CLIENT_SECRET": client["client_secret"]}

    folder = tmp_path / "dossier"
    write_folder(folder)
    first = json.loads(run(["office", "deposit", str(folder), "--key", key["private_key"], "--quiet"],
                           env=office_env).output)
    assert first["status"] == "created"
    # A retry re-sends the same signed manifest: one dossier, the first receipt.
    again = json.loads(run(["office", "deposit", str(folder), "--key", key["private_key"]], env=office_env).stdout)
    assert again["status"] == "already deposited" and again["dossier_id"] == first["dossier_id"]

    out = tmp_path / "fetched"
    run(["office", "fetch", first["dossier_id"], "--out", str(out)], env=office_env)
    result = run(["verify", str(out)])
    assert "verified" in result.output and "FAIL" not in result.output

    # Offline verification notices a changed document and a forged receipt.
    doc = out / "documents" / "sr-1.pdf"
    doc.write_bytes(doc.read_bytes().replace(b"search", b"SEARCH", 1))
    bad = run(["verify", str(out)], ok=False)
    assert bad.exit_code == 1 and "FAIL  document sr-1" in bad.output
    doc.write_bytes(doc.read_bytes().replace(b"SEARCH", b"search", 1))
    receipt = (out / "receipt.jws").read_text()
    h, p, s = receipt.split(".")
    (out / "receipt.jws").write_text(f"{h}.{p}.{s[:-4]}AAAA")
    bad = run(["verify", str(out)], ok=False)
    assert bad.exit_code == 1 and "FAIL  receipt" in bad.output


def test_cli_errors_are_clear(stack, tmp_path):
    env = {"EXCHANGE_URL": stack.url, "EXCHANGE_CLIENT_ID": "cl_nobody", "EXCHANGE_CLIENT_SECRET": "nope"}
    r = run(["admin", "add-office", "SG", "--name", "x"], env=env, ok=False)
    assert r.exit_code == 1 and "invalid_client" in r.output
    folder = tmp_path / "empty"
    folder.mkdir()
    key = json.loads(run(["office", "keygen", "--office", "SG", "--out", str(tmp_path / "k")]).stdout)
    r = run(["office", "deposit", str(folder), "--key", key["private_key"]], env=env, ok=False)
    assert r.exit_code == 1 and "dossier.json is missing" in r.output
    r = run(["admin", "add-office", "SG", "--name", "x"], env={**env, "EXCHANGE_URL": "http://127.0.0.1:9"}, ok=False)
    assert r.exit_code == 1 and "cannot reach the exchange" in r.output


def test_operators_disable_and_enable_a_client_on_the_database(stack, tmp_path):
    import httpx

    kit = stack.office("SG")
    held = kit.headers  # a token issued before the client is disabled
    env = {"EXCHANGE_DATABASE_URL": stack.settings.database_url, "EXCHANGE_HOME": str(tmp_path / "home")}
    out = json.loads(run(["admin", "disable-client", kit.client_id], env=env).stdout)
    assert out["client_id"] == kit.client_id and out["office"] == "SG" and out["disabled_at"]
    assert httpx.get(f"{stack.url}/v1/offices", headers=held).status_code == 401  # its token, at once
    r = httpx.post(f"{stack.url}/oauth/token", data={"grant_type": "client_credentials", "client_id": kit.client_id,
                                                      "client_secret": kit.client_secret})
    assert r.status_code == 401
    out = json.loads(run(["admin", "enable-client", kit.client_id], env=env).stdout)
    assert out["disabled_at"] is None
    r = httpx.post(f"{stack.url}/oauth/token", data={"grant_type": "client_credentials", "client_id": kit.client_id,
                                                      "client_secret": kit.client_secret})
    assert r.status_code == 200
    with stack.session_factory() as s:
        from dossiers import audit
        from dossiers.scope import Scope

        actions = [(e.action, e.actor) for e in audit.page(s, scope=Scope.office("SG"), action=None,
                                                           outcome=None, before_seq=None, limit=5)]
    assert ("client.disable", "cli") in actions and ("client.enable", "cli") in actions

    r = run(["admin", "disable-client", "cl_nobody"], env=env, ok=False)
    assert r.exit_code == 1 and "no client cl_nobody" in r.output
