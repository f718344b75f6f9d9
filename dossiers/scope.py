"""Whose data a caller reads: one typed scope, required by every service that lists or reads.

``Scope.everything()`` is the exchange's administrator (every office's agreements, ASPEC
requests, audit entries and statistics; the access policy still gives it no dossier's
content: the operator is no office). ``Scope.office(code)`` is an office's client or person:
what that office is party to, nothing else. There is no "no scope": a bare ``None`` is
refused wherever a scope is expected, so a handler that forgets to pass one fails loudly
instead of reading every office's data.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Scope", "require_scope"]

_EVERYTHING = object()


class Scope:
    """Immutable; build it with :meth:`everything` or :meth:`office`."""

    __slots__ = ("_code",)
    _code: str | None

    def __init__(self, _token: object, code: str | None) -> None:
        if _token is not _EVERYTHING:
            raise TypeError("build a Scope with Scope.everything() or Scope.office(code)")
        object.__setattr__(self, "_code", code)

    @classmethod
    def everything(cls) -> Scope:
        return cls(_EVERYTHING, None)

    @classmethod
    def office(cls, code: str) -> Scope:
        if not isinstance(code, str) or not code:
            raise TypeError(f"an office scope needs an office code, not {code!r}")
        return cls(_EVERYTHING, code)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Scope is immutable")

    @property
    def is_everything(self) -> bool:
        return self._code is None

    @property
    def code(self) -> str:
        """The office of an office scope; asking the exchange-wide scope for one is a bug."""
        if self._code is None:
            raise ValueError("the exchange-wide scope has no office")
        return self._code

    @property
    def office_or_none(self) -> str | None:
        """For records (an audit entry's ``office`` column), never to decide what is read."""
        return self._code

    def includes(self, *offices: str | None) -> bool:
        """Whether something belonging to (any of) ``offices`` is within the scope."""
        return self._code is None or self._code in offices

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scope) and other._code == self._code

    def __hash__(self) -> int:
        return hash(("Scope", self._code))

    def __repr__(self) -> str:
        return "Scope.everything()" if self._code is None else f"Scope.office({self._code!r})"


def require_scope(scope: object) -> Scope:
    """``scope`` itself when it is a :class:`Scope`; anything else (``None``, an office code) raises."""
    if not isinstance(scope, Scope):
        raise TypeError(f"a Scope is required (Scope.everything() or Scope.office(code)), not {scope!r}")
    return scope
