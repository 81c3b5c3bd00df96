"""What the fund use cases share: the settlement service's stores and clock, the fund
declarations in force, a fund known by its declaration or a layer, and the checks of the
free text and amounts a caller gives."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from engine.errors import InputError, NotFound
from engine.funds import Fund, FundBook
from engine.policy.model import Layer, PolicyTable

if TYPE_CHECKING:
    from engine.service.usecases import SettlementService

MAX_NOTE = 1_000  # characters of a note, reason or payer
MAX_PAYMENT_REF = 128


def text_field(field: str, value: str, limit: int = MAX_NOTE, required: bool = False) -> str:
    if not isinstance(value, str):
        raise InputError.one(field, value, "is not text")
    if required and not value.strip():
        raise InputError.one(field, value, "is empty")
    if len(value) > limit:
        raise InputError.one(field, value, f"is {len(value)} characters long; at most {limit}")
    if "\x00" in value:
        raise InputError.one(field, value, "holds NUL; use plain text")
    return value


def amount_field(field: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError.one(field, value, "is not a whole number of fen")
    if not lo <= value <= hi:
        raise InputError.one(field, value, f"is outside {lo:,} to {hi:,} fen")
    return value


class FundBase:
    """The stores of ``service`` (a ``SettlementService``) and the helpers of every fund use
    case; ``FundService`` (``engine.service.funds``) is built from its subclasses."""

    def __init__(self, service: SettlementService):
        self.s = service
        self._uow = service._uow
        self._clock = service._clock
        self._new_id = service._new_id

    def book(self) -> FundBook:
        """The fund declarations in force (cached, like the policy tables)."""
        return self.s.fund_book()

    def _fund_known(self, region: str, fund_code: str) -> tuple[Fund | None, Layer | None]:
        """The fund's declaration and its first layer in the region's tables; NotFound when
        neither exists."""
        from engine.service.inputs import check_key

        check_key("region", region)
        check_key("fund_code", fund_code)
        fund = self.book().get(region, fund_code)
        layer = next(
            (
                x
                for t in self.s.policies().tables
                if t.region.code == region
                for x in t.layers
                if x.fund_code == fund_code
            ),
            None,
        )
        if fund is None and layer is None:
            raise NotFound(
                "fund", f"{region}/{fund_code}",
                "no funds file declares it and no policy table of the region has a layer with "
                "that fund code",
            )  # fmt: skip
        return fund, layer

    def _table_on(self, region: str, on: date) -> PolicyTable | None:
        for t in self.s.policies().tables:
            if t.region.code == region and t.covers_date(on):
                return t
        return None

    @staticmethod
    def _key(field: str, value: str) -> None:
        from engine.service.inputs import check_key

        if not value:
            raise InputError.one(field, value, "is empty")
        check_key(field, value, 200)
