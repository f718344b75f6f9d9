from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from dossiers import stats
from dossiers.errors import InvalidRequest
from dossiers.scope import Scope

from ..access.principals import ADMIN, OFFICE_ADMIN, Principal
from ..deps import ScopeDep, SessionDep, office_not_found, require

router = APIRouter(prefix="/v1/stats", tags=["stats"])

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class StatsRow(BaseModel):
    month: date
    office: str
    partner: str | None  # None: the office's own figures
    deposits: int
    documents: int
    bytes: int
    accesses: int
    aspec_accepted: int
    aspec_rejected: int
    aspec_withdrawn: int


class StatsTotals(BaseModel):
    deposits: int
    documents: int
    bytes: int
    accesses: int
    aspec_accepted: int
    aspec_rejected: int
    aspec_withdrawn: int


class StatsRead(BaseModel):
    months: list[StatsRow]
    totals: StatsTotals


def stats_scope(scope: ScopeDep, office: str | None = None,
                principal: Principal = require(ADMIN, OFFICE_ADMIN)) -> Scope:
    """The rows the caller reads: the exchange's admin every office's, or the one named by
    ``?office=``; an office-admin its own, and another office reads as one that does not exist."""
    if office and not scope.includes(office):
        raise office_not_found(office)
    return Scope.office(office) if office else scope


def since_month(since: str | None = None) -> date | None:
    """``YYYY-MM`` or ``YYYY-MM-DD``; a date counts from the first day of its month."""
    if since is None:
        return None
    try:
        if m := _MONTH.match(since):
            return date(int(m[1]), int(m[2]), 1)
        return stats.month_start(date.fromisoformat(since))
    except ValueError:
        raise InvalidRequest("since must be a month (YYYY-MM) or a date (YYYY-MM-DD)") from None


@router.get("", response_model=StatsRead)
def get_stats(session: SessionDep, scope: Annotated[Scope, Depends(stats_scope)],
              since: Annotated[date | None, Depends(since_month)]):
    """Monthly figures per office (``partner`` null) and per office pair, with their totals.
    The exchange's admin sees every office (or the one named by ``office``); an office-admin
    sees the rows its own office is part of."""
    rows = stats.summary(session, scope=scope, since=since)
    return StatsRead(months=[StatsRow(**r) for r in rows], totals=StatsTotals(**stats.totals(rows)))
