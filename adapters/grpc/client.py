"""A small synchronous client over the generated stubs (window commands, tests, benchmarks).

Against a TLS server give ``ca`` (the CA of the server's certificate), ``cert`` and ``key``
(this client's certificate, from the server's client CA); ``Client.from_env`` reads them from
ONESTOP_CA, ONESTOP_CERT and ONESTOP_KEY. Without them the channel is plaintext.

The methods answer what the caller asked for: ``get`` the ``SettlementRecord``, ``put_policy``
and ``get_policy`` the ``PolicyVersion``, the claim steps the ``Claim``, taken out of the rpc's
own response message (``GetSettlementResponse.settlement``, ``PutPolicyResponse.policy``,
``FileClaimResponse.claim``, ...); the others answer the response message itself."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.defaults import DEFAULT_SERVER
from adapters.grpc import convert as cv
from adapters.grpc.gen.onestop.settlement.v1 import funds_pb2 as fpb
from adapters.grpc.gen.onestop.settlement.v1 import funds_pb2_grpc as fpbg
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2_grpc as pbg
from adapters.grpc.limits import DEFAULT as LIMITS
from adapters.grpc.packedfields import DATE_BYTES, DATES, INDEXED
from adapters.grpc.packeditems import NARROW, RAW

ENV = ("ONESTOP_CA", "ONESTOP_CERT", "ONESTOP_KEY")


class Client:
    def __init__(
        self,
        target: str = DEFAULT_SERVER,
        timeout: float = 30.0,
        *,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
    ):
        self.target = target
        options = [
            ("grpc.max_receive_message_length", LIMITS.max_response_bytes),
            ("grpc.max_send_message_length", LIMITS.max_message_bytes),
        ]
        if ca or cert or key:
            from adapters.grpc.auth import channel_credentials

            creds = channel_credentials(ca, cert, key)
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.settlement = pbg.SettlementServiceStub(self.channel)
        self.admin = pbg.PolicyAdminServiceStub(self.channel)
        self.reconciliation = pbg.ReconciliationServiceStub(self.channel)
        self.funds = fpbg.FundsServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.timeout = timeout

    @classmethod
    def from_env(cls, target: str = DEFAULT_SERVER, timeout: float = 30.0) -> Client:
        """A client with the TLS files named by ONESTOP_CA, ONESTOP_CERT, ONESTOP_KEY."""
        ca, cert, key = (os.environ.get(k) or None for k in ENV)
        return cls(target, timeout, ca=ca, cert=cert, key=key)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- health ---------------------------------------------------------------------------
    def status(self, service: str = "") -> str:
        r = self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)

    def wait_serving(self, timeout: float = 120.0) -> None:
        import time

        end = time.monotonic() + timeout
        while True:
            try:
                if self.status() == "SERVING":
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > end:
                raise TimeoutError("server not SERVING in time")
            time.sleep(0.05)

    # --- cashier ---------------------------------------------------------------------------
    def pre_settle(
        self, bill: dict[str, Any] | pb.Bill, allocate: bool = False
    ) -> pb.PreSettleResponse:
        """``allocate``: also the per-item allocation in ``result.items``."""
        return self.settlement.PreSettle(
            pb.PreSettleRequest(bill=_bill(bill), allocate=allocate), timeout=self.timeout
        )

    def settle(
        self, bill: dict[str, Any] | pb.Bill, request_id: str, allocate: bool = False
    ) -> pb.SettleResponse:
        return self.settlement.Settle(
            pb.SettleRequest(request_id=request_id, bill=_bill(bill), allocate=allocate),
            timeout=self.timeout,
        )

    def reverse(
        self, settlement_id: str = "", request_id: str = "", reversal_request_id: str = ""
    ) -> pb.ReverseResponse:
        req = pb.ReverseRequest(reversal_request_id=reversal_request_id)
        if request_id:
            req.request_id = request_id
        else:
            req.settlement_id = settlement_id
        return self.settlement.Reverse(req, timeout=self.timeout)

    def get(
        self, settlement_id: str = "", request_id: str = "", allocate: bool = False
    ) -> pb.SettlementRecord:
        req = pb.GetSettlementRequest(allocate=allocate)
        if request_id:
            req.request_id = request_id
        else:
            req.settlement_id = settlement_id
        return self.settlement.GetSettlement(req, timeout=self.timeout).settlement

    # the methods below this one spell the builtin builtins.list: list is this method in the class
    def list(
        self, person_id: str, year: int | None = None, page_size: int = 0
    ) -> list[pb.SettlementRecord]:
        """Every settlement of the person, following the pages to the last."""
        out: list[pb.SettlementRecord] = []
        token = ""
        while True:
            r = self.list_page(person_id, year, page_size, token)
            out += r.settlements
            token = r.next_page_token
            if not token:
                return out

    def list_page(
        self, person_id: str, year: int | None = None, page_size: int = 0, page_token: str = ""
    ) -> pb.ListSettlementsResponse:
        req = pb.ListSettlementsRequest(
            person_id=person_id, page_size=page_size, page_token=page_token
        )
        if year is not None:
            req.year = year
        return self.settlement.ListSettlements(req, timeout=self.timeout)

    def accounts(self, person_id: str, year: int | None = None) -> pb.GetAccountsResponse:
        req = pb.GetAccountsRequest(person_id=person_id)
        if year is not None:
            req.year = year
        return self.settlement.GetAccounts(req, timeout=self.timeout)

    # --- bureau ----------------------------------------------------------------------------
    def put_policy(
        self, text: str, source_name: str = "", dry_run: bool = False
    ) -> pb.PolicyVersion:
        req = pb.PutPolicyRequest(yaml=text, source_name=source_name, dry_run=dry_run)
        return self.admin.PutPolicy(req, timeout=self.timeout).policy

    def get_policy(self, version: int) -> pb.PolicyVersion:
        """One stored version with its YAML text."""
        req = pb.GetPolicyRequest(version=version)
        return self.admin.GetPolicy(req, timeout=self.timeout).policy

    def import_registry(self, persons: builtins.list[dict[str, Any]]) -> int:
        req = pb.ImportRegistryRequest(persons=[cv.person_to_pb(p) for p in persons])
        return self.admin.ImportRegistry(req, timeout=self.timeout).imported

    # --- reconciliation (NHSA 3201 / 3202) --------------------------------------------------
    def reconcile(
        self,
        hospital: str,
        from_date: str,
        to_date: str,
        theirs: pb.HospitalTotals | None = None,
        their_list: pb.HospitalList | None = None,
    ) -> pb.ReconcileResponse:
        req = pb.ReconcileRequest(hospital=hospital, from_date=from_date, to_date=to_date)
        if theirs is not None:
            req.theirs.CopyFrom(theirs)
        if their_list is not None:
            req.their_list.CopyFrom(their_list)
        return self.reconciliation.Reconcile(req, timeout=self.timeout)

    def daily_totals(
        self, region: str, from_date: str, to_date: str, hospital: str = ""
    ) -> pb.DailyTotalsResponse:
        req = pb.DailyTotalsRequest(
            region=region, from_date=from_date, to_date=to_date, hospital=hospital
        )
        return self.reconciliation.DailyTotals(req, timeout=self.timeout)

    # --- funds, claims and relief cases (funds.proto) --------------------------------------
    def put_funds(self, text: str, source_name: str = "", dry_run: bool = False) -> Any:
        req = fpb.PutFundsRequest(yaml=text, source_name=source_name, dry_run=dry_run)
        return self.funds.PutFunds(req, timeout=self.timeout)

    def record_money_in(self, request_id: str, region: str, fund_code: str, year: int,
                        kind: str, payer: str, amount: int, on: str, note: str = "") -> Any:  # fmt: skip
        req = fpb.RecordMoneyInRequest(
            request_id=request_id, region=region, fund_code=fund_code, year=year, kind=kind,
            payer=payer, amount=amount, on=on, note=note,
        )  # fmt: skip
        return self.funds.RecordMoneyIn(req, timeout=self.timeout)

    def file_claim(self, settlement_id: str, layer_id: str) -> fpb.Claim:
        req = fpb.FileClaimRequest(settlement_id=settlement_id, layer_id=layer_id)
        return self.funds.FileClaim(req, timeout=self.timeout).claim

    def get_claim(self, claim_id: str) -> fpb.Claim:
        req = fpb.GetClaimRequest(claim_id=claim_id)
        return self.funds.GetClaim(req, timeout=self.timeout).claim

    def list_claims_page(self, page_size: int = 0, page_token: str = "", **filters: Any) -> Any:
        """One page of ListClaims; filters: region, fund_code, person_id, status, kind, year."""
        year = filters.pop("year", None)
        req = fpb.ListClaimsRequest(page_size=page_size, page_token=page_token, **filters)
        if year is not None:
            req.year = year
        return self.funds.ListClaims(req, timeout=self.timeout)

    def list_claims(self, page_size: int = 0, **filters: Any) -> builtins.list[Any]:
        """Every claim the filters keep, following the pages to the last."""
        out: list[Any] = []
        token = ""
        while True:
            r = self.list_claims_page(page_size, token, **filters)
            out += r.claims
            token = r.next_page_token
            if not token:
                return out

    def approve_claim(self, claim_id: str, amount: int | None = None, note: str = "") -> fpb.Claim:
        req = fpb.ApproveClaimRequest(claim_id=claim_id, note=note)
        if amount is not None:
            req.amount = amount
        return self.funds.ApproveClaim(req, timeout=self.timeout).claim

    def reject_claim(self, claim_id: str, reason: str) -> fpb.Claim:
        req = fpb.RejectClaimRequest(claim_id=claim_id, reason=reason)
        return self.funds.RejectClaim(req, timeout=self.timeout).claim

    def pay_claim(self, claim_id: str, paid_date: str, payment_ref: str) -> fpb.Claim:
        req = fpb.PayClaimRequest(claim_id=claim_id, paid_date=paid_date, payment_ref=payment_ref)
        return self.funds.PayClaim(req, timeout=self.timeout).claim

    def fund_statement(self, region: str, fund_code: str, year: int, as_of: str = "") -> Any:
        req = fpb.FundStatementRequest(region=region, fund_code=fund_code, year=year, as_of=as_of)
        return self.funds.FundStatement(req, timeout=self.timeout)

    def person_cover(self, person_id: str, year: int = 0) -> Any:
        req = fpb.PersonCoverRequest(person_id=person_id, year=year)
        return self.funds.PersonCover(req, timeout=self.timeout)

    def cover_list_page(
        self,
        region: str,
        township: str = "",
        village: str = "",
        as_of: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> Any:
        """One page of CoverList."""
        req = fpb.CoverListRequest(region=region, township=township, village=village,
                                   as_of=as_of, page_size=page_size, page_token=page_token)  # fmt: skip
        return self.funds.CoverList(req, timeout=self.timeout)

    def cover_list(
        self, region: str, township: str = "", village: str = "", as_of: str = "",
        page_size: int = 0,
    ) -> Any:  # fmt: skip
        """The whole cover list, following the pages to the last: one CoverListResponse with
        every page's persons (its next_page_token '')."""
        first = self.cover_list_page(region, township, village, as_of, page_size)
        r = first
        while r.next_page_token:
            r = self.cover_list_page(region, township, village, as_of, page_size,
                                     r.next_page_token)  # fmt: skip
            first.persons.extend(r.persons)
        first.next_page_token = ""
        return first

    def public_figures(self, region: str, fund_code: str, year: int) -> Any:
        req = fpb.PublicFiguresRequest(region=region, fund_code=fund_code, year=year)
        return self.funds.PublicFigures(req, timeout=self.timeout)


def _bill(bill: dict[str, Any] | pb.Bill) -> pb.Bill:
    return bill if isinstance(bill, pb.Bill) else cv.bill_to_pb(bill)


def _join(p: pb.PackedBills, name: str, values: list[str]) -> None:
    """Column ``name`` of ``p`` in its joined form (``packedtext``)."""
    if name == "bill_ids":
        enc = [v.encode("utf-8") for v in values]
        p.bill_ids_joined = b"".join(enc)
        ends = np.cumsum([0] + [len(e) for e in enc], dtype=np.int64)
        p.bill_id_offsets_i32 = ends.astype("<i4").tobytes()
    elif name in INDEXED:
        index, table = INDEXED[name]
        at: dict[str, int] = {}
        codes = [at.setdefault(v, len(at)) for v in values]
        setattr(p, index, np.array(codes, dtype="<i4").tobytes())
        getattr(p, table).extend(at)
    elif all(len(v) == DATE_BYTES and v.isascii() for v in values):
        setattr(p, DATES[name], "".join(values).encode("ascii"))
    else:
        getattr(p, name).extend(values)


def pack_bills(
    bills: list[dict[str, Any]],
    request_ids: list[str] | None = None,
    *,
    unit_price: bool | None = None,
    item_text: bool | None = None,
    raw: bool = False,
    narrow: bool = False,
    joined: bool = False,
) -> pb.PackedBills:
    """JSON bills as the packed (columnar) message of SettleStream. Unit prices and item codes
    and names are sent when a bill has any (None), always (True) or never (False): the rules
    do not use them, but SETTLE mode stores them, so a bill settled packed is stored exactly as
    one settled as a message. ``raw``: the offsets and item columns as little-endian bytes
    fields (``amount_le``, ``category_i8``, ...), which a server reads without decoding each
    value (servers before these fields ignore them: send ``raw`` only to a server that knows
    them). ``narrow`` (with ``raw``): each column whose values all fit in the narrow bytes
    field (``amount_i32``, ``selfpay_ratio_i16``, ...: half the bytes or less) is sent there,
    the others as int64 bytes (servers before the narrow fields ignore them: send ``narrow``
    only to a server that knows them). ``joined``: the per-bill strings in their joined forms
    (``bill_ids_joined``, ``person_index_i32`` into ``person_table``, ...,
    ``admission_dates_joined``: ``packedtext``), which a server reads without a string a value
    (servers before these fields ignore them: send ``joined`` only to a server that knows
    them); a date column with a value that is not 10 ASCII characters goes as strings, so the
    server names it."""
    levels: dict[str, int] = {}
    p = pb.PackedBills(request_ids=request_ids or [])
    text = {
        "bill_ids": [b["id"] for b in bills],
        "hospitals": [str(b.get("hospital", "")) for b in bills],
        "person_ids": [b.get("person_id") or b["person"]["id"] for b in bills],
        "admission_dates": [str(b["admission_date"]) for b in bills],
        "discharge_dates": [str(b["discharge_date"]) for b in bills],
    }
    if any(b.get("region") for b in bills):
        text["regions"] = [str(b.get("region") or "") for b in bills]
    for name, values in text.items():
        if joined:
            _join(p, name, values)
        else:
            getattr(p, name).extend(values)
    p.level_index.extend(levels.setdefault(b["hospital_level"], len(levels)) for b in bills)
    p.levels.extend(levels)
    cats = {"A": 1, "B": 2, "C": 3, "01": 1, "02": 2, "03": 3}
    off, cat, qty, amount, cap, ratio, price = [0], [], [], [], [], [], []
    codes: list[str] = []
    names: list[str] = []
    for b in bills:
        for it in b["items"]:
            c = it["category"]
            cat.append(cats.get(c, 0) if isinstance(c, str) else c)
            qty.append(it.get("qty_e4", 10000))
            amount.append(it["amount"])
            cap.append(-1 if it.get("unit_price_cap") is None else it["unit_price_cap"])
            ratio.append(-1 if it.get("selfpay_ratio") is None else it["selfpay_ratio"])
            price.append(it.get("unit_price", 0))
            codes.append(it.get("code", ""))
            names.append(it.get("name", ""))
        off.append(len(amount))
    cols = {"item_offsets": off, "category": cat, "qty_e4": qty, "amount": amount}
    if any(x != -1 for x in cap):
        cols["unit_price_cap"] = cap
    if any(x != -1 for x in ratio):
        cols["selfpay_ratio"] = ratio
    if unit_price or (unit_price is None and any(price)):
        cols["unit_price"] = price
    for name, values in cols.items():
        if raw:
            a = np.array(values, dtype=np.int64)
            field, dtype = RAW[name]
            if narrow and name in NARROW:
                small, sdt = NARROW[name]
                info = np.iinfo(np.dtype(sdt))
                if not len(a) or (int(a.min()) >= info.min and int(a.max()) <= info.max):
                    field, dtype = small, sdt
            setattr(p, field, a.astype(dtype).tobytes())
        else:
            getattr(p, name).extend(values)
    if item_text or (item_text is None and any(codes)):
        p.item_codes.extend(codes)
    if item_text or (item_text is None and any(names)):
        p.item_names.extend(names)
    return p
