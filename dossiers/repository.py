"""Queries behind the access policy and the family index. Reads that reach partners' data go
through :class:`dossiers.access.Gate`, which decides on what these return."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, bindparam, cast, exists, literal, null, or_, select, union_all
from sqlalchemy.orm import Session, aliased, selectinload

from . import numbers
from .errors import NumberUnreadable
from .models import (
    Agreement,
    AgreementMember,
    Application,
    AspecRequest,
    CorrespondenceKey,
    Document,
    Dossier,
    PriorityClaim,
)
from .policy import AgreementFacts

MAX_FAMILY = 500


def dossier(s: Session, dossier_id: str) -> Dossier | None:
    """Unscoped: only the access gate calls this, and decides before anything is returned."""
    return s.scalars(
        select(Dossier).where(Dossier.id == dossier_id)
        .options(selectinload(Dossier.documents), selectinload(Dossier.citations), selectinload(Dossier.receipt),
                 selectinload(Dossier.application))
    ).first()


def dossiers_of(s: Session, application_ids: Iterable[int]) -> list[Dossier]:
    ids = list(application_ids)
    if not ids:
        return []
    return list(s.scalars(
        select(Dossier).where(Dossier.application_id.in_(ids))
        .options(selectinload(Dossier.documents), selectinload(Dossier.citations), selectinload(Dossier.application))
        .order_by(Dossier.received_at)
    ))


def agreements_of(s: Session, office: str) -> list[Agreement]:
    """Every agreement ``office`` is a member of, whatever its status (the policy checks it)."""
    return list(s.scalars(
        select(Agreement).where(exists().where(and_(AgreementMember.agreement_id == Agreement.id,
                                                    AgreementMember.office_code == office)))
    ))


# The statements on the access decision's path are built once: constructing them per call
# costs more than PostgreSQL takes to run them (bench/policy.py).
_mine, _theirs = aliased(CorrespondenceKey), aliased(CorrespondenceKey)
_CORRESPONDING = (select(Application.id)
                  .join(_theirs, _theirs.application_id == Application.id)
                  .join(_mine, _mine.key == _theirs.key)
                  .where(_mine.application_id == bindparam("app"), Application.office_code == bindparam("office"),
                         Application.id != bindparam("app"))
                  .limit(1))


def _null_as(column):
    return cast(null(), column.type)


# One decision's facts in one statement (one round trip): a row per member of each agreement
# both offices belong to, a row if the viewer holds a corresponding application, a row per
# accepted ASPEC request of the viewer relying on the application.
_both_members = and_(
    Agreement.id.in_(select(AgreementMember.agreement_id).where(AgreementMember.office_code == bindparam("office"))),
    Agreement.id.in_(select(AgreementMember.agreement_id).where(AgreementMember.office_code == bindparam("owner"))))
_DECISION_FACTS = union_all(
    select(literal("agreement").label("kind"), Agreement.id.label("ref"), Agreement.program, Agreement.document_types,
           Agreement.status, Agreement.valid_from, Agreement.valid_until, Agreement.require_corresponding,
           Agreement.share_unpublished, AgreementMember.office_code)
    .join(AgreementMember, AgreementMember.agreement_id == Agreement.id).where(_both_members),
    select(literal("corresponding"), _null_as(Agreement.id), _null_as(Agreement.program),
           _null_as(Agreement.document_types), _null_as(Agreement.status), _null_as(Agreement.valid_from),
           _null_as(Agreement.valid_until), _null_as(Agreement.require_corresponding),
           _null_as(Agreement.share_unpublished), _null_as(AgreementMember.office_code))
    .where(exists(_CORRESPONDING.with_only_columns(literal(1)))),
    select(literal("aspec"), AspecRequest.id, _null_as(Agreement.program), _null_as(Agreement.document_types),
           _null_as(Agreement.status), _null_as(Agreement.valid_from), _null_as(Agreement.valid_until),
           _null_as(Agreement.require_corresponding), _null_as(Agreement.share_unpublished),
           _null_as(AgreementMember.office_code))
    .where(AspecRequest.so_office == bindparam("office"), AspecRequest.status == "accepted",
           AspecRequest.fo_application_id == bindparam("app")),
)


def decision_facts(s: Session, office: str, owner: str, application_id: int) -> tuple[bool, list[str], list]:
    """What deciding whether ``office`` may read a dossier of ``owner`` on this application
    needs, in one round trip: whether ``office`` holds a corresponding application, its
    accepted ASPEC requests relying on the application, and the agreements of both offices."""
    corr, requests = False, []
    grouped: dict = {}
    members: dict = {}
    for row in s.execute(_DECISION_FACTS, {"office": office, "owner": owner, "app": application_id}):
        if row[0] == "corresponding":
            corr = True
        elif row[0] == "aspec":
            requests.append(row[1])
        else:
            grouped.setdefault(row[1], row)
            members.setdefault(row[1], set()).add(row[9])
    agreements = [AgreementFacts(id=r[1], program=r[2], members=frozenset(members[r[1]]),
                                 document_types=frozenset(r[3]), status=r[4], valid_from=r[5], valid_until=r[6],
                                 require_corresponding=r[7], share_unpublished=r[8]) for r in grouped.values()]
    return corr, requests, agreements


def _readable(parse, *args):
    try:
        return parse(*args)
    except ValueError as exc:  # the only refusal of dossiers.numbers: no letter or digit
        raise NumberUnreadable(f"the number {args[-1]!r} has no letters or digits") from exc


def application(s: Session, office: str, number: str) -> Application | None:
    """The office's application with this number (as written, or its key). A number without a
    letter or digit raises :class:`~dossiers.errors.NumberUnreadable`: none can have it."""
    keys = {number, _readable(numbers.normalise, office, number)}
    return s.scalars(
        select(Application).where(Application.office_code == office, Application.number_key.in_(keys))
        .options(selectinload(Application.priorities))
    ).first()


def find_applications(s: Session, text: str, limit: int = 50) -> list[Application]:
    """Applications whose application, publication, priority or PCT number matches ``text``."""
    keys = _readable(numbers.candidates, text)
    if not keys:
        return []
    by_priority = select(PriorityClaim.application_id).where(PriorityClaim.number_key.in_(keys))
    q = (select(Application)
         .where(or_(Application.number_key.in_(keys), Application.publication_key.in_(keys),
                    Application.pct_key.in_(keys), Application.id.in_(by_priority)))
         .options(selectinload(Application.priorities))
         .order_by(Application.filing_date, Application.id).limit(limit))
    return list(s.scalars(q))


def family(s: Session, application_id: int) -> list[Application]:
    """The connected component of the correspondence graph around ``application_id``: breadth
    first over shared keys, a query for keys and one for applications per level."""
    seen_apps = {application_id}
    seen_keys: set[str] = set()
    frontier = {application_id}
    while frontier and len(seen_apps) < MAX_FAMILY:
        keys = set(s.scalars(select(CorrespondenceKey.key).where(CorrespondenceKey.application_id.in_(frontier))))
        keys -= seen_keys
        if not keys:
            break
        seen_keys |= keys
        found = set(s.scalars(select(CorrespondenceKey.application_id).where(CorrespondenceKey.key.in_(keys))))
        frontier = found - seen_apps
        seen_apps |= frontier
    return list(s.scalars(
        select(Application).where(Application.id.in_(seen_apps)).options(selectinload(Application.priorities))
        .order_by(Application.filing_date, Application.office_code)
    ))


def documents_by_ref(s: Session, refs: list[tuple[str, str]]) -> dict[tuple[str, str], Document]:
    if not refs:
        return {}
    dossier_ids = {d for d, _ in refs}
    rows = s.scalars(
        select(Document).where(Document.dossier_id.in_(dossier_ids))
        .options(selectinload(Document.dossier).selectinload(Dossier.documents))
    )
    wanted = set(refs)
    return {(r.dossier_id, r.document_id): r for r in rows if (r.dossier_id, r.document_id) in wanted}
