"""Number keys: every spelling of a number meets on one key, offices never collide, free text
finds what offices stored. Pure functions: no database, no fixtures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dossiers import numbers
from dossiers.numbers import candidates, fold, normalise

KEY_SHAPE = re.compile(r"[0-9A-Z:]{1,64}")

# (office as stored, spellings, key). The office is what the depositing office / the priority
# claim says; None entries are PCT and WO numbers, whose key is office-independent.
SPELLINGS = [
    ("SG", ["10202301234X", "SG 10202301234X", "10 2023 01234 X", "102023 1234-x", "SG10202301234XA",
            "SG 10202301234X A", "10202301234X B"], "SG:10202301234X"),
    ("SG", ["200506725-1", "2005067251", "SG 200506725-1"], "SG:2005067251"),
    ("SG", ["9701234-5", "97012345"], "SG:1997012345"),
    ("SG", ["SG 185123 A1", "185123A", "SG185123-B"], "SG:185123"),
    ("MY", ["PI2023001234", "PI 2023001234", "PI2023/001234", "pi 2023-1234", "MY PI 2023/001234",
            "PI 2023 001234"], "MY:PI2023001234"),
    ("MY", ["UI2023001234", "UI 2023/1234"], "MY:UI2023001234"),
    ("ID", ["P00202301234", "P00 2023 01234", "P-00202301234", "ID P00202301234", "P00 2023 1234",
            "p-00-2023-01234"], "ID:P00202301234"),
    ("ID", ["S00202300012", "S00 2023 12"], "ID:S00202300012"),
    ("VN", ["1-2023-01234", "1-2023-1234", "12023 01234", "1202301234", "VN 1-2023-01234",
            "1/2023/01234"], "VN:1202301234"),
    ("VN", ["2-2022-00077", "2-2022-77"], "VN:2202200077"),
    ("PH", ["1/2023/050123", "1-2023-050123", "12023050123", "PH 1/2023/50123", "1 2023 050123"],
     "PH:12023050123"),
    ("PH", ["2/2021/000456", "2-2021-456"], "PH:22021000456"),
    ("TH", ["2301001234", "TH 2301001234", "2301-001234", "23 01 001234", "๒๓๐๑๐๐๑๒๓๔"], "TH:2301001234"),
    ("TH", ["0601001234", "0601 1234"], "TH:0601001234"),
    ("BN", ["BN/N/2023/0012", "BN N 2023 0012", "bn/n/2023/12", "N/2023/0012", "BNN20230012"], "BN:N20230012"),
    ("KH", ["KH/P/2023/00012", "KH-P-2023-12", "P/2023/00012"], "KH:P202300012"),
    ("LA", ["LA/P/2023/000123", "LA P 2023 123", "P/2023/000123"], "LA:P2023000123"),
    (None, ["PCT/SG2023/050123", "PCT/SG23/50123", "pct/sg2023/50123", "PCT SG 2023 050123",
            "PCTSG2023050123", "PCT/SG/2023/050123"], "PCT:SG2023050123"),
    (None, ["PCT/IB99/01234", "PCT/IB1999/001234"], "PCT:IB1999001234"),
    (None, ["WO 2024/012345 A1", "WO2024012345", "WO 2024/12345", "wo2024/012345a2", "WO 2024012345 A3"],
     "WO:2024012345"),
    (None, ["WO 03/012345", "WO 2003/012345 A1", "WO03012345"], "WO:2003012345"),
    (None, ["WO 98/12345", "WO9812345", "WO 1998/012345"], "WO:1998012345"),
    ("US", ["18/123,456", "18123456", "US 18/123,456", "18/123456", "18-123-456"], "US:18123456"),
    ("US", ["US 2024/0012345 A1", "US20240012345A1", "2024/0012345", "US 2024 0012345"], "US:20240012345"),
    ("EP", ["22123456.7", "EP 22123456.7", "EP22123456", "22 123 456.7", "221234567"], "EP:22123456"),
    ("EP", ["EP 3456789 A1", "EP3456789", "3 456 789 B1", "EP 3456789B1"], "EP:3456789"),
    ("JP", ["2022-123456", "特願2022-123456", "JP2022-123456", "JP 2022123456", "特願２０２２－１２３４５６",
            "2022 123456"], "JP:2022123456"),
    ("JP", ["2022-012345", "2022-12345", "特願2022-12345"], "JP:2022012345"),
    ("CN", ["202310123456.7", "CN 202310123456.7", "2023101234567", "ZL202310123456.7", "ZL 2023 1 0123456.7",
            "202310123456"], "CN:202310123456"),
    ("CN", ["202320012345.X", "202320012345X"], "CN:202320012345"),
    ("CN", ["CN 116123456 A", "CN116123456A", "116123456"], "CN:116123456"),
    ("KR", ["10-2023-0012345", "1020230012345", "KR 10-2023-0012345", "10-2023-12345", "10 2023 0012345"],
     "KR:1020230012345"),
    ("KR", ["20-2021-0000456", "20-2021-456"], "KR:2020210000456"),
]
CASES = [(office, spelling, key) for office, spellings, key in SPELLINGS for spelling in spellings]

# Free text (office unknown) whose format is unambiguous: detected.
DETECTED = [
    ("10202301234X", "SG:10202301234X"),
    ("11202300077P", "SG:11202300077P"),
    ("200506725-1", "SG:2005067251"),
    ("SG 2005067251", "SG:2005067251"),
    ("PI 2022/001234", "MY:PI2022001234"),
    ("UI2023001234", "MY:UI2023001234"),
    ("P00 2023 01234", "ID:P00202301234"),
    ("S00202300012", "ID:S00202300012"),
    ("1-2023-01234", "VN:1202301234"),
    ("VN 1-2023-1234", "VN:1202301234"),
    ("1/2023/050123", "PH:12023050123"),
    ("1-2023-050123", "PH:12023050123"),
    ("TH 2301001234", "TH:2301001234"),
    ("BN/N/2023/0012", "BN:N20230012"),
    ("KH/P/2023/00012", "KH:P202300012"),
    ("LA/P/2023/000123", "LA:P2023000123"),
    ("PCT/SG23/50123", "PCT:SG2023050123"),
    ("WO 03/012345", "WO:2003012345"),
    ("18/123,456", "US:18123456"),
    ("US 2024/0012345 A1", "US:20240012345"),
    ("22123456.7", "EP:22123456"),
    ("EP 3456789 A1", "EP:3456789"),
    ("2022-123456", "JP:2022123456"),
    ("特願2022-123456", "JP:2022123456"),
    ("202310123456.7", "CN:202310123456"),
    ("ZL202310123456.7", "CN:202310123456"),
    ("CN 116123456 A", "CN:116123456"),
    ("10-2023-0012345", "KR:1020230012345"),
]

# Free text that several formats could mean (or none): the plain folded form.
AMBIGUOUS = [
    ("2301001234", "2301001234"),  # TH, SG (old, dash dropped), WO without prefix ...
    ("1-2023-1234", "120231234"),  # VN or PH with a short serial
    ("12345678", "12345678"),  # US, EP ...
    ("Some odd no. 7", "SOMEODDNO7"),
]

# Priority claims as written by the claiming office, and the claimed office's own spelling.
PRIORITIES = [
    ("MY", "PI 2022/001234", "PI2022001234"),
    ("SG", "SG 10202301234X", "10202301234X"),
    ("ID", "P00 2022 01234", "P00202201234"),
    ("VN", "1-2022-1234", "1-2022-01234"),
    ("PH", "12022050123", "1/2022/050123"),
    ("TH", "2201001234", "2201 001234"),
    ("BN", "BN N 2022 12", "BN/N/2022/0012"),
    ("KH", "KH/P/2022/12", "KH/P/2022/00012"),
    ("LA", "LA-P-2022-123", "LA/P/2022/000123"),
    ("JP", "特願2022-123456", "2022-123456"),
    ("US", "US 63/123,456", "63123456"),
    ("EP", "EP 22123456", "22123456.7"),
    ("CN", "CN 202210123456.7", "202210123456.7"),
    ("KR", "KR 10-2022-0012345", "1020220012345"),
    ("WO", "PCT/SG22/50123", "PCT/SG2022/050123"),
    ("SG", "PCT/MY2022/050001", "PCT/MY2022/050001"),
]

# (office, how the office stores it, what an examiner types into the search box).
QUERIES = [
    ("MY", "PI2022001234", "pi 2022 1234"),
    ("TH", "2301001234", "2301001234"),
    ("TH", "2301001234", "2301-1234"),
    ("VN", "1-2023-01234", "1-2023-1234"),
    ("PH", "1/2023/001234", "1-2023-1234"),
    ("SG", "10202301234X", "10202301234x"),
    ("SG", "10202301234X", "SG 10202301234X A"),
    ("SG", "2005067251", "200506725-1"),
    ("ID", "P00202301234", "P-00202301234"),
    ("BN", "BN/N/2023/0012", "BN N 2023 12"),
    ("KH", "KH/P/2023/00012", "KH P 2023 00012"),
    ("US", "18/123,456", "18123456"),
    ("US", "US 2024/0012345 A1", "2024/0012345"),
    ("EP", "22123456.7", "22123456"),
    ("EP", "EP 3456789 A1", "EP3456789"),
    ("JP", "2022-123456", "2022123456"),
    ("CN", "202310123456.7", "2023101234567"),
    ("KR", "10-2023-0012345", "1020230012345"),
    (None, "PCT/SG2023/050123", "SG2023/050123"),
    (None, "PCT/SG2023/050123", "pct sg 23 50123"),
    (None, "WO 2024/012345 A1", "2024/012345"),
    ("US", "US 11,234,567 B2", "US11234567B2"),  # unknown format, office code typed
    ("US", "11,234,567 B2", "US 11234567 B2"),
]


@pytest.mark.parametrize(("office", "spelling", "key"), CASES)
def test_every_spelling_gives_the_one_key(office, spelling, key):
    assert normalise(office, spelling) == key


@pytest.mark.parametrize(("office", "spelling", "key"), CASES)
def test_office_code_in_any_case_and_padding(office, spelling, key):
    if office is not None:
        assert normalise(f" {office.lower()} ", spelling) == key


@pytest.mark.parametrize(("text", "key"), DETECTED)
def test_free_text_detects_unambiguous_formats(text, key):
    assert normalise(None, text) == key


@pytest.mark.parametrize(("text", "key"), AMBIGUOUS)
def test_ambiguous_free_text_gives_the_folded_form(text, key):
    assert normalise(None, text) == key == fold(text)


@pytest.mark.parametrize(("number", "offices"), [
    ("2301001234", ["MY", "TH", "SG", "ID"]),
    ("1202301234", ["VN", "PH", "KR", "TH"]),
    ("2022123456", ["JP", "TH", "CN", "KR"]),
    ("18123456", ["US", "EP", "CN"]),
])
def test_same_digits_at_different_offices_never_collide(number, offices):
    keys = [normalise(office, number) for office in offices]
    assert len(set(keys)) == len(keys)
    assert all(key.startswith(f"{office}:") for key, office in zip(keys, offices))


@pytest.mark.parametrize(("office", "claimed", "own"), PRIORITIES)
def test_priority_claim_meets_the_claimed_application(office, claimed, own):
    assert normalise(office, claimed) == normalise(office, own)


@pytest.mark.parametrize(("office", "stored", "query"), QUERIES)
def test_candidates_contain_the_stored_key(office, stored, query):
    assert normalise(office, stored) in candidates(query)


@pytest.mark.parametrize(("office", "spelling", "key"), CASES)
def test_candidates_of_every_spelling_contain_its_key(office, spelling, key):
    assert key in candidates(spelling)


@pytest.mark.parametrize("text", [t for t, _ in DETECTED + AMBIGUOUS] + ["1-2023-1234", "US 11,234,567 B2"])
def test_candidates_start_with_the_best_guess_and_end_with_the_folded_form(text):
    found = candidates(text)
    assert found[0] == normalise(None, text)
    assert fold(text) in (found[0], found[-1])
    assert len(found) == len(set(found))


def test_candidates_list_every_office_the_text_fits():
    found = candidates("1-2023-1234")
    assert {"VN:1202301234", "PH:12023001234", "120231234"} <= set(found)
    assert "TH:2301001234" in candidates("2301001234")


@pytest.mark.parametrize(("office", "number", "key"), [
    ("XX", "abc/12-3", "XX:ABC123"),
    ("MY", "MY 12345", "MY:MY12345"),  # not an MY format: the whole number, folded
    ("US", "US 11,234,567 B2", "US:US11234567B2"),
    ("SG", "10202301234", "SG:10202301234"),  # check letter missing: not the SG format
    ("TH", "ＡＢ-１", "TH:AB1"),
    (None, "foo bar 1", "FOOBAR1"),
])
def test_unknown_formats_keep_a_folded_key(office, number, key):
    assert normalise(office, number) == key


def test_kind_code_never_eats_the_sg_check_letter():
    assert normalise("SG", "10202301234X") != normalise("SG", "10202301234Y")
    assert normalise("SG", "10202301234XA") == "SG:10202301234X"
    assert normalise("SG", "10202301234XB2") == "SG:10202301234X"


def test_applications_and_publications_of_one_office_differ():
    assert normalise("EP", "22123456.7") != normalise("EP", "EP 2212345 A1")
    assert normalise("US", "18/123,456") != normalise("US", "US 2018/0123456 A1")
    assert normalise("CN", "202310123456.7") != normalise("CN", "CN 116123456 A")


@pytest.mark.parametrize("office", ["SG", "MY", "WO", "IB", "XX", None])
def test_pct_and_wo_numbers_are_office_independent(office):
    assert normalise(office, "PCT/SG2023/050123") == "PCT:SG2023050123"
    assert normalise(office, "WO 2024/012345 A1") == "WO:2024012345"


@pytest.mark.parametrize("text", ["", "   ", "--/ ,.", "—", "特願"])
@pytest.mark.parametrize("office", [None, "SG"])
def test_text_without_letters_or_digits_is_refused(office, text):
    with pytest.raises(ValueError):
        normalise(office, text)
    with pytest.raises(ValueError):
        candidates(text)


@pytest.mark.parametrize(("office", "text"), [(o, s) for o, s, _ in CASES] + [
    ("SG", "A" * 200), (None, "9" * 300), ("XX", "Ω≈ 12 " * 40), (None, "PCT/SG2023/050123" * 5),
    ("A-VERY-LONG-OFFICE-CODE-THAT-NOBODY-USES-BUT-STILL-FOLDS-INTO-A-KEY", "12"),
])
def test_keys_are_short_and_clean(office, text):
    keys = [normalise(office, text), normalise(None, text), *candidates(text)]
    assert all(KEY_SHAPE.fullmatch(key) for key in keys), keys


def test_deterministic():
    assert [normalise("VN", "1-2023-1234") for _ in range(3)] == ["VN:1202301234"] * 3
    assert candidates("1-2023-1234") == candidates("1 2023 1234")


def test_fold():
    assert fold("pi 2023/001234") == "PI2023001234"
    assert fold("ＰＩ２０２３") == "PI2023"
    assert fold("-/ ") == ""


def test_module_stays_pure():
    source = Path(numbers.__file__).read_text(encoding="utf-8")
    imports = set(re.findall(r"^(?:from|import) (\S+)", source, re.M))
    assert imports <= {"__future__", "re", "unicodedata", "typing"}
