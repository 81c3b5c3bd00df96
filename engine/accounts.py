"""Year-to-date accounts (domain.md section 6).

Per person (or household, for household alerts), accounting year and layer id: deductible used,
eligible amount accumulated, paid, self-pay accumulated; per person and year: settled admissions.
Accounts are keyed by the layer *id*, so a table version that starts mid-year continues the
accounts of the layers it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from engine.errors import NO_VALUE, InputError, Problem
from engine.money import MAX_ACCOUNT

ACCOUNT_FIELDS = ("deductible_used", "eligible_cum", "paid", "selfpay_cum")


@dataclass(frozen=True)
class LayerAccount:
    deductible_used: int = 0
    eligible_cum: int = 0
    paid: int = 0
    selfpay_cum: int = 0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.deductible_used, self.eligible_cum, self.paid, self.selfpay_cum)

    # field by field, no tuples nor generator (a Settle's moves: a few a call)
    def minus(self, other: LayerAccount) -> LayerAccount:
        return LayerAccount(
            self.deductible_used - other.deductible_used,
            self.eligible_cum - other.eligible_cum,
            self.paid - other.paid,
            self.selfpay_cum - other.selfpay_cum,
        )

    def plus(self, other: LayerAccount) -> LayerAccount:
        return LayerAccount(
            self.deductible_used + other.deductible_used,
            self.eligible_cum + other.eligible_cum,
            self.paid + other.paid,
            self.selfpay_cum + other.selfpay_cum,
        )

    def is_zero(self) -> bool:
        """All four fields 0 (``== ZERO`` without the dataclass's two tuples)."""
        return not (self.deductible_used or self.eligible_cum or self.paid or self.selfpay_cum)


ZERO = LayerAccount()


def above_limit(acc: LayerAccount) -> tuple[int, int] | None:
    """(index in ACCOUNT_FIELDS, value) of the first field above MAX_ACCOUNT, or None."""
    for k, v in enumerate(acc.as_tuple()):
        if v > MAX_ACCOUNT:
            return k, v
    return None


def limit_rule(scope: str, owner: str, year: int, layer_name: str, value: int) -> str:
    """Why a bill that would take an account field to ``value`` is refused (README, Limits)."""
    return (
        f"would reach {value:,} fen for {scope} {owner!r} in {year} ({layer_name}), above the "
        f"limit {MAX_ACCOUNT:,} fen (10^15) of a year-to-date account; the bill is refused and "
        "nothing is written"
    )


def limit_problem(
    layer_id: str, field: int, value: int, scope: str, owner: str, year: int, layer_name: str
) -> Problem:
    """The InputError problem of a bill refused at the account limit, field
    ``accounts.<layer id>.<account field>``."""
    return Problem(
        f"accounts.{layer_id}.{ACCOUNT_FIELDS[field]}",
        NO_VALUE,
        limit_rule(scope, owner, year, layer_name, value),
    )


@dataclass(frozen=True)
class YearAccounts:
    """One person's (or household's) accounts for one accounting year."""

    layers: dict[str, LayerAccount] = field(default_factory=dict)
    admissions: int = 0

    def get(self, layer_id: str) -> LayerAccount:
        return self.layers.get(layer_id, ZERO)

    def with_layer(self, layer_id: str, acc: LayerAccount) -> YearAccounts:
        return replace(self, layers={**self.layers, layer_id: acc})

    def normalized(self) -> YearAccounts:
        """The same accounts without all-zero layer entries (zero and absent are the same)."""
        for a in self.layers.values():
            if a.is_zero():
                break
        else:
            return self
        return YearAccounts(
            {k: a for k, a in self.layers.items() if not a.is_zero()}, self.admissions
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "admissions": self.admissions,
            "layers": {
                k: dict(zip(ACCOUNT_FIELDS, v.as_tuple(), strict=True))
                for k, v in sorted(self.layers.items())
                if v != ZERO
            },
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> YearAccounts:
        """From ``{"admissions": n, "layers": {id: {field: fen}}}``; InputError naming bad fields."""
        if data is None:
            return cls()
        problems: list[Problem] = []
        if not isinstance(data, dict):
            raise InputError.one(where, data, "is not a mapping of admissions and layers")
        for k in data:
            if k not in ("admissions", "layers"):
                problems.append(
                    Problem(f"{where}.{k}", k, "is not a known field (admissions, layers)")
                )
        adm = data.get("admissions", 0)
        if isinstance(adm, bool) or not isinstance(adm, int) or adm < 0:
            problems.append(Problem(f"{where}.admissions", adm, "is not a non-negative count"))
        layers: dict[str, LayerAccount] = {}
        raw = data.get("layers", {}) or {}
        if not isinstance(raw, dict):
            problems.append(Problem(f"{where}.layers", raw, "is not a mapping by layer id"))
            raw = {}
        for lid, vals in raw.items():
            p = f"{where}.layers.{lid}"
            if not isinstance(vals, dict):
                problems.append(Problem(p, vals, "is not a mapping of account fields"))
                continue
            for k, v in vals.items():
                if k not in ACCOUNT_FIELDS:
                    problems.append(
                        Problem(
                            f"{p}.{k}", k, f"is not an account field ({', '.join(ACCOUNT_FIELDS)})"
                        )
                    )
                elif isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    problems.append(Problem(f"{p}.{k}", v, "is not non-negative whole fen"))
                elif v > MAX_ACCOUNT:
                    problems.append(Problem(f"{p}.{k}", v, f"is above the limit {MAX_ACCOUNT} fen"))
            layers[str(lid)] = LayerAccount(
                **{k: v for k, v in vals.items() if k in ACCOUNT_FIELDS and isinstance(v, int)}
            )
        if problems:
            raise InputError(problems)
        return cls(layers=layers, admissions=adm)


@dataclass(frozen=True)
class Opening:
    """Opening accounts for a set of persons and households, by year.

    ``person[(person_id, year)]`` and ``household[(household_id, year)]``; missing means zero.
    """

    person: dict[tuple[str, int], YearAccounts] = field(default_factory=dict)
    household: dict[tuple[str, int], YearAccounts] = field(default_factory=dict)

    def person_year(self, pid: str, year: int) -> YearAccounts:
        return self.person.get((pid, year), YearAccounts())

    def household_year(self, hid: str, year: int) -> YearAccounts:
        return self.household.get((hid, year), YearAccounts())
