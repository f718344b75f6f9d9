"""Who is calling: a client of an office (or of the exchange's operator) and its roles."""

from __future__ import annotations

from dataclasses import dataclass

from dossiers.scope import Scope

ADMIN = "admin"
OFFICE_ADMIN = "office-admin"
DEPOSITOR = "depositor"
EXAMINER = "examiner"


@dataclass(frozen=True)
class Principal:
    client_id: str
    office: str | None
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def scope(self) -> Scope:
        """Whose data this caller reads: the one place a principal becomes a scope. The exchange's
        admin (no office, role ``admin`` alone) reads exchange-wide; anyone else their office."""
        return Scope.everything() if self.is_admin else Scope.office(self.office)  # type: ignore[arg-type]

    def has_any(self, roles) -> bool:
        return bool(self.roles & set(roles))
