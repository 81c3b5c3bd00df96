"""``onestop batch --items-by-fund`` (domain.md section 11): the items_by_fund output equals the
reference allocation, and conserves per item and per bill and layer on 10^5 bills."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from typer.testing import CliRunner

from adapters.batch.cli import app
from adapters.batch.plan import plan
from adapters.batch.run import Spec, combine, finish, run_local
from engine.batch import reference_batch
from engine.policy.load import load_policies
from tests.test_batch_helpers import POLICY, bills_from_tables, inputs, make_data, read_out


def run_alloc(paths: list[str], out: Path, chunk: int) -> None:
    spec = Spec(*inputs(paths), policy=(POLICY,), out=str(out), items_by_fund=True)
    parts, _, _ = plan(spec, chunk)
    combine(list(run_local(spec, parts)))
    finish(spec, ok=True)


def test_items_by_fund_equals_reference(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=300, items=5)
    run_alloc(paths, tmp_path / "out", chunk=120)  # three parts
    got = read_out(tmp_path / "out", "items_by_fund").to_pylist()
    bills = bills_from_tables(*tables)
    ref = reference_batch(bills, load_policies(Path(POLICY)), allocate_items=True)
    assert ref.allocations is not None
    want = []
    for a in ref.allocations:
        for it in a.items:
            for s in it.shares:
                if s.amount:
                    want.append(
                        (a.hospital, a.bill_id, it.index, s.layer_id, s.fund_code, s.amount)
                    )
            if it.selfpay:
                want.append((a.hospital, a.bill_id, it.index, "selfpay", "", it.selfpay))
    rows = [(r["hospital"], r["bill_id"], r["item_index"], r["layer_id"], r["fund_code"],
             r["amount"]) for r in got]  # fmt: skip
    assert sorted(rows) == sorted(want)


def _keys(t: pa.Table, *cols: str) -> np.ndarray:
    """One int64 code per distinct combination of ``cols``."""
    import pyarrow.compute as pc

    joined = pc.binary_join_element_wise(*[pc.cast(t[c], pa.string()) for c in cols], "\x1f")
    return pc.dictionary_encode(joined).combine_chunks().indices.to_numpy().astype(np.int64)


def test_items_by_fund_conserves_on_a_large_batch(tmp_path: Path) -> None:
    """10^5 bills (about 2 items each) through the command: per item the rows add up to the
    item's amount; per bill and layer to the layer's pay in layers/."""
    tables, paths = make_data(tmp_path / "in", n_bills=100_000, items=2, seed=3)
    out = tmp_path / "out"
    r = CliRunner().invoke(
        app, ["batch", *paths, "--policy", POLICY, "--out", str(out), "--items-by-fund", "--quiet"]
    )
    assert r.exit_code == 0, r.output
    ibf = read_out(out, "items_by_fund")
    items = tables[1]
    items = pa.table(  # plain strings, as read_out gives the outputs
        [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in items.columns],
        names=items.column_names,
    )
    assert (ibf["amount"].to_numpy() > 0).all()
    # per item: the item's index within its bill in the items file
    bill_key = _keys(items, "bill_id")  # synth bill ids are unique over hospitals
    starts = np.r_[0, np.flatnonzero(np.diff(bill_key)) + 1]
    index = np.arange(len(bill_key)) - np.repeat(starts, np.diff(np.r_[starts, len(bill_key)]))
    items = items.append_column("item_index", pa.array(index))
    both = pa.concat_tables([
        items.select(["bill_id", "item_index"]).append_column(
            "amount", pa.array(-items["amount"].to_numpy())),
        ibf.select(["bill_id", "item_index", "amount"]),
    ], promote_options="permissive")  # fmt: skip
    k = _keys(both, "bill_id", "item_index")
    exact = np.zeros(k.max() + 1, dtype=np.int64)
    np.add.at(exact, k, both["amount"].to_numpy())
    assert not exact.any()
    # per bill and layer: the shares add up to the layer's pay
    layers = read_out(out, "layers")
    funds = ibf.filter(pa.compute.not_equal(ibf["layer_id"], "selfpay"))
    both = pa.concat_tables([
        layers.select(["hospital", "bill_id", "layer_id"]).append_column(
            "amount", pa.array(-layers["pay"].to_numpy())),
        funds.select(["hospital", "bill_id", "layer_id", "amount"]),
    ], promote_options="permissive")  # fmt: skip
    k = _keys(both, "hospital", "bill_id", "layer_id")
    exact = np.zeros(k.max() + 1, dtype=np.int64)
    np.add.at(exact, k, both["amount"].to_numpy())
    assert not exact.any()
    assert int(funds["amount"].to_numpy().sum()) == int(layers["pay"].to_numpy().sum())
