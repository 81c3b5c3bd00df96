"""Domain errors. Every one says what was wrong, with which value, and how to fix it.

Adapters map these (and only these) to their own error forms: gRPC status codes, CLI exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def show(value: Any) -> str:
    """A value as an error message shows it: strings quoted, everything else as Python prints it."""
    if isinstance(value, str):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a dotted path), what value, which rule it breaks."""

    field: str
    value: Any
    rule: str

    def __str__(self) -> str:
        if self.value is _NO_VALUE:
            return f"{self.field}: {self.rule}"
        return f"{self.field}: {show(self.value)} {self.rule}"


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE: Any = _NoValue()
NO_VALUE: Any = _NO_VALUE


class OnestopError(Exception):
    """Base of every error the engine raises on purpose."""


class InputError(OnestopError):
    """A bill, person, account or request is not acceptable. Nothing was changed."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @classmethod
    def one(cls, field: str, value: Any, rule: str) -> InputError:
        return cls([Problem(field, value, rule)])


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy table: the file, the path inside it, the reason."""

    file: str
    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"


class PolicyError(OnestopError):
    """A policy table (or a set of them) is inconsistent and was refused as a whole."""

    def __init__(self, problems: list[PolicyProblem]):
        if not problems:
            raise ValueError("PolicyError needs at least one problem")
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class NotFound(OnestopError):
    """Something named in a request does not exist (a person, a settlement, a policy)."""

    def __init__(self, what: str, key: Any, hint: str = ""):
        self.what, self.key = what, key
        msg = f"{what} {show(key)} not found"
        super().__init__(f"{msg}; {hint}" if hint else msg)


class Conflict(OnestopError):
    """The request contradicts what is already stored (a reused request id with another bill,
    an overlapping policy range, a reversal of a reversal)."""


class DuplicateRequest(Conflict):
    """Another transaction committed a settlement with this request id first.

    A store raises it from ``settlements.add`` or at the latest from ``commit``; nothing of the
    unit of work is written. The twin is committed, so the use case answers with a replay of it
    (or a Conflict when its bill differs)."""

    def __init__(self, request_id: str):
        self.request_id = request_id
        super().__init__(
            f"request_id {request_id!r} was committed by another request at the same time"
        )


class BillSettled(Conflict):
    """The bill (hospital, bill id) has a settlement that is settled and not reversed.

    Raised by the use case's check and, when two transactions race past it, by the store (a
    unique index on the active settlements of a bill); nothing of the unit of work is written.
    The message names only the bill: never another window's settlement or request id."""

    def __init__(self, hospital: str, bill_id: str):
        self.hospital, self.bill_id = hospital, bill_id
        super().__init__(
            f"bill {bill_id!r} of hospital {hospital!r} is already settled and not reversed; "
            "to settle it again, reverse that settlement first (by the request id it was "
            "settled with), or check the bill id and hospital code"
        )
