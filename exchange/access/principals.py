"""Who is calling: a client of an office (or of the exchange's operator) and its roles."""

from __future__ import annotations

from dataclasses import dataclass

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

    def has_any(self, roles) -> bool:
        return bool(self.roles & set(roles))
