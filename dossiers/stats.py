"""Monthly statistics: ``stats_monthly`` recomputed from the source tables.

One row per (month, office, partner). ``partner_code`` is "" for an office's own figures
(deposits, documents, bytes received that month); otherwise the row is about a pair:

- ``accesses``: granted ``access.decision`` audit entries where the reading office
  (``partner_code``) is not the dossier's office (``office_code``);
- ``aspec_*``: ASPEC requests filed that month by the second office (``office_code``) on
  the first office's results (``partner_code``), by their current status.

Months are calendar months in UTC, stored as their first day. Each figure is aggregated in
SQL, one month at a time; the audit entry's ``dossier_office`` is read with SQLAlchemy's
JSON index (``->>`` on PostgreSQL, ``json_extract`` on SQLite).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from dossiers.db import utcnow
from dossiers.models import AspecRequest, AuditEntry, Document, Dossier, StatsMonthly
from dossiers.scope import Scope, require_scope

COUNTERS = ("deposits", "documents", "bytes", "accesses", "aspec_accepted", "aspec_rejected", "aspec_withdrawn")
ASPEC_STATUSES = ("accepted", "rejected", "withdrawn")


def month_start(d: date | datetime) -> date:
    return date(d.year, d.month, 1)


def add_months(month: date, n: int) -> date:
    y, m = divmod(month.year * 12 + month.month - 1 + n, 12)
    return date(y, m + 1, 1)


def _at(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def rollup(session_factory: sessionmaker, *, months: int = 13, now: datetime | None = None) -> int:
    """Recompute the rows of the last ``months`` calendar months (the current one included);
    return how many rows those months now hold. Idempotent: the months' rows are replaced."""
    if months < 1:
        raise ValueError("months must be at least 1")
    now = now or utcnow()
    last = month_start(now)
    window = [add_months(last, -i) for i in range(months - 1, -1, -1)]
    rows: dict[tuple[date, str, str], dict[str, int]] = {}
    for month in window:
        with session_factory.begin() as s:
            for (office, partner), figures in _month(s, _at(month), _at(add_months(month, 1))).items():
                rows[(month, office, partner)] = figures
    values = [{"month": m, "office_code": o, "partner_code": p, **{c: f.get(c, 0) for c in COUNTERS},
               "computed_at": now} for (m, o, p), f in sorted(rows.items())]
    with session_factory.begin() as s:
        s.execute(delete(StatsMonthly).where(StatsMonthly.month >= window[0],
                                             StatsMonthly.month < add_months(last, 1)))
        if values:
            # An upsert rather than a plain insert: a concurrent rollup that committed its rows
            # between this delete and this insert is overwritten, not a unique violation.
            insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
            stmt = insert(StatsMonthly).values(values)
            stmt = stmt.on_conflict_do_update(
                index_elements=["month", "office_code", "partner_code"],
                set_={c: getattr(stmt.excluded, c) for c in (*COUNTERS, "computed_at")})
            s.execute(stmt)
    return len(values)


def _month(s: Session, start: datetime, end: datetime) -> dict[tuple[str, str], dict[str, int]]:
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    received = (Dossier.received_at >= start) & (Dossier.received_at < end)
    for office, n in s.execute(select(Dossier.office_code, func.count()).where(received)
                               .group_by(Dossier.office_code)):
        out[(office, "")]["deposits"] = n
    for office, n, size in s.execute(
            select(Dossier.office_code, func.count(Document.id), func.coalesce(func.sum(Document.size), 0))
            .join(Document, Document.dossier_id == Dossier.id).where(received).group_by(Dossier.office_code)):
        out[(office, "")].update(documents=n, bytes=int(size))

    owner = AuditEntry.detail["dossier_office"].as_string()
    for office, reader, n in s.execute(
            select(owner, AuditEntry.office_code, func.count())
            .where(AuditEntry.action == "access.decision", AuditEntry.outcome == "granted",
                   AuditEntry.at >= start, AuditEntry.at < end,
                   AuditEntry.office_code.is_not(None), owner.is_not(None), owner != AuditEntry.office_code)
            .group_by(owner, AuditEntry.office_code)):
        out[(office, reader)]["accesses"] = n

    for so, fo, status, n in s.execute(
            select(AspecRequest.so_office, AspecRequest.fo_office, AspecRequest.status, func.count())
            .where(AspecRequest.created_at >= start, AspecRequest.created_at < end,
                   AspecRequest.status.in_(ASPEC_STATUSES))
            .group_by(AspecRequest.so_office, AspecRequest.fo_office, AspecRequest.status)):
        out[(so, fo)][f"aspec_{status}"] = n
    return out


def summary(session: Session, *, scope: Scope, since: date | None) -> list[dict]:
    """The rolled-up rows, oldest month first. The exchange-wide scope: every row; an office's:
    the rows about that office, its own figures and every pair it is part of (either side).
    ``partner`` is None in an office's own figures."""
    require_scope(scope)
    q = select(StatsMonthly)
    if not scope.is_everything:
        q = q.where((StatsMonthly.office_code == scope.code) | (StatsMonthly.partner_code == scope.code))
    if since is not None:
        q = q.where(StatsMonthly.month >= month_start(since))
    q = q.order_by(StatsMonthly.month, StatsMonthly.office_code, StatsMonthly.partner_code)
    return [{"month": r.month, "office": r.office_code, "partner": r.partner_code or None,
             **{c: getattr(r, c) for c in COUNTERS}} for r in session.scalars(q)]


def totals(rows: list[dict]) -> dict[str, int]:
    """Each counter summed over ``rows`` (as :func:`summary` returns them)."""
    return {c: sum(r[c] for r in rows) for c in COUNTERS}
