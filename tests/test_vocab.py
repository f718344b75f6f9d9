"""The closed vocabularies (dossiers/vocab.py): every value the code writes is in its enum,
the audit log refuses any other, the API documents them, and the audit chain is verified
incrementally by the page that shows it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from crypto.errors import AuditChainBroken
from dossiers import agreements, audit, outbox
from dossiers.vocab import AspecReason, AuditAction, AuditOutcome, DocumentType, OfficeRole, Topic

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dossiers", "exchange", "workers", "crypto")
# Actions built from a variable: the family and every value the variable takes.
FAMILIES = {
    "agreement.": ["created", *agreements.TRANSITIONS],
    "webhook.": ["active", "disabled", "deleted"],  # a subscription's status after set_status
}


def _sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, path.read_text(encoding="utf-8")


def test_every_audit_action_and_outcome_written_in_the_code_is_in_its_enum():
    literal_actions, member_names, families, outcomes = set(), set(), set(), set()
    for _path, text in _sources():
        literal_actions |= set(re.findall(r'\baction="([^"]+)"', text))
        member_names |= set(re.findall(r"\baction=AuditAction\.([A-Z_]+)", text))
        families |= set(re.findall(r'\baction=f"([a-z_]+\.)\{', text))
        outcomes |= set(re.findall(r'\boutcome="([^"]+)"', text))
    assert literal_actions or member_names, "the scan found no audit action at all"
    assert literal_actions <= set(AuditAction), literal_actions - set(AuditAction)
    assert member_names <= set(AuditAction.__members__), member_names - set(AuditAction.__members__)
    assert families <= set(FAMILIES), f"an action built from a variable the test does not know: {families}"
    for prefix in families:
        for value in FAMILIES[prefix]:
            assert prefix + value in set(AuditAction), prefix + value
    assert outcomes <= set(AuditOutcome), outcomes - set(AuditOutcome)


def test_the_vocabularies_keep_their_contract_values():
    # Stored in databases and named by API.md: a renamed value breaks both.
    assert [t.value for t in DocumentType] == ["SR", "WO", "ER", "ISR", "WOISA", "IPRP", "CLAIMS", "CCT",
                                               "GRANT", "REFUSAL", "OTHER"]
    assert [t.value for t in Topic] == ["dossier.deposited", "dossier.accessed", "agreement.changed",
                                        "aspec_request.decided"]
    assert {o.value for o in AuditOutcome} >= {"ok", "refused", "granted", "denied", "accepted", "rejected",
                                               "failed", "deleted", "restored"}
    assert [r.value for r in AspecReason] == ["NOT_PARTICIPANT", "NOT_CORRESPONDING", "MISSING_MIN_DOCS",
                                              "NO_ALLOWABLE_CLAIM", "ISA_NOT_ASEAN", "MISSING_CLAIMS",
                                              "MISSING_CCT", "NOT_ENGLISH", "TOO_LATE"]
    assert all(r.explanation.endswith(".") and len(r.explanation) > 20 for r in AspecReason)
    assert [r.value for r in OfficeRole] == ["depositing", "accessing"]


def test_the_vocabulary_page_of_the_docs_is_current():
    from dossiers import vocab

    assert (ROOT / "docs" / "vocabularies.md").read_text(encoding="utf-8") == vocab.markdown(), (
        "docs/vocabularies.md is stale: python3 -m dossiers.vocab > docs/vocabularies.md")


def test_the_audit_log_and_the_outbox_refuse_values_outside_the_vocabulary(stack):
    with stack.session_factory() as s:
        with pytest.raises(ValueError):
            audit.append(s, action="dossier.deposited", outcome="ok")  # a topic, not an action
        with pytest.raises(ValueError):
            audit.append(s, action=AuditAction.USER_CREATE, outcome="fine")
        with pytest.raises(ValueError):
            outbox.emit(s, "dossier.deleted", {})
        entry = audit.append(s, action="user.create", outcome="ok", subject="someone")
        assert (entry.action, entry.outcome) == ("user.create", "ok") and type(entry.action) is str
        outbox.emit(s, "integrity.alert", {})
        s.commit()
    assert stack.count("audit_entry") == 1 and stack.count("outbox_event") == 1


def test_the_openapi_document_lists_the_values(stack):
    import httpx

    doc = httpx.get(f"{stack.url}/openapi.json", timeout=60).json()
    schemas = doc["components"]["schemas"]
    assert schemas["AuditAction"]["enum"] == [a.value for a in AuditAction]
    assert schemas["AuditOutcome"]["enum"] == [o.value for o in AuditOutcome]
    assert schemas["AspecReason"]["enum"] == [r.value for r in AspecReason]
    assert schemas["DocumentType"]["enum"] == [t.value for t in DocumentType]
    params = {p["name"]: p for p in doc["paths"]["/v1/audit"]["get"]["parameters"]}
    assert "AuditAction" in str(params["action"]["schema"])
    # An action the exchange never writes is a bad filter, not an empty page.
    r = httpx.get(f"{stack.url}/v1/audit", params={"action": "nothing.at_all"}, headers=stack.admin())
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")


# --- the audit chain, verified incrementally ----------------------------------------------------

def _append(sf, n: int) -> None:
    with sf.begin() as s:
        for i in range(n):
            audit.append(s, action=AuditAction.USER_SIGN_IN, outcome=AuditOutcome.REFUSED, subject=f"u{i}")


def _tamper(engine, seq: int) -> None:
    with engine.begin() as c:
        c.execute(sa.text("UPDATE audit_entry SET reason = 'rewritten' WHERE seq = :s"), {"s": seq})


def test_a_chain_watch_reads_only_what_was_appended_since_its_last_look(stack):
    sf, watch = stack.session_factory, audit.ChainWatch()
    _append(sf, 5)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "audit_entry" in statement:
            statements.append(statement)

    with sf() as s:
        assert watch.check(s).count == 5
    _append(sf, 3)
    sa.event.listen(stack.engine, "before_cursor_execute", count)
    try:
        with sf() as s:
            checkpoint = watch.check(s)
    finally:
        sa.event.remove(stack.engine, "before_cursor_execute", count)
    assert checkpoint.count == 8 and watch.full_walks == 1
    # The checkpoint's own entry, then the entries after it: never the whole log from seq 1.
    assert all("seq >" in q or "seq =" in q for q in statements), statements

    _append(sf, 2)
    _tamper(stack.engine, 9)  # appended since the last look: this look must see it
    with sf() as s:
        with pytest.raises(AuditChainBroken) as broken:
            watch.check(s)
    assert broken.value.seq == 9
    with sf() as s:  # a failed look is not remembered: the next one reports it again
        with pytest.raises(AuditChainBroken):
            watch.check(s)


def test_a_chain_watch_walks_again_when_its_checkpoint_no_longer_matches(stack):
    sf, watch = stack.session_factory, audit.ChainWatch()
    _append(sf, 4)
    with sf() as s:
        watch.check(s)
    _tamper(stack.engine, 4)  # the checkpoint's own entry: the whole chain is walked and named
    with sf() as s:
        with pytest.raises(AuditChainBroken) as broken:
            watch.check(s)
    assert broken.value.seq == 4 and watch.full_walks == 2
    stack.reset()  # a database replaced by a shorter one: walked from the start, no false alarm
    _append(sf, 6)
    with sf() as s:
        assert watch.check(s).count == 6
    assert watch.full_walks == 3


def test_the_server_does_not_start_without_a_page_module(monkeypatch, tmp_path):
    import exchange.web
    from exchange.app import create_app
    from exchange.settings import Settings

    monkeypatch.delattr(exchange.web, "admin", raising=False)
    monkeypatch.setitem(sys.modules, "exchange.web.admin", None)  # importing it fails
    settings = Settings.from_env({}, home=tmp_path)
    with pytest.raises(ImportError):
        create_app(settings)
