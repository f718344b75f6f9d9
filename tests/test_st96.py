"""ST.96 import and export (exchange/office/st96_parser.py and st96_writer.py, and
`exchange office import-st96 / export-st96`): the sample files in tests/data/st96, round trips, claim
ranges, refused input. No database."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from dossiers.schemas import Manifest
from exchange.cli import main
from exchange.office import st96_parser
from exchange.office.client import prepare_folder
from exchange.office.st96_parser import (
    COM,
    MAX_BYTES,
    PAT,
    ST96Error,
    application_from_st96,
    citations_from_st96,
    office_from_st96,
    parse_claims,
    read_st96,
)
from exchange.office.st96_writer import dossier_to_st96

DATA = Path(__file__).parent / "data" / "st96"
BIBLIO = DATA / "bibliographic-data.xml"
SEARCH_REPORT = DATA / "search-report.xml"

SAMPLE_APPLICATION = {
    "number": "11202305678Y",
    "filing_date": "2022-09-01",
    "title": "Method and system for verifying digital signatures on constrained devices",
    "ipc": ["H04L 9/32", "G06F 21/64", "H04W 12/06"],
    "priorities": [{"office": "MY", "number": "PI2022001234", "date": "2022-03-02"},
                   {"office": "MY", "number": "PI2022004567", "date": "2022-06-15"}],
    "pct": "PCT/MY2022/050123",
    "publication": {"number": "SG11202305678YA", "date": "2023-10-30"},
}
SAMPLE_CITATIONS = [
    {"cited": "US2019123456A1", "category": "X", "claims": [1, 2, 3]},
    {"cited": "US2019123456A1", "category": "Y", "claims": [4, 5]},
    {"cited": "CN112233445B", "category": "Y", "claims": [4, 5]},
    {"cited": "JP2005123456A", "category": "A", "claims": list(range(1, 11))},
    {"cited": "WO2020012345A1", "category": "P", "claims": [1, 6]},
    {"cited": "WO2020012345A1", "category": "X", "claims": [1, 6]},
    {"cited": "EP3456789A1", "category": "L", "claims": [1]},
    {"cited": 'LEE K. et al., "Lightweight signature checks", IEEE Trans. Inf. Forensics Secur. 14 (2019) 101-112',
     "category": "T", "claims": []},
    {"cited": "US10123456B2", "category": "&", "claims": []},
]

# GET /v1/dossiers/{id} as `exchange office fetch` saves it.
FETCHED = {
    "dossier_id": "0190f3c2-7d1e-7a4b-9c55-3e1f2a6b8d90",
    "office": "SG",
    "application": {
        "number": "10202301234X", "filing_date": "2023-03-01",
        "title": "Lightweight signature verification for IoT gateways",
        "ipc": ["H04L 9/32", "H04L 9/00"],
        "priorities": [{"office": "MY", "number": "PI2022001234", "date": "2022-03-02"}],
        "pct": "PCT/SG2023/050123",
        "publication": {"number": "SG10202301234XA", "date": "2024-09-01"},
    },
    "signed_at": "2023-09-11T08:00:00Z", "received_at": "2023-09-11T08:00:02Z", "kid": "k1", "alg": "ES256",
    "manifest_sha256": "0" * 64,
    "manifest": {
        "office": "SG",
        "application": {},  # filled in below: the manifest's copy of the application
        "documents": [{"id": "sr-1", "type": "SR", "title": "Search report", "language": "en",
                       "issued_on": "2023-09-10", "media_type": "application/pdf", "sha256": "a" * 64,
                       "size": 48213}],
        "citations": [
            {"cited": "US2019123456A1", "category": "X", "claims": [1, 2, 3, 7]},
            {"cited": "KR1020200012345A", "category": "Y", "claims": [5, 2, 3, 4]},
            {"cited": "EP3456789", "category": "A", "claims": []},
            {"cited": "US 2019/0123456 A1", "category": "P", "claims": [1]},
            {"cited": "Smith, J., Nature 571 (2019) 45-50", "category": "T", "claims": [9]},
            {"cited": "US10123456B2", "category": "&", "claims": []},
            {"cited": "JP2005123456A", "category": "E", "claims": [10000]},
        ],
        "signed_at": "2023-09-11T08:00:00Z",
    },
    "documents": [{"id": "sr-1", "type": "SR", "href": "/v1/dossiers/x/documents/sr-1"}],
    "receipt": "eyJ...",
    "links": {},
}
FETCHED["manifest"]["application"] = copy.deepcopy(FETCHED["application"])


def run(args, ok=True):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
    return result


def wrap(body: str, root: str = "pat:BibliographicData") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns:pat="{PAT}" xmlns:com="{COM}">'
            f'{body}</{root.split()[0]}>').encode()


APP_ID = ("<pat:ApplicationIdentification><com:IPOfficeCode>SG</com:IPOfficeCode><com:ApplicationNumber>"
          "<com:ApplicationNumberText>10202301234X</com:ApplicationNumberText></com:ApplicationNumber>"
          "<pat:FilingDate>{date}</pat:FilingDate></pat:ApplicationIdentification>")
TITLE = "<pat:InventionTitleBag><pat:InventionTitle>Widget</pat:InventionTitle></pat:InventionTitleBag>"


# --- the samples -------------------------------------------------------------------------------

def test_bibliographic_sample_gives_every_field():
    xml = BIBLIO.read_bytes()
    assert application_from_st96(xml) == SAMPLE_APPLICATION
    assert office_from_st96(xml) == "SG"
    assert read_st96(xml) == ("SG", SAMPLE_APPLICATION)
    # Its front page has no categorised citations: nothing, and no error, when not strict.
    assert citations_from_st96(xml, strict=False) == []


def test_search_report_sample_gives_every_citation():
    xml = SEARCH_REPORT.read_bytes()
    assert citations_from_st96(xml) == SAMPLE_CITATIONS
    # A search report carries the application's identification, title and classification too.
    assert read_st96(xml) == ("SG", {
        "number": "11202305678Y", "filing_date": "2022-09-01", "title": SAMPLE_APPLICATION["title"],
        "ipc": ["H04L 9/32"], "priorities": [], "pct": None, "publication": None})


def test_the_samples_fit_the_manifest():
    Manifest.model_validate({
        "office": "SG", "application": SAMPLE_APPLICATION, "citations": SAMPLE_CITATIONS,
        "documents": [{"id": "sr-1", "type": "SR", "language": "en", "media_type": "application/pdf",
                       "sha256": "b" * 64, "size": 1}],
        "signed_at": "2023-09-11T08:00:00Z"})


# --- export and round trips ----------------------------------------------------------------------

def test_export_is_namespaced_utf8_st96_with_a_declaration():
    xml = dossier_to_st96(FETCHED)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(xml)
    assert root.tag == f"{{{PAT}}}BibliographicData"
    assert root.get(f"{{{COM}}}st96Version") == "V6_0" and root.get(f"{{{COM}}}officeCode") == "SG"
    assert b"<pat:ApplicationIdentification>" in xml and b"<com:IPOfficeCode>SG</com:IPOfficeCode>" in xml
    assert [c.tag.split("}")[1] for c in root] == [
        "PatentPublicationIdentification", "ApplicationIdentification", "PriorityClaimBag",
        "PatentClassificationBag", "InventionTitleBag", "ReferenceCitationBag", "InternationalFilingData"]
    refs = root.findall(f"{{{PAT}}}ReferenceCitationBag/{{{PAT}}}ReferenceCitation")
    assert len(refs) == len(FETCHED["manifest"]["citations"])
    first = refs[0].find(f"{{{COM}}}PatentCitation/{{{COM}}}CitedPatentDocumentIdentification")
    assert [(c.tag.split("}")[1], c.text) for c in first] == [
        ("IPOfficeCode", "US"), ("DocumentNumber", "2019123456"), ("PatentDocumentKindCode", "A1")]
    claims = refs[0].find(f".//{{{PAT}}}RelatedClaimBag")
    assert [c.tag.split("}")[1] for c in claims] == ["ClaimNumberRange", "ClaimNumber"]  # 1-3, 7
    assert refs[4].find(f"{{{COM}}}NPLCitation/{{{COM}}}NPLCitationText").text.startswith("Smith")
    assert refs[5].find(f".//{{{PAT}}}CitationCategoryCode").text == "Ampersand"
    # Non-ASCII text survives as UTF-8.
    other = copy.deepcopy(FETCHED)
    other["application"]["title"] = "Procédé de vérification — 署名"
    assert "Procédé de vérification — 署名".encode() in dossier_to_st96(other)


def test_export_escapes_text_and_refuses_control_characters():
    dossier = {"office": "SG", "application": {"number": "10202301234X", "filing_date": "2023-03-01",
                                               "title": 'Widgets & <gadgets> "quoted"'},
               "citations": [{"cited": "Doe & Roe, <Proc.> 2020", "category": "A", "claims": []}]}
    xml = dossier_to_st96(dossier)
    assert b"Widgets &amp; &lt;gadgets&gt;" in xml
    assert application_from_st96(xml)["title"] == 'Widgets & <gadgets> "quoted"'
    assert citations_from_st96(xml) == dossier["citations"]
    dossier["application"]["title"] = "bell\x07"
    with pytest.raises(ST96Error, match="control characters"):
        dossier_to_st96(dossier)


def test_round_trip_of_a_fetched_dossier():
    xml = dossier_to_st96(FETCHED)
    assert application_from_st96(xml) == FETCHED["application"]
    assert office_from_st96(xml) == "SG"
    assert citations_from_st96(xml) == FETCHED["manifest"]["citations"]


def test_round_trip_of_a_minimal_dossier_and_of_a_deposit_folder_json():
    minimal = {"office": "TH", "application": {"number": "2301001234", "filing_date": "2023-01-05", "title": "Rice"},
               "manifest": {"citations": []}}
    xml = dossier_to_st96(minimal)
    assert application_from_st96(xml) == {"number": "2301001234", "filing_date": "2023-01-05", "title": "Rice",
                                           "ipc": [], "priorities": [], "pct": None, "publication": None}
    assert citations_from_st96(xml) == []
    folder_json = {"office": "SG", "application": SAMPLE_APPLICATION, "documents": [], "citations": SAMPLE_CITATIONS}
    xml = dossier_to_st96(folder_json)
    assert read_st96(xml) == ("SG", SAMPLE_APPLICATION)
    assert citations_from_st96(xml) == SAMPLE_CITATIONS


def test_export_refuses_what_st96_cannot_say():
    bad_category = copy.deepcopy(FETCHED)
    bad_category["manifest"]["citations"][0]["category"] = "Z"
    with pytest.raises(ST96Error, match=r"citation 1 \(US2019123456A1\): unknown citation category 'Z'"):
        dossier_to_st96(bad_category)
    no_number = copy.deepcopy(FETCHED)
    del no_number["application"]["number"]
    with pytest.raises(ST96Error, match="application has no number"):
        dossier_to_st96(no_number)
    bad_date = copy.deepcopy(FETCHED)
    bad_date["application"]["filing_date"] = "2023-02-30"
    with pytest.raises(ST96Error, match="bad date '2023-02-30'"):
        dossier_to_st96(bad_date)
    bad_claims = copy.deepcopy(FETCHED)
    bad_claims["manifest"]["citations"][1]["claims"] = [0]
    with pytest.raises(ST96Error, match="claim numbers from 1"):
        dossier_to_st96(bad_claims)
    with pytest.raises(ST96Error, match="no application"):
        dossier_to_st96({"office": "SG", "manifest": {}})


# --- claim references ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, claims", [
    ("1-3, 5", [1, 2, 3, 5]),
    ("1 - 3,5", [1, 2, 3, 5]),
    ("4\u20136", [4, 5, 6]),
    ("1 to 3; 7", [1, 2, 3, 7]),
    ("claims 1, 2 and 5", [1, 2, 5]),
    ("3, 1-2", [3, 1, 2]),
    ("2, 2, 1-2", [2, 1]),
    ("12", [12]),
    ("", []),
])
def test_claim_ranges(text, claims):
    assert parse_claims(text) == claims


@pytest.mark.parametrize("text", ["a", "3-1", "0", "1-20000", "1-3-5", "1.5", "-2"])
def test_bad_claim_references_are_refused(text):
    with pytest.raises(ST96Error, match="bad claim reference"):
        parse_claims(text)


# --- refused input -------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<pat:BibliographicData xmlns:pat="urn:x">&xxe;</pat:BibliographicData>"""


@pytest.mark.parametrize("xml", [
    BILLION_LAUGHS,
    XXE,
    b'<?xml version="1.0"?><!doctype a><a/>',
    b"<a><!ENTITY x 'y'></a>",
    wrap(APP_ID.format(date="2023-03-01") + TITLE).replace(
        b"<pat:BibliographicData", b'<!DOCTYPE x SYSTEM "x.dtd"><pat:BibliographicData', 1),
])
def test_dtds_and_entities_are_refused(xml):
    for fn in (application_from_st96, citations_from_st96):
        with pytest.raises(ST96Error, match="DOCTYPE and ENTITY declarations are refused"):
            fn(xml)


def test_the_parser_itself_refuses_a_doctype():
    # Defence in depth: should a DOCTYPE ever get past the text check, the parser's hook stops it.
    parser = ET.XMLParser(target=st96_parser._NoDoctype())
    with pytest.raises(ST96Error, match="DOCTYPE"):
        parser.feed(b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>')
        parser.close()


def test_wide_encodings_cannot_smuggle_a_doctype():
    xml = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>'.encode("utf-16")
    with pytest.raises(ST96Error, match="UTF-16"):
        application_from_st96(xml)


def test_input_over_10_mib_is_refused():
    xml = wrap(APP_ID.format(date="2023-03-01") + TITLE + "<!--" + "x" * MAX_BYTES + "-->")
    with pytest.raises(ST96Error, match="10 MiB"):
        application_from_st96(xml)


@pytest.mark.parametrize("xml, message", [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"this is not XML", "not well-formed XML"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not well-formed XML"),
    (b"<pat:BibliographicData><unclosed></pat:BibliographicData>", "not well-formed XML"),
    (b"<a xmlns:pat='urn:x'><pat:b></a>", "not well-formed XML"),
])
def test_malformed_xml_is_refused(xml, message):
    with pytest.raises(ST96Error, match=message):
        application_from_st96(xml)
    with pytest.raises(ST96Error, match=message):
        citations_from_st96(xml)


def test_not_bytes_is_refused():
    with pytest.raises(ST96Error, match="bytes"):
        application_from_st96(12)  # type: ignore[arg-type]


# --- what the import checks --------------------------------------------------------------------------

def test_missing_application_number():
    xml = wrap("<pat:ApplicationIdentification><com:IPOfficeCode>SG</com:IPOfficeCode>"
               "<pat:FilingDate>2023-03-01</pat:FilingDate></pat:ApplicationIdentification>" + TITLE)
    with pytest.raises(ST96Error, match="no application number"):
        application_from_st96(xml)
    with pytest.raises(ST96Error, match="no application number"):
        application_from_st96(wrap(TITLE))


@pytest.mark.parametrize("date", ["2023-02-30", "01/03/2023", "2023", "2023-13-01", ""])
def test_bad_filing_dates(date):
    with pytest.raises(ST96Error, match="10202301234X" + (r".*bad date" if date else r".*date is missing")):
        application_from_st96(wrap(APP_ID.format(date=date) + TITLE))


def test_accepted_date_forms():
    for date in ("2023-03-01", "20230301", "2023-03-01Z", "2023-03-01+08:00", " 2023-03-01\n"):
        assert application_from_st96(wrap(APP_ID.format(date=date) + TITLE))["filing_date"] == "2023-03-01"


def test_missing_title_and_bad_priority():
    with pytest.raises(ST96Error, match="no invention title"):
        application_from_st96(wrap(APP_ID.format(date="2023-03-01")))
    priority = ("<pat:PriorityClaimBag><pat:PriorityClaim com:sequenceNumber='1'>"
                "<com:IPOfficeCode>MY</com:IPOfficeCode><pat:FilingDate>2022-03-02</pat:FilingDate>"
                "</pat:PriorityClaim></pat:PriorityClaimBag>")
    with pytest.raises(ST96Error, match="priority claim 1 has no application number"):
        application_from_st96(wrap(APP_ID.format(date="2023-03-01") + priority + TITLE))
    pct = ("<pat:InternationalFilingData><pat:ApplicationIdentification><com:IPOfficeCode>SG</com:IPOfficeCode>"
           "<com:ApplicationNumber><com:ApplicationNumberText>PCT/SG23/123</com:ApplicationNumberText>"
           "</com:ApplicationNumber></pat:ApplicationIdentification></pat:InternationalFilingData>")
    with pytest.raises(ST96Error, match="PCT/CCYYYY/NNNNNN"):
        application_from_st96(wrap(APP_ID.format(date="2023-03-01") + TITLE + pct))


def citation(category: str, claims: str = "") -> str:
    bag = f"<pat:RelatedClaimBag>{claims}</pat:RelatedClaimBag>" if claims else ""
    return ("<pat:ReferenceCitation><com:PatentCitation><com:CitedPatentDocumentIdentification>"
            "<com:IPOfficeCode>US</com:IPOfficeCode><com:DocumentNumber>2019123456</com:DocumentNumber>"
            "<com:PatentDocumentKindCode>A1</com:PatentDocumentKindCode></com:CitedPatentDocumentIdentification>"
            "</com:PatentCitation><pat:DocumentRelevanceBag><pat:DocumentRelevance>"
            f"<pat:CitationCategoryCode>{category}</pat:CitationCategoryCode>{bag}"
            "</pat:DocumentRelevance></pat:DocumentRelevanceBag></pat:ReferenceCitation>")


def test_unknown_and_missing_categories():
    xml = wrap(f"<pat:ReferenceCitationBag>{citation('Z')}</pat:ReferenceCitationBag>")
    with pytest.raises(ST96Error, match=r"citation 1 \(US2019123456A1\): unknown citation category 'Z'"):
        citations_from_st96(xml)
    uncategorised = wrap(
        "<pat:ReferenceCitationBag><pat:ReferenceCitation><com:PatentCitation><com:PatentCitationText>"
        "US 5,000,000 A</com:PatentCitationText></com:PatentCitation></pat:ReferenceCitation>"
        f"{citation('x', '<pat:ClaimNumber>2</pat:ClaimNumber>')}</pat:ReferenceCitationBag>")
    with pytest.raises(ST96Error, match=r"citation 1 \(US 5,000,000 A\) has no ST.14 category"):
        citations_from_st96(uncategorised)
    assert citations_from_st96(uncategorised, strict=False) == [
        {"cited": "US2019123456A1", "category": "X", "claims": [2]}]


def test_lenient_import_ignores_prefixes_and_namespaces():
    body = APP_ID.format(date="2023-03-01") + TITLE + citation("Y", "<pat:ClaimNumber>1, 3-4</pat:ClaimNumber>")
    expected = {"number": "10202301234X", "filing_date": "2023-03-01", "title": "Widget", "ipc": [],
                "priorities": [], "pct": None, "publication": None}
    other_prefixes = body.replace("pat:", "p:").replace("com:", "c:")
    no_namespace = body.replace("pat:", "").replace("com:", "")
    for xml in (
        wrap(body),
        f'<p:BibliographicData xmlns:p="{PAT}" xmlns:c="{COM}">{other_prefixes}</p:BibliographicData>'.encode(),
        f"<BibliographicData>{no_namespace}</BibliographicData>".encode(),
        # wrapped the way a publication carries it, with the office on the root
        f'<PatentPublication xmlns="{PAT}" xmlns:com="{COM}"><com:IPOfficeCode>SG</com:IPOfficeCode>'
        f'<BibliographicData>{body.replace("pat:", "")}</BibliographicData></PatentPublication>'.encode(),
    ):
        assert application_from_st96(xml) == expected
        assert citations_from_st96(xml) == [{"cited": "US2019123456A1", "category": "Y", "claims": [1, 3, 4]}]


def test_other_citation_spellings():
    xml = wrap(
        "<pat:SearchReport><pat:PatentCitationBag>"
        "<pat:PatentCitation><com:PatentDocumentIdentification><com:IPOfficeCode>EP</com:IPOfficeCode>"
        "<com:PublicationNumber>3456789</com:PublicationNumber><com:PatentDocumentKindCode>A1"
        "</com:PatentDocumentKindCode></com:PatentDocumentIdentification>"
        "<pat:CitationCategory>x</pat:CitationCategory><pat:RelevantClaims>1-3, 5</pat:RelevantClaims>"
        "</pat:PatentCitation>"
        "<pat:PatentCitation><com:PatentDocumentIdentification><com:IPOfficeCode>US</com:IPOfficeCode>"
        "<com:PatentNumber>US10123456</com:PatentNumber><com:PatentDocumentKindCode>B2</com:PatentDocumentKindCode>"
        "</com:PatentDocumentIdentification><pat:CitationCategory>&amp;</pat:CitationCategory></pat:PatentCitation>"
        "<pat:PatentCitation><com:PatentDocumentIdentification><com:IPOfficeCode>CN</com:IPOfficeCode>"
        "<com:DocumentNumber>112233445</com:DocumentNumber></com:PatentDocumentIdentification>"
        "<pat:CitationCategory>P,Y</pat:CitationCategory><pat:RelevantClaims>2</pat:RelevantClaims>"
        "</pat:PatentCitation>"
        "</pat:PatentCitationBag>"
        # a patent mentioned in running text, with no category, is not a search report citation
        "<com:P>See also <com:PatentCitation><com:PatentCitationText>US 4,000,000</com:PatentCitationText>"
        "</com:PatentCitation>.</com:P></pat:SearchReport>", root="pat:Wrapper")
    assert citations_from_st96(xml) == [
        {"cited": "EP3456789A1", "category": "X", "claims": [1, 2, 3, 5]},
        {"cited": "US10123456B2", "category": "&", "claims": []},
        {"cited": "CN112233445", "category": "P", "claims": [2]},
        {"cited": "CN112233445", "category": "Y", "claims": [2]},
    ]


def test_ipc_forms():
    classification = (
        "<pat:PatentClassificationBag><pat:IPCRClassificationBag>"
        "<pat:IPCRClassification><pat:ClassificationVersionDate>2006-01-01</pat:ClassificationVersionDate>"
        "<pat:PatentClassificationSymbolText>A61K 31/00</pat:PatentClassificationSymbolText></pat:IPCRClassification>"
        "<pat:IPCRClassification><pat:Section>H</pat:Section><pat:Class>01</pat:Class><pat:Subclass>L</pat:Subclass>"
        "<pat:MainGroup>0021</pat:MainGroup><pat:Subgroup>00</pat:Subgroup></pat:IPCRClassification>"
        "<pat:IPCRClassification><pat:PatentClassificationText>A61K 31/00</pat:PatentClassificationText>"
        "</pat:IPCRClassification></pat:IPCRClassificationBag>"
        "<pat:IPCClassification><com:Edition>7</com:Edition><pat:MainClassification>G06F 17/30"
        "</pat:MainClassification><pat:FurtherClassification>G06F 7/00</pat:FurtherClassification>"
        "</pat:IPCClassification></pat:PatentClassificationBag>")
    app = application_from_st96(wrap(APP_ID.format(date="2023-03-01") + classification + TITLE))
    assert app["ipc"] == ["A61K 31/00", "H01L 21/00", "G06F 17/30", "G06F 7/00"]


# --- the command line ------------------------------------------------------------------------------

def test_cli_import_writes_a_dossier_json_that_deposits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sr.pdf").write_bytes(b"%PDF-1.7\nsearch report\n")
    (tmp_path / "wo.pdf").write_bytes(b"%PDF-1.7\nwritten opinion\n")
    out = tmp_path / "dossier"
    result = run(["office", "import-st96", str(BIBLIO), "--search-report", str(SEARCH_REPORT),
                  "--document", "sr.pdf:SR", "--document", "wo.pdf:wo", "--out", str(out)])
    assert json.loads(result.stdout) == {"dossier_json": str(out / "dossier.json"), "office": "SG",
                                         "application": "11202305678Y", "citations": 9, "documents": 2}
    meta = json.loads((out / "dossier.json").read_text())
    assert meta["office"] == "SG" and meta["application"] == SAMPLE_APPLICATION
    assert meta["citations"] == SAMPLE_CITATIONS
    assert [(d["id"], d["type"], d["language"]) for d in meta["documents"]] == [("sr-1", "SR", "en"),
                                                                               ("wo-1", "WO", "en")]
    prepared = prepare_folder(out)
    manifest = Manifest.model_validate(prepared.manifest)
    assert manifest.application.number == "11202305678Y" and len(manifest.citations) == 9
    assert [d.media_type for d in manifest.documents] == ["application/pdf", "application/pdf"]
    assert set(prepared.files) == {"sr-1", "wo-1"}


def test_cli_import_leaves_the_documents_to_fill_in(tmp_path):
    out = tmp_path / "dossier"
    result = run(["office", "import-st96", str(BIBLIO), "--search-report", str(SEARCH_REPORT), "--out", str(out)])
    assert "add the documents" in result.stderr
    meta = json.loads((out / "dossier.json").read_text())
    assert meta["documents"] == []
    # The user adds a document, as the README shows; then the folder deposits.
    (out / "search-report.pdf").write_bytes(b"%PDF-1.7\n")
    meta["documents"] = [{"file": "search-report.pdf", "id": "sr-1", "type": "SR", "title": "Search report",
                          "language": "en", "issued_on": "2023-09-10"}]
    (out / "dossier.json").write_text(json.dumps(meta))
    manifest = Manifest.model_validate(prepare_folder(out).manifest)
    assert manifest.office == "SG" and manifest.citations[0].cited == "US2019123456A1"
    # A second import does not overwrite the user's work without --force.
    refused = run(["office", "import-st96", str(BIBLIO), "--out", str(out)], ok=False)
    assert "already exists; use --force" in refused.output
    run(["office", "import-st96", str(BIBLIO), "--out", str(out), "--force", "--office", "sg"])
    meta = json.loads((out / "dossier.json").read_text())
    assert meta["office"] == "SG" and meta["citations"] == []  # the front page has no categorised citations


def test_cli_export_then_import_round_trips(tmp_path):
    fetched = tmp_path / "copy" / "dossier.json"
    fetched.parent.mkdir()
    fetched.write_text(json.dumps(FETCHED, indent=2))
    xml_path = tmp_path / "dossier-st96.xml"
    run(["office", "export-st96", str(fetched), "--out", str(xml_path)])
    assert xml_path.read_bytes() == dossier_to_st96(FETCHED)
    stdout = run(["office", "export-st96", str(fetched), "--out", "-"]).stdout_bytes
    assert stdout == xml_path.read_bytes()
    # The export alone (bibliographic data with its citations) imports back.
    run(["office", "import-st96", str(xml_path), "--out", str(tmp_path / "again")])
    meta = json.loads((tmp_path / "again" / "dossier.json").read_text())
    assert meta["office"] == "SG"
    assert meta["application"] == FETCHED["application"]
    assert meta["citations"] == FETCHED["manifest"]["citations"]


def test_cli_errors_are_clear(tmp_path):
    evil = tmp_path / "evil.xml"
    evil.write_bytes(BILLION_LAUGHS)
    result = run(["office", "import-st96", str(evil), "--out", str(tmp_path / "o")], ok=False)
    assert "Error: " in result.output and "DOCTYPE and ENTITY declarations are refused" in result.output
    result = run(["office", "import-st96", str(BIBLIO), "--search-report", str(evil), "--out", str(tmp_path / "o")],
                 ok=False)
    assert str(evil) in result.output and "refused" in result.output
    result = run(["office", "import-st96", str(BIBLIO), "--document", "missing.pdf:SR", "--out", str(tmp_path / "o")],
                 ok=False)
    assert "missing.pdf is not a file" in result.output
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    result = run(["office", "import-st96", str(BIBLIO), "--document", f"{tmp_path / 'a.pdf'}:XX",
                  "--out", str(tmp_path / "o")], ok=False)
    assert "type 'XX' is not one of SR, WO" in result.output
    too_long = tmp_path / "long.xml"
    too_long.write_text(SEARCH_REPORT.read_text().replace("Lightweight signature checks", "x" * 200))
    result = run(["office", "import-st96", str(BIBLIO), "--search-report", str(too_long), "--out", str(tmp_path / "o")],
                 ok=False)
    assert "does not fit the manifest" in result.output and "/cited" in result.output
    no_office = tmp_path / "no-office.xml"
    no_office.write_bytes(wrap(APP_ID.format(date="2023-03-01").replace("<com:IPOfficeCode>SG</com:IPOfficeCode>", "")
                               + TITLE))
    result = run(["office", "import-st96", str(no_office), "--out", str(tmp_path / "o")], ok=False)
    assert "names no office" in result.output and "--office" in result.output
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    result = run(["office", "export-st96", str(bad_json), "--out", str(tmp_path / "x.xml")], ok=False)
    assert "cannot read" in result.output
    bad_category = tmp_path / "bad-category.json"
    dossier = copy.deepcopy(FETCHED)
    dossier["manifest"]["citations"][2]["category"] = "Q"
    bad_category.write_text(json.dumps(dossier))
    result = run(["office", "export-st96", str(bad_category), "--out", str(tmp_path / "x.xml")], ok=False)
    assert "citation 3 (EP3456789): unknown citation category 'Q'" in result.output
    assert not (tmp_path / "x.xml").exists()
