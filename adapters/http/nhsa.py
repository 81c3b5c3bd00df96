"""NHSA transactions <-> the engine's requests and results (nhsa-interface.md).

Bills: 2303/2304 take ``input.data`` (the NHSA settlement fields) and ``input.feedetail[]``
(the 2301 fee lines of the visit: the gateway keeps no fee-line store, so the HIS sends the
lines with the settlement). Local fields the NHSA tables lack and the engine needs:
``data.hosp_lv`` (the hospital level of the policy table), ``data.begntime`` / ``data.endtime``
(admission and discharge, ``yyyy-MM-dd`` or ``yyyy-MM-dd HH:mm:ss``), ``data.insuplc_admdvs``
(the policy region; the envelope's ``insuplc_admdvs`` when absent). The hospital is the
envelope's ``fixmedins_code``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from adapters.auth.principals import PermissionDenied
from adapters.http.money import QTY_HINT, RATIO_HINT, fen_to_yuan, scaled, yuan_to_fen
from engine.bill import BillRequest, Item, check_items_count, parse_bill_request
from engine.errors import NO_VALUE, InputError, Problem
from engine.money import BP
from engine.reconcile import HospitalLine, HospitalTotals, Reconciliation
from engine.reference import split_item
from engine.result import Settlement

#: NHSA fund_pay_type prefixes -> the setlinfo amount field (the rest: oth_pay).
FUND_FIELDS: tuple[tuple[str, str], ...] = (
    ("3101", "hifp_pay"),
    ("3901", "hifp_pay"),
    ("3902", "hifmi_pay"),
    ("3201", "cvlserv_pay"),
    ("3301", "hifob_pay"),
    ("3701", "hifes_pay"),
    ("3501", "hifdm_pay"),
    ("6101", "maf_pay"),
    ("6102", "maf_pay"),
)
PAY_FIELDS = ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay",
              "hifdm_pay", "oth_pay")  # fmt: skip
NO_CAP = 999999  # NHSA pric_uplmt_amt when there is no price ceiling

#: engine field -> NHSA field, for error messages
_ITEM_NAMES = {"code": "med_list_codg", "name": "medins_list_name", "category": "chrgitm_lv",
               "qty_e4": "cnt", "unit_price": "pric", "amount": "det_item_fee_sumamt",
               "unit_price_cap": "pric_uplmt_amt", "selfpay_ratio": "selfpay_prop"}  # fmt: skip
_BILL_NAMES = {"id": "data.mdtrt_id", "person_id": "data.psn_no", "hospital": "fixmedins_code",
               "region": "data.insuplc_admdvs", "hospital_level": "data.hosp_lv",
               "admission_date": "data.begntime", "discharge_date": "data.endtime",
               "items": "feedetail"}  # fmt: skip


def obj(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        shown = value if isinstance(value, str | int | Decimal) else NO_VALUE
        raise InputError.one(field, shown, "is not a JSON object")
    return value


def text(d: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    v = d.get(key)
    if v is None or v == "":
        if required:
            raise InputError.one(f"{where}{key}", NO_VALUE, "is missing; it is required")
        return ""
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise InputError.one(f"{where}{key}", NO_VALUE, "is not a string")
    return str(v)


def _day(d: dict[str, Any], key: str) -> str:
    v = text(d, key, "data.")
    return v[:10] if len(v) == 19 else v


def day(d: dict[str, Any], key: str) -> str:
    """A date field ``yyyy-MM-dd`` (``yyyy-MM-dd HH:mm:ss`` cut to its date, as some HIS send
    3202's ``stmt_enddate``)."""
    return _day(d, key)


def nhsa_name(field: str) -> str:
    """An engine field path (items[3].amount) as the NHSA path (feedetail[3].det_item_fee_sumamt)."""
    if field.startswith("items["):
        head, _, rest = field.partition("].")
        return f"feedetail[{head[6:]}].{_ITEM_NAMES.get(rest, rest)}" if rest else field
    return _BILL_NAMES.get(field, field)


@contextmanager
def renamed(name: Callable[[str], str]) -> Iterator[None]:
    """InputErrors of the use cases with their engine field paths renamed (person_id ->
    data.psn_no, items[2].amount -> feedetail[2].det_item_fee_sumamt, ...), and the field a
    scope refusal names (bill.hospital -> fixmedins_code)."""
    try:
        yield
    except InputError as err:
        raise InputError([Problem(name(p.field), p.value, p.rule) for p in err.problems]) from None
    except PermissionDenied as err:  # "bill.hospital: hospital 'H2' is not yours; ..."
        head, sep, rest = str(err).partition(": ")
        if sep and head.startswith("bill."):
            raise PermissionDenied(f"{name(head[5:])}: {rest}") from None
        raise


def fee_line(i: int, line: Any) -> dict[str, Any]:
    """One 2301 fee line as an engine item (plain data, parsed by the engine)."""
    ln = obj(f"feedetail[{i}]", line)
    w = f"feedetail[{i}]."
    item: dict[str, Any] = {
        "code": text(ln, "med_list_codg", w, required=False),
        "category": text(ln, "chrgitm_lv", w),
        "amount": yuan_to_fen(w + "det_item_fee_sumamt", ln.get("det_item_fee_sumamt")),
    }
    if ln.get("medins_list_name"):
        item["name"] = text(ln, "medins_list_name", w)
    if ln.get("cnt") not in (None, ""):
        item["qty_e4"] = scaled(w + "cnt", ln["cnt"], 4, "quantities are to 0.0001", QTY_HINT)
    if ln.get("pric") not in (None, ""):
        item["unit_price"] = scaled(w + "pric", ln["pric"], 2, "the engine prices to the fen")
    cap = ln.get("pric_uplmt_amt")
    if cap not in (None, ""):
        c = scaled(w + "pric_uplmt_amt", cap, 2, "the engine prices to the fen")
        if c < NO_CAP * 100:
            item["unit_price_cap"] = c
    prop = ln.get("selfpay_prop")
    if prop not in (None, "") and item["category"] in ("02", "B"):
        item["selfpay_ratio"] = scaled(w + "selfpay_prop", prop, 4, "a ratio 0..1 to 0.0001",
                                       RATIO_HINT)  # fmt: skip
    return item


def bill_request(envelope: dict[str, Any], inp: dict[str, Any]) -> BillRequest:
    """2303/2304 input as the engine's bill; InputError naming NHSA fields."""
    data = obj("input.data", inp.get("data"))
    lines = inp.get("feedetail")
    if not isinstance(lines, list):
        raise InputError.one("input.feedetail", NO_VALUE,
                             "is missing; send the visit's 2301 fee lines with the settlement")  # fmt: skip
    check_items_count(len(lines), "feedetail")
    items = [fee_line(i, ln) for i, ln in enumerate(lines)]
    region = data.get("insuplc_admdvs") or envelope.get("insuplc_admdvs") or None
    raw = {
        "id": text(data, "mdtrt_id", "data."),
        "hospital": text(envelope, "fixmedins_code", ""),
        "person_id": text(data, "psn_no", "data."),
        "hospital_level": text(data, "hosp_lv", "data."),
        "admission_date": _day(data, "begntime"),
        "discharge_date": _day(data, "endtime"),
        "items": items,
    }
    if region:
        raw["region"] = str(region)
    with renamed(nhsa_name):
        req = parse_bill_request(raw)
    total = yuan_to_fen("data.medfee_sumamt", data.get("medfee_sumamt"))
    lines_total = sum(i.amount for i in req.items)
    if total != lines_total:
        raise InputError.one("data.medfee_sumamt", str(data.get("medfee_sumamt")),
                             f"is not the sum of the feedetail lines ({fen_to_yuan(lines_total)})")  # fmt: skip
    return req


def fee_day(inp: dict[str, Any]) -> date:
    """The date of a 2301 upload: the first line's ``fee_ocur_time`` (picks the policy table)."""
    lines = inp.get("feedetail")
    first = lines[0] if isinstance(lines, list) and lines and isinstance(lines[0], dict) else {}
    v = text(first, "fee_ocur_time", "feedetail[0].")
    try:
        return date.fromisoformat(v[:10])
    except ValueError:
        raise InputError.one("feedetail[0].fee_ocur_time", v,
                             "is not a time yyyy-MM-dd HH:mm:ss") from None  # fmt: skip


def split_lines(inp: dict[str, Any], b_selfpay_ratio: int) -> list[dict[str, Any]]:
    """2301: each fee line into its buckets (engine.reference.split_item)."""
    lines = inp.get("feedetail")
    if not isinstance(lines, list) or not lines:
        raise InputError.one("input.feedetail", NO_VALUE, "is missing or empty")
    check_items_count(len(lines), "feedetail")
    out = []
    for i, ln in enumerate(lines):
        raw = fee_line(i, ln)
        try:
            item = Item.model_validate(raw)
        except Exception as err:  # pydantic ValidationError
            from pydantic import ValidationError

            from engine.validation import problems_from

            if not isinstance(err, ValidationError):
                raise
            raise InputError([Problem(nhsa_name(f"items[{i}].{p.field}"), p.value, p.rule)
                              for p in problems_from(err)]) from None  # fmt: skip
        parts = split_item(item, b_selfpay_ratio)
        ratio = item.selfpay_ratio if item.selfpay_ratio is not None else b_selfpay_ratio
        out.append({
            "feedetl_sn": str(ln.get("feedetl_sn", "")),
            "det_item_fee_sumamt": fen_to_yuan(item.amount),
            "chrgitm_lv": f"0{int(item.category)}",
            "selfpay_prop": {1: Decimal(0), 2: Decimal(ratio) / BP, 3: Decimal(1)}[int(item.category)],
            "fulamt_ownpay_amt": fen_to_yuan(parts["out_of_catalogue"]),
            "overlmt_amt": fen_to_yuan(parts["over_limit"]),
            "preselfpay_amt": fen_to_yuan(parts["pre_selfpay"]),
            "inscp_scp_amt": fen_to_yuan(parts["in_scope"]),
        })  # fmt: skip
    return out


def fund_field(code: str) -> str:
    for prefix, name in FUND_FIELDS:
        if code.startswith(prefix):
            return name
    return "oth_pay"


def window_layers(s: Settlement) -> list[Any]:
    return [r for r in s.layers if r.pay > 0 and r.settle_at != "after_discharge"]


def setlinfo(s: Settlement, sign: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """setlinfo amounts and setldetail of a settlement (a cancel: sign -1)."""
    b = s.buckets
    y = lambda fen: fen_to_yuan(sign * fen)  # noqa: E731
    pays = dict.fromkeys(PAY_FIELDS, 0)
    detail = []
    for r in window_layers(s):
        pays[fund_field(r.fund_code)] += r.pay
        detail.append({"fund_pay_type": r.fund_code, "inscp_scp_amt": y(b.in_scope),
                       "crt_payb_lmt_amt": None, "fund_payamt": y(r.pay),
                       "fund_pay_type_name": r.name_zh or r.name or r.layer_id,
                       "setl_proc_info": r.layer_id})  # fmt: skip
    fund_sum = b.total - s.window_pay
    info: dict[str, Any] = {
        "psn_no": s.person_id,
        "medfee_sumamt": y(b.total),
        "fulamt_ownpay_amt": y(b.out_of_catalogue),
        "overlmt_selfpay": y(b.over_limit),
        "preselfpay_amt": y(b.pre_selfpay),
        "inscp_scp_amt": y(b.in_scope),
        **{k: y(v) for k, v in pays.items()},
        "fund_pay_sumamt": y(fund_sum),
        "psn_part_amt": y(s.window_pay),
        "acct_pay": y(0),
        "psn_cash_pay": y(s.window_pay),
        "hosp_part_amt": y(0),
        "acct_mulaid_pay": y(0),
    }
    return info, detail


def totals_in(data: dict[str, Any], cash_field: str) -> HospitalTotals:
    cnt = data.get("fixmedins_setl_cnt")
    if cnt is not None and (isinstance(cnt, bool) or not isinstance(cnt, int | str)
                            or not str(cnt).isdigit()):  # fmt: skip
        raise InputError.one("data.fixmedins_setl_cnt", str(cnt), "is not a whole number")

    def amt(k: str) -> int | None:
        return (
            None if data.get(k) in (None, "") else yuan_to_fen(f"data.{k}", data[k], negative=True)
        )

    return HospitalTotals(
        fixmedins_setl_cnt=None if cnt is None else int(cnt),
        medfee_sumamt=amt("medfee_sumamt"),
        fund_pay_sumamt=amt("fund_pay_sumamt"),
        psn_cash_pay=amt(cash_field),
    )


def _amt(d: dict[str, Any], w: str, k: str) -> int | None:
    return None if d.get(k) in (None, "") else yuan_to_fen(w + k, d[k], negative=True)


def lines_in(data: dict[str, Any]) -> list[HospitalLine] | None:
    """3202's settlement list (``data.setl_list[]``: setl_id, refd_setl_flag, medfee_sumamt,
    fund_pay_sumamt, cash_payamt): sent inline instead of the 9101 file upload."""
    rows = data.get("setl_list")
    if rows is None:
        return None
    if not isinstance(rows, list):
        raise InputError.one("data.setl_list", NO_VALUE, "is not a list")
    out = []
    for i, r in enumerate(rows):
        r = obj(f"data.setl_list[{i}]", r)
        w = f"data.setl_list[{i}]."
        out.append(HospitalLine(settlement_id=text(r, "setl_id", w),
                                reversal=str(r.get("refd_setl_flag", "0")) == "1",
                                medfee_sumamt=_amt(r, w, "medfee_sumamt"),
                                fund_pay_sumamt=_amt(r, w, "fund_pay_sumamt"),
                                psn_cash_pay=_amt(r, w, "cash_payamt")))  # fmt: skip
    return out


_LINE_WHY = {"missing_theirs": "settled here, not in your list",
             "missing_ours": "in your list, not settled here", "amount": "amounts differ"}  # fmt: skip


def _lines_dscr(r: Reconciliation) -> str:
    """The line differences counted by kind (``missing_theirs × 4 (settled here, not in your
    list); see detail``): one word per line repeated was unreadable, and past 2,000 characters
    (C 2000) with a few hundred lines."""
    counts = Counter(str(d.problem) for d in r.line_differences)
    if not counts:
        return ""
    kinds = "; ".join(f"{p} × {n} ({_LINE_WHY.get(p, p)})" for p, n in counts.items())
    return f"{kinds}; see detail"


def stmt(r: Reconciliation, setl_optins: str) -> dict[str, Any]:
    t = r.totals
    out: dict[str, Any] = {
        "setl_optins": setl_optins,
        "stmt_rslt": "0" if r.match else "1",
        "stmt_rslt_dscr": "平帐" if r.match else "; ".join(
            f"{d.name}: ours {fen_to_yuan(d.ours)} theirs {fen_to_yuan(d.theirs)}"
            if d.name != "fixmedins_setl_cnt" else f"{d.name}: ours {d.ours} theirs {d.theirs}"
            for d in r.differences) or _lines_dscr(r)
        or "nothing compared",
        "fixmedins_setl_cnt": t.fixmedins_setl_cnt,
        "medfee_sumamt": fen_to_yuan(t.medfee_sumamt),
        "fund_pay_sumamt": fen_to_yuan(t.fund_pay_sumamt),
        "psn_cash_pay": fen_to_yuan(t.psn_cash_pay),
    }  # fmt: skip
    if r.line_differences:
        out["detail"] = [{"setl_id": d.settlement_id, "refd_setl_flag": "1" if d.reversal else "0",
                          "memo": str(d.problem)} for d in r.line_differences]  # fmt: skip
    return out


def inf_time() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")
