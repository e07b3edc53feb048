"""A secret (an API key) that can be passed around settings and objects without ever showing itself."""

from __future__ import annotations


class Secret:
    """Its repr and str are `***`, so that no log line, error message or page that prints the object that
    holds it can leak it; `reveal()` is the one way to the value, at the point of use."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
