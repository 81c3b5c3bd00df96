"""``onestop settle``: what the command does once its options are read, whichever front read
them: typer's (adapters/cli/app.py, the command's options, help and usage errors) or the
typer-free one of a plain well-formed command line (adapters/cli/quickargs.py). Imports no
typer, and the engine (pydantic models, PyYAML) when it is imported: only ``onestop settle``
imports it (adapters/cli/main.py, or inside typer's settle command).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from adapters.cli.exitcodes import Exit
from adapters.cli.files import layer_ids, opening_to_json, read_bills, read_opening
from adapters.cli.output import Out, console, fail, new_table, print_json, problem_line, show, text
from adapters.cli.quickargs import Engine
from adapters.cli.slip import accounts_after_each, explanation_json, print_slip
from adapters.slip import slip_path_problem
from engine.engines import settle as run
from engine.errors import OnestopError
from engine.money import yuan
from engine.policy.load import load_policies

if TYPE_CHECKING:
    from rich.console import JustifyMethod

    from engine.allocation import Allocation
    from engine.bill import Bill
    from engine.engines import Engine as EngineName
    from engine.policy.policyset import PolicySet
    from engine.result import Settlement

out = console()
err = console(stderr=True)


def settle_bills(
    bills: Sequence[Path],
    policy: Sequence[Path] | None = None,
    accounts: Path | None = None,
    accounts_out: Path | None = None,
    as_json: bool = False,
    engine: str = Engine.auto.value,
    slip_file: Path | None = None,
    allocate: bool = False,
) -> None:
    """Settle bills (in settlement order, from the opening accounts) and print the slip;
    refusals exit 1 (every problem printed), a bad ``--slip`` path 2."""
    if problem := slip_path_problem(slip_file):
        problem_line(err, "refused:", problem)
        raise SystemExit(Exit.USAGE)
    try:
        policies = load_policies(*(policy or [Path("policies")]))
        bill_list = read_bills(list(bills))
        opening = read_opening(accounts, layer_ids(policies))
        result = run(
            cast("EngineName", engine), bill_list, policies, opening, allocate_items=allocate
        )
    except OnestopError as e:
        fail(err, e)
    closing = result.closing
    if slip_file is not None:  # first: a slip that cannot be written leaves no accounts file
        _write_slips(slip_file, bill_list, result.settlements, policies)
    if accounts_out is not None:
        accounts_out.write_text(json.dumps(opening_to_json(closing), indent=2) + "\n")
    if as_json:
        docs: list[dict[str, Any]] = []
        for s, b in zip(result.settlements, bill_list, strict=True):
            d = s.to_dict()
            d["explanation"] = explanation_json(s, policies.table_for(b.region, b.discharge_date))
            if result.allocations is not None:
                d["items"] = allocation_json(result.allocations[len(docs)])
            docs.append(d)
        print_json(docs)
        return
    order = sorted(
        range(len(bill_list)),
        key=lambda i: (
            bill_list[i].discharge_date, bill_list[i].admission_date, bill_list[i].id,
            bill_list[i].hospital,
        ),
    )  # fmt: skip
    after = accounts_after_each(bill_list, result.settlements, opening)
    for i in order:
        s, b = result.settlements[i], bill_list[i]
        person, household = after[i]
        print_slip(out, s, policies.table_for(b.region, b.discharge_date), person, household)
        if result.allocations is not None:
            print_allocation(out, result.allocations[i])


def allocation_json(a: Allocation) -> list[dict[str, Any]]:
    """Per item: index, code, name, amount, shares (fund_code, layer_id, settle_at, amount),
    selfpay, window_pay; money in fen."""
    return [
        {
            "index": it.index, "code": it.code, "name": it.name, "amount": it.amount,
            "shares": [
                {"fund_code": x.fund_code, "layer_id": x.layer_id, "settle_at": x.settle_at,
                 "amount": x.amount}
                for x in it.shares
            ],
            "selfpay": it.selfpay, "window_pay": it.window_pay,
        }
        for it in a.items
    ]  # fmt: skip


def print_allocation(con: Out, a: Allocation) -> None:
    """Which fund paid which item of one bill (yuan), one row per item."""
    layers = [x.layer_id for x in a.items[0].shares] if a.items else []
    codes = [x.fund_code for x in a.items[0].shares] if a.items else []
    money = [f"{lid} ({c})" for lid, c in zip(layers, codes, strict=True)]
    cols: list[str | tuple[str, JustifyMethod]] = [
        ("#", "right"),
        ("item", "left"),
        ("amount", "right"),
    ]
    cols += [(m, "right") for m in [*money, "selfpay", "at window"]]
    t = new_table(f"Bill {a.bill_id}: who paid each item", cols)
    for it in a.items:
        t.add_row(
            str(it.index), text(f"{it.code} {it.name}".strip()), yuan(it.amount),
            *(yuan(x.amount) for x in it.shares), yuan(it.selfpay), yuan(it.window_pay),
        )  # fmt: skip
    show(con, t)


def _write_slips(
    path: Path, bills: list[Bill], settlements: Sequence[Settlement], policies: PolicySet
) -> None:
    """The printed slips of an offline run, one page a bill in settlement order."""
    from adapters.slip.render import SlipMeta, slip_data, write_slip
    from engine.plainbatch import order_key

    meta = SlipMeta(note="离线结算，未保存 offline settlement (onestop settle): not stored, no ids")
    order = sorted(range(len(bills)), key=lambda i: order_key(bills[i]))
    write_slip(path, [
        slip_data(settlements[i], bills[i], meta=meta,
                  table=policies.table_for(bills[i].region, bills[i].discharge_date))
        for i in order
    ])  # fmt: skip
    err.print(text(f"slip written to {path}"))
