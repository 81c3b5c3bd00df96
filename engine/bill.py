"""The bill a hospital cashier system sends at discharge (domain.md sections 3 and 4).

Amounts are integer fen, ratios integer basis points, quantities integer ten-thousandths.
These models check what can be checked without a policy (types, signs, dates); the checks that
need the policy (is the hospital level declared? is the tag known?) are in ``engine.checks``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import IntEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.errors import InputError, LimitExceeded, Problem
from engine.money import BP, MAX_AMOUNT, MAX_BILL_TOTAL, MAX_QTY_E4, MAX_UNIT_PRICE
from engine.validation import ID_PATTERN, TEXT_PATTERN, problems_from

#: Items of one bill: a real inpatient bill has hundreds; above this, split the bill.
MAX_ITEMS_PER_BILL = 10_000


class Category(IntEnum):
    """NHSA ``chrgitm_lv``: 01 甲类 (A), 02 乙类 (B), 03 丙类 / out of catalogue (C)."""

    A = 1
    B = 2
    C = 3


#: The codes the contract lists (proto ``Item.category``, README), and nothing else: no
#: lower case, no padding, no "1" or 甲 (a lenient reading would hide a HIS sending the wrong
#: column).
CATEGORY_NAMES = {
    "A": Category.A, "01": Category.A,
    "B": Category.B, "02": Category.B,
    "C": Category.C, "03": Category.C,
}  # fmt: skip
CATEGORY_RULE = "is not a category; use A, B or C (NHSA 01, 02, 03)"


def _category(v: Any) -> Category:
    if isinstance(v, Category):
        return v
    if not isinstance(v, str) or v not in CATEGORY_NAMES:
        raise ValueError(CATEGORY_RULE)
    return CATEGORY_NAMES[v]


#: Plausible dates: every date of a bill, a person or a tag lies in this range (README "Rules:
#: our choices"). Wide enough for any living patient and any table, narrow enough to catch a
#: unix timestamp or a typo in the year.
DATE_MIN = date(1900, 1, 1)
DATE_MAX = date(2199, 12, 31)
DATE_RULE = "is not a date; use YYYY-MM-DD"
RANGE_RULE = f"is outside {DATE_MIN} to {DATE_MAX}; dates are YYYY-MM-DD in that range"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(v: Any) -> date:
    """Strict ISO ``YYYY-MM-DD`` (or a ``date``, not a datetime) within DATE_MIN..DATE_MAX.
    pydantic alone takes ``"1552608000"`` (a unix timestamp) and ``"2019-03-15T00:00:00"``."""
    if isinstance(v, date) and not isinstance(v, datetime):
        d = v
    elif isinstance(v, str) and _ISO_DATE.fullmatch(v):
        try:
            d = date.fromisoformat(v)
        except ValueError:
            raise ValueError(DATE_RULE) from None
    else:
        raise ValueError(DATE_RULE)
    if not DATE_MIN <= d <= DATE_MAX:
        raise ValueError(RANGE_RULE)
    return d


IsoDate = Annotated[date, BeforeValidator(_iso_date)]

# Native (Rust-side) constraints keep parsing a 100-item bill fast; the error messages are
# rewritten per field by ``engine.validation.problems_from`` (see ``UNITS`` there).
Fen = Annotated[int, Strict(), Field(ge=0, le=MAX_AMOUNT)]
UnitFen = Annotated[int, Strict(), Field(ge=0, le=MAX_UNIT_PRICE)]
QtyE4 = Annotated[int, Strict(), Field(ge=0, le=MAX_QTY_E4)]
Bp = Annotated[int, Strict(), Field(ge=0, le=BP)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]

#: NHSA ``fixmedins_code``: 1 to 30 ASCII letters and digits (domain.md section 3).
HOSPITAL_RULE = "is not a hospital code; use the NHSA fixmedins_code, 1 to 30 letters and digits"
_HOSPITAL_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def is_hospital_code(v: object) -> bool:
    return isinstance(v, str) and 1 <= len(v) <= 30 and _HOSPITAL_CHARS.issuperset(v)


def _hospital(v: Any) -> str:
    if not is_hospital_code(v):
        raise ValueError(HOSPITAL_RULE)
    return v


Hospital = Annotated[str, BeforeValidator(_hospital)]


class TagSpan(BaseModel):
    """A person tag with an optional validity range (both ends inclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tag: Id
    valid_from: IsoDate | None = None
    valid_to: IsoDate | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, v: Any) -> Any:
        return {"tag": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _range(self) -> TagSpan:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id
    birth_date: IsoDate
    household: Id
    tags: tuple[TagSpan, ...] = ()
    #: the insured region (the policy tables' region code); a bureau imports only its own
    region: Annotated[str, Field(min_length=1, max_length=32, pattern=ID_PATTERN)] | None = None
    #: where the person lives, for a cadre's cover list (村 and 乡镇 names or codes); optional
    township: Annotated[str, Field(max_length=100, pattern=TEXT_PATTERN)] = ""
    village: Annotated[str, Field(max_length=100, pattern=TEXT_PATTERN)] = ""

    def tags_on(self, day: date) -> frozenset[str]:
        return frozenset(t.tag for t in self.tags if t.valid_on(day))

    def age_on(self, day: date) -> int:
        """Full years on ``day``."""
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: Annotated[str, Field(max_length=64, pattern=ID_PATTERN)] = ""
    name: Annotated[str, Field(max_length=200, pattern=TEXT_PATTERN)] = ""
    # JSON (stored bills, digests, files) carries the contract's code, so it parses back
    category: Annotated[
        Category,
        BeforeValidator(_category),
        PlainSerializer(lambda c: c.name, return_type=str, when_used="json"),
    ]
    qty_e4: QtyE4 = BP
    unit_price: UnitFen = 0
    amount: Fen
    unit_price_cap: UnitFen | None = None
    selfpay_ratio: Bp | None = None

    @model_validator(mode="after")
    def _b_only(self) -> Item:
        if self.selfpay_ratio is not None and self.category != Category.B:
            raise ValueError(
                f"selfpay_ratio {self.selfpay_ratio} is given for a category "
                f"{self.category.name} item; only category B items have a first self-pay ratio"
            )
        return self


def _check_dates(admission: date, discharge: date) -> None:
    if discharge < admission:
        raise ValueError(
            f"is before admission_date {admission}; discharge must be on or after admission"
        )


def born_by(admission: date, person: Person) -> Problem | None:
    """The problem of a bill admitting ``person`` before their birth, if it does."""
    if admission >= person.birth_date:
        return None
    return Problem(
        "admission_date",
        admission,
        f"is before the patient's birth_date {person.birth_date} (person {person.id!r}); "
        "a patient is admitted on or after their birth",
    )


def _check_total(items: tuple[Item, ...]) -> None:
    total = sum(i.amount for i in items)
    if total > MAX_BILL_TOTAL:
        raise ValueError(
            f"add up to {total} fen, above the limit {MAX_BILL_TOTAL} "
            "fen for one bill; split the bill"
        )


class _BillFields(BaseModel):
    """What a bill says besides who the patient is."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id
    hospital: Hospital
    region: Annotated[str, Field(min_length=1, max_length=32, pattern=ID_PATTERN)] | None = None
    hospital_level: Id
    admission_date: IsoDate
    discharge_date: IsoDate
    items: Annotated[tuple[Item, ...], Field(min_length=1, max_length=MAX_ITEMS_PER_BILL)]

    @field_validator("discharge_date")
    @classmethod
    def _dates(cls, discharge: date, info: ValidationInfo) -> date:
        admission = info.data.get("admission_date")
        if admission is not None:
            _check_dates(admission, discharge)
        return discharge

    @field_validator("items")
    @classmethod
    def _total(cls, items: tuple[Item, ...]) -> tuple[Item, ...]:
        _check_total(items)
        return items


class Bill(_BillFields):
    person: Person

    @property
    def year(self) -> int:
        """The accounting year: the calendar year of the discharge date."""
        return self.discharge_date.year


class BillRequest(_BillFields):
    """A bill as a hospital cashier system sends it to the service: the person by id only,
    looked up in the person registry."""

    person_id: Id

    def with_person(self, person: Person) -> Bill:
        """The full bill; every field was validated already, so only what needs the person is
        checked: InputError if the admission is before the person's birth."""
        p = born_by(self.admission_date, person)
        if p is not None:
            raise InputError([p])
        fields = {k: getattr(self, k) for k in _BillFields.model_fields}
        return Bill.model_construct(**fields, person=person)


def check_items_count(n: int, field: str = "items") -> None:
    """LimitExceeded when a bill has more than MAX_ITEMS_PER_BILL items (checked before any
    item is parsed)."""
    if n > MAX_ITEMS_PER_BILL:
        raise LimitExceeded(field, "MAX_ITEMS_PER_BILL", MAX_ITEMS_PER_BILL, n, "split the bill")


def _precheck(data: Any) -> None:
    items = data.get("items") if isinstance(data, dict) else None
    if isinstance(items, list | tuple):
        check_items_count(len(items))


def parse_bill_request(data: Any) -> BillRequest:
    _precheck(data)
    try:
        return BillRequest.model_validate(data)
    except ValidationError as err:
        raise InputError(problems_from(err)) from None


def parse_bill(data: Any) -> Bill:
    """A bill from plain data (JSON-like), or InputError naming every bad field."""
    _precheck(data)
    try:
        bill = Bill.model_validate(data)
    except ValidationError as err:
        raise InputError(problems_from(err)) from None
    p = born_by(bill.admission_date, bill.person)
    if p is not None:
        raise InputError([p])
    return bill
