"""The office CLI's ST.96 verbs: ``exchange office import-st96`` turns WIPO ST.96 XML into a
dossier folder's ``dossier.json``; ``exchange office export-st96`` writes a fetched dossier's
bibliographic data and citations as ST.96 XML."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..clitools import echo_json, fail


def _read_st96_file(path: Path) -> bytes:
    from .st96_parser import MAX_BYTES

    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        fail(f"{path} is larger than 10 MiB")
    return data


@click.command("import-st96")
@click.argument("biblio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--search-report", "search_report", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="ST.96 search report whose citations go into the dossier")
@click.option("--document", "documents", multiple=True, metavar="FILE:TYPE",
              help="a document of the dossier and its type (SR, WO, ER, ...); repeatable")
@click.option("--language", default="en", show_default=True, help="language of the --document files")
@click.option("--office", "office_code", help="the depositing office (default: the XML's office code)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="folder to write dossier.json into (as `exchange office deposit` reads it)")
@click.option("--force", is_flag=True, help="overwrite an existing OUT/dossier.json")
def import_st96(biblio, search_report, documents, language, office_code, out, force) -> None:
    """Write OUT/dossier.json from ST.96 XML: the application's bibliographic data from BIBLIO,
    the citations from --search-report (else from BIBLIO's categorised citations, if any).

    Without --document the 'documents' list is left empty for you to fill in before
    `exchange office deposit OUT`."""
    import os

    from pydantic import ValidationError

    from dossiers.schemas import DOCUMENT_TYPES, ApplicationIn, CitationIn, format_errors

    from .client import METADATA_FILE
    from .st96_parser import ST96Error, citations_from_st96, read_st96

    try:
        xml_office, application = read_st96(_read_st96_file(biblio))
        if search_report is None:
            citations = citations_from_st96(_read_st96_file(biblio), strict=False)
    except ST96Error as exc:
        fail(f"{biblio}: {exc}")
    if search_report is not None:
        try:
            citations = citations_from_st96(_read_st96_file(search_report))
        except ST96Error as exc:
            fail(f"{search_report}: {exc}")
    office_code = (office_code or xml_office or "").strip().upper()
    if not office_code:
        fail(f"{biblio} names no office (com:IPOfficeCode); give --office")
    if len(office_code) != 2 or not office_code.isalpha() or not office_code.isascii():
        fail(f"office {office_code!r} is not a two-letter ST.3 code")
    try:
        ApplicationIn.model_validate(application)
        for citation in citations:
            CitationIn.model_validate(citation)
    except ValidationError as exc:
        details = "; ".join(f"{e['pointer']}: {e['detail']}" for e in format_errors(exc))
        fail(f"the imported data does not fit the manifest: {details}")

    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    counts: dict[str, int] = {}
    for spec in documents:
        file_part, sep, doc_type = spec.rpartition(":")
        doc_type = doc_type.strip().upper()
        if not sep or not file_part:
            fail(f"--document {spec!r}: expected FILE:TYPE, e.g. search-report.pdf:SR")
        if doc_type not in DOCUMENT_TYPES:
            fail(f"--document {spec!r}: type {doc_type!r} is not one of {', '.join(DOCUMENT_TYPES)}")
        path = Path(file_part)
        if not path.is_file():
            fail(f"--document {spec!r}: {path} is not a file")
        counts[doc_type] = counts.get(doc_type, 0) + 1
        entries.append({"file": os.path.relpath(path.resolve(), out.resolve()),
                        "id": f"{doc_type.lower()}-{counts[doc_type]}", "type": doc_type, "language": language})
    target = out / METADATA_FILE
    if target.exists() and not force:
        fail(f"{target} already exists; use --force to overwrite it")
    meta = {"office": office_code, "application": application, "documents": entries, "citations": citations}
    target.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not entries:
        click.echo(f"add the documents (file, type, language) to {target} before: exchange office deposit {out}",
                   err=True)
    echo_json({"dossier_json": str(target), "office": office_code, "application": application["number"],
                "citations": len(citations), "documents": len(entries)})


@click.command("export-st96")
@click.argument("dossier_json", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), required=True,
              help="the ST.96 XML file to write ('-' for standard output)")
def export_st96(dossier_json, out) -> None:
    """Write a dossier's bibliographic data and citations as ST.96 XML, from DOSSIER_JSON as
    `exchange office fetch` saves it (a dossier.json written for deposit works too)."""
    from .st96_parser import ST96Error
    from .st96_writer import dossier_to_st96

    try:
        dossier = json.loads(dossier_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read {dossier_json}: {exc}")
    try:
        xml = dossier_to_st96(dossier)
    except ST96Error as exc:
        fail(f"{dossier_json}: {exc}")
    if str(out) == "-":
        click.echo(xml, nl=False)  # bytes go to the binary standard output as they are
    else:
        out.write_bytes(xml)
        click.echo(f"wrote {out} ({len(xml)} bytes)", err=True)
