"""Helpers of the batch tests (no tests here): synthetic files, Arrow tables -> Bill objects, reading outputs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from adapters.batch.plan import plan
from adapters.batch.run import Spec, combine, finish, run_local
from benchmarks import synth
from engine.bill import Bill, Item, Person, TagSpan

POLICY = str(Path(__file__).resolve().parent.parent / "benchmarks/policy/sample_five_layer.yaml")


def make_data(tmp: Path, n_bills: int = 240, items: float = 6, seed: int = 1, csv: bool = False):
    tables = synth.generate(n_bills, items, seed)
    paths = synth.write(tmp, tables, csv=csv)
    return tables, [str(p) for p in paths]


def bills_from_tables(bills: pa.Table, items: pa.Table, persons: pa.Table) -> list[Bill]:
    people: dict[str, dict[str, Any]] = {}
    for r in persons.to_pylist():
        p = people.setdefault(
            r["person_id"],
            {"id": r["person_id"], "birth_date": r["birth_date"], "household": r["household_id"],
             "tags": []},
        )  # fmt: skip
        if r.get("tag"):
            p["tags"].append(TagSpan(tag=r["tag"], valid_from=r.get("tag_valid_from"),
                                     valid_to=r.get("tag_valid_to")))  # fmt: skip
    by_bill: dict[tuple[str | None, str], list[Item]] = {}
    for r in items.to_pylist():  # items name their bill by (hospital, bill_id) or bill_id
        by_bill.setdefault((r.get("hospital"), r["bill_id"]), []).append(Item(
            category=r["category"], qty_e4=r["qty_e4"], unit_price=r["unit_price"],
            amount=r["amount"], unit_price_cap=r["unit_price_cap"],
            selfpay_ratio=r["selfpay_ratio"],
        ))  # fmt: skip
    out = []
    for r in bills.to_pylist():
        p = people[r["person_id"]]
        out.append(Bill(
            id=r["bill_id"], hospital=r["hospital"], region=r.get("region"),
            person=Person(id=p["id"], birth_date=p["birth_date"], household=p["household"],
                          tags=tuple(p["tags"])),
            hospital_level=r["hospital_level"], admission_date=r["admission_date"],
            discharge_date=r["discharge_date"],
            items=tuple(by_bill[(r["hospital"] if "hospital" in items.column_names else None,
                                 r["bill_id"])]),
        ))  # fmt: skip
    return out


def batch_cli(*args: str) -> subprocess.CompletedProcess:
    """``onestop batch`` in this process (typer's runner): the same command, exit code and
    output as ``python -m adapters.batch.cli batch``, without a process start importing
    pyarrow, numba and the kernel each time (1.9 s of CPU a call, 0.04 s here; 2026-12-03).
    An exception other than the command's exit is raised, not taken for exit code 1."""
    from typer.testing import CliRunner

    from adapters.batch.cli import app

    r = CliRunner().invoke(app, ["batch", *map(str, args)])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return subprocess.CompletedProcess(["onestop", "batch", *args], r.exit_code, r.stdout, r.stderr)


def read_out(out: Path, name: str) -> pa.Table:
    """All parts of one output, in part order, dictionary columns decoded."""
    files = sorted((out / name).glob("part-*.parquet"))
    t = pa.concat_tables([pq.read_table(f) for f in files]) if files else pa.table({})
    return pa.table(
        [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns],
        names=t.column_names,
    )


def inputs(paths: list[str]) -> tuple[str, str, str]:
    """``make_data``'s paths as ``Spec``'s first three fields: bills, items, persons."""
    bills, items, persons = paths
    return bills, items, persons


def run_files(paths: list[str], out: Path, chunk: int, threads: int = 1, keep_going=False,
              opening: str | None = None):  # fmt: skip
    spec = Spec(*inputs(paths), policy=(POLICY,), out=str(out), threads=threads, keep_going=keep_going,
                opening=opening)  # fmt: skip
    parts, _, _ = plan(spec, chunk)
    results = list(run_local(spec, parts))
    finish(spec, ok=True)
    return parts, results, combine(results)
