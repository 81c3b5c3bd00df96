"""Hard fund budgets (domain.md section 12) in the kernel, the columnar path and ``onestop batch``.

- the kernel equals the plain reference to the fen with random hard budgets (0, tiny, any,
  large, absent) over tables whose layers often share a fund code, serially and "on two
  threads" (a budget batch runs serially), near the account limit too (a refused bill uses no
  balance);
- conservation on every bill; a closing balance is never negative and is the opening balance
  less the pays and reliefs of the fund's layers;
- a batch equals settling its bills one by one (``settle_one``) in ``budget_order_key`` order,
  carrying accounts and balances;
- the columnar path (``onestop batch``) equals ``settle_batch``; the batch CLI reads a real
  ``funds.yaml`` under ``--policy`` and ``--fund-used``, and writes the funds output.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, note, settings

from engine import columnar as C
from engine.accounts import ACCOUNT_FIELDS, LayerAccount, Opening, YearAccounts
from engine.batch import (
    BatchResult,
    FundYearKey,
    budget_order_key,
    reference_batch,
    settle_batch,
    spend,
)
from engine.bill import Bill, parse_bill
from engine.columnar.figures import figures as batch_figures
from engine.errors import InputError
from engine.funds import load_funds
from engine.money import MAX_ACCOUNT
from engine.policy.load import load_policies
from engine.policy.policyset import PolicySet
from engine.settle import settle_one
from tests.strategies import Batch, batches, build_table
from tests.test_batch_helpers import POLICY, batch_cli, bills_from_tables, make_data, read_out
from tests.test_properties import assert_same, check_settlement

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- helpers


def _outcome(run: Any, batch: Batch, threads: int = 1) -> Any:
    """A batch's result, or the problems (as text) of its refusal."""
    kw = {"threads": threads} if run is settle_batch else {}
    try:
        return run(batch.bills, batch.policies, batch.opening, budgets=batch.budgets, **kw)
    except InputError as err:
        return [str(p) for p in err.problems]


def _kernel_equals_reference(batch: Batch) -> None:
    note(f"{len(batch.bills)} bills, {len(batch.policies.tables)} table(s), {batch.budgets}")
    ref = _outcome(reference_batch, batch)
    for threads in (1, 2):
        ker = _outcome(settle_batch, batch, threads)
        if isinstance(ref, list):
            assert ker == ref
        else:
            assert not isinstance(ker, list), ker
            assert_same(ker, ref)
            assert ker.balances == ref.balances


def drawn(res: BatchResult) -> dict[FundYearKey, int]:
    """What the settlements took from each (region, fund code, year): pays and reliefs."""
    out: dict[FundYearKey, int] = defaultdict(int)
    for s in res.settlements:
        for r in s.layers:
            out[(s.region, r.fund_code, s.year)] += r.pay + r.relief
    return out


# --------------------------------------------------------------------------- kernel == reference


@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(batches(fast=True, budgets=True))
def test_kernel_equals_reference_with_budgets(batch: Batch) -> None:
    """Seeded fast mode (no shrinking); the failing batch prints with its seed."""
    _kernel_equals_reference(batch)


@given(batches(budgets=True))
def test_kernel_equals_reference_with_budgets_shrinking(batch: Batch) -> None:
    _kernel_equals_reference(batch)


@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(batches(fast=True, budgets=True, near_limit=True))
def test_kernel_equals_reference_with_budgets_near_the_account_limit(batch: Batch) -> None:
    """Bills refused at the account limit are the same, and (when the batch settles the rest
    without them) they used no balance: the balances equal those of the batch without them."""
    _kernel_equals_reference(batch)
    ref = _outcome(reference_batch, batch)
    if not isinstance(ref, list):
        return
    gone = {int(p[len("bills[") : p.index("]")]) for p in ref}
    rest = Batch(batch.policies, [b for i, b in enumerate(batch.bills) if i not in gone],
                 batch.opening, budgets=batch.budgets)  # fmt: skip
    a, b = _outcome(settle_batch, rest), _outcome(reference_batch, rest)
    assert not isinstance(a, list) and not isinstance(b, list)
    assert_same(a, b)
    assert a.balances == b.balances


# --------------------------------------------------------------------------- conservation


@given(batches(budgets=True))
def test_conservation_and_balances(batch: Batch) -> None:
    assert batch.budgets is not None
    for run in (settle_batch, reference_batch):
        res = run(batch.bills, batch.policies, batch.opening, budgets=batch.budgets)
        for s in res.settlements:
            check_settlement(s)
        assert set(res.balances) == set(batch.budgets)
        took = drawn(res)
        for key, opening in batch.budgets.items():
            assert res.balances[key] >= 0, key
            assert res.balances[key] == opening - took.get(key, 0), key
        for s in res.settlements:  # the cap "budget" only where the fund has a hard budget
            for r in s.layers:
                if r.cap == "budget":
                    assert (s.region, r.fund_code, s.year) in batch.budgets


# --------------------------------------------------------------------------- one by one


@given(batches(budgets=True))
def test_batch_equals_settling_one_by_one_in_budget_order(batch: Batch) -> None:
    """domain.md 12: a batch gives the same fen as settling its bills one by one in the
    region-wide order, each from the accounts and balances the ones before left."""
    assert batch.budgets is not None
    whole = settle_batch(batch.bills, batch.policies, batch.opening, budgets=batch.budgets)
    want = {(s.hospital, s.bill_id): s for s in whole.settlements}
    for engine in ("kernel", "reference"):
        op = batch.opening or Opening()
        person, household = dict(op.person), dict(op.household)
        balances = dict(batch.budgets)
        for bill in sorted(batch.bills, key=budget_order_key):
            pk, hk = (bill.person.id, bill.year), (bill.person.household, bill.year)
            got = settle_one(
                bill, batch.policies, person.get(pk, YearAccounts()),
                household.get(hk, YearAccounts()), engine, budgets=balances,
            )  # fmt: skip
            person[pk], household[hk] = got.person_after, got.household_after
            spend(got.settlement, balances)
            assert got.settlement == want[(bill.hospital, bill.id)], (engine, bill.id)
        assert balances == whole.balances, engine


# --------------------------------------------------------------------------- hand-made cases

REGION = {"code": "450900", "name": "Yulin (test)"}


def _table(layers: list[dict[str, Any]]) -> PolicySet:
    return PolicySet.of([build_table({
        "region": REGION, "effective_from": date(2019, 1, 1), "hospital_levels": ["county"],
        "b_selfpay_ratio": 1000, "layers": layers,
    })])  # fmt: skip


def _reimburse(lid: str, fund: str, ratio: int = 5000) -> dict[str, Any]:
    return {"id": lid, "name": lid, "fund_code": fund, "kind": "reimburse",
            "variants": [{"segments": [{"ratio": ratio}]}]}  # fmt: skip


def _bill(bid: str, person: str, household: str, day: date, amount: int) -> Bill:
    return parse_bill({
        "id": bid, "hospital": "H1", "hospital_level": "county",
        "person": {"id": person, "birth_date": date(1970, 1, 1), "household": household},
        "admission_date": day, "discharge_date": day,
        "items": [{"category": "A", "amount": amount}],
    })  # fmt: skip


@pytest.mark.parametrize("run", [settle_batch, reference_batch])
def test_a_later_layer_of_the_same_fund_sees_what_is_left(run: Any) -> None:
    ps = _table([_reimburse("a", "370200"), _reimburse("b", "390100"),
                 _reimburse("c", "370200")])  # fmt: skip
    bill = _bill("b1", "p", "h", date(2021, 3, 1), 10_000)
    res = run([bill], ps, budgets={("450900", "370200", 2021): 6_000})
    a, b, c = res.settlements[0].layers
    assert (a.pay, a.cap) == (5_000, "")  # 50% of 10,000
    assert (b.pay, b.cap) == (2_500, "")  # another fund: not limited
    assert (c.pay, c.cap) == (1_000, "budget")  # 50% of 2,500 = 1,250, but 1,000 left
    assert res.balances == {("450900", "370200", 2021): 0}
    assert res.settlements[0].net_selfpay == 1_500


@pytest.mark.parametrize("run", [settle_batch, reference_batch])
def test_the_balance_goes_in_region_wide_order_across_households(run: Any) -> None:
    """Household 'a' sorts first, but household 'z' was discharged first: 'z' gets the money."""
    ps = _table([_reimburse("charity", "370200", ratio=10_000)])
    bills = [_bill("b1", "pa", "a", date(2021, 5, 1), 3_000),
             _bill("b2", "pz", "z", date(2021, 4, 1), 3_000)]  # fmt: skip
    res = run(bills, ps, budgets={("450900", "370200", 2021): 4_000}, **(
        {"threads": 2} if run is settle_batch else {}))  # fmt: skip
    first, second = res.settlements
    assert (first.layers[0].pay, first.layers[0].cap) == (1_000, "budget")
    assert (second.layers[0].pay, second.layers[0].cap) == (3_000, "")
    # another year, or a budget absent: not limited
    res = run(bills, ps, budgets={("450900", "370200", 2020): 0})
    assert [s.layers[0].pay for s in res.settlements] == [3_000, 3_000]
    assert res.balances == {("450900", "370200", 2020): 0}


@pytest.mark.parametrize("run", [settle_batch, reference_batch])
def test_backstop_and_alert_under_a_budget(run: Any) -> None:
    ps = _table([
        {"id": "bs", "name": "bs", "fund_code": "640100", "kind": "backstop",
         "variants": [{"max_share": 1000}]},
        {"id": "al", "name": "al", "fund_code": "640100", "kind": "alert",
         "variants": [{"threshold": 0, "segments": [{"ratio": 10_000}]}]},
    ])  # fmt: skip
    bill = _bill("b1", "p", "h", date(2021, 3, 1), 10_000)
    res = run([bill], ps, budgets={("450900", "640100", 2021): 7_000})
    bs, al = res.settlements[0].layers
    assert (bs.pay, bs.cap) == (7_000, "budget")  # would pay 9,000
    assert bs.account.selfpay_cum == 3_000  # the patient keeps what the budget cannot pay
    assert (al.relief, al.cap, al.alert) == (0, "budget", True)  # nothing left for relief
    assert res.balances[("450900", "640100", 2021)] == 0


@pytest.mark.parametrize("run", [settle_batch, reference_batch])
def test_a_bill_refused_at_the_account_limit_uses_no_balance(run: Any) -> None:
    ps = _table([_reimburse("a", "370200"), _reimburse("b", "370200")])
    bills = [_bill("b1", "p1", "h1", date(2021, 3, 1), 10_000),
             _bill("b2", "p2", "h2", date(2021, 3, 2), 10_000)]  # fmt: skip
    near = YearAccounts({"b": LayerAccount(0, 0, MAX_ACCOUNT - 1, 0)})
    opening = Opening({("p1", 2021): near})
    with pytest.raises(InputError) as e:
        run(bills, ps, opening, budgets={("450900", "370200", 2021): 8_000})
    assert [p.field for p in e.value.problems] == ["bills[0].accounts.b.paid"]
    res = run(bills[1:], ps, opening, budgets={("450900", "370200", 2021): 8_000})
    assert [r.pay for r in res.settlements[0].layers] == [5_000, 2_500]


@pytest.mark.parametrize("run", [settle_batch, reference_batch])
def test_a_negative_balance_is_refused(run: Any) -> None:
    ps = _table([_reimburse("a", "370200")])
    with pytest.raises(InputError, match="non-negative"):
        run([_bill("b1", "p", "h", date(2021, 3, 1), 100)], ps,
            budgets={("450900", "370200", 2021): -1})  # fmt: skip


# --------------------------------------------------------------------------- columnar


def _columnar_equals(batch: Batch, threads: int) -> None:
    want = settle_batch(batch.bills, batch.policies, batch.opening, budgets=batch.budgets)
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    prep = C.settle_columns(bc, ic, pc, batch.policies, oc, threads, budgets=batch.budgets)
    assert prep.rejects == []
    assert prep.kb.closing_balances(batch.budgets or {}) == want.balances
    lc = {k: C.plain(v) for k, v in C.layer_columns(prep).items()}
    by = {(s.hospital, s.bill_id): s for s in want.settlements}
    seen = 0
    for row in range(len(lc["bill_id"])):
        s = by[(lc["hospital"][row], lc["bill_id"][row])]
        r = s.layers[int(lc["layer_no"][row])]
        assert r.layer_id == lc["layer_id"][row]
        assert (int(lc["pay"][row]), int(lc["relief"][row]), lc["cap"][row]) == (
            r.pay, r.relief, r.cap)  # fmt: skip
        assert tuple(int(lc[f][row]) for f in ACCOUNT_FIELDS) == r.account.as_tuple()
        seen += 1
    assert seen == sum(len(s.layers) for s in want.settlements)
    bcols = {k: C.plain(v) for k, v in C.bill_columns(prep).items()}
    for i in range(len(bcols["bill_id"])):
        s = by[(bcols["hospital"][i], bcols["bill_id"][i])]
        assert (int(bcols["window_pay"][i]), int(bcols["net_selfpay"][i])) == (
            s.window_pay, s.net_selfpay)  # fmt: skip
    figs = C.fund_figures(prep)
    assert batch_figures(prep).funds == figs  # the compiled pass onestop batch sums
    took = drawn(want)
    for key, f in figs.items():
        assert f["paid"] == took[key], key
        assert f["bound_bills"] == sum(
            1 for s in want.settlements if (s.region, s.year) == (key[0], key[2])
            and any(r.cap == "budget" and r.fund_code == key[1] for r in s.layers)
        ), key  # fmt: skip


@settings(max_examples=60)
@given(batches(budgets=True))
def test_columnar_equals_settle_batch_with_budgets(batch: Batch) -> None:
    _columnar_equals(batch, threads=2)


# --------------------------------------------------------------------------- onestop batch

FUNDS_YAML = """\
region: "450000"
funds:
  - fund_code: "370200"
    name: Charity pool
    carry: none
    years:
      2019: {budget: 150000, budget_mode: hard}
      2020: {budget: 100000, carried_in: 20000, budget_mode: hard}
  - fund_code: "610100"
    name: Medical assistance
    years:
      2019: {budget: 500000000}
  - fund_code: "640100"
    name: Backstop
    years:
      2020: {budget: 2000000, budget_mode: hard}
"""


def _policy_dir(tmp: Path) -> Path:
    d = tmp / "policy"
    d.mkdir(parents=True)
    shutil.copy(POLICY, d / "table.yaml")
    (d / "funds.yaml").write_text(FUNDS_YAML, encoding="utf-8")
    return d


#: the CLI runs in a subprocess, where coverage does not look: the nojit pass skips it
needs_jit = pytest.mark.skipif(
    os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="CLI subprocess: no coverage to gain"
)


cli = batch_cli  # in this process; the Dask run below as its own process


def cli_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "adapters.batch.cli", "batch", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@needs_jit
def test_batch_cli_with_funds_yaml_equals_settle_batch(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=300, items=5, seed=7)
    pol = _policy_dir(tmp_path)
    used = tmp_path / "used.csv"
    used.write_text("region,fund_code,year,used\n450000,370200,2020,30000\n"
                    "450000,610100,2019,1234\n", encoding="utf-8")  # fmt: skip
    out = tmp_path / "out"
    r = cli(*paths, "--policy", str(pol), "--out", str(out), "--quiet", "--chunk-bills", "40",
            "--fund-used", str(used), "--threads", "2")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "one part" in r.stderr  # a hard budget: the run is one part (region-wide order)
    book = load_funds(pol)
    used_map = {("450000", "370200", 2020): 30000, ("450000", "610100", 2019): 1234}
    budgets = book.opening_balances(used_map)
    assert budgets == {("450000", "370200", 2019): 150000, ("450000", "370200", 2020): 90000,
                       ("450000", "640100", 2020): 2000000}  # fmt: skip
    bills = bills_from_tables(*tables)
    want = settle_batch(bills, load_policies(pol), budgets=budgets)
    by = {(s.hospital, s.bill_id): s for s in want.settlements}
    lt = read_out(out, "layers").to_pylist()
    assert len(lt) == sum(len(s.layers) for s in want.settlements)
    bound = 0
    for row in lt:
        la = by[(row["hospital"], row["bill_id"])].layers[row["layer_no"]]
        assert (row["pay"], row["relief"], row["cap"]) == (la.pay, la.relief, la.cap)
        assert tuple(row[f] for f in ACCOUNT_FIELDS) == la.account.as_tuple()
        bound += la.cap == "budget"
    assert bound > 0  # the budgets bind on this data
    funds = {
        (f["region"], f["fund_code"], f["year"]): f for f in read_out(out, "funds").to_pylist()
    }
    took = drawn(want)
    for key, bal in want.balances.items():
        f = funds[key]
        assert f["budget_mode"] == "hard"
        assert (f["opening_balance"], f["closing_balance"], f["paid"]) == (
            budgets[key], bal, took[key])  # fmt: skip
        assert f["bound_bills"] == sum(
            1 for s in want.settlements if s.year == key[2]
            and any(r.cap == "budget" and r.fund_code == key[1] for r in s.layers)
        )  # fmt: skip
    f = funds[("450000", "370200", 2020)]
    assert (f["budget"], f["carried_in"], f["used_before"]) == (100000, 20000, 30000)
    report = funds[("450000", "610100", 2019)]
    assert (report["budget_mode"], report["used_before"], report["closing_balance"]) == (
        "report", 1234, None)  # fmt: skip
    assert report["paid"] == took[("450000", "610100", 2019)]
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["region"], r["fund_code"], r["year"]): r for r in summary["fund_budgets"]} == funds
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["parts"] == 1 and m["inputs"]["fund_used"]["path"] == str(used)
    # printed summary
    r = cli(*paths, "--policy", str(pol), "--out", str(tmp_path / "o2"), "--quiet",
            "--fund-used", str(used))  # fmt: skip
    assert r.returncode == 0 and "Fund budgets" in r.stdout, r.stderr


@needs_jit
def test_batch_cli_on_dask_settles_a_budget_region_in_one_task(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    _, paths = make_data(tmp_path / "in", n_bills=120, items=4, seed=3)
    pol = _policy_dir(tmp_path)
    local, dask = tmp_path / "local", tmp_path / "dask"
    assert cli(*paths, "--policy", str(pol), "--out", str(local), "--quiet").returncode == 0
    r = cli_process(*paths, "--policy", str(pol), "--out", str(dask), "--quiet",
                    "--chunk-bills", "20", "--dask-local", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    for name in ("bills", "layers", "funds"):
        assert read_out(local, name).equals(read_out(dask, name)), name


@needs_jit
@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("u.csv", "region,fund_code,year\n450000,370200,2020\n", "row 0: used: is missing"),
        ("u.csv", "region,fund_code,year,used\n450000,370200,2020,10\n450000,370200,2020,x\n",
         "row 1: used: 'x' is not a whole number"),
        ("u.csv", "region,fund_code,year,used\n450000,390100,2020,5\n",
         "row 0: fund_code: '390100' is not a fund declared"),
        ("u.csv", "region,fund_code,year,used\n450000,370200,2020,5\n450000,370200,2020,6\n",
         "row 1: fund_code: '370200' of region '450000' in 2020 is given twice (also row 0)"),
        ("u.json", '[{"region": "450000", "fund_code": "370200", "year": 2020, "used": -5}]',
         "row 0: used: -5 is not between 0"),
        ("u.json", '{"region": "450000"}', "is not a JSON list"),
    ],
)  # fmt: skip
def test_a_bad_fund_used_file_is_one_line(tmp_path: Path, name: str, text: str,
                                          where: str) -> None:  # fmt: skip
    _, paths = make_data(tmp_path / "in", n_bills=10, items=2, seed=2)
    pol = _policy_dir(tmp_path)
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    r = cli(*paths, "--policy", str(pol), "--out", str(tmp_path / "o"), "--quiet",
            "--fund-used", str(f))  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and str(f) in lines[0] and where in lines[0], r.stderr
    assert not (tmp_path / "o" / "bills").exists()


@needs_jit
def test_fund_used_json_and_no_funds_file(tmp_path: Path) -> None:
    """JSON --fund-used is read like CSV; without any funds.yaml the funds output is empty."""
    from adapters.batch.funds import read_fund_used

    pol = _policy_dir(tmp_path)
    f = tmp_path / "u.json"
    f.write_text(json.dumps([{"region": "450000", "fund_code": "370200", "year": 2019,
                              "used": 7}]), encoding="utf-8")  # fmt: skip
    assert read_fund_used(f, load_funds(pol)) == {("450000", "370200", 2019): 7}
    g = tmp_path / "u.csv"
    with g.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["region", "fund_code", "year", "used"],
                                  ["450000", "370200", "2019", "7"]])  # fmt: skip
    assert read_fund_used(g, load_funds(pol)) == {("450000", "370200", 2019): 7}
    _, paths = make_data(tmp_path / "in", n_bills=20, items=2, seed=5)
    out = tmp_path / "o"
    assert cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet").returncode == 0
    assert read_out(out, "funds").num_rows == 0
    assert json.loads((out / "summary.json").read_text())["fund_budgets"] == []
