"""The access policy, rule by rule, as a table of cases (pure: no database, no clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from exchange.access.policy import AgreementFacts, DossierFacts, ViewerFacts, decide

T = datetime(2024, 6, 1, 12, tzinfo=UTC)
ALL = frozenset({"SR", "WO", "ER", "CLAIMS"})


def agreement(id="A1", program="ASPEC", members=("SG", "MY"), types=ALL, status="active",
              valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_until=None,
              require_corresponding=True, share_unpublished=False) -> AgreementFacts:
    return AgreementFacts(id, program, frozenset(members), frozenset(types), status, valid_from, valid_until,
                          require_corresponding, share_unpublished)


def dossier(office="MY", published=date(2024, 1, 1), docs=(("sr-1", "SR"), ("er-1", "ER"))) -> DossierFacts:
    return DossierFacts("D1", office, published, tuple(docs))


CASES = [
    # (name, viewer, dossier, agreements, expected {doc: rule-prefix or None})
    ("own office sees everything", ViewerFacts("MY"), dossier(), [], {"sr-1": "own-office", "er-1": "own-office"}),
    ("the operator is no office", ViewerFacts(None), dossier(), [agreement()], {"sr-1": None, "er-1": None}),
    ("no agreement", ViewerFacts("SG", corresponding=True), dossier(), [], {"sr-1": None, "er-1": None}),
    ("agreement shares both", ViewerFacts("SG", corresponding=True), dossier(), [agreement()],
     {"sr-1": "agreement:A1", "er-1": "agreement:A1"}),
    ("viewer not a member", ViewerFacts("TH", corresponding=True), dossier(), [agreement()],
     {"sr-1": None, "er-1": None}),
    ("depositor not a member", ViewerFacts("SG", corresponding=True), dossier(office="JP"), [agreement()],
     {"sr-1": None, "er-1": None}),
    ("suspended", ViewerFacts("SG", corresponding=True), dossier(), [agreement(status="suspended")],
     {"sr-1": None, "er-1": None}),
    ("terminated", ViewerFacts("SG", corresponding=True), dossier(), [agreement(status="terminated")],
     {"sr-1": None, "er-1": None}),
    ("window not started", ViewerFacts("SG", corresponding=True), dossier(),
     [agreement(valid_from=datetime(2025, 1, 1, tzinfo=UTC))], {"sr-1": None, "er-1": None}),
    ("window ended", ViewerFacts("SG", corresponding=True), dossier(),
     [agreement(valid_until=datetime(2024, 6, 1, 12, tzinfo=UTC))], {"sr-1": None, "er-1": None}),
    ("window ends later", ViewerFacts("SG", corresponding=True), dossier(),
     [agreement(valid_until=datetime(2024, 6, 1, 12, 1, tzinfo=UTC))],
     {"sr-1": "agreement:A1", "er-1": "agreement:A1"}),
    ("type not shared hides that document only", ViewerFacts("SG", corresponding=True), dossier(),
     [agreement(types={"SR"})], {"sr-1": "agreement:A1", "er-1": None}),
    ("unpublished, not shared", ViewerFacts("SG", corresponding=True), dossier(published=None), [agreement()],
     {"sr-1": None, "er-1": None}),
    ("published after t", ViewerFacts("SG", corresponding=True), dossier(published=date(2024, 6, 2)),
     [agreement()], {"sr-1": None, "er-1": None}),
    ("published on t", ViewerFacts("SG", corresponding=True), dossier(published=date(2024, 6, 1)),
     [agreement()], {"sr-1": "agreement:A1", "er-1": "agreement:A1"}),
    ("unpublished, shared when the agreement says so", ViewerFacts("SG", corresponding=True),
     dossier(published=None), [agreement(share_unpublished=True)], {"sr-1": "agreement:A1", "er-1": "agreement:A1"}),
    ("corresponding required and missing", ViewerFacts("SG", corresponding=False), dossier(), [agreement()],
     {"sr-1": None, "er-1": None}),
    ("corresponding not required", ViewerFacts("SG", corresponding=False), dossier(),
     [agreement(require_corresponding=False)], {"sr-1": "agreement:A1", "er-1": "agreement:A1"}),
    ("second agreement covers what the first does not", ViewerFacts("SG", corresponding=True), dossier(),
     [agreement(types={"SR"}), agreement(id="A2", program="CASE", types={"ER"})],
     {"sr-1": "agreement:A1", "er-1": "agreement:A2"}),
    ("a suspended agreement does not block an active one", ViewerFacts("SG", corresponding=True), dossier(),
     [agreement(status="suspended"), agreement(id="A2")], {"sr-1": "agreement:A2", "er-1": "agreement:A2"}),
    ("accepted ASPEC request opens an unpublished dossier",
     ViewerFacts("SG", corresponding=False, aspec_requests=("R1",)), dossier(published=None), [],
     {"sr-1": "aspec-request:R1", "er-1": "aspec-request:R1"}),
    ("ASPEC request of another office does not count", ViewerFacts("TH"), dossier(published=None), [agreement()],
     {"sr-1": None, "er-1": None}),
]


@pytest.mark.parametrize("name, viewer, facts, agreements, expected", CASES, ids=[c[0] for c in CASES])
def test_policy(name, viewer, facts, agreements, expected):
    decision = decide(viewer, facts, agreements, T)
    got = {doc: (d.rule if d.granted else None) for doc, d in decision.documents.items()}
    assert got == expected
    assert decision.visible == any(v is not None for v in expected.values())
    for d in decision.documents.values():
        assert d.reason  # every decision says why
        assert d.granted == (d.rule != "deny")


def test_denial_reasons_name_the_failed_condition():
    cases = [
        ([], "no agreement has both SG and MY"),
        ([agreement(status="suspended")], "is in force"),
        ([agreement(types={"ER"})], "does not share SR"),
        ([agreement(require_corresponding=False)], "published applications only"),
    ]
    for agreements, words in cases:
        decision = decide(ViewerFacts("SG"), dossier(published=None, docs=(("sr-1", "SR"),)), agreements, T)
        assert not decision.visible and words in decision.reason, (words, decision.reason)
    decision = decide(ViewerFacts("SG", corresponding=False), dossier(docs=(("sr-1", "SR"),)), [agreement()], T)
    assert "corresponding application" in decision.reason
