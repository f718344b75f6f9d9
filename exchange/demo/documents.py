"""The demo's documents as an examiner would read them: search reports with their ST.14
citations, written opinions and examination reports with a finding per claim and a
conclusion, the claims examined, a decision to grant. Rendered as real PDFs (text, searchable)
by :mod:`exchange.demo.pdf`; the wording follows the data, so a report never contradicts the
manifest it is deposited with."""

from __future__ import annotations

from dataclasses import replace

from .data import OFFICES, Cite, Deposit, Doc, Family, Member
from .pdf import render

EXAMINERS = {
    "SG": "Tan Wei Ling", "MY": "Nurul Aisyah binti Ahmad", "TH": "Somchai Prasert", "VN": "Nguyen Thi Lan",
    "ID": "Dewi Lestari", "PH": "Maria Santos", "BN": "Hajah Noraini binti Haji Osman", "KH": "Sok Dara",
    "LA": "Khamphone Sisavath", "JP": "Sato Kenji", "US": "Jennifer Miller", "EP": "Klaus Weber",
    "AU": "Olivia Brown", "KR": "Kim Min-jun",
}
# What each office calls its reports, where it differs from the generic name.
_NAMES = {
    ("EP", "SR"): "Extended European search report",
    ("EP", "WO"): "European search opinion",
    ("US", "ER"): "Non-final Office action",
    ("JP", "ER"): "Notice of reasons for refusal",
    ("KR", "ER"): "Notice of preliminary rejection",
    ("AU", "ER"): "Examination report No. 1",
    ("MY", "ER"): "Substantive examination report",
    ("TH", "ER"): "Substantive examination report",
}
_GENERIC = {
    "SR": "Search report", "WO": "Written opinion", "ER": "Examination report",
    "ISR": "International search report", "WOISA": "Written opinion of the International Searching Authority",
    "CLAIMS": "Claims examined", "GRANT": "Decision to grant a patent",
}
_INDONESIAN = {"SR": "Laporan hasil penelusuran", "ER": "Laporan hasil pemeriksaan substantif"}
_CATEGORIES = [
    "X: particularly relevant if taken alone",
    "Y: particularly relevant if combined with another document of the same category",
    "A: document defining the general state of the art, not considered of particular relevance",
]


def title(office: str, doc: Doc) -> str:
    if doc.translation_of is not None:
        return f"{_NAMES.get((office, doc.type), _GENERIC[doc.type])} (English translation of {doc.translation_of})"
    if doc.language == "id":
        return _INDONESIAN[doc.type]
    return _NAMES.get((office, doc.type), _GENERIC[doc.type])


def render_document(family: Family, member: Member, deposit: Deposit, doc: Doc) -> bytes:
    """The PDF of ``doc``, deposited by ``member``'s office on ``deposit.issued_on``."""
    docs = {d.id: d for d in deposit.documents}
    # A translation says what its original says, in its own language.
    source = replace(docs[doc.translation_of], language=doc.language) if doc.translation_of is not None else doc
    body = {"SR": _search_report, "ISR": _search_report, "WO": _opinion, "WOISA": _opinion,
            "ER": _examination_report, "CLAIMS": _claims, "GRANT": _grant}[source.type](family, member, deposit, source)
    lines = _header(family, member, deposit, doc.language == "id") + body
    if doc.translation_of is not None:
        lines = [f"Translation into English of document {doc.translation_of}, issued in Indonesian.", ""] + lines
    return render(f"{title(member.office, doc)} - {member.office} {member.number}", lines)


def _header(family: Family, member: Member, deposit: Deposit, indonesian: bool) -> list[str]:
    label = _ID_LABELS if indonesian else _EN_LABELS
    priorities = "; ".join(f"{p['office']} {p['number']} of {p['date']}" for p in map(family.priority, member.claims))
    lines = [OFFICES[member.office], "",
             f"{label['application']}: {member.office} {member.number}    {label['filed']}: {member.filed}"]
    if member.pct:
        lines.append(f"{label['pct']}: {member.pct}")
    lines += [f"{label['priority']}: {priorities or label['none']}",
              f"{label['applicant']}: {family.applicant}", f"{label['title']}: {family.title}",
              f"IPC: {', '.join(family.ipc)}", f"{label['date']}: {deposit.issued_on}", ""]
    return lines


_EN_LABELS = {"application": "Application", "filed": "Filing date", "pct": "International application",
              "priority": "Priority claimed", "none": "none", "applicant": "Applicant", "title": "Title",
              "date": "Date of this document"}
_ID_LABELS = {"application": "Permohonan", "filed": "Tanggal penerimaan", "pct": "Permohonan internasional",
              "priority": "Hak prioritas", "none": "tidak ada", "applicant": "Pemohon", "title": "Judul invensi",
              "date": "Tanggal dokumen"}


def _claim_list(claims) -> str:
    return ", ".join(map(str, claims)) or "none"


def _search_report(family: Family, member: Member, deposit: Deposit, doc: Doc) -> list[str]:
    subclasses = sorted({code.split()[0] for code in family.ipc})
    rows = [f"  {c.category}   D{i}: {c.document}; {c.passage}.  ({_claim_list(c.claims)})"
            for i, c in enumerate(family.citations, 1)]
    if doc.language == "id":
        return ["Dokumen yang dianggap relevan (kategori, dokumen, bagian yang relevan, klaim):", *rows, "",
                "Kategori: X sangat relevan jika diambil sendiri; Y sangat relevan jika dikombinasikan dengan "
                "dokumen lain; A menggambarkan keadaan umum teknik.",
                f"Bidang yang ditelusuri: IPC {', '.join(subclasses)}; basis data: DGIP, Espacenet, WPI.",
                f"Tanggal selesainya penelusuran: {deposit.issued_on}", f"Pemeriksa: {EXAMINERS[member.office]}"]
    lines = [f"{'Box C. ' if doc.type == 'ISR' else ''}Documents considered to be relevant",
             "Category   Citation, with indication of the relevant passages  (relevant to claims)", *rows, "",
             "Categories of cited documents:", *[f"  {c}" for c in _CATEGORIES], "",
             f"Fields searched: IPC {', '.join(subclasses)}; databases: EPODOC, WPI, full-text ASEAN collections, "
             "non-patent literature.",
             f"Date of the actual completion of the search: {deposit.issued_on}",
             f"Authorised officer: {EXAMINERS[member.office]}"]
    if doc.type == "ISR":
        lines[0:0] = [f"International Searching Authority: {OFFICES[member.office]}", ""]
    return lines


def _finding(family: Family, claim: int, allowable: tuple[int, ...], indonesian: bool) -> str:
    cites = list(enumerate(family.citations, 1))
    x = [f"D{i}" for i, c in cites if c.category == "X" and claim in c.claims]
    y = [f"D{i}" for i, c in cites if c.category == "Y" and claim in c.claims]
    if indonesian:
        if claim in allowable:
            return f"Klaim {claim}: baru, mengandung langkah inventif dan dapat diterapkan dalam industri."
        if x:
            return f"Klaim {claim}: tidak baru; {x[0]} mengungkapkan semua fitur klaim ini."
        return f"Klaim {claim}: tidak mengandung langkah inventif terhadap {_combined(y, 'id')}."
    if claim in allowable:
        if x or y:
            return (f"Claim {claim} (as amended): the amendment distinguishes it from {', '.join(x + y)}; novel, "
                    "inventive and industrially applicable.")
        return f"Claim {claim}: novel, inventive and industrially applicable over the documents cited."
    if x:
        passage = next(c.passage for i, c in cites if f"D{i}" == x[0])
        return f"Claim {claim}: lacks novelty; {x[0]} ({passage}) discloses every feature of the claim."
    return f"Claim {claim}: lacks an inventive step over {_combined(y, 'en')}."


def _combined(y: list[str], language: str) -> str:
    if not y:
        return "D1 dikombinasikan dengan pengetahuan umum" if language == "id" else \
            "D1 combined with the common general knowledge"
    if language == "id":
        return f"{y[0]} dikombinasikan dengan " + (y[1] if len(y) > 1 else "pengetahuan umum")
    return f"{y[0]} combined with " + (y[1] if len(y) > 1 else "the common general knowledge of the skilled person")


def _cited(family: Family) -> list[str]:
    return [f"  D{i}: {c.document}" for i, c in enumerate(family.citations, 1)]


def _numbers(family: Family) -> list[int]:
    return list(range(1, len(family.claim_texts) + 1))


def _opinion(family: Family, member: Member, deposit: Deposit, doc: Doc) -> list[str]:
    allowable = doc.allowable or ()
    claims = _numbers(family)
    novel = [c for c in claims if c in allowable or not _hit(family.citations, c, "X")]
    inventive = [c for c in claims if c in allowable]
    return ["Box V. Reasoned statement with regard to novelty, inventive step and industrial applicability", "",
            f"Novelty:                      yes: claims {_claim_list(novel)}; "
            f"no: claims {_claim_list([c for c in claims if c not in novel])}",
            f"Inventive step:               yes: claims {_claim_list(inventive)}; "
            f"no: claims {_claim_list([c for c in claims if c not in inventive])}",
            f"Industrial applicability:     yes: claims {_claim_list(claims)}", "",
            "Citations and explanations. Reference is made to the following documents:", *_cited(family), "",
            *[_finding(family, c, allowable, False) for c in claims], "",
            f"Claims found allowable: {_claim_list(allowable)}.",
            f"Examiner: {EXAMINERS[member.office]}"]


def _hit(citations: tuple[Cite, ...], claim: int, category: str) -> bool:
    return any(c.category == category and claim in c.claims for c in citations)


def _examination_report(family: Family, member: Member, deposit: Deposit, doc: Doc) -> list[str]:
    allowable = doc.allowable or ()
    claims = _numbers(family)
    refused = [c for c in claims if c not in allowable]
    indonesian = doc.language == "id"
    if indonesian:
        if not refused:
            conclusion = ("Kesimpulan: permohonan memenuhi syarat; paten akan diberikan untuk klaim "
                          f"{_claim_list(claims)}.")
        elif allowable:
            conclusion = (f"Kesimpulan: klaim {_claim_list(allowable)} dapat diberi paten. Pemohon diminta membatasi "
                          "klaim dalam waktu 3 bulan; setelah itu paten akan diberikan.")
        else:
            conclusion = ("Kesimpulan: tidak ada klaim yang dapat diberi paten; permohonan akan ditolak kecuali "
                          "pemohon mengatasi keberatan dalam waktu 3 bulan.")
        return ["Pemeriksaan didasarkan pada klaim sebagaimana diajukan.", "", "Dokumen pembanding:",
                *_cited(family), "", *[_finding(family, c, allowable, True) for c in claims], "", conclusion,
                f"Pemeriksa: {EXAMINERS[member.office]}"]
    amended = any(c in allowable and (_hit(family.citations, c, "X") or _hit(family.citations, c, "Y"))
                  for c in claims)
    if not refused:
        conclusion = (f"Conclusion: the application meets the requirements of patentability. A patent will be "
                      f"granted on the basis of claims {_claim_list(claims)} (grant intended).")
    elif allowable:
        conclusion = (f"Conclusion: claims {_claim_list(allowable)} are allowable; the objections to claims "
                      f"{_claim_list(refused)} must be overcome within 3 months. Grant is intended once the claims "
                      "are restricted to the allowable subject-matter.")
    else:
        conclusion = ("Conclusion: no claim is allowable. Unless the applicant overcomes the objections within 3 "
                      "months, the application will be refused (refusal intended).")
    return [f"The examination is based on the claims {'as amended by the applicant' if amended else 'as filed'}.",
            "", "Documents referred to:", *_cited(family), "", "Findings on each claim:",
            *[_finding(family, c, allowable, False) for c in claims], "", conclusion,
            f"Examiner: {EXAMINERS[member.office]}"]


def _claims(family: Family, member: Member, deposit: Deposit, doc: Doc) -> list[str]:
    texts = list(family.claim_texts)
    amended = doc.id != "claims-1"  # a later set of claims: the applicant's amendment
    if amended and family.amendment:
        texts[0] = f"{texts[0][:-1]}, {family.amendment}."
    return [f"Claims of {member.office} {member.number} {'as amended' if amended else 'as filed'}, as examined:",
            "", *[f"{n}. {text}" for n, text in enumerate(texts, 1)]]


def _grant(family: Family, member: Member, deposit: Deposit, doc: Doc) -> list[str]:
    return [f"The office has examined application {member.office} {member.number} and decided to grant a patent "
            f"on the basis of claims {_claim_list(_numbers(family))} as examined.",
            "The grant will be published in the Official Gazette; renewal fees fall due on the anniversaries of "
            "the filing date.", "", f"Examiner: {EXAMINERS[member.office]}"]
