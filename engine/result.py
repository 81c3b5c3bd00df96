"""The result of one settlement (domain.md section 7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from engine.accounts import LayerAccount

#: Why a layer did not apply; index = the code the kernel writes. '' = it applied.
REASONS = ("", "tags_any", "tags_none", "age_min", "age_max", "level", "no_variant")
#: Which limit bound a layer's pay (or the patient's share, for a backstop).
#: "budget": the remaining balance of the fund's hard budget (domain.md section 12).
CAPS = ("", "admission_cap", "annual_cap", "max_share", "annual_ceiling", "budget")


@dataclass(frozen=True)
class Buckets:
    total: int
    in_scope: int
    pre_selfpay: int
    over_limit: int
    out_of_catalogue: int

    def check(self) -> None:
        parts = self.in_scope + self.pre_selfpay + self.over_limit + self.out_of_catalogue
        assert parts == self.total, f"buckets {parts} != total {self.total}"


@dataclass(frozen=True)
class LayerResult:
    layer_id: str
    kind: str
    fund_code: str
    settle_at: str
    scope: str
    reason: str  # '' when the layer applied, else a code of REASONS
    variant: int  # index of the variant used, -1 when not applied
    variant_label: str
    base: int
    deductible: int
    eligible: int
    pay: int  # what the fund pays (0 for alert layers)
    relief: int  # suggested relief of an alert layer (not paid, not in conservation)
    cap: str  # '' or a code of CAPS
    account: LayerAccount  # the layer's year-to-date account after this bill
    alert: bool = False
    name: str = ""  # the layer's display name, and its Chinese name, from the table
    name_zh: str = ""

    @property
    def applied(self) -> bool:
        return self.reason == ""


@dataclass(frozen=True)
class Alert:
    person: str
    household: str
    layer: str
    year: int
    selfpay_cum: int
    relief: int


@dataclass(frozen=True)
class Settlement:
    bill_id: str
    hospital: str  # the hospital's code (NHSA fixmedins_code): a bill is (hospital, bill_id)
    person_id: str
    household: str
    region: str
    policy: str  # label of the table used: region code and effective range
    year: int
    discharge_date: date
    admission_no: int  # this admission's number in the person's accounting year (1 = first)
    buckets: Buckets
    layers: tuple[LayerResult, ...]
    window_pay: int  # what the patient pays at the window
    net_selfpay: int  # what the patient bears after every layer, after-discharge ones included
    admissions_after: int

    @property
    def funds_total(self) -> int:
        return sum(r.pay for r in self.layers)

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(
            Alert(
                self.person_id,
                self.household,
                r.layer_id,
                self.year,
                r.account.selfpay_cum,
                r.relief,
            )
            for r in self.layers
            if r.alert
        )

    def check_conservation(self) -> None:
        self.buckets.check()
        assert self.funds_total + self.net_selfpay == self.buckets.total, "conservation broken"

    def to_dict(self) -> dict[str, Any]:
        """The settlement as plain JSON values: ``dataclasses.asdict`` of it (layers as a list),
        the discharge date in ISO form, plus ``funds_total`` and ``alerts``. Built field by
        field: ``asdict``'s recursive deep copies were ~1.8 ms of a 6.5 ms Settle (every
        Settle stores it); tests/test_ledger_store.py holds the two equal."""
        d = dict(vars(self))
        d["discharge_date"] = self.discharge_date.isoformat()
        d["buckets"] = dict(vars(self.buckets))
        d["layers"] = [{**vars(r), "account": dict(vars(r.account))} for r in self.layers]
        d["funds_total"] = self.funds_total
        d["alerts"] = [dict(vars(a)) for a in self.alerts]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settlement:
        """Inverse of ``to_dict`` (derived fields are recomputed, not read)."""
        layers = tuple(
            LayerResult(**{**r, "account": LayerAccount(**r["account"])}) for r in d["layers"]
        )
        skip = {"layers", "buckets", "discharge_date", "funds_total", "alerts", "hospital"}
        return cls(
            **{k: v for k, v in d.items() if k not in skip},
            hospital=d.get("hospital", ""),  # settlements stored before hospitals: ''
            discharge_date=date.fromisoformat(d["discharge_date"]),
            buckets=Buckets(**d["buckets"]),
            layers=layers,
        )
