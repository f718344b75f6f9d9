"""WIPO ST.96 XML in: an application's bibliographic data and a search report's citations
into a manifest (the way back out is :mod:`exchange.office.st96_writer`).

Pure functions over bytes and dicts, on the standard library's ``xml.etree.ElementTree``.

Security. Input is refused before parsing when it is larger than 10 MiB, contains a NUL
byte or a UTF-16/UTF-32 byte order mark (so that the checks below see the real text), or
contains ``<!DOCTYPE`` or ``<!ENTITY`` anywhere: no DTD, hence no entity expansion (billion
laughs) and no external entities. The parser also refuses a document type declaration
itself, should one get past the text check.

Element names follow the ST.96 V6_0 schemas (``pat:`` is
``http://www.wipo.int/standards/XMLSchema/ST96/Patent``, ``com:`` is
``http://www.wipo.int/standards/XMLSchema/ST96/Common``). Import matches by local name,
ignoring namespaces and prefixes, and looks for:

=====================  ======================================================================
manifest field         ST.96
=====================  ======================================================================
office                 ``pat:ApplicationIdentification/com:IPOfficeCode`` (else the root's
                       ``com:officeCode`` or ``com:receivingOffice`` attribute, or a
                       ``com:IPOfficeCode`` child of the root)
number                 ``pat:ApplicationIdentification/com:ApplicationNumber/
                       com:ApplicationNumberText`` (or ``com:ST13ApplicationNumber``)
filing_date            ``pat:ApplicationIdentification/pat:FilingDate``
title                  ``pat:InventionTitle`` (in ``pat:InventionTitleBag`` or
                       ``pat:EstablishedInventionTitle``), the English one when marked
ipc                    ``pat:PatentClassificationBag``: ``pat:IPCRClassification`` as
                       ``pat:PatentClassificationSymbolText``, ``pat:PatentClassificationText``
                       or ``pat:Section``/``Class``/``Subclass``/``MainGroup``/``Subgroup``
                       (``H01L 21/30``); old ``pat:IPCClassification``
                       ``pat:MainClassification``/``pat:FurtherClassification``. CPC is ignored.
priorities             ``pat:PriorityClaimBag/pat:PriorityClaim``: ``com:IPOfficeCode``,
                       ``com:ApplicationNumber/com:ApplicationNumberText``, ``pat:FilingDate``
pct                    ``pat:InternationalFilingData/pat:ApplicationIdentification/
                       com:ApplicationNumber/com:ApplicationNumberText``, written
                       ``PCT/CCYYYY/NNNNNN``
publication            ``pat:PatentPublicationIdentification``: ``com:IPOfficeCode`` +
                       ``pat:PublicationNumber`` + ``com:PatentDocumentKindCode`` (joined, as
                       ``SG10202301234XA``), ``com:PublicationDate``
=====================  ======================================================================

The bibliographic data is read from the first ``pat:BibliographicData`` (the root itself, or
inside ``pat:PatentPublication`` or any wrapper); failing that from the whole document, so a
``pat:SearchReport`` (which carries ``pat:ApplicationIdentification`` directly) works too.
In ST.96 ``pat:ApplicationBody`` holds description, claims and drawings only, no
bibliographic data.

Citations (``citations_from_st96``) are each ``pat:ReferenceCitation`` (in a search report
``pat:SearchReport/pat:SearchData/pat:ReferenceCitationBag``; in bibliographic data
``pat:ReferenceCitationBag``):

- the cited document: ``com:PatentCitation/com:CitedPatentDocumentIdentification`` with
  ``com:IPOfficeCode`` + ``com:DocumentNumber`` + ``com:PatentDocumentKindCode`` joined
  (``US2019123456A1``), or ``com:PatentCitationText``, or ``com:NPLCitation`` (its
  ``com:NPLCitationText``, else all its text);
- relevance: each ``pat:DocumentRelevanceBag/pat:DocumentRelevance`` (else each
  ``pat:PassageRelevance``) gives ``pat:CitationCategoryCode`` (ST.14 ``X Y A P E D L O T``,
  and ``&`` which the schema spells ``Ampersand``) and ``pat:RelatedClaimBag`` with
  ``pat:ClaimNumber`` (a number, or text such as ``1-3, 5``) and
  ``pat:ClaimNumberRange/pat:BeginRangeNumber``/``pat:EndRangeNumber``.

A manifest citation has one category, so a reference cited as ``X`` for claims 1-3 and
``Y`` for claim 4 becomes two citations of the same document, one per category, in the
order they appear. Other spellings seen in the wild are accepted as well: citations as
``PatentCitationBag/PatentCitation`` holding ``PatentDocumentIdentification`` (or
``PatentPublicationIdentification``, ``PublicationNumber``, ``PatentNumber``),
``CitationCategory`` and ``RelevantClaims``/``RelatedClaims`` text.

Export is :mod:`exchange.office.st96_writer`'s.
"""

from __future__ import annotations

import datetime as _dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator

PAT = "http://www.wipo.int/standards/XMLSchema/ST96/Patent"
COM = "http://www.wipo.int/standards/XMLSchema/ST96/Common"
MAX_BYTES = 10 * 1024 * 1024
CATEGORIES = ("X", "Y", "A", "P", "E", "D", "L", "O", "T", "&")
MAX_CLAIM = 10000

_FORBIDDEN = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
# A patent document number as the manifest writes it: office, number, optional ST.16 kind.
_PATENT_NUMBER = re.compile(r"^([A-Z]{2})([0-9][0-9A-Z]*?)([A-Z][0-9]?)?$")
_PATENT_LIKE = re.compile(r"^[A-Z]{2}[\s-]?[0-9]")
_PCT = re.compile(r"^(?:PCT/?)?([A-Z]{2})(\d{4})/?(\d{6})$")
_OFFICE = re.compile(r"^[A-Z]{2}$")

# Subtrees that describe some other document than the application itself.
_ELSEWHERE = frozenset({
    "ReferenceCitationBag", "ReferenceCitation", "CitedPatentFamilyBag", "EarlierSearchBag",
    "RelatedDocumentBag", "PatentFamily", "PartyBag", "ApplicantBag", "CorrespondenceAddressBag",
})
_OTHER_APPLICATIONS = _ELSEWHERE | {
    "InternationalFilingData", "RegionalFilingData", "InternationalPublishingData",
    "RegionalPublishingData", "PriorityClaimBag", "PriorityBasis", "ReportBasis",
}
_DOCUMENT_ID = ("CitedPatentDocumentIdentification", "PatentDocumentIdentification",
                "PatentPublicationIdentification", "PatentGrantIdentification")
_DOCUMENT_NUMBER = ("DocumentNumber", "PublicationNumber", "PatentNumber", "ApplicationNumberText")
_CATEGORY = ("CitationCategoryCode", "CitationCategory")
_CLAIM_BAGS = ("RelatedClaimBag", "RelevantClaims", "RelatedClaims", "RelevantClaimBag")


class ST96Error(ValueError):
    """The input is not usable ST.96 (or the dossier cannot be written as ST.96); the
    message says why, for the person running the import or export."""


# --- parsing, safely -----------------------------------------------------------------------

class _NoDoctype(ET.TreeBuilder):
    def doctype(self, name, pubid, system):  # the parser's hook: any declaration is refused
        raise ST96Error("document type declarations (<!DOCTYPE>) are refused")


def _parse(xml: bytes | bytearray | memoryview | str) -> ET.Element:
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    if not isinstance(xml, (bytes, bytearray, memoryview)):
        raise ST96Error(f"expected the XML as bytes, not {type(xml).__name__}")
    data = bytes(xml)
    if len(data) > MAX_BYTES:
        raise ST96Error(f"the XML is {len(data)} bytes, over the limit of {MAX_BYTES} bytes (10 MiB)")
    if not data.strip():
        raise ST96Error("not XML: the input is empty")
    if data.startswith(_WIDE_BOMS) or b"\x00" in data:
        raise ST96Error("not XML this importer reads: UTF-16/UTF-32 input is refused; use UTF-8")
    if _FORBIDDEN.search(data):
        raise ST96Error("DOCTYPE and ENTITY declarations are refused (no DTDs, no entity expansion)")
    parser = ET.XMLParser(target=_NoDoctype())
    try:
        parser.feed(data)
        return parser.close()
    except ET.ParseError as exc:
        raise ST96Error(f"not well-formed XML: {exc}") from None


# --- small tree helpers (local names, no namespaces) --------------------------------------------

def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _kids(el: ET.Element, *names: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) in names]


def _kid(el: ET.Element, *names: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) in names:
            return c
    return None


def _walk(el: ET.Element, skip: Iterable[str] = ()) -> Iterator[ET.Element]:
    """Descendants of ``el`` in document order, not entering subtrees named in ``skip``.
    Iterative: a deeply nested document cannot exhaust the stack."""
    skip = frozenset(skip)
    stack = [iter(el)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        if _local(child.tag) in skip:
            continue
        yield child
        stack.append(iter(child))


def _first(el: ET.Element, names: Iterable[str], skip: Iterable[str] = ()) -> ET.Element | None:
    names = frozenset(names)
    for d in _walk(el, skip):
        if _local(d.tag) in names:
            return d
    return None


def _text(el: ET.Element | None) -> str:
    """The element's text content with whitespace collapsed ('' for None)."""
    if el is None:
        return ""
    return " ".join("".join(el.itertext()).split())


def _attr(el: ET.Element, name: str) -> str | None:
    for key, value in el.attrib.items():
        if _local(key) == name:
            return value.strip()
    return None


def _date(value: str, what: str) -> str:
    """An ISO date (``YYYY-MM-DD``); ``YYYYMMDD`` and a trailing time zone are accepted."""
    v = (value or "").strip()
    if not v:
        raise ST96Error(f"{what}: the date is missing")
    m = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})(?:Z|[+-]\d{2}:\d{2})?", v)
    try:
        if m is None:
            raise ValueError
        return _dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        raise ST96Error(f"{what}: bad date {v!r}, expected YYYY-MM-DD") from None


def _office(value: str, what: str) -> str:
    v = value.strip().upper()
    if not _OFFICE.match(v):
        raise ST96Error(f"{what}: {value!r} is not a two-letter ST.3 office code")
    return v


def _compose(office: str, number: str, kind: str) -> str:
    """``US`` + ``2019123456`` + ``A1``, without doubling a prefix or suffix already there."""
    office, number, kind = office.strip().upper(), number.strip(), kind.strip().upper()
    out = number if (not office or number.upper().startswith(office)) else office + number
    if kind and not out.upper().endswith(kind):
        out += kind
    return out


# --- the application -------------------------------------------------------------------------

def _bibliographic(root: ET.Element) -> ET.Element:
    if _local(root.tag) == "BibliographicData":
        return root
    bib = _first(root, ("BibliographicData",), _ELSEWHERE)
    return bib if bib is not None else root


def _application_number(app_id: ET.Element) -> str:
    number_el = _kid(app_id, "ApplicationNumber")
    scope = number_el if number_el is not None else app_id
    return _text(_kid(scope, "ApplicationNumberText", "ST13ApplicationNumber"))


def _ipc_symbol(el: ET.Element) -> str:
    text = _text(_kid(el, "PatentClassificationSymbolText", "PatentClassificationText"))
    if text:
        return text
    section, cls, sub = (_text(_kid(el, n)) for n in ("Section", "Class", "Subclass"))
    if not (section and cls and sub):
        return ""
    symbol = f"{section}{cls}{sub}"
    group, subgroup = _text(_kid(el, "MainGroup")), _text(_kid(el, "Subgroup"))
    if group:
        group = group.lstrip("0") or "0"
        symbol += f" {group}/{subgroup or '00'}"
    return symbol


def _ipc(bib: ET.Element) -> list[str]:
    bag = _first(bib, ("PatentClassificationBag",), _ELSEWHERE)
    if bag is None:
        return []
    out: list[str] = []
    for el in _walk(bag, ("CPCClassificationBag", "ECLAClassificationBag", "NationalClassification")):
        name = _local(el.tag)
        if name == "IPCRClassification":
            out.append(_ipc_symbol(el))
        elif name in ("MainClassification", "FurtherClassification"):
            out.append(_text(el))
    return list(dict.fromkeys(s for s in out if s))


def _title(root: ET.Element, bib: ET.Element) -> str:
    titles = [t for t in _walk(bib, _ELSEWHERE) if _local(t.tag) == "InventionTitle"]
    if not titles and bib is not root:
        titles = [t for t in _walk(root, _ELSEWHERE) if _local(t.tag) == "InventionTitle"]
    titles = [t for t in titles if _text(t)]
    if not titles:
        raise ST96Error("no invention title (pat:InventionTitle) in the ST.96 document")
    english = [t for t in titles if (_attr(t, "languageCode") or "").lower().startswith("en")]
    return _text((english or titles)[0])


def _priorities(bib: ET.Element) -> list[dict]:
    bag = _first(bib, ("PriorityClaimBag",), _ELSEWHERE)
    out = []
    for i, claim in enumerate(_kids(bag, "PriorityClaim") if bag is not None else [], 1):
        what = f"priority claim {i}"
        office = _text(_kid(claim, "IPOfficeCode"))
        if not office:
            raise ST96Error(f"{what} has no office code (com:IPOfficeCode)")
        number = _application_number(claim)
        if not number:
            raise ST96Error(f"{what} has no application number (com:ApplicationNumber/com:ApplicationNumberText)")
        date_el = _kid(claim, "FilingDate")
        if date_el is None:
            raise ST96Error(f"{what} ({number}) has no filing date (pat:FilingDate)")
        out.append({"office": _office(office, what), "number": number,
                    "date": _date(_text(date_el), f"{what} ({number}) pat:FilingDate")})
    return out


def _pct(bib: ET.Element) -> str | None:
    filing = _first(bib, ("InternationalFilingData",), _ELSEWHERE)
    if filing is None:
        return None
    app_id = _kid(filing, "ApplicationIdentification")
    number = _application_number(app_id if app_id is not None else filing)
    if not number:
        return None
    m = _PCT.match(re.sub(r"\s+", "", number).upper())
    if m is None:
        raise ST96Error(f"PCT application number {number!r} (pat:InternationalFilingData) is not "
                        "of the form PCT/CCYYYY/NNNNNN")
    return f"PCT/{m[1]}{m[2]}/{m[3]}"


def _publication(bib: ET.Element) -> dict | None:
    pub = _first(bib, ("PatentPublicationIdentification",), _OTHER_APPLICATIONS)
    if pub is None:
        return None
    number = _text(_kid(pub, "PublicationNumber"))
    if not number:
        raise ST96Error("pat:PatentPublicationIdentification has no pat:PublicationNumber")
    number = _compose(_text(_kid(pub, "IPOfficeCode")), number, _text(_kid(pub, "PatentDocumentKindCode")))
    date_el = _kid(pub, "PublicationDate")
    if date_el is None:
        raise ST96Error(f"publication {number} has no date (com:PublicationDate)")
    return {"number": number, "date": _date(_text(date_el), f"publication {number} com:PublicationDate")}


def _read_application(root: ET.Element) -> tuple[str | None, dict]:
    bib = _bibliographic(root)
    app_id = _first(bib, ("ApplicationIdentification",), _OTHER_APPLICATIONS)
    if app_id is None and bib is not root:
        app_id = _first(root, ("ApplicationIdentification",), _OTHER_APPLICATIONS)
    number = _application_number(app_id) if app_id is not None else ""
    if app_id is None or not number:
        raise ST96Error("no application number in the ST.96 document (pat:ApplicationIdentification/"
                        "com:ApplicationNumber/com:ApplicationNumberText)")
    date_el = _kid(app_id, "FilingDate")
    if date_el is None:
        raise ST96Error(f"application {number} has no filing date (pat:ApplicationIdentification/pat:FilingDate)")
    office = (_text(_kid(app_id, "IPOfficeCode")) or _attr(bib, "officeCode") or _attr(root, "officeCode")
              or _attr(root, "receivingOffice") or _text(_kid(root, "IPOfficeCode")))
    application = {
        "number": number,
        "filing_date": _date(_text(date_el), f"application {number} pat:FilingDate"),
        "title": _title(root, bib),
        "ipc": _ipc(bib),
        "priorities": _priorities(bib),
        "pct": _pct(bib),
        "publication": _publication(bib),
    }
    return (_office(office, f"application {number} office") if office else None), application


def application_from_st96(xml: bytes) -> dict:
    """The manifest's ``application`` object from ST.96 bibliographic data: ``number``,
    ``filing_date``, ``title``, ``ipc``, ``priorities`` ``[{office, number, date}]``, ``pct``
    (or None) and ``publication`` ``{number, date}`` (or None)."""
    return _read_application(_parse(xml))[1]


def office_from_st96(xml: bytes) -> str | None:
    """The ST.3 code of the office the application was filed with, if the document says."""
    return _read_application(_parse(xml))[0]


def read_st96(xml: bytes) -> tuple[str | None, dict]:
    """``(office, application)`` in one parse."""
    return _read_application(_parse(xml))


# --- citations ---------------------------------------------------------------------------------

def parse_claims(text: str) -> list[int]:
    """Claim numbers from text such as ``1-3, 5`` (also ``1 to 3``, ``1–3``, ``claims 1, 2 and 5``)."""
    s = re.sub(r"\bclaims?\b", " ", str(text).lower())
    s = re.sub(r"\s*(?:-|\u2010|\u2011|\u2012|\u2013|\u2014|\bto\b)\s*", "-", s.strip())
    out: list[int] = []
    for token in re.split(r"[,;]|\band\b|\s+", s):
        token = token.strip()
        if not token:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", token)
        if m is None:
            raise ST96Error(f"bad claim reference {text!r}: use numbers and ranges such as '1-3, 5'")
        start = int(m[1])
        end = int(m[2]) if m[2] else start
        if start < 1 or end > MAX_CLAIM or start > end:
            raise ST96Error(f"bad claim reference {text!r}: claims run from 1 to {MAX_CLAIM}, ranges upwards")
        out.extend(range(start, end + 1))
    return list(dict.fromkeys(out))


class _Budget:
    """Claim numbers a document may expand to: ``1-10000`` a thousand times over would
    otherwise turn a 10 MiB file into billions of list entries."""

    def __init__(self, limit: int = 2_000_000):
        self.left = limit

    def spend(self, claims: list[int]) -> list[int]:
        self.left -= len(claims)
        if self.left < 0:
            raise ST96Error("too many claim references in the document")
        return claims


def _claims_of(scope: ET.Element, budget: _Budget) -> list[int]:
    if _local(scope.tag) in _CLAIM_BAGS:
        bags = [scope]
    else:
        bags = [b for b in _walk(scope, _DOCUMENT_ID) if _local(b.tag) in _CLAIM_BAGS]
    out: dict[int, None] = {}
    for bag in bags:
        if len(bag) == 0:
            out.update(dict.fromkeys(budget.spend(parse_claims(_text(bag)))))
            continue
        for el in _walk(bag):
            name = _local(el.tag)
            if name == "ClaimNumber":
                out.update(dict.fromkeys(budget.spend(parse_claims(_text(el)))))
            elif name == "ClaimNumberRange":
                begin, end = _text(_kid(el, "BeginRangeNumber")), _text(_kid(el, "EndRangeNumber"))
                out.update(dict.fromkeys(budget.spend(parse_claims(f"{begin}-{end}" if end else begin))))
    return list(out)


def _categories(value: str, where: str) -> list[str]:
    v = value.strip()
    if v.lower() in ("ampersand", "&amp;", "&"):
        return ["&"]
    if v.upper() in CATEGORIES:
        return [v.upper()]
    letters = list(re.sub(r"[\s,;/]", "", v.upper()))
    if letters and all(c in CATEGORIES for c in letters):
        return list(dict.fromkeys(letters))
    raise ST96Error(f"{where}: unknown citation category {value!r}; ST.14 categories are "
                    + " ".join(CATEGORIES) + " (Ampersand for &)")


def _cited(container: ET.Element, where: str) -> str:
    doc = _first(container, _DOCUMENT_ID) if _local(container.tag) not in _DOCUMENT_ID else container
    if doc is not None:
        inner = _first(doc, ("PatentPublicationIdentification", "PatentGrantIdentification"))
        doc = inner if inner is not None and _local(doc.tag) == "PatentDocumentIdentification" else doc
        number = _text(_kid(doc, *_DOCUMENT_NUMBER)) or _text(_first(doc, ("ApplicationNumberText",)))
        if number:
            return _compose(_text(_kid(doc, "IPOfficeCode")), number, _text(_kid(doc, "PatentDocumentKindCode")))
    text = _text(_first(container, ("PatentCitationText",)))
    if text:
        return text
    npl = container if _local(container.tag) == "NPLCitation" else _first(container, ("NPLCitation",))
    if npl is not None:
        return _text(_first(npl, ("NPLCitationText",))) or _text(npl)
    raise ST96Error(f"{where} names no cited document (com:CitedPatentDocumentIdentification, "
                    "com:PatentCitationText or com:NPLCitation)")


def _containers(root: ET.Element) -> list[ET.Element]:
    found = [el for el in root.iter() if _local(el.tag) == "ReferenceCitation"]
    # Without any ReferenceCitation: bare citations, the outermost ones.
    return found or _outermost(root, ("PatentCitation", "NPLCitation"))


def _outermost(root: ET.Element, names: tuple[str, ...]) -> list[ET.Element]:
    out, stack = [], [iter(root)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
        elif _local(child.tag) in names:
            out.append(child)
        else:
            stack.append(iter(child))
    return out


def citations_from_st96(xml: bytes, *, strict: bool = True) -> list[dict]:
    """The manifest's ``citations`` from an ST.96 search report (or any document with
    ``pat:ReferenceCitation``): ``[{cited, category, claims}]``, one per cited document and
    ST.14 category. A citation without any category is an error, unless ``strict`` is False:
    then it is left out (a front page's plain reference list, ST.9 INID 56)."""
    root = _parse(xml)
    budget = _Budget()
    out: list[dict] = []
    bare = not any(_local(el.tag) == "ReferenceCitation" for el in root.iter())
    for i, container in enumerate(_containers(root), 1):
        where = f"citation {i}"
        has_category = _first(container, _CATEGORY) is not None or _local(container.tag) in _CATEGORY
        if bare and not has_category:
            continue  # a patent citation inside running text, not a search report's
        cited = _cited(container, where)
        where = f"citation {i} ({cited})"
        if not has_category:
            if strict:
                raise ST96Error(f"{where} has no ST.14 category (pat:CitationCategoryCode)")
            continue
        relevances = [el for el in _walk(container) if _local(el.tag) == "DocumentRelevance"] \
            or [el for el in _walk(container) if _local(el.tag) == "PassageRelevance"] or [container]
        by_category: dict[str, list[int]] = {}
        for relevance in relevances:
            try:
                claims = _claims_of(relevance, budget)
            except ST96Error as exc:
                raise ST96Error(f"{where}: {exc}") from None
            for code in (el for el in _walk(relevance, _DOCUMENT_ID) if _local(el.tag) in _CATEGORY):
                for category in _categories(_text(code), where):
                    merged = by_category.setdefault(category, [])
                    merged.extend(c for c in claims if c not in merged)
        if not by_category:
            raise ST96Error(f"{where} has no ST.14 category (pat:CitationCategoryCode)")
        out.extend({"cited": cited, "category": cat, "claims": claims} for cat, claims in by_category.items())
    return out
