"""Operations from the command line, against the stack's own database and storage: rotating
the exchange's signing key, verifying the audit chain, the integrity scrub, the statistics
and the outbox's dead letters."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crypto import jws, receipts
from crypto.keys import PublicKey, public_pem_from_jwk
from dossiers.db import utcnow
from dossiers.models import OutboxEvent
from dossiers.storage import blob_key
from exchange.cli import main
from tests.support import deposit, manifest, sign

FILES = {"sr-1": b"%PDF-1.7 search report " * 300, "claims-1": b"%PDF-1.7 claims examined"}


@pytest.fixture
def cli(stack, tmp_path):
    env = {"EXCHANGE_DATABASE_URL": stack.settings.database_url, "EXCHANGE_STORAGE_URL": stack.settings.storage_url,
           "EXCHANGE_HOME": str(tmp_path / "home")}

    def run(*args: str, ok: bool = True, env_extra: dict | None = None):
        result = CliRunner().invoke(main, list(args), env={**env, **(env_extra or {})}, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def deposit_dossier(kit, files=FILES, number="10202301234X") -> dict:
    r = deposit(kit, sign(manifest(kit.code, files, number=number), kit.key), files)
    assert r.status_code == 201, r.text
    return r.json()


def jwks(stack) -> dict[str, PublicKey]:
    keys = httpx.get(f"{stack.url}/.well-known/jwks.json").json()["keys"]
    return {k["kid"]: PublicKey(k["kid"], k["alg"], public_pem_from_jwk(k)) for k in keys}


def test_keys_rotate_publishes_both_keys_and_old_receipts_still_verify(stack, cli):
    sg = stack.office("SG")
    before = deposit_dossier(sg)
    [old_kid] = jwks(stack)

    out = json.loads(cli("keys", "rotate").stdout)
    keys = jwks(stack)
    assert len(keys) == 2 and set(keys) == {old_kid, out["kid"]} == set(out["published"])
    assert receipts.verify(before["receipt"], keys).dossier_id == before["dossier_id"]

    # The exchange signs with the new key at once; a token signed with the old one still works.
    r = httpx.get(f"{stack.url}/v1/dossiers/{before['dossier_id']}", headers=sg.headers)
    assert r.status_code == 200, r.text
    after = deposit_dossier(sg, {"sr-1": b"%PDF-1.7 after the rotation"}, number="10202307777X")
    assert jws.header_of(after["receipt"])["kid"] == out["kid"]
    assert receipts.verify(after["receipt"], keys).dossier_id == after["dossier_id"]

    with stack.engine.connect() as c:
        subject = c.execute(sa.text("SELECT subject FROM audit_entry WHERE action = 'exchange_key.rotate'")
                            ).scalar_one()
    assert subject == out["kid"]


def test_keys_rotate_refuses_a_negative_publication_period(cli):
    r = cli("keys", "rotate", "--keep-published-days", "-1", ok=False)
    assert r.exit_code == 2 and "--keep-published-days" in r.output


def test_audit_verify_names_the_first_tampered_entry(stack, cli):
    stack.office("SG")  # the admin client, the office, its key and client: several entries
    n = stack.count("audit_entry")
    assert n >= 3
    r = cli("audit", "verify")
    assert r.stdout.strip() == f"audit chain verified: {n} entries"

    with stack.engine.begin() as c:
        c.execute(sa.text("UPDATE audit_entry SET reason = 'x' WHERE seq = 2"))
    r = cli("audit", "verify", ok=False)
    assert r.exit_code == 1
    assert r.stdout.strip() == "audit chain BROKEN at entry 2: its content does not match its hash"


def test_scrub_prints_its_counts_and_sweeps_orphans_on_request(stack, cli):
    sg = stack.office("SG")
    deposit_dossier(sg)
    orphan_bytes = b"%PDF left behind by a failed deposit"
    orphan = blob_key(hashlib.sha256(orphan_bytes).hexdigest())
    w = stack.store.writer(orphan)
    w.write(orphan_bytes)
    w.commit()

    out = json.loads(cli("scrub").stdout)
    assert out == {"scrub": {"checked": 2, "ok": 2, "corrupt": 0, "missing": 0,
                             "retention_repaired": out["scrub"]["retention_repaired"], "errors": []}}

    out = json.loads(cli("scrub", "--limit", "1", "--sweep-orphans", "--grace-hours", "0").stdout)
    assert out["scrub"]["checked"] == 1 and out["scrub"]["ok"] == 1
    assert out["sweep"] == {"examined": 3, "deleted": 1, "kept_retained": 0, "partial_removed": 0, "stale_pins": 0,
                            "errors": []}
    assert not stack.store.exists(orphan)

    r = cli("scrub", "--grace-hours", "1", ok=False)
    assert r.exit_code == 1 and "--grace-hours applies to --sweep-orphans only" in r.output


def test_stats_rolls_up_then_prints_the_rows(stack, cli):
    sg = stack.office("SG")
    deposit_dossier(sg)
    month = utcnow().strftime("%Y-%m")

    out = json.loads(cli("stats", "--office", "SG", "--since", month).stdout)
    assert out["months"] == [{"month": f"{month}-01", "office": "SG", "partner": None, "deposits": 1,
                              "documents": 2, "bytes": sum(len(v) for v in FILES.values()), "accesses": 0,
                              "aspec_accepted": 0, "aspec_rejected": 0, "aspec_withdrawn": 0}]
    assert out["totals"]["deposits"] == 1 and out["totals"]["documents"] == 2
    assert json.loads(cli("stats", "--office", "MY").stdout)["months"] == []

    r = cli("stats", "--since", "2024-13", ok=False)
    assert r.exit_code == 1 and "YYYY-MM" in r.output


def test_outbox_requeue_gives_dead_events_another_round(stack, cli):
    stack.server.config.app.state.relay.paused = True  # the requeued event stays visible
    event_id = str(uuid.uuid4())
    with stack.session_factory.begin() as s:
        s.add(OutboxEvent(id=event_id, topic="dossier.deposited", payload={}, attempts=20, dead_at=utcnow(),
                          available_at=utcnow() - timedelta(minutes=5), last_error="broker down"))
    assert json.loads(cli("outbox", "requeue").stdout) == {"requeued": 1}
    with stack.session_factory() as s:
        ev = s.get(OutboxEvent, event_id)
        assert ev.dead_at is None and ev.attempts == 0 and ev.sent_at is None
    assert json.loads(cli("outbox", "requeue").stdout) == {"requeued": 0}


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    env = {"EXCHANGE_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/x", "EXCHANGE_HOME": str(tmp_path)}
    r = CliRunner().invoke(main, ["audit", "verify"], env=env, catch_exceptions=False)
    assert r.exit_code == 1 and "the database is not available" in r.output
