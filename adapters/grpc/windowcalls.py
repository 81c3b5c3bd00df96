"""What the window client's commands (``windowcmds``) do once their options and files are
checked: call the server and print the slip, the JSON or the table. Imported by a command only
then, so that a refused bill file or option is told before gRPC and the engine's models load."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from adapters.cli.output import new_table, print_json, show, text
from adapters.cli.slip import Reversal, explanation_json, print_accounts, print_slip
from adapters.grpc.clicommon import _client, _fail, err, out
from adapters.grpc.client import Client
from adapters.grpc.convert import settlement_from_pb, year_accounts_from_pb
from adapters.grpc.figures import money
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb

#: --ca, --cert, --key as the command got them
Tls = tuple[Path | None, Path | None, Path | None]


@contextmanager
def _calling(server: str, tls: Tls) -> Iterator[Client]:
    """A client of ``server``; a call the server refuses (or cannot take) is printed and exits
    with the code of the table (``clicommon._fail``)."""
    with _client(server, *tls) as c:
        try:
            yield c
        except grpc.RpcError as e:
            _fail(e, server)


def _record_json(rec: pb.SettlementRecord, replay: bool | None = None) -> dict[str, Any]:
    s = settlement_from_pb(rec.result)
    d: dict[str, Any] = {
        "settlement_id": rec.settlement_id,
        "request_id": rec.request_id,
        "status": rec.status,
        "created_at": rec.created_at,
        "reversed_at": rec.reversed_at or None,
        "result": s.to_dict(),
        "explanation": explanation_json(s),
    }
    if replay is not None:
        d["replay"] = replay
    return d


def _accounts(c: Client, person_id: str, year: int) -> pb.GetAccountsResponse | None:
    try:
        return c.accounts(person_id, year)
    except grpc.RpcError:
        return None


def _show(
    c: Client,
    result: pb.SettlementResult,
    header: str,
    as_json: bool,
    extra: Any,
    reversal: Reversal | None = None,
) -> None:
    acc = _accounts(c, result.person_id, result.year)
    if as_json:
        d = dict(extra)
        if acc is not None:
            d["accounts"] = {
                "person": year_accounts_from_pb(acc.person).to_dict(),
                "household": year_accounts_from_pb(acc.household_accounts).to_dict(),
            }
        print_json(d)
        return
    out.print(text(header))
    print_slip(
        out,
        settlement_from_pb(result),
        None,
        year_accounts_from_pb(acc.person) if acc else None,
        year_accounts_from_pb(acc.household_accounts) if acc else None,
        reversal=reversal,
    )


def _write_slip(path: Path | None, rec: pb.SettlementRecord, bill: dict[str, Any] | None) -> None:
    """The printed slip of a stored record (a reversal slip when it is reversed). ``bill``:
    the bill file sent (admission date, level, category totals); the server's record does not
    carry the bill, so a reversal slip shows those as not in the record."""
    if path is None:
        return
    from adapters.slip.render import SlipMeta, slip_data, write_slip

    meta = SlipMeta(
        settlement_id=rec.settlement_id,
        request_id=rec.request_id,
        settled_at=rec.created_at,
        reversed=rec.status == "reversed",
        reversed_at=rec.reversed_at,
        reversal_request_id=rec.reversal_request_id,
    )
    write_slip(path, [slip_data(settlement_from_pb(rec.result), bill, meta=meta)])
    err.print(text(f"slip written to {path}"))


def settle(
    bill_doc: dict[str, Any],
    rid: str,
    server: str,
    tls: Tls,
    as_json: bool,
    slip_file: Path | None,
) -> None:
    """Settle (2304) the checked bill ``bill_doc`` under request id ``rid``."""
    with _calling(server, tls) as c:
        r = c.settle(bill_doc, rid)
        rec = r.settlement
        head = f"settlement {rec.settlement_id} (request {rec.request_id})" + (
            " replay: already settled, nothing paid again" if r.replay else ""
        )
        _show(c, rec.result, head, as_json, _record_json(rec, r.replay))
        _write_slip(slip_file, rec, bill_doc)


def pre_settle(
    bill_doc: dict[str, Any],
    server: str,
    tls: Tls,
    as_json: bool,
) -> None:
    """Trial settlement (2303) of the checked bill ``bill_doc``."""
    with _calling(server, tls) as c:
        r = c.pre_settle(bill_doc)
        s = settlement_from_pb(r.result)
        _show(
            c, r.result, "trial settlement (nothing stored; the accounts are as they stand)",
            as_json, {"result": s.to_dict(), "explanation": explanation_json(s)},
        )  # fmt: skip


def reverse(
    target: str,
    by_request: bool,
    server: str,
    tls: Tls,
    as_json: bool,
    slip_file: Path | None,
) -> None:
    """Reverse (2305) a settlement by its id, or by its request id with ``by_request``."""
    with _calling(server, tls) as c:
        r = c.reverse(request_id=target) if by_request else c.reverse(settlement_id=target)
        rec = r.settlement
        head = f"settlement {rec.settlement_id} reversed (冲正)" + (
            " (it already was: nothing moved)" if r.replay else ""
        )
        _show(
            c, rec.result, head, as_json, _record_json(rec, r.replay),
            reversal=Reversal(rec.settlement_id, rec.created_at, rec.reversed_at),
        )  # fmt: skip
        _write_slip(slip_file, rec, None)


def accounts(
    person: str,
    year: int,
    server: str,
    tls: Tls,
    as_json: bool,
) -> None:
    """A person's and household's year-to-date accounts in ``year``."""
    with _calling(server, tls) as c:
        a = c.accounts(person, year)
    pa, ha = year_accounts_from_pb(a.person), year_accounts_from_pb(a.household_accounts)
    if as_json:
        print_json(
            {
                "person_id": a.person_id,
                "household": a.household,
                "year": a.year,
                "person": pa.to_dict(),
                "household_accounts": ha.to_dict(),
            }
        )
        return
    print_accounts(out, a.year, a.person_id, pa, a.household, ha)


def settlements(
    person: str,
    year: int | None,
    server: str,
    tls: Tls,
    as_json: bool,
) -> None:
    """A person's settlements, oldest first (every page of ListSettlements)."""
    with _calling(server, tls) as c:
        recs = c.list(person, year)
    if as_json:
        print_json([_record_json(r) for r in recs])
        return
    if not recs:
        out.print(text(f"no settlements of {person}" + (f" in {year}" if year else "")))
        return
    t = new_table(
        f"Settlements of {person}" + (f" in {year}" if year else ""),
        ["settlement", "request", "bill", "status", "stored (UTC)", ("window pay", "right"),
         ("funds", "right")],
    )  # fmt: skip
    for r in recs:
        t.add_row(text(r.settlement_id), text(r.request_id), text(r.result.bill_id),
                  text(r.status), text(r.created_at), money(r.result.window_pay),
                  money(r.result.funds_total))  # fmt: skip
    show(out, t)
