"""Batch runs from files: == the reference, chunked == one shot, CSV == Parquet, unsorted input
refused, bad rows reported with row and file (fail by default, --reject-file settles the rest),
the CLI in this process (typer's runner), and as its own process where a user's run is the
point (``cli_process``; test_batch_pipeline and test_budgets run it so too)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.batch.io import InputFileError
from adapters.batch.plan import UnsortedInput, plan
from adapters.batch.run import Spec, finish, run_local
from engine.accounts import ACCOUNT_FIELDS
from engine.batch import reference_batch
from engine.money import yuan
from engine.policy.load import load_policies
from tests.test_batch_helpers import (
    POLICY,
    batch_cli,
    bills_from_tables,
    inputs,
    make_data,
    read_out,
    run_files,
)

ROOT = Path(__file__).resolve().parent.parent


def assert_equals_reference(tables, out: Path, skip: frozenset[str] = frozenset()) -> None:
    bills, items, persons = tables
    objs = [b for b in bills_from_tables(bills, items, persons) if b.id not in skip]
    ref = reference_batch(objs, load_policies(POLICY))
    by_id = {(s.hospital, s.bill_id): s for s in ref.settlements}  # a bill is (hospital, id)
    bt = read_out(out, "bills").to_pylist()
    assert sorted((r["hospital"], r["bill_id"]) for r in bt) == sorted(by_id)
    for r in bt:
        s = by_id[(r["hospital"], r["bill_id"])]
        b = s.buckets
        assert (r["total"], r["in_scope"], r["pre_selfpay"], r["over_limit"],
                r["out_of_catalogue"]) == (b.total, b.in_scope, b.pre_selfpay, b.over_limit,
                                           b.out_of_catalogue)  # fmt: skip
        assert (r["window_pay"], r["net_selfpay"], r["admission_no"], r["policy"]) == (
            s.window_pay,
            s.net_selfpay,
            s.admission_no,
            s.policy,
        )
        for la in s.layers:
            assert r[f"pay_{la.layer_id}"] == la.pay
    lt = read_out(out, "layers").to_pylist()
    got = {(r["hospital"], r["bill_id"], r["layer_id"]): r for r in lt}
    assert len(got) == sum(len(s.layers) for s in ref.settlements)
    for s in ref.settlements:
        for la in s.layers:
            r = got[(s.hospital, s.bill_id, la.layer_id)]
            assert (r["reason"], r["variant"], r["variant_label"], r["base"], r["deductible"],
                    r["eligible"], r["pay"], r["relief"], r["cap"], r["alert"], r["fund_code"],
                    r["settle_at"]) == (la.reason, la.variant, la.variant_label, la.base,
                                        la.deductible, la.eligible, la.pay, la.relief, la.cap,
                                        la.alert, la.fund_code, la.settle_at)  # fmt: skip
            assert tuple(r[f] for f in ACCOUNT_FIELDS) == la.account.as_tuple()
    alerts = read_out(out, "alerts").to_pylist()
    assert sorted((a["hospital"], a["bill_id"], a["layer_id"], a["relief"]) for a in alerts) == (
        sorted(
            (s.hospital, s.bill_id, a.layer, a.relief) for s in ref.settlements for a in s.alerts
        )
    )


def decoded(t: pa.Table) -> pa.Table:
    return pa.table(
        [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns],
        names=t.column_names,
    )


def sorted_table(t: pa.Table, keys: list[str]) -> pa.Table:
    return t.sort_by([(k, "ascending") for k in keys])


def test_parquet_run_equals_reference_and_chunked_equals_one_shot(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=260, items=6)
    parts, results, fig = run_files(paths, tmp_path / "chunked", chunk=23)
    assert len(parts) > 5 and all(not r.rejects for r in results)
    assert fig["totals"]["bills"] == 260
    assert_equals_reference(tables, tmp_path / "chunked")
    run_files(paths, tmp_path / "one", chunk=10**6, threads=2)
    for name, keys in (("bills", ["bill_id"]), ("layers", ["bill_id", "layer_no"]),
                       ("alerts", ["bill_id", "layer_id"]),
                       ("closing", ["scope", "id", "year", "layer_id"])):  # fmt: skip
        a = sorted_table(read_out(tmp_path / "chunked", name), keys)
        b = sorted_table(read_out(tmp_path / "one", name), keys)
        assert a.equals(b), name


def test_csv_equals_parquet_and_round_trip(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "pq", n_bills=80, items=5, seed=3)
    _, cpaths = make_data(tmp_path / "csv", n_bills=80, items=5, seed=3, csv=True)
    for n, t in zip(("bills", "items", "persons"), tables, strict=True):  # parquet round trip
        back = pq.read_table(tmp_path / "pq" / f"{n}.parquet")
        assert decoded(back).equals(decoded(t)), n
    run_files(paths, tmp_path / "o1", chunk=30)
    run_files(cpaths, tmp_path / "o2", chunk=30)
    for name in ("bills", "layers", "alerts", "closing"):
        assert read_out(tmp_path / "o1", name).equals(read_out(tmp_path / "o2", name)), name


def test_opening_from_closing(tmp_path: Path) -> None:
    """Settling the 2019 bills, then the 2020 bills from the 2019 closing accounts, gives the
    same 2020 results as one run over both years."""
    tables, paths = make_data(tmp_path / "in", n_bills=150, items=4, seed=5)
    bills = tables[0]
    run_files(paths, tmp_path / "all", chunk=40)
    # the second run: all bills again, opening from the closing of the whole run means
    # every slot starts where the first run ended: the 2020 admissions continue counting
    run_files(paths, tmp_path / "again", chunk=40, opening=str(tmp_path / "all" / "closing"))
    a = read_out(tmp_path / "all", "bills").to_pydict()
    b = read_out(tmp_path / "again", "bills").to_pydict()
    n_adm = {}
    for bid, no in zip(a["bill_id"], a["admission_no"], strict=True):
        n_adm[bid] = no
    last: dict[tuple[str, int], int] = {}
    for pid, y, no in zip(a["person_id"], a["year"], a["admission_no"], strict=True):
        last[(pid, y)] = max(last.get((pid, y), 0), no)
    for bid, pid, y, no in zip(b["bill_id"], b["person_id"], b["year"], b["admission_no"],
                               strict=True):  # fmt: skip
        assert no == n_adm[bid] + last[(pid, y)]
    assert len(bills) == len(b["bill_id"])


def test_unsorted_input_is_refused(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=50, items=3)
    bills = tables[0]
    perm = np.random.default_rng(0).permutation(len(bills))
    pq.write_table(bills.take(pa.array(perm)), paths[0])
    with pytest.raises(UnsortedInput, match=r"is not sorted: row .* sort the bills by household"):
        plan(Spec(*inputs(paths), policy=(POLICY,)), 10)


def corrupt(tmp_path: Path):
    tables, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=2)
    bills, items, _persons = tables
    b = bills.to_pydict()
    it = items.to_pydict()
    b["hospital_level"][3] = "moon"  # unknown level
    b["person_id"][7] = "P999999999"  # unknown person
    b["admission_date"][11] = b["discharge_date"][11] + timedelta(days=1)  # after discharge
    it["amount"][5] = -120  # negative amount
    it["category"][9] = "Z"  # unknown category
    pq.write_table(pa.table(b), paths[0])
    pq.write_table(pa.table(it), paths[1])
    bad_bills = {b["bill_id"][i] for i in (3, 7, 11)} | {it["bill_id"][i] for i in (5, 9)}
    want = {("bills.parquet", 3, "hospital_level"), ("bills.parquet", 7, "person_id"),
            ("bills.parquet", 11, "discharge_date"), ("items.parquet", 5, "amount"),
            ("items.parquet", 9, "category")}  # fmt: skip
    return tables, paths, bad_bills, want


def cli_process(*args: str) -> subprocess.CompletedProcess:
    """``onestop batch`` as its own process, as a user runs it (the end-to-end tests)."""
    return subprocess.run(
        [sys.executable, "-m", "adapters.batch.cli", "batch", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


cli = batch_cli  # in this process


def test_bad_rows_fail_by_default_or_go_to_the_reject_file(tmp_path: Path) -> None:
    tables, paths, bad_bills, want = corrupt(tmp_path)
    out = tmp_path / "out"
    r = cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--chunk-bills", "1000")
    assert r.returncode == 1, r.stderr
    for file, row, fld in want:
        assert f"{file} row {row}: {fld}:" in r.stderr, (file, row, fld, r.stderr)
    assert "items.parquet row 5: amount: -120 is negative" in r.stderr
    assert not (out / "bills").exists()  # nothing written
    rej = tmp_path / "rejects.csv"
    r = cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--chunk-bills", "25",
            "--reject-file", str(rej))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "bills settled of 60 read" in r.stdout
    rows = pa.csv.read_csv(rej).to_pylist()
    assert {(x["file"], x["row"], x["field"]) for x in rows} >= want
    assert {x["bill_id"] for x in rows} == bad_bills
    settled = set(read_out(out, "bills")["bill_id"].to_pylist())
    assert settled.isdisjoint(bad_bills) and len(settled) == 60 - len(bad_bills)
    # the good bills are settled as the reference settles them without the bad ones
    bills, items, persons = tables
    keep = pa.array([x not in bad_bills for x in bills["bill_id"].to_pylist()])
    keep_i = pa.array([x not in bad_bills for x in items["bill_id"].cast(pa.string()).to_pylist()])
    assert_equals_reference((bills.filter(keep), items.filter(keep_i), persons), out)


def test_cli_refuses_unsorted_and_missing_columns(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=30, items=3)
    pq.write_table(tables[1].drop_columns(["amount"]), paths[1])
    r = cli_process(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1 and "column(s) amount missing" in r.stderr


def test_summary_not_a_terminal_is_whole(tmp_path: Path) -> None:
    """The printed summary is plain and whole when it is not a terminal (a pipe, a file: here
    the runner's captured stdout), as every other command's: no name wrapped onto a second
    line, no figure cut with "…", whatever COLUMNS says (it had been cut at 80 columns)."""
    _, paths = make_data(tmp_path / "in", n_bills=60, items=3)
    r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout
    lines = r.stdout.splitlines()
    # the alert layer's name and its note on one line, with its relief whole beside it
    alert = [x for x in lines if "(suggested relief, not paid)" in x]
    assert len(alert) == 1 and "Poverty-prevention alert (suggested relief, not paid)" in alert[0]
    doc = json.loads((tmp_path / "o" / "summary.json").read_text())
    for layer in doc["funds"]:
        row = [x for x in lines if x.startswith("│ " + layer["layer_id"] + " ")]
        assert len(row) == 1, (layer["layer_id"], r.stdout)
        assert yuan(layer["amount"] or layer["relief"]) in row[0]
    assert any(x.startswith("60 bills settled of 60 read") for x in lines), r.stdout
    assert any(x.startswith(f"results in {tmp_path / 'o'}/ (bills,") and "part(s)" in x
               for x in lines)  # fmt: skip


def test_a_file_that_is_not_parquet_is_one_line(tmp_path: Path) -> None:
    """A bills, items or persons file that is neither CSV (by its name) nor Parquet (a JSON
    file, a truncated copy, a folder) is refused in one line naming the file: it had been
    pyarrow's traceback (ArrowInvalid)."""
    _, paths = make_data(tmp_path / "in", n_bills=20, items=3)
    junk = tmp_path / "bills.json"
    junk.write_text('{"not": "parquet"}')
    cut = tmp_path / "items.parquet"
    cut.write_bytes(Path(paths[1]).read_bytes()[:300])
    folder = tmp_path / "persons.parquet"
    folder.mkdir()
    for i, bad in enumerate((junk, cut, folder)):
        args = [*paths]
        args[i] = str(bad)
        r = cli(*args, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet")
        assert r.returncode == 1, (bad, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert str(bad) in lines[0] and "cannot be read as Parquet" in lines[0], lines[0]
        assert not (tmp_path / "o" / "bills").exists()


def test_bad_opening_rows_are_refused(tmp_path: Path) -> None:
    _, paths = make_data(tmp_path / "in", n_bills=20, items=3)
    op = tmp_path / "opening.csv"
    op.write_text(
        "scope,id,year,layer_id,deductible_used,eligible_cum,paid,selfpay_cum,admissions\n"
        "person,P000000000,2019,basic,0,0,100,0,1\n"
        "person,P000000001,2019,nosuch,0,0,0,0,0\n"
        "person,P000000002,2019,basic,0,0,-5,0,0\n"
    )
    r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet",
            "--opening", str(op))  # fmt: skip
    assert r.returncode == 1
    assert "opening.csv row 1: layer_id: 'nosuch' is not a layer" in r.stderr
    assert "opening.csv row 2: paid: -5 is negative" in r.stderr


def test_an_opening_file_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    """--opening with other columns, or a file that is not Parquet, had raised KeyError /
    ArrowInvalid out of the command as a traceback: one line naming the file now."""
    _, paths = make_data(tmp_path / "in", n_bills=20, items=3)
    cols = tmp_path / "opening.csv"
    cols.write_text("scope,id,year\nperson,P000000000,2019\n")
    junk = tmp_path / "opening.parquet"
    junk.write_text('{"not": "parquet"}')
    for bad, words in ((cols, "column(s) layer_id, deductible_used, eligible_cum, paid, "
                              "selfpay_cum missing; an opening file has"),
                       (junk, "cannot be read as Parquet")):  # fmt: skip
        r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet",
                "--opening", str(bad))  # fmt: skip
        assert r.returncode == 1, (r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert lines[0].startswith(f"refused: {bad}: ") and words in lines[0], lines[0]
        assert f"{bad}: {bad}" not in lines[0], lines[0]  # named once at its head
        assert not (tmp_path / "o" / "bills").exists()


def test_a_reject_file_that_cannot_be_written_is_one_line_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    """--reject-file where no file can be written (its folder is a file) had raised pyarrow's
    or the OS's error out of the command after the run, leaving OUT/_tmp behind."""
    _, paths = make_data(tmp_path / "in", n_bills=20, items=3)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    out = tmp_path / "o"
    rej = blocker / "rejects.csv"
    r = cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--reject-file", str(rej))
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"refused: --reject-file {rej}: cannot be written (")
    assert lines[0].endswith("nothing was written") and r.stdout == ""
    assert not [p.name for p in out.iterdir()]  # no part moved into place, no _tmp left


def test_bill_id_used_again_in_a_later_part(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=6)
    b, it = tables[0].to_pydict(), tables[1].to_pydict()
    old, new = b["bill_id"][50], b["bill_id"][2]
    b["bill_id"][50] = new
    b["hospital"][50] = b["hospital"][2]  # the same (hospital, bill id): the same bill twice
    it["bill_id"] = [new if x == old else x for x in it["bill_id"]]
    pq.write_table(pa.table(b), paths[0])
    pq.write_table(pa.table(it), paths[1])
    rej = tmp_path / "rejects.parquet"
    r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet",
            "--chunk-bills", "10", "--reject-file", str(rej))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = pq.read_table(rej).to_pylist()
    assert [(x["row"], x["field"], x["bill_id"]) for x in rows] == [(50, "bill_id", new)]
    assert "is used by bills.parquet row 2 too" in rows[0]["rule"]
    settled = read_out(tmp_path / "o", "bills")["bill_id"].to_pylist()
    assert settled.count(new) == 1 and len(settled) == 59


def test_item_of_no_bill_is_reported(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=40, items=3, seed=7)
    it = tables[1].to_pydict()
    it["bill_id"][20] = "NO-SUCH-BILL"
    pq.write_table(pa.table(it), paths[1])
    rej = tmp_path / "rejects.csv"
    r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet",
            "--chunk-bills", "10", "--reject-file", str(rej))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = pa.csv.read_csv(rej).to_pylist()
    assert [(x["file"], x["row"], x["field"], x["value"]) for x in rows][:1] == [
        ("items.parquet", 20, "bill_id", "NO-SUCH-BILL")
    ]
    # the bill that lost that item is settled with the rest of its items, never silently
    # dropped: 40 bills settled (or the bill is reported if it had no other item)
    settled = len(read_out(tmp_path / "o", "bills"))
    assert settled + len({x["bill_id"] for x in rows if x["bill_id"]}) == 40


def same_id_at_two_hospitals(tmp_path: Path, items_hospital: bool):
    """Bill row 40 takes bill row 3's id at another hospital (rows in other households)."""
    tables, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=8)
    b, it = tables[0].to_pydict(), tables[1].to_pydict()
    assert b["household_id"][3] != b["household_id"][40]
    hosp = {bid: h for bid, h in zip(b["bill_id"], b["hospital"], strict=True)}
    old, new = b["bill_id"][40], b["bill_id"][3]
    b["bill_id"][40] = new
    b["hospital"][40] = "HOTHER1" if b["hospital"][3] != "HOTHER1" else "HOTHER2"
    hosp[(old, "moved")] = b["hospital"][40]
    it_h = [hosp[(x, "moved")] if x == old else hosp[x] for x in it["bill_id"]]
    it["bill_id"] = [new if x == old else x for x in it["bill_id"]]
    if items_hospital:
        it["hospital"] = it_h
    tables = (pa.table(b), pa.table(it), tables[2])
    pq.write_table(tables[0], paths[0])
    pq.write_table(tables[1], paths[1])
    return tables, paths, new


def test_same_bill_id_at_two_hospitals_is_two_bills(tmp_path: Path) -> None:
    tables, paths, shared = same_id_at_two_hospitals(tmp_path, items_hospital=True)
    _, results, fig = run_files(paths, tmp_path / "o", chunk=10)
    assert all(not r.rejects for r in results) and fig["totals"]["bills"] == 60
    out = read_out(tmp_path / "o", "bills").to_pylist()
    assert len([r for r in out if r["bill_id"] == shared]) == 2
    assert_equals_reference(tables, tmp_path / "o")


def test_items_without_hospital_cannot_name_a_shared_bill_id(tmp_path: Path) -> None:
    _, paths, shared = same_id_at_two_hospitals(tmp_path, items_hospital=False)
    r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1
    assert "column hospital missing" in r.stderr and repr(shared) in r.stderr


@pytest.mark.parametrize("suffix", ["", "-longer-in-some-rows"])
def test_many_shared_ids_are_named_in_the_order_they_first_appear(
    tmp_path: Path, suffix: str
) -> None:
    """The plan codes the bill ids by one integer key (ids of one length) or by Arrow's hash
    (not): either way the shared ids are found, and named first seen first."""
    tables, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=8)
    b = tables[0].to_pydict()
    ids = [x + (suffix if i % 2 else "") for i, x in enumerate(b["bill_id"])]
    takers = [50, 45, 40, 35, 30, 25, 20]  # each takes the id of an earlier row, elsewhere
    for t, src in zip(takers, [2, 12, 7, 4, 10, 6, 1], strict=True):
        ids[t] = ids[src]
        b["hospital"][t] = "HOTHER1" if b["hospital"][src] != "HOTHER1" else "HOTHER2"
    b["bill_id"] = ids
    pq.write_table(pa.table(b), paths[0])
    it = tables[1].drop_columns(["hospital"]) if "hospital" in tables[1].column_names else tables[1]
    pq.write_table(it, paths[1])
    with pytest.raises(InputFileError, match="column hospital missing") as e:
        plan(Spec(*inputs(paths), policy=(POLICY,)), 1000)
    first_seen = [ids[r] for r in sorted([2, 12, 7, 4, 10, 6, 1])]
    named = ", ".join(repr(x) for x in first_seen[:5])
    assert f"({named} and 2 more)" in str(e.value), str(e.value)


def test_bills_without_hospital_column_are_refused(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=20, items=3)
    pq.write_table(tables[0].drop_columns(["hospital"]), paths[0])
    r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1 and "column(s) hospital missing" in r.stderr, r.stderr
    assert not (tmp_path / "o" / "bills").exists()
    # issue 9: the refusal is text, never rich markup printed literally
    assert r.stderr.startswith("refused: ") and "[red]" not in r.stderr, r.stderr


def test_bad_hospital_code_is_a_reject_naming_the_field(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=30, items=3, seed=9)
    b = tables[0].to_pydict()
    b["hospital"][4] = "H-4"
    pq.write_table(pa.table(b), paths[0])
    r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1
    assert "bills.parquet row 4: hospital: 'H-4' is not a hospital code" in r.stderr, r.stderr


# --------------------------------------------------------------------------- strict input


def test_categories_in_files_are_exactly_the_contract_codes(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=30, items=3, seed=5)
    it = tables[1].to_pydict()
    it["category"] = [str(c) for c in it["category"]]
    bad = {2: "a", 4: " B", 6: "1", 8: "甲", 10: "c"}
    for row, v in bad.items():
        it["category"][row] = v
    it["category"][12], it["category"][13] = "01", "03"  # NHSA codes are fine
    pq.write_table(pa.table(it), paths[1])
    _, results, _ = run_files(paths, tmp_path / "out", chunk=10, keep_going=True)
    got = {(r.row, r.value) for x in results for r in x.rejects if r.field == "category"}
    assert {row for row, _ in got} == set(bad)
    # a column of numbers is read as text: 1, 2, 3 are not codes
    it["category"] = [{"A": 1, "B": 2, "C": 3, "01": 1, "03": 3}.get(c, 9) for c in it["category"]]
    pq.write_table(pa.table(it), paths[1])
    _, results, _ = run_files(paths, tmp_path / "out2", chunk=10, keep_going=True)
    rows = {r.row for x in results for r in x.rejects if r.field == "category"}
    assert rows == set(range(len(it["category"])))


@pytest.mark.parametrize(("table", "column", "value", "said"), [
    (0, "admission_date", "1552608000", "'1552608000' is not a date; use YYYY-MM-DD"),
    (0, "discharge_date", "2019-03-15T00:00:00", "'2019-03-15T00:00:00' is not a date"),
    (2, "birth_date", "19700101", "'19700101' is not a date"),
    (0, "admission_date", datetime(2019, 3, 15, 10, 30), "has a time of day"),
    (2, "birth_date", 17000, "is a column of int64; dates are a date column"),
])  # fmt: skip
def test_dates_in_files_are_never_guessed(
    tmp_path: Path, table: int, column: str, value: object, said: str
) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=30, items=3, seed=6)
    d = tables[table].to_pydict()
    if isinstance(value, str):
        d[column] = [x.isoformat() for x in d[column]]
    elif isinstance(value, datetime):
        d[column] = [datetime(x.year, x.month, x.day) for x in d[column]]
    else:
        d[column] = [(x - date(1970, 1, 1)).days for x in d[column]]
    d[column][3] = value
    pq.write_table(pa.table(d), paths[table])
    with pytest.raises(InputFileError) as e:
        run_files(paths, tmp_path / "out", chunk=10)
    assert column in str(e.value) and said in str(e.value), str(e.value)
    if not isinstance(value, int):
        assert "row 3" in str(e.value)


def test_a_bill_past_the_account_limit_is_a_rejected_row(tmp_path: Path) -> None:
    """Opening accounts at the limit (README, Limits): the household's bills that would take
    its alert self-pay above 10^15 fen are rejected rows naming the account and the limit;
    the run fails without --reject-file (nothing written) and settles the rest with it."""
    tables, paths = make_data(tmp_path / "in", n_bills=40, items=3, seed=8)
    b = tables[0].to_pydict()
    hh, year = b["household_id"][0], b["discharge_date"][0].year
    op = tmp_path / "opening.csv"
    op.write_text(
        "scope,id,year,layer_id,deductible_used,eligible_cum,paid,selfpay_cum,admissions\n"
        f"household,{hh},{year},prevention,0,0,0,{10**15 - 1},0\n"
    )
    out = tmp_path / "o"
    r = cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--opening", str(op))
    assert r.returncode == 1, r.stderr
    assert "bills.parquet row 0: accounts.prevention.selfpay_cum: " in r.stderr, r.stderr
    assert f"for household {hh!r} in {year} (" in r.stderr
    assert "above the limit 1,000,000,000,000,000 fen (10^15)" in r.stderr
    assert not (out / "bills").exists()
    rej = tmp_path / "rejects.csv"
    r = cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--opening", str(op),
            "--chunk-bills", "10", "--reject-file", str(rej))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = pa.csv.read_csv(rej).to_pylist()
    mine = [i for i, (h, d) in enumerate(zip(b["household_id"], b["discharge_date"],
                                             strict=True)) if h == hh and d.year == year]  # fmt: skip
    assert [(x["file"], x["row"], x["field"]) for x in rows] == [
        ("bills.parquet", i, "accounts.prevention.selfpay_cum") for i in mine
    ]
    assert all(int(x["value"]) > 10**15 for x in rows)
    settled = read_out(out, "bills")["bill_id"].to_pylist()
    assert len(settled) == 40 - len(mine)
    assert set(settled).isdisjoint(x["bill_id"] for x in rows)


# --------------------------------------------------------------------------- outputs


def test_summary_and_manifest_are_written_and_ids_are_plain_strings(tmp_path: Path) -> None:
    """The summary per fund is written (summary.json, and --json prints it), with a manifest
    of inputs and policies with their digests; every part names the policy in its schema
    metadata; id columns are plain strings (pandas: object, not categorical)."""
    import hashlib
    import importlib.util
    import json

    tables, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=4)
    out = tmp_path / "o"
    r = cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--chunk-bills", "20",
            "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert printed == summary and summary["unit"] == "fen"
    assert summary["counts"] == {"bills_read": 60, "bills_settled": 60,
                                 "items": len(tables[1]), "rejected_rows": 0}  # fmt: skip
    bills = read_out(out, "bills")
    by_fund = {f["layer_id"]: f["amount"] for f in summary["funds"]}
    for lid, amount in by_fund.items():
        assert amount == sum(bills[f"pay_{lid}"].to_pylist()), lid
    assert summary["patients"]["billed"] == sum(bills["total"].to_pylist())
    m = json.loads((out / "manifest.json").read_text())
    for k, p in zip(("bills", "items", "persons"), paths, strict=True):
        assert m["inputs"][k]["sha256"] == hashlib.sha256(Path(p).read_bytes()).hexdigest()
    (pol,) = m["policies"]
    assert pol["sha256"] == hashlib.sha256(Path(POLICY).read_bytes()).hexdigest()
    assert m["counts"]["bills_read"] == 60 and m["counts"]["parts"] >= 3
    assert m["engine_version"] and m["started_at"] <= m["ended_at"]
    for name in ("bills", "layers", "alerts", "closing"):
        for f in (out / name).glob("part-*.parquet"):
            md = pq.read_schema(f).metadata
            assert json.loads(md[b"onestop.policy"])[0]["sha256"] == pol["sha256"], f
    schema = pq.read_schema(next((out / "bills").glob("*.parquet")))
    for c in ("bill_id", "hospital", "person_id"):  # plain strings, not dictionary-encoded
        assert schema.field(c).type == pa.string(), c
    assert pq.read_schema(next((out / "layers").glob("*.parquet"))).field("layer_id").type == (
        pa.string()
    )
    ids = pq.read_table(out / "bills", columns=["bill_id"]).column("bill_id").to_pylist()
    assert sorted(ids) == sorted(bills["bill_id"].to_pylist())
    if importlib.util.find_spec("pandas") is not None:  # the bench extra; absent at the minimums
        import pandas as pd

        df = pd.read_parquet(out / "bills")
        for c in ("bill_id", "hospital", "person_id"):
            assert not isinstance(df[c].dtype, pd.CategoricalDtype), c


def test_a_float_column_is_refused_naming_its_file_and_column(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=20, items=3, seed=4)
    it = tables[1]
    i = it.column_names.index("unit_price")
    pq.write_table(it.set_column(i, "unit_price", it["unit_price"].cast(pa.float64())), paths[1])
    r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1, r.stderr
    assert "items.parquet: unit_price: is a column of double" in r.stderr, r.stderr


# --------------------------------------------------------------------------- CSV dialects


def _settle(paths: list[str], out: Path, encoding: str = "utf-8") -> pa.Table:
    spec = Spec(*inputs(paths), policy=(POLICY,), out=str(out), encoding=encoding)
    parts, _, _ = plan(spec, 25)
    results = list(run_local(spec, parts))
    assert all(not r.rejects for r in results), results[0].rejects[:3]
    finish(spec, ok=True)
    return read_out(out, "bills")


def test_csv_with_a_byte_order_mark_tsv_and_gbk_read_as_the_parquet(tmp_path: Path) -> None:
    """Spreadsheet programs in China write a UTF-8 BOM or GBK; .tsv files are split on tabs.
    Header and body are read by the same reader, so all three give the Parquet figures."""
    import pyarrow.csv as pcsv

    _, paths = make_data(tmp_path / "pq", n_bills=40, items=3, seed=3)
    _, cpaths = make_data(tmp_path / "csv", n_bills=40, items=3, seed=3, csv=True)
    want = _settle(paths, tmp_path / "o-pq")
    bom = tmp_path / "bom"
    bom.mkdir()
    bills = bom / "bills.csv"
    bills.write_bytes(b"\xef\xbb\xbf" + Path(cpaths[0]).read_bytes())
    items = bom / "items.tsv"
    pcsv.write_csv(pcsv.read_csv(cpaths[1]), items, pcsv.WriteOptions(delimiter="\t"))
    assert "\t" in items.read_text().splitlines()[0]
    got = _settle([str(bills), str(items), cpaths[2]], tmp_path / "o-bom")
    assert got.equals(want)
    # GBK: every file transcoded, with a column of Chinese text (extra columns are ignored)
    gbk = tmp_path / "gbk"
    gbk.mkdir()
    gpaths = []
    for p in cpaths:
        lines = Path(p).read_text(encoding="utf-8").splitlines()
        text = "\n".join([lines[0] + ",备注"] + [x + ",住院 甲类" for x in lines[1:]]) + "\n"
        (gbk / Path(p).name).write_bytes(text.encode("gbk"))
        gpaths.append(str(gbk / Path(p).name))
    assert _settle(gpaths, tmp_path / "o-gbk", encoding="gbk").equals(want)
    r = cli(*gpaths, "--policy", POLICY, "--out", str(tmp_path / "o-bad"), "--quiet")
    assert r.returncode == 1 and "bills.csv: cannot be read as CSV" in r.stderr, r.stderr
    assert "--encoding gbk" in r.stderr


def test_sort_settles_unsorted_input_as_the_sorted_one(tmp_path: Path) -> None:
    """--sort: shuffled bills and items, sorted out of core in small buckets, settle to the
    same figures as the sorted files; without it the run is refused, pointing at --sort."""
    from adapters.batch.sort import sort_inputs

    tables, paths = make_data(tmp_path / "in", n_bills=70, items=4, seed=11)
    want = _settle(paths, tmp_path / "o-sorted")
    bills, items = tables[0], tables[1]
    rng = np.random.default_rng(1)
    shuf = tmp_path / "shuf"
    shuf.mkdir()
    sb, si = shuf / "bills.parquet", shuf / "items.csv"
    pq.write_table(bills.take(pa.array(rng.permutation(len(bills)))), sb, row_group_size=16)
    pa.csv.write_csv(decoded(items.take(pa.array(rng.permutation(len(items))))), si)
    got_b, got_i = sort_inputs(str(sb), str(si), tmp_path / "sorted", bucket_rows=50)
    mine = pq.read_table(got_b)
    assert mine.equals(decoded(bills).select(mine.column_names))
    assert _settle([got_b, got_i, paths[2]], tmp_path / "o-mine").equals(want)
    r = cli(str(sb), str(si), paths[2], "--policy", POLICY, "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1 and "is not sorted" in r.stderr and "--sort" in r.stderr
    r = cli(str(sb), str(si), paths[2], "--policy", POLICY, "--out", str(tmp_path / "o"),
            "--quiet", "--sort")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert read_out(tmp_path / "o", "bills").equals(want)


def test_output_codec_and_statistics_are_the_users_choice(tmp_path: Path) -> None:
    """Snappy without column statistics by default (the cheaper write); ``--compression zstd
    --statistics`` writes what earlier versions did; the tables read back the same either way
    and the manifest names the choice; an unknown codec is a usage error in one line."""
    import json

    _, paths = make_data(tmp_path / "in", n_bills=40, items=3, seed=5)
    runs = {"default": (), "zstd": ("--compression", "zstd", "--statistics")}
    for name, extra in runs.items():
        r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / name), "--quiet", *extra)
        assert r.returncode == 0, r.stderr
    for out in ("bills", "layers", "alerts", "closing", "funds"):
        (a,), (b,) = ((tmp_path / n / out).glob("*.parquet") for n in runs)
        assert pq.read_table(a).equals(pq.read_table(b), check_metadata=True), out
        ca, cb = (pq.ParquetFile(f).metadata.row_group(0).column(0) for f in (a, b))
        assert (ca.compression, ca.is_stats_set) == ("SNAPPY", False), out
        assert (cb.compression, cb.is_stats_set) == ("ZSTD", cb.num_values > 0), out
    opts = json.loads((tmp_path / "zstd" / "manifest.json").read_text())["options"]
    assert (opts["compression"], opts["statistics"]) == ("zstd", True)
    r = cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "x"), "--compression", "gzip9")
    assert r.returncode == 2 and "--compression 'gzip9' is not one of" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x" / "bills").exists()


def test_plan_links_items_in_the_bills_order_as_reading_them_would(tmp_path: Path) -> None:
    """Items stored in the bills' order: the plan hands each part its bills' item offsets, so
    the part's items are read without their bill ids, and the offsets are those that linking
    the ids while reading finds; an item out of that order is still refused by the plan."""
    from dataclasses import replace

    from adapters.batch.run import read_part

    _, paths = make_data(tmp_path / "in", n_bills=90, items=4, seed=6)
    spec = Spec(*inputs(paths), policy=(POLICY,))
    parts, nb, ni = plan(spec, 25)
    assert len(parts) >= 3 and all(p.bill_start is not None for p in parts)
    for p in parts:
        mine = read_part(spec, p).items
        linked = read_part(spec, replace(p, bill_start=None)).items
        assert mine.bill_start is not None and linked.bill_start is not None
        assert np.array_equal(mine.bill_start, linked.bill_start), p.k
        assert len(mine.bill_start) == p.bill_hi - p.bill_lo + 1
        assert mine.bill_start[-1] == p.item_hi - p.item_lo
    assert parts[-1].bill_hi == nb and parts[-1].item_hi == ni
    items = pq.read_table(paths[1])
    pq.write_table(items.take(np.r_[1 : len(items), 0]), paths[1])  # an item out of place
    with pytest.raises(UnsortedInput):
        plan(spec, 25)


def test_coded_columns_with_repeated_labels_are_written_as_their_strings(tmp_path: Path) -> None:
    """``arrow_table`` writes a ``Coded`` column with few, repeated labels (a layer's kind per
    table and layer) over its distinct labels: the file reads back the same strings, row for
    row, as the plain column; large label arrays (ids) are left as they are."""
    from adapters.batch import parquetout
    from engine.columnar import Coded

    labels = np.array(["reimburse", "relief", "", "reimburse", "relief", "x"], dtype=object)
    codes = np.array([0, 3, 1, 4, 2, 2, 0, 5, 3], dtype=np.int64)
    col = Coded(codes, labels)
    small = parquetout._distinct_labels(col)
    assert sorted(small.labels) == sorted({*labels.tolist()})
    assert small.values().tolist() == col.values().tolist()
    ids = Coded(np.arange(9), np.array(["a"] * (parquetout.SMALL_LABELS + 1), dtype=object))
    assert parquetout._distinct_labels(ids) is ids
    parquetout.write_parquet(
        parquetout.arrow_table({"kind": col, "id": ids}), tmp_path / "t.parquet"
    )
    back = pq.read_table(tmp_path / "t.parquet")
    assert back["kind"].to_pylist() == col.values().tolist()
    assert back["id"].to_pylist() == ["a"] * 9


def test_the_readers_arrow_labels_go_to_the_writer(tmp_path: Path) -> None:
    """A part's bill ids keep the Arrow strings the reader made their labels from
    (``Coded.native``, through ``take``): the writer's table uses them, not a new array built
    from the Python strings, and the file reads back the same ids; labels without them (or
    with ones that do not fit) are built from the strings."""
    from adapters.batch import arrowcols, parquetout
    from engine.columnar import Coded, take

    rows = [f"B{k:09d}" for k in (7, 3, 7, 12, 5, 3)]
    c = arrowcols.coded(pa.array(rows, pa.string()))
    assert isinstance(c.native, pa.StringArray)
    kept = take(c, np.array([4, 0, 1, 3]))
    assert kept.native is c.native and kept.labels is c.labels
    table = parquetout.arrow_table({"bill_id": kept})
    made = table["bill_id"].chunk(0).dictionary  # the reader's strings, not a copy
    assert made.buffers()[2].address == c.native.buffers()[2].address
    parquetout.write_parquet(table, tmp_path / "t.parquet")
    back = pq.read_table(tmp_path / "t.parquet")["bill_id"].to_pylist()
    assert back == [rows[i] for i in (4, 0, 1, 3)]
    plain = Coded(kept.codes, kept.labels)
    assert parquetout.arrow_labels(plain).to_pylist() == c.labels.tolist()
    odd = Coded(kept.codes, kept.labels, native=pa.array(["x"], pa.string()))
    assert parquetout.arrow_labels(odd).to_pylist() == c.labels.tolist()


def test_mostly_distinct_ids_are_written_plain_and_read_back_the_same(tmp_path: Path) -> None:
    """A coded column of many labels each used about once (a part's bill ids in bills/) is
    written without a Parquet dictionary; one whose labels repeat (bill ids in layers/, a
    layer's kind) keeps it; both read back as the same strings, row for row."""
    from adapters.batch import parquetout
    from engine.columnar import Coded

    n = parquetout.SMALL_LABELS + 100  # labels of the repeated ids; 5 n rows
    ids = np.array([f"B{i:06d}" for i in range(5 * n)], dtype=object)
    rng = np.random.default_rng(3)
    cols = {
        "once": Coded(rng.permutation(5 * n), ids),  # each label once
        "fivefold": Coded(np.repeat(np.arange(n), 5), ids[:n]),  # each label 5 times
        "kind": Coded(np.arange(5 * n) % 2, np.array(["reimburse", "relief"], dtype=object)),
    }
    parquetout.write_parquet(parquetout.arrow_table(cols), tmp_path / "t.parquet")
    f = pq.ParquetFile(tmp_path / "t.parquet")
    rg = f.metadata.row_group(0)
    dict_page = {rg.column(i).path_in_schema: rg.column(i).has_dictionary_page
                 for i in range(rg.num_columns)}  # fmt: skip
    assert dict_page == {"once": False, "fivefold": True, "kind": True}
    back = f.read()
    for k, c in cols.items():
        assert back[k].type == pa.string()
        assert back[k].to_pylist() == c.values().tolist()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_nullable_item_columns_read_from_any_row_range(tmp_path: Path, fmt: str) -> None:
    """``read_item_cols`` reads nullable integer columns from the validity bitmap and data
    buffer: values, defaults (qty_e4 one unit, unit_price 0, amount 0, cap and ratio -1) and
    the null masks are those of the rows, for ranges that start and end inside row groups and
    inside a bitmap's bytes (sliced arrays with an offset)."""
    from adapters.batch import itemstream

    rng = np.random.default_rng(7)
    n = 203
    types = {"qty_e4": pa.int32(), "unit_price": pa.int32(), "amount": pa.int64(),
             "unit_price_cap": pa.int32(), "selfpay_ratio": pa.int16()}  # fmt: skip
    fill = {"qty_e4": 10000, "unit_price": 0, "amount": 0, "unit_price_cap": -1,
            "selfpay_ratio": -1}  # fmt: skip
    vals = {c: [None if rng.random() < 0.3 else int(rng.integers(1, 30000)) for _ in range(n)]
            for c in types}  # fmt: skip
    t = pa.table({
        "bill_id": pa.array([f"B{i // 4:04d}" for i in range(n)]),
        "category": pa.array(["A", "B", "C"] * (n // 3) + ["A"] * (n % 3)),
        **{c: pa.array(v, type=types[c]) for c, v in vals.items()},
    })  # fmt: skip
    path = tmp_path / f"items.{fmt}"
    if fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(t, path)
    else:
        pq.write_table(t, path, row_group_size=37)
    for lo, hi in ((0, n), (3, 200), (37, 74), (41, 42), (13, 13 + 64 + 5)):
        starts = np.arange(0, hi - lo + 1, dtype=np.int64)  # one item a bill
        ic = itemstream.read_item_cols(path, lo, hi, None, bill_start=starts)
        for c in types:
            want = [fill[c] if v is None else v for v in vals[c][lo:hi]]
            assert getattr(ic, c).tolist() == want, (c, lo, hi)
        for c in ("amount", "unit_price_cap", "selfpay_ratio"):
            null, want_null = getattr(ic, f"{c}_null"), [v is None for v in vals[c][lo:hi]]
            assert (null.tolist() if null is not None else [False] * (hi - lo)) == want_null


def test_parts_read_in_order_decode_a_shared_row_group_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consecutive row ranges (a batch run's parts) read the row group they share once: the
    next range takes it from the one before; the columns are those of every range read
    alone, and a file written again at the same path is read again, not taken."""
    from adapters.batch import itemstream

    n = 100
    amounts = [int(x) for x in np.random.default_rng(3).integers(0, 10**6, n)]
    path = tmp_path / "items.parquet"

    def write(values: list[int]) -> None:
        t = pa.table({"bill_id": [f"B{i:03d}" for i in range(n)], "category": ["A"] * n,
                      "amount": pa.array(values, pa.int64())})  # fmt: skip
        pq.write_table(t, path, row_group_size=37)

    def read(lo: int, hi: int) -> list[int]:
        starts = np.arange(0, hi - lo + 1, dtype=np.int64)
        return itemstream.read_item_cols(path, lo, hi, None, bill_start=starts).amount.tolist()

    write(amounts)
    reads: list[int] = []
    real = pq.ParquetFile.read_row_group

    def counted(f: pq.ParquetFile, g: int, **kw: Any) -> pa.Table:
        reads.append(g)
        return real(f, g, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counted)
    cuts = [0, 10, 50, 60, 74, 100]
    got = [read(lo, hi) for lo, hi in pairwise(cuts)]
    assert got == [amounts[lo:hi] for lo, hi in pairwise(cuts)]
    assert reads == [0, 1, 2]  # groups 0 and 1 serve two and three ranges: decoded once
    reads.clear()
    assert read(0, 50) == amounts[:50]
    write(amounts[::-1])  # the same path written again between two parts
    assert read(50, 100) == amounts[::-1][50:]
    assert reads == [0, 1, 1, 2]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(min_size=0, max_size=18), min_size=0, max_size=40),
    st.integers(1, 17),
    st.integers(0, 3),
)
def test_coded_labels_sorted_in_byte_order_for_any_id_width(
    words: list[str], width: int, cut: int
) -> None:
    """``arrowcols.coded`` sorts labels as Arrow does (UTF-8 bytes, = code points) whether the ids
    have one byte width up to 16 (sorted as integers by numpy) or not; codes give back every
    row's string; sliced arrays (an offset) too."""
    from adapters.batch import arrowcols

    fixed = [w.encode()[:width].ljust(width, b"0").decode("utf-8", "replace") for w in words]
    fixed = [f if len(f.encode()) == width else "z" * width for f in fixed]
    for rows in (words, fixed, [*fixed, *fixed[:3]]):
        arr = pa.array(["pad"] * cut + rows, pa.string()).slice(cut)
        c = arrowcols.coded(arr)
        assert c.labels.tolist() == sorted(set(rows))
        assert c.values().tolist() == rows
        distinct = sorted(set(rows))[::-1]  # reversed, after ``cut`` rows sliced off
        back = pa.array(["pad"] * cut + distinct, pa.string()).slice(cut)
        assert arrowcols._sort_order(back).tolist() == list(range(len(distinct)))[::-1]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 10**9 - 1), min_size=2, max_size=60),
    st.sampled_from(["B", "H45", "", "\u4e2d"]),
    st.integers(0, 3),
)
def test_ids_of_one_width_are_coded_by_one_integer_key_as_arrow_orders_them(
    numbers: list[int], prefix: str, cut: int
) -> None:
    """Ids like the bills' ('B000177196': a constant prefix and digits) take
    ``arrowcols.fixed_width_key``'s path: the varying bytes as one int64 in byte order; the labels
    and codes are those of Arrow's dictionary and sort (duplicates, a sliced array too)."""
    from adapters.batch import arrowcols

    rows = [f"{prefix}{k:09d}" for k in numbers]
    arr = pa.array(["pad"] * cut + rows, pa.string()).slice(cut)
    key = arrowcols.fixed_width_key(arr)
    assert key is not None
    order = np.argsort(key, kind="stable")
    assert order.tolist() == pc.array_sort_indices(arr).to_numpy().tolist()
    c = arrowcols.coded(arr)
    assert c.labels.tolist() == sorted(set(rows)) and c.values().tolist() == rows
    assert c.codes.dtype == np.int64
    assert c.native.to_pylist() == c.labels.tolist()  # the labels' Arrow strings kept
    d = pc.dictionary_encode(arr).dictionary
    assert arrowcols._sort_order(d).tolist() == pc.array_sort_indices(d).to_numpy().tolist()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 500)), min_size=2, max_size=80),
    st.integers(1, 4),
)
def test_mostly_distinct_dictionary_ids_are_coded_as_their_strings(
    numbers: list[int | None], n_chunks: int
) -> None:
    """A dictionary column of mostly distinct ids of one length (the persons file's person ids,
    one dictionary a row group) is decoded and coded by its integer keys: the labels and
    codes of every row as any other path gives them, nulls as ''."""
    from adapters.batch import arrowcols

    rows = [None if k is None else f"P{k:07d}" for k in numbers]
    cut = np.linspace(0, len(rows), n_chunks + 1).astype(int)
    col = pa.chunked_array(
        [pa.array(rows[a:b], pa.string()).dictionary_encode() for a, b in pairwise(cut)],
        pa.dictionary(pa.int32(), pa.string()),
    )
    want = ["" if r is None else r for r in rows]
    c = arrowcols.coded(col)
    assert c.labels.tolist() == sorted(set(want)) and c.values().tolist() == want


def test_which_dictionary_columns_are_decoded_for_their_keys() -> None:
    from adapters.batch import arrowcols

    def chunked(rows: list[str], n: int = 3) -> pa.ChunkedArray:
        cut = np.linspace(0, len(rows), n + 1).astype(int)
        return pa.chunked_array([pa.array(rows[a:b]).dictionary_encode()
                                 for a, b in pairwise(cut)])  # fmt: skip

    persons = [f"P{k:07d}" for k in range(90)]
    assert arrowcols._mostly_distinct_ids(chunked(persons))
    assert not arrowcols._mostly_distinct_ids(
        chunked([f"H{k % 4}" for k in range(90)])
    )  # few labels
    assert not arrowcols._mostly_distinct_ids(chunked([*persons[:-1], "P1"]))  # two lengths
    assert not arrowcols._mostly_distinct_ids(
        pa.chunked_array([pa.array(persons)])
    )  # not a dictionary
    c = arrowcols.coded(chunked(persons))
    assert c.labels.tolist() == persons and c.codes.tolist() == list(range(90))


def test_a_key_that_would_not_fit_63_bits_falls_back_to_arrow() -> None:
    """16 bytes varying over their whole range cannot be one int64: no key, Arrow's order."""
    from adapters.batch import arrowcols

    rng = np.random.default_rng(3)
    raw = rng.integers(0x21, 0x7F, size=(50, 16), dtype=np.uint8)
    raw[0], raw[1] = 0x21, 0x7E  # every position from '!' to '~'
    rows = [bytes(r).decode() for r in raw]
    arr = pa.array(rows, pa.string())
    assert arrowcols.fixed_width_key(arr) is None
    c = arrowcols.coded(arr)
    assert c.labels.tolist() == sorted(set(rows)) and c.values().tolist() == rows
    same = pa.array(["x7"] * 5, pa.string())  # nothing varies: one label
    assert (
        arrowcols.coded(same).labels.tolist() == ["x7"]
        and arrowcols.coded(same).codes.tolist() == [0] * 5
    )


def test_one_default_part_size_for_batch_and_simulate() -> None:
    """``onestop batch``, ``settle_files`` and ``onestop simulate`` cut parts of
    ``CHUNK_BILLS`` bills unless told (100 k: benchmarks/README.md, branch batch5)."""
    import inspect

    from adapters.batch import cli
    from adapters.batch.run import CHUNK_BILLS
    from adapters.simulate import command

    assert CHUNK_BILLS == 100_000
    for fn in (cli.settle_files, cli.batch, command.simulate):
        assert inspect.signature(fn).parameters["chunk_bills"].default == CHUNK_BILLS, fn
