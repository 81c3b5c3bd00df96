"""Domain errors. Every one says what was wrong, with which value, and how to fix it.

Adapters map these (and only these) to their own error forms: gRPC status codes, CLI exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How much of one value an error message echoes, and how many problems it lists: a message
#: (and a gRPC status, whose trailers clients cap at 8 KiB) stays small whatever was sent.
MAX_SHOWN = 80
MAX_PROBLEMS = 20
MAX_FIELD = 120  # a field path (a mistyped key of any length may be part of it)
MAX_REASON = 300  # a rule or reason (which may quote the input, as YAML's errors do)


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was: 'abc… (6000 characters)'."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def show(value: Any) -> str:
    """A value as an error message shows it: strings quoted, everything else as Python prints it;
    at most MAX_SHOWN characters of it (a 6,000-character name is not echoed in full)."""
    if isinstance(value, str):
        if len(value) <= MAX_SHOWN:
            return repr(value)
        return f"{value[:MAX_SHOWN]!r}… ({len(value)} characters)"
    return clip(str(value))


def some(names: list[str], n: int = 10) -> str:
    """At most ``n`` names, comma-separated, then how many more: for rules that list choices."""
    head = ", ".join(names[:n])
    return f"{head} and {len(names) - n} more" if len(names) > n else head


def listed(problems: list[Any], sep: str) -> str:
    """The first MAX_PROBLEMS problems as text, joined, then 'and N more problems'."""
    head = sep.join(str(p) for p in problems[:MAX_PROBLEMS])
    return head + sep + more_problems(len(problems)) if len(problems) > MAX_PROBLEMS else head


def more_problems(n: int) -> str:
    """What stands for the problems after the first MAX_PROBLEMS of ``n``."""
    more = n - MAX_PROBLEMS
    return f"and {more} more problem{'s' if more > 1 else ''}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a dotted path), what value, which rule it breaks."""

    field: str
    value: Any
    rule: str

    def __str__(self) -> str:
        if self.value is _NO_VALUE:
            return f"{clip(self.field, MAX_FIELD)}: {clip(self.rule, MAX_REASON)}"
        return f"{clip(self.field, MAX_FIELD)}: {show(self.value)} {clip(self.rule, MAX_REASON)}"


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
        super().__init__(listed(self.problems, "; "))

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
        reason = clip(self.reason, MAX_REASON)
        return f"{where}: {self.path}: {reason}" if self.path else f"{where}: {reason}"


class PolicyError(OnestopError):
    """A policy table (or a set of them) is inconsistent and was refused as a whole."""

    def __init__(self, problems: list[PolicyProblem]):
        if not problems:
            raise ValueError("PolicyError needs at least one problem")
        self.problems = list(problems)
        super().__init__(listed(self.problems, "\n"))


class NotFound(OnestopError):
    """Something named in a request does not exist (a person, a settlement, a policy)."""

    def __init__(self, what: str, key: Any, hint: str = ""):
        self.what, self.key = what, key
        msg = f"{what} {show(key)} not found"
        super().__init__(f"{msg}; {hint}" if hint else msg)


class LimitExceeded(OnestopError):
    """A request is larger than a stated limit (items per bill, persons per import, ...).
    Nothing was changed; split the request. ``limit`` is the setting's name."""

    def __init__(
        self, field: str, limit: str, maximum: int, given: int, hint: str = "split the request"
    ):
        self.field, self.limit, self.maximum, self.given = field, limit, maximum, given
        super().__init__(f"{field}: {given} exceed the limit {limit} = {maximum}; {hint}")


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


class FailedPrecondition(Conflict):
    """The request is well formed but the state of what it names does not allow it: a claim
    asked to take a transition its status does not have, a settlement with a paid claim asked
    to be reversed. Nothing was changed. (A Conflict, so every adapter that knows Conflict
    refuses it; an adapter may map it first, e.g. to gRPC FAILED_PRECONDITION.)"""
