"""WIPO ST.96 XML out: a dossier's bibliographic data and citations as an ST.96-style document
(the way in is :mod:`exchange.office.st96_parser`, whose element names and checks it shares).

Export (``dossier_to_st96``) writes a ``pat:BibliographicData`` document (``V6_0``) in the
schema's order: ``pat:PatentPublicationIdentification``, ``pat:ApplicationIdentification``,
``pat:PriorityClaimBag``, ``pat:PatentClassificationBag`` (IPC as
``pat:IPCRClassification/pat:PatentClassificationText``), ``pat:InventionTitleBag``,
``pat:ReferenceCitationBag`` (one ``pat:ReferenceCitation`` per manifest citation, with a
``pat:DocumentRelevanceBag``) and ``pat:InternationalFilingData``. It is "ST.96-style": the
schema's mandatory ``pat:PartyBag`` (applicants, inventors) is left out, since a dossier does
not carry parties. Importing the export gives back the same application and citations.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .st96_parser import _PATENT_LIKE, _PATENT_NUMBER, _PCT, CATEGORIES, COM, MAX_CLAIM, PAT, ST96Error, _date, _office

ST96_VERSION = "V6_0"

ET.register_namespace("pat", PAT)
ET.register_namespace("com", COM)


def _p(name: str) -> str:
    return f"{{{PAT}}}{name}"


def _c(name: str) -> str:
    return f"{{{COM}}}{name}"


_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {_c(k): v for k, v in attrib.items()})
    if text is not None:
        if _XML_UNSAFE.search(text):
            raise ST96Error(f"{text[:60]!r} contains control characters that XML cannot carry")
        el.text = text
    return el


def _split_number(number: str, fallback_office: str) -> tuple[str, str, str]:
    """``(office, number, kind)`` such that ``_compose`` gives ``number`` back."""
    m = _PATENT_NUMBER.match(number)
    if m:
        return m[1], m[2], m[3] or ""
    office = number[:2].upper() if re.match(r"^[A-Za-z]{2}", number) else fallback_office
    return office, number, ""


def _claim_runs(claims: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for c in claims:
        if runs and c == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], c)
        else:
            runs.append((c, c))
    return runs


def _check_claims(claims, where: str) -> list[int]:
    if claims is None:
        return []
    if not isinstance(claims, list) or not all(isinstance(c, int) and not isinstance(c, bool)
                                               and 1 <= c <= MAX_CLAIM for c in claims):
        raise ST96Error(f"{where}: claims must be a list of claim numbers from 1 to {MAX_CLAIM}")
    return claims


def _string(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ST96Error(f"the dossier's {what} is missing")
    return value.strip()


def _export_publication(root: ET.Element, publication, number: str, office: str) -> None:
    if not isinstance(publication, dict):
        raise ST96Error(f"application {number}: publication must be an object {{number, date}}")
    pub_number = _string(publication.get("number"), f"application {number} publication number")
    pub_office, bare, kind = _split_number(pub_number, office)
    pub = _sub(root, _p("PatentPublicationIdentification"))
    _sub(pub, _c("IPOfficeCode"), pub_office)
    _sub(pub, _p("PublicationNumber"), bare)
    if kind:
        _sub(pub, _c("PatentDocumentKindCode"), kind)
    _sub(pub, _c("PublicationDate"), _date(str(publication.get("date") or ""), f"publication {pub_number} date"))


def _export_priorities(root: ET.Element, priorities, number: str) -> None:
    if not isinstance(priorities, list):
        raise ST96Error(f"application {number}: priorities must be a list")
    bag = _sub(root, _p("PriorityClaimBag"))
    for i, priority in enumerate(priorities, 1):
        what = f"application {number} priority {i}"
        if not isinstance(priority, dict):
            raise ST96Error(f"{what} must be an object {{office, number, date}}")
        claim = _sub(bag, _p("PriorityClaim"), sequenceNumber=str(i))
        _sub(claim, _c("IPOfficeCode"), _office(_string(priority.get("office"), f"{what} office"), what))
        _sub(_sub(claim, _c("ApplicationNumber")), _c("ApplicationNumberText"),
             _string(priority.get("number"), f"{what} number"))
        _sub(claim, _p("FilingDate"), _date(str(priority.get("date") or ""), f"{what} date"))


def _export_citation(bag: ET.Element, i: int, citation) -> None:
    if not isinstance(citation, dict):
        raise ST96Error(f"citation {i} must be an object {{cited, category, claims}}")
    cited = _string(citation.get("cited"), f"citation {i} cited document")
    where = f"citation {i} ({cited})"
    category = citation.get("category")
    if category not in CATEGORIES:
        raise ST96Error(f"{where}: unknown citation category {category!r}; ST.14 categories are "
                        + " ".join(CATEGORIES))
    claims = _check_claims(citation.get("claims"), where)
    ref = _sub(bag, _p("ReferenceCitation"), sequenceNumber=str(i))
    m = _PATENT_NUMBER.match(cited)
    if m:
        ident = _sub(_sub(ref, _c("PatentCitation")), _c("CitedPatentDocumentIdentification"))
        _sub(ident, _c("IPOfficeCode"), m[1])
        _sub(ident, _c("DocumentNumber"), m[2])
        if m[3]:
            _sub(ident, _c("PatentDocumentKindCode"), m[3])
    elif _PATENT_LIKE.match(cited):
        _sub(_sub(ref, _c("PatentCitation")), _c("PatentCitationText"), cited)
    else:
        _sub(_sub(ref, _c("NPLCitation")), _c("NPLCitationText"), cited)
    relevance = _sub(_sub(ref, _p("DocumentRelevanceBag")), _p("DocumentRelevance"))
    _sub(relevance, _p("CitationCategoryCode"), "Ampersand" if category == "&" else category)
    if claims:
        claim_bag = _sub(relevance, _p("RelatedClaimBag"))
        for start, end in _claim_runs(claims):
            if start == end:
                _sub(claim_bag, _p("ClaimNumber"), str(start))
            else:
                claim_range = _sub(claim_bag, _p("ClaimNumberRange"))
                _sub(claim_range, _p("BeginRangeNumber"), str(start))
                _sub(claim_range, _p("EndRangeNumber"), str(end))


def dossier_to_st96(dossier: dict) -> bytes:
    """A dossier (``GET /v1/dossiers/{id}``'s JSON, or a manifest or dossier.json) as an
    ST.96-style ``pat:BibliographicData`` document: bibliographic data and citations,
    UTF-8 with an XML declaration."""
    if not isinstance(dossier, dict):
        raise ST96Error("the dossier must be a JSON object")
    signed = dossier.get("manifest")
    manifest: dict = signed if isinstance(signed, dict) else {}
    application = dossier.get("application") or manifest.get("application")
    if not isinstance(application, dict):
        raise ST96Error("the dossier has no application object")
    office = _office(_string(dossier.get("office") or manifest.get("office"), "office"), "the dossier's office")
    number = application.get("number")
    if not isinstance(number, str) or not number.strip():
        raise ST96Error("the dossier's application has no number")
    number = number.strip()
    filing_date = _date(str(application.get("filing_date") or ""), f"application {number} filing_date")
    title = _string(application.get("title"), f"application {number} title")
    citations = manifest.get("citations") if "citations" in manifest else dossier.get("citations")
    if citations is not None and not isinstance(citations, list):
        raise ST96Error("the dossier's citations must be a list")

    root = ET.Element(_p("BibliographicData"), {_c("st96Version"): ST96_VERSION, _c("officeCode"): office})
    dossier_id = dossier.get("dossier_id")
    if isinstance(dossier_id, str) and re.fullmatch(r"[A-Za-z0-9]+(?:[-_.:][A-Za-z0-9]+)*", dossier_id):
        root.append(ET.Comment(f" dossier {dossier_id}, exported by the worksharing exchange "))
    if application.get("publication"):
        _export_publication(root, application["publication"], number, office)
    app_id = _sub(root, _p("ApplicationIdentification"))
    _sub(app_id, _c("IPOfficeCode"), office)
    _sub(_sub(app_id, _c("ApplicationNumber")), _c("ApplicationNumberText"), number)
    _sub(app_id, _p("FilingDate"), filing_date)
    if application.get("priorities"):
        _export_priorities(root, application["priorities"], number)
    ipc = [s.strip() for s in application.get("ipc") or [] if isinstance(s, str) and s.strip()]
    if ipc:
        bag = _sub(_sub(root, _p("PatentClassificationBag")), _p("IPCRClassificationBag"))
        for i, symbol in enumerate(ipc, 1):
            _sub(_sub(bag, _p("IPCRClassification"), sequenceNumber=str(i)), _p("PatentClassificationText"), symbol)
    _sub(_sub(root, _p("InventionTitleBag")), _p("InventionTitle"), title)
    if citations:
        bag = _sub(root, _p("ReferenceCitationBag"))
        for i, citation in enumerate(citations, 1):
            _export_citation(bag, i, citation)
    pct = application.get("pct")
    if pct:
        m = _PCT.match(re.sub(r"\s+", "", str(pct)).upper())
        if m is None:
            raise ST96Error(f"application {number}: PCT number {pct!r} is not of the form PCT/CCYYYY/NNNNNN")
        intl = _sub(_sub(root, _p("InternationalFilingData")), _p("ApplicationIdentification"))
        _sub(intl, _c("IPOfficeCode"), m[1])
        _sub(_sub(intl, _c("ApplicationNumber")), _c("ApplicationNumberText"), f"PCT/{m[1]}{m[2]}/{m[3]}")

    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"
