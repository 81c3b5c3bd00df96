"""Per-item allocation (domain.md section 11): the worked example and the exact split."""

from __future__ import annotations

from typing import Any

from engine.allocation import allocate, allocate_figures, split_bucket
from engine.batch import reference_batch, settle_batch
from engine.bill import parse_bill
from engine.kernel import _muldivmod
from engine.policy.policyset import PolicySet
from tests.strategies import build_table

TABLE: dict[str, Any] = {
    "region": {"code": "450000", "name": "Example"},
    "effective_from": "2024-01-01",
    "hospital_levels": ["county"],
    "tags": [],
    "b_selfpay_ratio": 1000,
    "layers": [
        {"id": "one", "name": "Layer one", "fund_code": "390100", "kind": "reimburse",
         "variants": [{"segments": [{"ratio": 7000}]}]},
        {"id": "two", "name": "Layer two", "fund_code": "610100", "kind": "reimburse",
         "variants": [{"segments": [{"ratio": 7000}]}]},
    ],
}  # fmt: skip

BILL: dict[str, Any] = {
    "id": "b1", "hospital": "H1", "hospital_level": "county",
    "admission_date": "2024-03-01", "discharge_date": "2024-03-02",
    "person": {"id": "p1", "birth_date": "1950-01-01", "household": "h1"},
    "items": [{"code": f"X{i}", "name": f"item {i}", "category": "A", "amount": a}
              for i, a in enumerate((25, 25, 26))],
}  # fmt: skip


def test_worked_example_section_11() -> None:
    table = build_table(TABLE)
    policies = PolicySet.of([("t", table)])
    bill = parse_bill(BILL)
    for run in (reference_batch, settle_batch):
        res = run([bill], policies, allocate_items=True)
        s = res.settlements[0]
        assert [r.pay for r in s.layers] == [53, 16]
        assert res.allocations is not None
        alloc = res.allocations[0]
        assert alloc == allocate(bill, table, s)
        assert [[sh.amount for sh in it.shares] for it in alloc.items] == [
            [18, 5],
            [17, 6],
            [18, 5],
        ]
        assert [it.selfpay for it in alloc.items] == [2, 2, 3]
        assert [it.window_pay for it in alloc.items] == [2, 2, 3]
        assert alloc.by_layer() == {"one": 53, "two": 16}
        assert [it.shares[0].fund_code for it in alloc.items] == ["390100"] * 3


def test_split_bucket_ties_and_zero() -> None:
    assert split_bucket(53, [25, 25, 26]) == [18, 17, 18]
    assert split_bucket(0, [0, 0]) == [0, 0]
    assert split_bucket(3, [1, 0, 1, 1]) == [1, 0, 1, 1]
    assert split_bucket(1, [5, 5]) == [1, 0]


def test_buckets_in_fixed_order() -> None:
    # item 0 all in scope, item 1 all out of catalogue; a layer covering both paying 15
    shares, selfpay = allocate_figures(
        [[10, 0, 0, 0], [0, 0, 0, 10]], [(("in_scope", "out_of_catalogue"), 15)]
    )
    assert shares == [[10], [5]] and selfpay == [0, 5]


def test_muldivmod_exact_beyond_int64() -> None:
    cases = [(10**13, 10**12, 10**13 + 7), (9_999_999_999_989, 999_999_999_937, 10**13),
             (2**61, 2**61 + 5, 2**61 + 3), (0, 5, 7), (3, 4, 5)]  # fmt: skip
    for a, x, d in cases:
        q, r = _muldivmod(a, x, d)
        assert (int(q), int(r)) == divmod(a * x, d)


def test_cli_settle_allocate(tmp_path) -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from adapters.cli.app import app

    (tmp_path / "t.yaml").write_text(yaml.safe_dump(TABLE), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps(BILL), encoding="utf-8")
    args = ["settle", str(tmp_path / "b.json"), "--policy", str(tmp_path / "t.yaml"), "--allocate"]
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    items = json.loads(r.output)[0]["items"]
    assert [[x["amount"] for x in it["shares"]] for it in items] == [[18, 5], [17, 6], [18, 5]]
    assert [it["selfpay"] for it in items] == [2, 2, 3]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "who paid each item" in r.output and "one (390100)" in r.output
    r = CliRunner().invoke(app, [*args[:-1], "--json"])
    assert "items" not in json.loads(r.output)[0]


def test_many_items_kernel_equals_reference() -> None:
    """Over 64 items the kernel sorts the remainders with numpy (else by insertion): ties
    still go to the lower index."""
    table = build_table(TABLE)
    policies = PolicySet.of([("t", table)])
    amounts = [25, 26, 25, 7, 0, 99] * 13
    items = [{"code": f"X{i}", "category": "A", "amount": a} for i, a in enumerate(amounts)]
    bill = parse_bill({**BILL, "items": items})
    ker = settle_batch([bill], policies, allocate_items=True)
    ref = reference_batch([bill], policies, allocate_items=True)
    assert ker.allocations == ref.allocations
    assert ker.allocations is not None
    assert sum(it.selfpay for it in ker.allocations[0].items) == ker.settlements[0].net_selfpay
