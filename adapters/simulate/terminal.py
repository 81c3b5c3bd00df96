"""The figures of a simulation on the terminal: rich tables whose cells fold, nothing cut."""

from __future__ import annotations

from typing import Any

from adapters.cli.output import Out, new_table, show, text
from engine.money import yuan


def _pct(p: str | None) -> str:
    return "-" if p is None else f"{p}%"


def _signed_pct(p: str | None) -> str:
    """A change in percent signed as the change in yuan beside it (+3.31%, -12.77%, 0.00%),
    as report.html shows it."""
    if p is None or p.startswith("-") or not p.strip("0."):
        return _pct(p)
    return f"+{p}%"


def _signed(fen: int) -> str:
    return ("+" if fen > 0 else "") + yuan(fen)


#: Said when no candidate replaced a table in force: each applies only to the bills discharged
#: within its own dates (next year's draft on last year's bills changes nothing).
NO_OVERLAP = (
    "note: the candidate tables replace no table in force (their dates are outside the base's), "
    "so they settle only the bills discharged within their own dates; to see next year's table "
    "on these bills, add --as-if-effective"
)


def print_figures(out: Out, f: dict[str, Any], changed_path: str | None = None) -> None:
    inp = f["inputs"]
    out.print(text(f"{f['title']}"))
    out.print(text(
        f"{inp['bills_compared']:,} bills compared ({inp['persons']:,} persons); rejected: "
        f"base {inp['rejected']['base']:,}, candidate {inp['rejected']['candidate']:,}; "
        f"candidate regions {', '.join(inp.get('candidate_regions', [])) or '-'}"
        f"{'; as if effective' if inp.get('as_if_effective') else ''}"
    ))  # fmt: skip
    t = new_table("Per fund and layer (yuan; bills and persons paid, each counted once)", [
        ("region", "left"), ("fund", "left"), ("layer", "left"), ("name", "left"),
        ("bills base", "right"), ("bills cand.", "right"), ("persons base", "right"),
        ("persons cand.", "right"), ("pay base", "right"), ("pay cand.", "right"),
        ("change", "right"), ("change %", "right"),
    ])  # fmt: skip
    for r in f["funds"]:
        b, c = r["base"], r["candidate"]
        t.add_row(text(r["region"]), text(r["fund_code"]), text(r["layer_id"]),
                  text(r["layer_name"]), f"{b['bills']:,}", f"{c['bills']:,}",
                  f"{b['persons']:,}", f"{c['persons']:,}", yuan(b["pay"]), yuan(c["pay"]),
                  _signed(r["change"]), _signed_pct(r["change_pct"]))  # fmt: skip
    show(out, t)
    t = new_table("Per fund, all regions (yuan)", [
        ("fund", "left"), ("name", "left"), ("bills base", "right"), ("bills cand.", "right"),
        ("pay base", "right"), ("pay cand.", "right"), ("change", "right"), ("change %", "right"),
    ])  # fmt: skip
    for r in f["fund_totals"]:
        b, c = r["base"], r["candidate"]
        t.add_row(text(r["fund_code"]), text(r["name"]), f"{b['bills']:,}", f"{c['bills']:,}",
                  yuan(b["pay"]), yuan(c["pay"]), _signed(r["change"]),
                  _signed_pct(r["change_pct"]))  # fmt: skip
    tb, tc = f["totals"]["base"], f["totals"]["candidate"]
    for k, name in (("fund_pay", "funds total"), ("window_pay", "patients at the window"),
                    ("net_selfpay", "patients net"), ("relief", "suggested relief (alerts)")):  # fmt: skip
        t.add_row("", name, "", "", yuan(tb[k]), yuan(tc[k]), _signed(tc[k] - tb[k]), "")
    show(out, t)
    p = f["patients"]
    t = new_table(f"Patients ({p['measure']}: what the patient bears after every fund)", [
        ("", "left"), ("bills", "right"), ("persons", "right"), ("sum (yuan)", "right"),
    ])  # fmt: skip
    t.add_row("pay more", f"{p['more']['bills']:,}", f"{p['more']['persons']:,}",
              _signed(p["more"]["sum"]))  # fmt: skip
    t.add_row("pay less", f"{p['less']['bills']:,}", f"{p['less']['persons']:,}",
              _signed(p["less"]["sum"]))  # fmt: skip
    t.add_row("same", f"{p['same']['bills']:,}", "", "")
    show(out, t)
    if p["change_deciles"]:
        out.print(text("change per changed bill, p10..p90 (yuan): "
                       + ", ".join(_signed(x) for x in p["change_deciles"])))  # fmt: skip
    for key, label in (
        ("largest_more", "Largest increases"),
        ("largest_less", "Largest decreases"),
    ):
        if not p[key]:
            continue
        t = new_table(f"{label} (yuan, {p['measure']})", [
            ("hospital", "left"), ("bill", "left"), ("person", "left"), ("base", "right"),
            ("candidate", "right"), ("change", "right"), ("why", "left"),
        ])  # fmt: skip
        for r in p[key][:10]:
            t.add_row(text(r["hospital"]), text(r["bill_id"]), text(r["person_id"]),
                      yuan(r["base"]), yuan(r["candidate"]), _signed(r["change"]),
                      text("; ".join(r["reasons"])))  # fmt: skip
        show(out, t)
    t = new_table("Patient's share of the bill", [
        ("", "left"), ("base", "right"), ("candidate", "right"),
    ])  # fmt: skip
    sb, sc = f["share"]["base"], f["share"]["candidate"]
    if sb["deciles"]:
        t.add_row(
            "median", f"{sb['deciles'][4]}%", f"{sc['deciles'][4] if sc['deciles'] else '-'}%"
        )
        t.add_row("p90", f"{sb['deciles'][8]}%", f"{sc['deciles'][8] if sc['deciles'] else '-'}%")
    for ab, ac in zip(sb["above"], sc["above"], strict=True):
        t.add_row(f"bills above {ab['threshold_pct']}% (persons)",
                  f"{ab['bills']:,} ({ab['persons']:,})", f"{ac['bills']:,} ({ac['persons']:,})")  # fmt: skip
    show(out, t)
    for dim, rows in f["breakdowns"].items():
        if not rows or dim == "hospital":
            continue
        t = new_table(f"By {dim.replace('_', ' ')} (fund pay in yuan)", [
            (dim, "left"), ("bills", "right"), ("persons", "right"), ("base", "right"),
            ("candidate", "right"), ("change", "right"), ("more", "right"), ("less", "right"),
            ("above 10% base", "right"), ("above 10% cand.", "right"),
        ])  # fmt: skip
        for r in rows:
            t.add_row(text(r["key"]), f"{r['bills']:,}", f"{r['persons']:,}",
                      yuan(r["base_fund_pay"]), yuan(r["candidate_fund_pay"]),
                      _signed(r["change"]), f"{r['more']:,}", f"{r['less']:,}",
                      f"{r['base_above_10']:,}", f"{r['candidate_above_10']:,}")  # fmt: skip
        show(out, t)
    a = f["alerts"]
    t = new_table("Alerts (suggested relief, yuan)", [
        ("", "left"), ("alerts", "right"), ("households", "right"), ("persons", "right"),
        ("relief", "right"),
    ])  # fmt: skip
    for k in ("base", "candidate"):
        t.add_row(k, f"{a[k]['alerts']:,}", f"{a[k]['households']:,}", f"{a[k]['persons']:,}",
                  yuan(a[k]["relief"]))  # fmt: skip
    show(out, t)
    if f["budgets"]:
        t = new_table("Fund budgets (yuan)", [
            ("region", "left"), ("fund", "left"), ("year", "right"), ("budget", "right"),
            ("used base", "right"), ("used cand.", "right"), ("left base", "right"),
            ("left cand.", "right"),
        ])  # fmt: skip
        for r in f["budgets"]:
            t.add_row(text(r["region"]), text(r["fund_code"]), str(r["year"]), yuan(r["budget"]),
                      yuan(r["base_used"]), yuan(r["candidate_used"]), yuan(r["base_left"]),
                      yuan(r["candidate_left"]))  # fmt: skip
        show(out, t)
    ch = f["changed"]
    where = f" (every one in {changed_path})" if changed_path else ""
    out.print(text(f"{ch['bills']:,} bill(s) changed for the patient{where}; "
                   f"{ch.get('funds_only_bills', 0):,} more changed between funds only"))  # fmt: skip
    shown = ch["reasons"][:15]
    width = max((len(f"{r['bills']:,}") for r in shown), default=0)
    for r in shown:  # the counts right-aligned, so the reasons start in one column
        out.print(text(f"  {r['bills']:>{width},}  {r['reason']}"))
    if not inp.get("as_if_effective") and not inp.get("replaced_tables"):
        out.print(text(NO_OVERLAP))
