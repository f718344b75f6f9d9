"""The audit hash chain (crypto/audit_chain.py): every alteration is found at the right entry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from crypto.audit_chain import GENESIS, ChainedEntry, canonical, entry_hash, verify_chain
from crypto.errors import AuditChainBroken


def build(n: int = 5, *, start_hash: str = GENESIS, start_seq: int = 1) -> list[ChainedEntry]:
    entries, prev = [], start_hash
    for seq in range(start_seq, start_seq + n):
        fields = {
            "action": "dossier.read" if seq % 2 else "dossier.deposit",
            "actor": f"cl_{seq:020d}",
            "office": "SG",
            "dossier_id": f"dos_{seq}",
            "at": datetime(2026, 11, 22, 1, seq, tzinfo=UTC),
            "detail": {"documents": seq, "note": "examiner ✓"},
        }
        h = entry_hash(prev, fields)
        entries.append(ChainedEntry(seq, fields, prev, h))
        prev = h
    return entries


def broken_at(entries) -> int:
    with pytest.raises(AuditChainBroken) as excinfo:
        verify_chain(entries)
    assert excinfo.value.code == "audit-chain-broken"
    return excinfo.value.seq


def test_a_chain_of_five_verifies():
    entries = build(5)
    assert verify_chain(entries) == 5
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))


def test_an_empty_chain_verifies_zero_entries():
    assert verify_chain([]) == 0


def test_entry_hash_is_sha256_over_prev_and_canonical_json():
    fields = {"b": 1, "a": "é", "c": [1, 2]}
    expected = hashlib.sha256(
        GENESIS.encode() + b"\n" + json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                              ensure_ascii=False).encode()
    ).hexdigest()
    assert entry_hash(GENESIS, fields) == expected
    assert canonical({"b": 1, "a": 2}) == b'{"a":2,"b":1}'
    # key order does not change the hash
    assert entry_hash(GENESIS, {"c": [1, 2], "a": "é", "b": 1}) == expected


@pytest.mark.parametrize("seq", [1, 3, 5])
def test_an_altered_field_breaks_at_that_entry(seq):
    entries = build(5)
    e = entries[seq - 1]
    entries[seq - 1] = replace(e, fields={**e.fields, "actor": "cl_intruder"})
    assert broken_at(entries) == seq


def test_an_added_field_breaks_at_that_entry():
    entries = build(5)
    entries[1] = replace(entries[1], fields={**entries[1].fields, "extra": None})
    assert broken_at(entries) == 2


def test_an_altered_nested_field_breaks_at_that_entry():
    entries = build(5)
    e = entries[3]
    entries[3] = replace(e, fields={**e.fields, "detail": {**e.fields["detail"], "documents": 99}})
    assert broken_at(entries) == 4


@pytest.mark.parametrize("seq", [1, 3, 4])
def test_a_removed_entry_is_reported_as_missing(seq):
    entries = build(5)
    del entries[seq - 1]
    assert broken_at(entries) == seq


def test_a_removed_first_entry_is_found_even_with_renumbering():
    """Renumbering the rest does not hide a removal: the first entry no longer starts at GENESIS."""
    entries = build(5)[1:]
    entries = [replace(e, seq=e.seq - 1) for e in entries]
    assert broken_at(entries) == 1


def test_reordered_entries_break_at_the_first_out_of_place_seq():
    entries = build(5)
    entries[1], entries[2] = entries[2], entries[1]
    with pytest.raises(AuditChainBroken) as excinfo:
        verify_chain(entries)
    assert excinfo.value.seq == 2
    assert "missing" in excinfo.value.reason


def test_reordered_entries_with_swapped_seq_numbers_break():
    entries = build(5)
    a, b = entries[1], entries[2]
    entries[1], entries[2] = replace(b, seq=2), replace(a, seq=3)
    assert broken_at(entries) == 2


def test_a_changed_prev_hash_breaks_at_that_entry():
    entries = build(5)
    entries[2] = replace(entries[2], prev_hash="f" * 64)
    with pytest.raises(AuditChainBroken) as excinfo:
        verify_chain(entries)
    assert excinfo.value.seq == 3
    assert "previous" in excinfo.value.reason


def test_a_changed_hash_breaks_at_that_entry():
    entries = build(5)
    entries[4] = replace(entries[4], hash="0" * 64)
    assert broken_at(entries) == 5


def test_a_rewritten_entry_with_a_recomputed_hash_breaks_at_the_next():
    entries = build(5)
    e = entries[2]
    fields = {**e.fields, "action": "dossier.delete"}
    entries[2] = replace(e, fields=fields, hash=entry_hash(e.prev_hash, fields))
    assert broken_at(entries) == 4


def test_a_window_verifies_from_a_known_head():
    entries = build(5)
    assert verify_chain(entries[2:], start_hash=entries[1].hash, start_seq=3) == 3
    with pytest.raises(AuditChainBroken) as excinfo:
        verify_chain(entries[2:], start_hash=entries[0].hash, start_seq=3)
    assert excinfo.value.seq == 3


def test_the_error_names_the_entry():
    err = AuditChainBroken(7, "its content does not match its hash")
    assert "7" in str(err) and err.seq == 7 and err.reason.startswith("its content")
