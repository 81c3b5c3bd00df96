"""The policy table as data (domain.md section 5), validated by pydantic.

Structure and types are checked here; cross-references (levels in maps, declared tags,
increasing segments, layer order) are checked in ``engine.policy.checks`` so that every problem
of a table is reported at once.

Money is integer fen, ratios integer basis points (10000 = 100%). A parameter that may differ by
hospital level is written either as one number or as a map ``{level: number}``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from engine.money import BP, MAX_AMOUNT

BUCKETS = ("in_scope", "pre_selfpay", "over_limit", "out_of_catalogue")
Bucket = Literal["in_scope", "pre_selfpay", "over_limit", "out_of_catalogue"]


def _number_or_map(hi: int, unit: str) -> Any:
    def one(v: Any, where: str = "") -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{where}{v!r} is not a whole number; {unit}")
        if v < 0:
            raise ValueError(f"{where}{v} is negative; {unit}")
        if v > hi:
            raise ValueError(f"{where}{v} is above {hi}; {unit}")
        return v

    def check(v: Any) -> int | dict[str, int]:
        if isinstance(v, dict):
            if not v:
                raise ValueError("is an empty map; give one number or a value for each level")
            return {str(k): one(x, f"level {k!r}: ") for k, x in v.items()}
        return one(v)

    return BeforeValidator(check)


AmountByLevel = Annotated[
    int | dict[str, int], _number_or_map(MAX_AMOUNT, "amounts are non-negative fen")
]
RatioByLevel = Annotated[
    int | dict[str, int],
    _number_or_map(BP, "ratios are basis points from 0 to 10000 (7000 = 70%)"),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _code(pattern: str, what: str) -> Any:
    rx = re.compile(pattern)

    def check(v: Any) -> str:
        if isinstance(v, int | float) and not isinstance(v, bool):
            raise ValueError(f'{v!r} is a number; write codes as text in quotes, e.g. "{v}"')
        if not isinstance(v, str) or not rx.fullmatch(v):
            raise ValueError(f"{v!r} is not {what}")
        return v

    return BeforeValidator(check)


def _ratio(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(
            f"{v!r} is not a whole number; ratios are basis points from 0 to 10000 (1000 = 10%)"
        )
    if not 0 <= v <= BP:
        raise ValueError(f"{v} is outside 0..10000; ratios are basis points (1000 = 10%)")
    return v


Ratio = Annotated[int, BeforeValidator(_ratio)]
FundCode = Annotated[str, _code(r"[0-9]{6}", 'six digits (NHSA fund_pay_type, e.g. "390100")')]
RegionCode = Annotated[
    str, _code(r"[A-Za-z0-9_.\-]{1,64}", 'a region code (letters, digits, _ . -; e.g. "451423")')
]
Key = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deductible(_Strict):
    basis: Literal["admission", "year"] = "admission"
    amount: AmountByLevel = 0
    later_admissions: AmountByLevel | None = None


class Segment(_Strict):
    up_to: Annotated[int, Field(gt=0, le=MAX_AMOUNT)] | None = None
    ratio: RatioByLevel


class When(_Strict):
    tags_any: tuple[Key, ...] = ()
    levels: tuple[Key, ...] = ()


class Variant(_Strict):
    """One set of parameters; the first variant whose ``when`` matches is used."""

    when: When | None = None
    label: Annotated[str, Field(max_length=100)] = ""
    # reimburse and alert
    deductible: Deductible | None = None
    segments: tuple[Segment, ...] | None = None
    tiers_basis: Literal["admission", "year"] = "admission"
    admission_cap: AmountByLevel | None = None
    annual_cap: AmountByLevel | None = None
    # backstop
    max_share: RatioByLevel | None = None
    annual_ceiling: AmountByLevel | None = None
    # alert
    threshold: AmountByLevel | None = None
    # provenance: parameter name -> source key(s) declared in the table's ``sources``
    source: dict[str, Key | tuple[Key, ...]] = {}


class Eligibility(_Strict):
    tags_any: tuple[Key, ...] = ()
    tags_none: tuple[Key, ...] = ()
    age_min: Annotated[int, Field(ge=0, le=150)] | None = None
    age_max: Annotated[int, Field(ge=0, le=150)] | None = None
    levels: tuple[Key, ...] = ()


class Layer(_Strict):
    id: Key
    name: Name
    name_zh: Annotated[str, Field(max_length=200)] = ""
    fund_code: FundCode
    kind: Literal["reimburse", "backstop", "alert"]
    covers: tuple[Bucket, ...] = ("in_scope",)
    settle_at: Literal["window", "after_discharge"] = "window"
    scope: Literal["person", "household"] = "person"
    eligibility: Eligibility = Eligibility()
    variants: Annotated[tuple[Variant, ...], Field(min_length=1)]
    source: dict[str, Key | tuple[Key, ...]] = {}
    note: str = ""


class Region(_Strict):
    code: RegionCode
    name: Name


class PolicyTable(_Strict):
    region: Region
    effective_from: date
    effective_to: date | None = None
    title: str = ""
    hospital_levels: Annotated[tuple[Key, ...], Field(min_length=1)]
    tags: tuple[Key, ...] = ()
    b_selfpay_ratio: Ratio
    layers: Annotated[tuple[Layer, ...], Field(min_length=1)]
    sources: dict[Key, str] = {}
    assumptions: dict[Key, str] = {}
    source: dict[str, Key | tuple[Key, ...]] = {}

    def covers_date(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    @property
    def label(self) -> str:
        end = self.effective_to.isoformat() if self.effective_to else "open"
        return f"{self.region.code} {self.effective_from.isoformat()}..{end}"


def by_level(value: int | dict[str, int] | None, level: str, default: int = 0) -> int:
    """The value of a number-or-map parameter at one hospital level."""
    if value is None:
        return default
    if isinstance(value, dict):
        return value[level]
    return value
