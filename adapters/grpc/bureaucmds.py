"""The county bureau client (``onestop bureau put-policy``, ``policies``, ``import-registry``,
``reconcile``, ``totals``) against a running server.

gRPC, protobuf and the client are imported only once the options are checked and the files
read: a usage error or an unreadable file is told without loading them
(tests/test_cli_errors.py). Every file is read before the first is sent.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from adapters.cli.exitcodes import Exit
from adapters.cli.output import new_table, print_json, problem_line, show, text
from adapters.defaults import DEFAULT_SERVER
from adapters.grpc.clicommon import (
    EPILOG,
    CaOpt,
    CertOpt,
    KeyOpt,
    ServerOpt,
    _call,
    _client,
    _read_texts,
    err,
    out,
)
from adapters.grpc.figures import _emit, _say, yuan

if TYPE_CHECKING:
    from adapters.grpc.client import Client
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb

bureau_app = typer.Typer(
    help="County bureau client: put policy tables, list versions, import the person registry, "
    "reconcile with hospitals (3201/3202) and fund totals, on a running server.",
    no_args_is_help=True,
    epilog=EPILOG,
)


@bureau_app.command("put-policy", epilog=EPILOG)
def bureau_put_policy(
    files: Annotated[list[Path], typer.Argument(help="Policy table YAML files.")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Validate and show the difference from the version in "
            "force (unified diff, layers and parameters); store nothing.",
        ),
    ] = False,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """Store each table as a new version (validated; overlapping ranges refused). A table with
    the same region and effective_from as a stored one supersedes it; the same text as the
    version in force stores nothing (that version is answered, unchanged)."""
    texts = _read_texts(files)
    with _client(server, ca, cert, key, "bureau") as c:
        for f, yaml_text in texts:
            v = _call(c, server, lambda c, t=yaml_text, f=f: c.put_policy(t, str(f), dry_run))
            before = (
                _call(c, server, lambda c, v=v: _in_force_text(c, v))
                if dry_run and not v.unchanged
                else None
            )
            end = v.effective_to or "open"
            what = f"region {v.region} {v.region_name}, {v.effective_from}..{end}"
            if v.unchanged:
                out.print(f"{f}: unchanged: the same text as version {v.version} in force "
                          f"({what}); nothing stored", highlight=False, markup=False)  # fmt: skip
            elif dry_run:
                _print_dry_run(f, what, yaml_text, before)
            else:
                out.print(
                    text(f"{f}: version {v.version}, {what}, layers {', '.join(v.layer_ids)}")
                )


def _in_force_text(c: Client, v: pb.PolicyVersion) -> tuple[int, str] | None:
    """(version, text) in force for the region and effective_from of ``v``, if any."""
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb

    r = c.admin.ListPolicies(pb.ListPoliciesRequest(region=v.region), timeout=c.timeout)
    live = [x for x in r.versions if x.in_force and x.effective_from == v.effective_from]
    if not live:
        return None
    got = c.get_policy(live[-1].version)
    return got.version, got.yaml


def _print_dry_run(f: Path, what: str, text: str, before: tuple[int, str] | None) -> None:
    from engine.policy.diff import changes, unified

    if before is None:
        out.print(f"{f}: valid; dry run, nothing stored: a new table ({what}), no version in "
                  "force for this region and start", highlight=False, markup=False)  # fmt: skip
        return
    version, old = before
    out.print(f"{f}: valid; dry run, nothing stored: would supersede version {version} "
              f"({what})", highlight=False, markup=False)  # fmt: skip
    out.print("changes:", highlight=False)
    for line in changes(old, text) or ["(none in layers or parameters; text only)"]:
        out.print(f"  {line}", highlight=False, markup=False)
    print(unified(old, text, f"version {version}", str(f)), end="")


@bureau_app.command("policies", epilog=EPILOG)
def bureau_policies(
    region: Annotated[str, typer.Option(help="Only this region.")] = "",
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every stored version, oldest first, and whether it settles bills now."""
    with _client(server, ca, cert, key, "bureau") as c:
        from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb

        r = _call(
            c,
            server,
            lambda c: c.admin.ListPolicies(
                pb.ListPoliciesRequest(region=region), timeout=c.timeout
            ),
        )
    if as_json:
        print_json([
            {"version": v.version, "region": v.region, "region_name": v.region_name,
             "effective_from": v.effective_from, "effective_to": v.effective_to or None,
             "source_name": v.source_name, "created_at": v.created_at,
             "in_force": v.in_force, "layer_ids": list(v.layer_ids)}
            for v in r.versions
        ])  # fmt: skip
        return
    if not r.versions:
        out.print(text("no policy table stored" + (f" for region {region}" if region else "")))
        return
    t = new_table(
        "Policy table versions",
        ["version", "region", "in force from", "to", "source", "stored (UTC)", "settles now"],
    )
    for v in r.versions:
        t.add_row(text(v.version), text(f"{v.region} {v.region_name}"), text(v.effective_from),
                  text(v.effective_to or "open"), text(v.source_name), text(v.created_at),
                  "yes" if v.in_force else "superseded")  # fmt: skip
    show(out, t)


def _json_file(path: Path, named: str) -> Any:
    """A JSON file the command reads before calling the server; one line and exit 1 when it
    cannot be read (the system's reason), is not JSON (json's reason, line and column) or is
    not UTF-8, never Python's own text ("[Errno 2] ...")."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        why = f"cannot be read: {e.strerror or e}"
    except json.JSONDecodeError as e:
        why = f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
    except ValueError as e:  # not UTF-8
        why = f"not UTF-8 text: {e}"
    problem_line(err, "refused:", f"{named}: {why}")
    raise typer.Exit(Exit.REFUSED)


@bureau_app.command("import-registry", epilog=EPILOG)
def bureau_import_registry(
    file: Annotated[
        Path, typer.Argument(help="JSON list of persons (id, birth_date, household, tags).")
    ],
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """Import (insert or update) the persons of the registry file."""
    persons = _json_file(file, str(file))
    with _client(server, ca, cert, key, "bureau") as c:
        n = _call(c, server, lambda c: c.import_registry(persons))
    out.print(text(f"{n} person(s) imported from {file} (new or changed; a person stored "
                   "so already is not imported again)"))  # fmt: skip


# --------------------------------------------------------------------------- reconciliation

FromOpt = Annotated[
    str, typer.Option("--from", help="First settlement date, YYYY-MM-DD (Asia/Shanghai).")
]
ToOpt = Annotated[
    str, typer.Option("--to", help="Last settlement date, inclusive, YYYY-MM-DD (Asia/Shanghai).")
]


@bureau_app.command("reconcile", epilog=EPILOG)
def bureau_reconcile(
    hospital: Annotated[str, typer.Option(help="Hospital code (NHSA fixmedins_code).")],
    from_date: FromOpt,
    to_date: ToOpt,
    theirs: Annotated[
        Path | None,
        typer.Option(
            help='The hospital\'s own figures, JSON: {"totals": {fixmedins_setl_cnt, '
            "medfee_sumamt, fund_pay_sumamt, psn_cash_pay, funds: {code: fen}}, "
            '"settlements": [{settlement_id, reversal, medfee_sumamt, ...}]} (fen).'
        ),
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (fen).")] = False,
) -> None:
    """Reconcile a hospital's settlements over a range of settlement dates (NHSA 3201 totals,
    3202 detail; domain.md section 14). Exit 1 when the hospital's figures differ."""
    their_json = None
    if theirs is not None:
        their_json = _json_file(theirs, f"--theirs {theirs}")
    with _client(server, ca, cert, key, "bureau") as c:
        from adapters.grpc.convert import theirs_from_json
        from adapters.grpc.reconcileview import _ENTRY_COLS, _amount, _entry_rows, reconcile_json

        their_totals = their_list = None
        if their_json is not None:
            try:
                their_totals, their_list = theirs_from_json(their_json)
            except ValueError as e:
                problem_line(err, "refused:", f"{theirs}: {e}")
                raise typer.Exit(Exit.REFUSED) from None
        r = _call(
            c, server, lambda c: c.reconcile(hospital, from_date, to_date, their_totals, their_list)
        )
    code = Exit.REFUSED if r.compared and not r.match else Exit.OK
    if as_json:
        typer.echo(json.dumps(reconcile_json(r), ensure_ascii=False, indent=2))
        raise typer.Exit(code)
    t = r.totals
    theirs_of = {d.field: d.theirs for d in r.differences}
    sent = their_totals
    rows = []
    for name, v in (("fixmedins_setl_cnt", t.fixmedins_setl_cnt),
                    ("medfee_sumamt", t.medfee_sumamt),
                    ("fund_pay_sumamt", t.fund_pay_sumamt),
                    ("psn_cash_pay", t.psn_cash_pay),
                    *((f"fund:{f.fund_code}", f.pay) for f in t.window_funds)):  # fmt: skip
        if name in theirs_of:
            th, mark = _amount(name, theirs_of[name]), "DIFFERS"
        elif sent is not None and (
            (name.startswith("fund:") and sent.HasField("funds"))
            or (not name.startswith("fund:") and sent.HasField(name))
        ):
            th, mark = _amount(name, v), "ok"
        else:
            th, mark = "", ""
        rows.append([name, _amount(name, v), th, mark])
    for name in theirs_of:  # a fund only the hospital has
        if name.startswith("fund:") and name not in {x[0] for x in rows}:
            rows.append([name, yuan(0), _amount(name, theirs_of[name]), "DIFFERS"])
    for f in t.after_discharge_funds:
        rows.append([f"after_discharge:{f.fund_code}", yuan(f.pay), "", "not compared"])
    _emit(
        f"Reconciliation of {r.hospital}, settlement dates {r.from_date}..{r.to_date} "
        "(Asia/Shanghai; yuan)",
        ["total", "ours", "theirs", ""],
        rows,
    )
    if not r.compared:
        _say("nothing to compare (no --theirs)")
    elif r.match:
        _say("MATCH (stmt_rslt 0)")
    else:
        _say(f"DIFFERENT: {len(r.differences)} total(s), "
             f"{len(r.line_differences)} settlement line(s)")  # fmt: skip
    for d in r.differences:
        _emit(
            f"{d.field}: ours {_amount(d.field, d.ours)}, theirs {_amount(d.field, d.theirs)}; "
            f"the {len(d.entries)} entries behind ours",
            _ENTRY_COLS,
            _entry_rows(d.entries),
        )
    if r.line_differences:
        _emit(
            "Settlements the lists disagree on",
            ["settlement", "kind", "problem", "amounts", "ours", "theirs"],
            [
                [d.settlement_id, "reversal" if d.reversal else "settlement", d.problem,
                 " ".join(d.fields),
                 " ".join(f"{k}={yuan(getattr(d.ours, k))}" for k in
                          ("medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay"))
                 if d.HasField("ours") else "",
                 " ".join(f"{k}={yuan(getattr(d.theirs, k))}" for k in
                          ("medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay")
                          if d.theirs.HasField(k))
                 if d.HasField("theirs") else ""]
                for d in r.line_differences
            ],
        )  # fmt: skip
    raise typer.Exit(code)


TOTALS_COLUMNS = ("date", "hospital", "fund_code", "settle_at", "count", "pay_fen")


def _totals_table(rows: Any) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "date": pa.array([date.fromisoformat(x.date) for x in rows], pa.date32()),
            "hospital": pa.array([x.hospital for x in rows], pa.string()),
            "fund_code": pa.array([x.fund_code for x in rows], pa.string()),
            "settle_at": pa.array([x.settle_at for x in rows], pa.string()),
            "count": pa.array([x.count for x in rows], pa.int64()),
            "pay_fen": pa.array([x.pay for x in rows], pa.int64()),
        }
    )


@bureau_app.command("totals", epilog=EPILOG)
def bureau_totals(
    region: Annotated[str, typer.Option(help="Region code.")],
    from_date: FromOpt,
    to_date: ToOpt,
    hospital: Annotated[str, typer.Option(help="Only this hospital ('' = all).")] = "",
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write the rows as CSV (pay in fen).")
    ] = None,
    parquet_file: Annotated[
        Path | None, typer.Option("--parquet", help="Write the rows as Parquet (pay in fen).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows (fen).")] = False,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """Totals per day, hospital and fund of a region (settlement dates in Asia/Shanghai,
    reversals netted on their own date): the bureau's monthly settlement with its hospitals."""
    if sum(x is not None and x is not False for x in (csv_file, parquet_file, as_json)) > 1:
        problem_line(err, "usage:", "give one of --csv, --parquet, --json")
        raise typer.Exit(Exit.USAGE)
    with _client(server, ca, cert, key, "bureau") as c:
        r = _call(c, server, lambda c: c.daily_totals(region, from_date, to_date, hospital))
    if as_json:
        typer.echo(
            json.dumps(
                [
                    dict(
                        zip(
                            TOTALS_COLUMNS,
                            (x.date, x.hospital, x.fund_code, x.settle_at, x.count, x.pay),
                            strict=True,
                        )
                    )
                    for x in r.rows
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if csv_file is not None or parquet_file is not None:
        table = _totals_table(r.rows)
        if csv_file is not None:
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, csv_file)
            target = csv_file
        else:
            import pyarrow.parquet as pq

            assert parquet_file is not None
            pq.write_table(table, parquet_file)
            target = parquet_file
        _say(f"{len(r.rows)} row(s) written to {target}")
        return
    _emit(
        f"Totals of region {region}, settlement dates {from_date}..{to_date} (Asia/Shanghai; yuan)",
        ["date", "hospital", "fund_code", "settle_at", "count", "pay (yuan)"],
        [[x.date, x.hospital, x.fund_code, x.settle_at, str(x.count), yuan(x.pay)] for x in r.rows],
    )
    per: dict[tuple[str, str], list[int]] = {}
    for x in r.rows:
        acc = per.setdefault((x.settle_at, x.fund_code), [0, 0])
        acc[0] += x.count
        acc[1] += x.pay
    _emit(
        "Per fund over the range",
        ["settle_at", "fund_code", "count", "pay (yuan)"],
        [[at, code, str(n), yuan(p)] for (at, code), (n, p) in sorted(per.items())],
    )
