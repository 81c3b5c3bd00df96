"""The Reconcile answer as JSON and as table rows (``bureau reconcile``)."""

from __future__ import annotations

from typing import Any

from adapters.grpc.figures import yuan
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb


def _funds_json(xs: Any) -> dict[str, int]:
    return {f.fund_code: f.pay for f in xs}


def _entry_json(e: pb.ReconEntry) -> dict[str, Any]:
    return {
        "settlement_id": e.settlement_id,
        "reversal": e.reversal,
        "date": e.date,
        "at": e.at,
        "hospital": e.hospital,
        "medfee_sumamt": e.medfee_sumamt,
        "fund_pay_sumamt": e.fund_pay_sumamt,
        "psn_cash_pay": e.psn_cash_pay,
        "window_funds": _funds_json(e.window_funds),
        "after_discharge_funds": _funds_json(e.after_discharge_funds),
    }


def _line_json(x: pb.HospitalSettlement) -> dict[str, Any]:
    d: dict[str, Any] = {"settlement_id": x.settlement_id, "reversal": x.reversal}
    for k in ("medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay"):
        if x.HasField(k):
            d[k] = getattr(x, k)
    return d


def reconcile_json(r: pb.ReconcileResponse) -> dict[str, Any]:
    """The Reconcile answer as JSON (money in integer fen)."""
    t = r.totals
    return {
        "hospital": r.hospital,
        "from_date": r.from_date,
        "to_date": r.to_date,
        "totals": {
            "fixmedins_setl_cnt": t.fixmedins_setl_cnt,
            "medfee_sumamt": t.medfee_sumamt,
            "fund_pay_sumamt": t.fund_pay_sumamt,
            "psn_cash_pay": t.psn_cash_pay,
            "window_funds": _funds_json(t.window_funds),
            "after_discharge_funds": _funds_json(t.after_discharge_funds),
        },
        "compared": r.compared,
        "match": r.match,
        "differences": [
            {
                "field": d.field,
                "ours": d.ours,
                "theirs": d.theirs,
                "entries": [_entry_json(e) for e in d.entries],
            }
            for d in r.differences
        ],
        "line_differences": [
            {
                "settlement_id": d.settlement_id,
                "reversal": d.reversal,
                "problem": d.problem,
                "fields": list(d.fields),
                "ours": _entry_json(d.ours) if d.HasField("ours") else None,
                "theirs": _line_json(d.theirs) if d.HasField("theirs") else None,
            }
            for d in r.line_differences
        ],
        "entries": [_entry_json(e) for e in r.entries],
    }


def _amount(name: str, v: int) -> str:
    return str(v) if name == "fixmedins_setl_cnt" else yuan(v)


def _entry_rows(es: Any) -> list[list[str]]:
    return [
        [e.settlement_id, "reversal" if e.reversal else "settlement", e.date, e.at,
         yuan(e.medfee_sumamt), yuan(e.fund_pay_sumamt), yuan(e.psn_cash_pay),
         " ".join(f"{f.fund_code}={yuan(f.pay)}" for f in e.window_funds)]
        for e in es
    ]  # fmt: skip


_ENTRY_COLS = ["settlement", "kind", "date", "at (UTC)", "medfee_sumamt", "fund_pay_sumamt",
               "psn_cash_pay", "window funds"]  # fmt: skip
