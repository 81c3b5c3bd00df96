"""Commands of the funds service (issue 10), on a running server through ``Client``:

    onestop fund put|money-in|claims|claim|approve|reject|pay|statement   (fund operator, bureau)
    onestop person cover                                                    (an insured person)
    onestop cadre cover-list|file-claim                                     (a village cadre)

Each takes --server and the TLS files (--ca --cert --key, or ONESTOP_CA/_CERT/_KEY) like the
bureau commands, and --json: the rpc's answer as JSON, field for field, money in integer fen
(an unset optional field is null). Text output is whole: tables fold on a terminal and are
tab-separated lines otherwise (never cut); money in exact yuan. A refusal is printed once and
the exit code is the one table's (adapters/cli/exitcodes.py).

gRPC, protobuf and the client are imported only once the options are checked and the files
read: a usage error or an unreadable file is told without loading them
(tests/test_cli_errors.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from adapters.cli.output import print_json
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
)
from adapters.grpc.figures import _emit, _say, yuan

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the answer as JSON (fen).")]


def msg_json(m: Any) -> dict[str, Any]:
    """A message as JSON, every field by its proto name: integers as integers (int64 too,
    which protobuf's JSON writes as strings), an unset optional field as null."""
    from google.protobuf.descriptor import FieldDescriptor

    out: dict[str, Any] = {}
    for f in m.DESCRIPTOR.fields:
        v = getattr(m, f.name)
        if f.is_repeated:
            out[f.name] = [msg_json(x) if f.type == FieldDescriptor.TYPE_MESSAGE else x for x in v]
        elif f.has_presence and f.type != FieldDescriptor.TYPE_MESSAGE and not m.HasField(f.name):
            out[f.name] = None
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            out[f.name] = msg_json(v) if m.HasField(f.name) else None
        else:
            out[f.name] = v
    return out


def _run(
    server: str,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    fn: Any,
    command: str = "fund",
) -> Any:
    with _client(server, ca, cert, key, command) as c:
        return _call(c, server, fn)


def _claim_rows(claims: Any) -> list[list[str]]:
    return [
        [c.claim_id, c.kind, c.status, c.fund_code, c.person_id, c.hospital, c.bill_id,
         c.discharge_date, yuan(c.filed_amount), yuan(c.current_amount),
         c.paid_date or "", c.payment_ref]
        for c in claims
    ]  # fmt: skip


CLAIM_COLUMNS = ["claim", "kind", "status", "fund_code", "person", "hospital", "bill",
                 "discharged", "filed (yuan)", "current (yuan)", "paid on", "payment ref"]  # fmt: skip


def _show_claim(c: Any, as_json: bool, what: str = "") -> None:
    if as_json:
        print_json(msg_json(c))
        return
    if what:
        _say(f"claim {c.claim_id}: {what}")
    rows = [
        ("claim", c.claim_id), ("kind", c.kind), ("status", c.status),
        ("settlement", c.settlement_id), ("layer", c.layer_id), ("fund", c.fund_code),
        ("region", c.region), ("year", str(c.year)), ("person", c.person_id),
        ("household", c.household), ("hospital", c.hospital), ("bill", c.bill_id),
        ("discharged", c.discharge_date), ("filed amount (yuan)", yuan(c.filed_amount)),
        ("filed", f"{c.filed_at} by {c.filed_by}"),
        ("approved amount (yuan)",
         yuan(c.approved_amount) if c.HasField("approved_amount") else ""),
        ("current amount (yuan)", yuan(c.current_amount)),
        ("decided", f"{c.decided_at} by {c.decided_by}" if c.decided_at else ""),
        ("note", c.note), ("reason", c.reason),
        ("paid", f"{c.paid_date} ref {c.payment_ref} (recorded {c.paid_at} by {c.paid_by})"
         if c.status == "paid" else ""),
        ("days to payment",
         str(c.days_to_payment) if c.HasField("days_to_payment") else ""),
    ]  # fmt: skip
    _emit(f"Claim {c.claim_id}", ["field", "value"], [[k, v] for k, v in rows])


# --------------------------------------------------------------------------- fund

fund_app = typer.Typer(
    help="Fund operator client: declare funds, record money in, list, approve, reject and pay "
    "claims and relief cases, read a fund's statement, on a running server.",
    no_args_is_help=True,
    epilog=EPILOG,
)


@fund_app.command("put", epilog=EPILOG)
def fund_put(
    files: Annotated[list[Path], typer.Argument(help="funds.yaml files (one region each).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate; store nothing.")] = False,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store each funds.yaml (validated: every problem named by file:line and path)."""
    texts = _read_texts(files)
    answers = []
    with _client(server, ca, cert, key, "fund") as c:
        for f, text in texts:
            r = _call(c, server, lambda c, t=text, f=f: c.put_funds(t, str(f), dry_run))
            answers.append((f, r))
    if as_json:
        print_json([dict(msg_json(r), file=str(f)) for f, r in answers])
        return
    for f, r in answers:
        state = ("valid; dry run, nothing stored" if dry_run
                 else "unchanged; nothing stored" if r.unchanged else "stored")  # fmt: skip
        _say(f"{f}: {state}: region {r.region}, funds {', '.join(r.fund_codes)}")


@fund_app.command("money-in", epilog=EPILOG)
def fund_money_in(
    region: Annotated[str, typer.Option(help="Region code of the fund.")],
    fund: Annotated[str, typer.Option("--fund", help="Fund code.")],
    year: Annotated[int, typer.Option(help="Accounting year the money counts for.")],
    amount: Annotated[int, typer.Option(help="Amount in fen (a whole number, > 0).")],
    on: Annotated[str, typer.Option("--on", help="Value date YYYY-MM-DD.")],
    payer: Annotated[str, typer.Option(help="Who paid (name, donation platform).")],
    kind: Annotated[str, typer.Option(help="premium, donation, government or other.")] = "donation",
    note: Annotated[str, typer.Option(help="Free text.")] = "",
    request_id: Annotated[
        str, typer.Option(help="Id of this record (a retry with it adds nothing); default new.")
    ] = "",
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record money into a fund: a premium, a donation, a government contribution."""
    rid = request_id or uuid.uuid4().hex
    r = _run(server, ca, cert, key, lambda c: c.record_money_in(
        rid, region, fund, year, kind, payer, amount, on, note))  # fmt: skip
    if as_json:
        print_json(msg_json(r))
        return
    m = r.record
    what = "already recorded (replay); nothing added" if r.replay else "recorded"
    _say(f"{what}: {m.record_id}: {m.kind} of {yuan(m.amount)} yuan from {m.payer} on {m.on} "
         f"to fund {m.fund_code} of region {m.region}, {m.year}")  # fmt: skip


@fund_app.command("claims", epilog=EPILOG)
def fund_claims(
    region: Annotated[str, typer.Option(help="Region code.")] = "",
    fund: Annotated[str, typer.Option("--fund", help="Fund code.")] = "",
    person: Annotated[str, typer.Option(help="Only this person's.")] = "",
    status: Annotated[str, typer.Option(help="filed, approved, rejected or paid.")] = "",
    kind: Annotated[str, typer.Option(help="claim or relief.")] = "",
    year: Annotated[int | None, typer.Option(help="Accounting year.")] = None,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Claims and relief cases (every page of ListClaims), oldest first: a person's, or a
    fund's of a region and year."""
    filters: dict[str, Any] = dict(region=region, fund_code=fund, person_id=person,
                                   status=status, kind=kind, year=year)  # fmt: skip
    claims = _run(server, ca, cert, key, lambda c: c.list_claims(**filters))
    if as_json:
        print_json([msg_json(x) for x in claims])
        return
    if not claims:
        _say("no claims")
        return
    _emit(f"{len(claims)} claim(s)", CLAIM_COLUMNS, _claim_rows(claims))


@fund_app.command("claim", epilog=EPILOG)
def fund_claim(
    claim_id: Annotated[str, typer.Argument(help="The claim's id.")],
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One claim or relief case, with its whole history."""
    _show_claim(_run(server, ca, cert, key, lambda c: c.get_claim(claim_id)), as_json)


@fund_app.command("approve", epilog=EPILOG)
def fund_approve(
    claim_id: Annotated[str, typer.Argument(help="The claim's id (status filed).")],
    note: Annotated[str, typer.Option(help="Why (kept with the decision).")] = "",
    amount: Annotated[
        int | None, typer.Option(help="Approved amount in fen (default: the filed amount).")
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a filed claim, at its filed amount or a lower one."""
    c = _run(server, ca, cert, key, lambda c: c.approve_claim(claim_id, amount, note))
    _show_claim(c, as_json, f"approved at {yuan(c.current_amount)} yuan")


@fund_app.command("reject", epilog=EPILOG)
def fund_reject(
    claim_id: Annotated[str, typer.Argument(help="The claim's id (status filed).")],
    reason: Annotated[str, typer.Option(help="Why (required; shown to the person).")],
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a filed claim, with a reason."""
    c = _run(server, ca, cert, key, lambda c: c.reject_claim(claim_id, reason))
    _show_claim(c, as_json, "rejected")


@fund_app.command("pay", epilog=EPILOG)
def fund_pay(
    claim_id: Annotated[str, typer.Argument(help="The claim's id (status approved).")],
    paid_date: Annotated[str, typer.Option("--date", help="Value date YYYY-MM-DD.")],
    ref: Annotated[str, typer.Option("--ref", help="Payment reference (transfer number).")],
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the payment of an approved claim."""
    c = _run(server, ca, cert, key, lambda c: c.pay_claim(claim_id, paid_date, ref))
    _show_claim(c, as_json, f"paid {yuan(c.current_amount)} yuan on {c.paid_date}")


@fund_app.command("statement", epilog=EPILOG)
def fund_statement(
    region: Annotated[str, typer.Option(help="Region code.")],
    fund: Annotated[str, typer.Option("--fund", help="Fund code.")],
    year: Annotated[int, typer.Option(help="Accounting year.")],
    as_of: Annotated[str, typer.Option(help="Enrolment on this date (default today).")] = "",
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One fund of one region and year: money in, paid, payable, balance, loss ratio."""
    s = _run(server, ca, cert, key, lambda c: c.fund_statement(region, fund, year, as_of))
    if as_json:
        print_json(msg_json(s))
        return
    ratio = s.loss_ratio_bp if s.HasField("loss_ratio_bp") else None
    rows = [
        ("fund", f"{s.fund_code} {s.fund_name} {s.fund_name_zh}".strip()),
        ("region", f"{s.region} {s.region_name}".strip()), ("year", str(s.year)),
        ("enrolled", f"{s.enrolled} (as of {s.as_of})"),
        ("budget (yuan)", yuan(s.budget) if s.HasField("budget") else "none"),
        ("budget mode", s.budget_mode), ("carried in (yuan)", yuan(s.carried_in)),
        ("money in (yuan)", yuan(s.money_in)),
        ("window paid (yuan)", f"{yuan(s.window_paid)} ({s.window_count} settlements; "
                               f"{s.window_reversed} reversed)"),
        ("claims paid (yuan)", yuan(s.claims_paid)),
        ("claims payable (yuan)", yuan(s.claims_payable)),
        ("claims pending (yuan)", yuan(s.claims_pending)),
        ("money out (yuan)", yuan(s.money_out)),
        ("balance (yuan)", f"{yuan(s.balance)} (money in + carried in - money out)"),
        ("used (yuan)", yuan(s.used)),
        ("budget left (yuan)", yuan(s.budget_left) if s.HasField("budget_left")
         else "no hard budget"),
        ("days to payment", "none paid" if not s.days_to_payment.count
         else f"median {s.days_to_payment.median}, mean {s.days_to_payment.mean}, "
              f"90% within {s.days_to_payment.p90} ({s.days_to_payment.count} paid)"),
        ("loss ratio", "none (no money in)" if ratio is None
         else f"{ratio // 100}.{ratio % 100:02d}%"),
    ]  # fmt: skip
    _emit(f"Fund {s.fund_code}, region {s.region}, {s.year}", ["figure", "value"],
          [[k, v] for k, v in rows])  # fmt: skip
    if s.claims:
        _emit("Claims and relief cases", ["kind", "status", "count", "filed (yuan)",
                                          "current (yuan)"],
              [[t.kind, t.status, str(t.count), yuan(t.filed_amount), yuan(t.current_amount)]
               for t in s.claims])  # fmt: skip


# --------------------------------------------------------------------------- person, cadre

person_app = typer.Typer(
    help="Insured person client: your cover, settlements and claims.",
    no_args_is_help=True,
    epilog=EPILOG,
)


@person_app.callback()
def _person() -> None:
    """Insured person client: your cover, settlements and claims."""
    # a callback keeps `cover` a subcommand (typer folds a one-command group into itself)


@person_app.command("cover", epilog=EPILOG)
def person_cover(
    person: Annotated[str, typer.Argument(help="Person id (your own, for role person).")],
    year: Annotated[int, typer.Option(help="Accounting year (default this year).")] = 0,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The funds that insure the person, their settlements and their claims with status."""
    r = _run(server, ca, cert, key, lambda c: c.person_cover(person, year), "person")
    if as_json:
        print_json(msg_json(r))
        return
    place = " / ".join(x for x in (r.township, r.village) if x) or "unknown"
    _say(f"{r.person_id} (household {r.household}), region {r.region}, {place}, {r.year}")
    _emit("Covered by", ["region", "fund_code", "name", "name_zh", "operator"],
          [[f.region, f.fund_code, f.fund_name, f.fund_name_zh, f.operator] for f in r.funds])  # fmt: skip
    _emit("Settlements", ["settlement", "hospital", "bill", "discharged", "status",
                          "total (yuan)", "funds (yuan)", "window pay (yuan)"],
          [[s.settlement_id, s.hospital, s.bill_id, s.discharge_date, s.status, yuan(s.total),
            yuan(s.funds_total), yuan(s.window_pay)] for s in r.settlements])  # fmt: skip
    _emit("Claims and relief cases", CLAIM_COLUMNS, _claim_rows(r.claims))


cadre_app = typer.Typer(
    help="Village cadre client: the cover list of your villages, claims for villagers.",
    no_args_is_help=True,
    epilog=EPILOG,
)


@cadre_app.command("cover-list", epilog=EPILOG)
def cadre_cover_list(
    region: Annotated[str, typer.Option(help="Region code.")],
    township: Annotated[str, typer.Option(help="Township ('' = all you may see).")] = "",
    village: Annotated[str, typer.Option(help="Village ('' = all you may see).")] = "",
    as_of: Annotated[str, typer.Option(help="Cover on this date (default today).")] = "",
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each person of your villages and the funds that insure them."""
    r = _run(
        server, ca, cert, key, lambda c: c.cover_list(region, township, village, as_of), "cadre"
    )
    if as_json:
        print_json(msg_json(r))
        return
    _emit(f"Cover list of region {r.region} on {r.as_of}: {len(r.persons)} person(s)",
          ["township", "village", "person", "household", "funds"],
          [[p.township, p.village, p.person_id, p.household, ", ".join(p.fund_codes)]
           for p in r.persons])  # fmt: skip


@cadre_app.command("file-claim", epilog=EPILOG)
def cadre_file_claim(
    settlement_id: Annotated[str, typer.Argument(help="The villager's settlement.")],
    layer_id: Annotated[str, typer.Argument(help="Its after-discharge layer.")],
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """File a claim after discharge for a villager's settled bill."""
    c = _run(server, ca, cert, key, lambda c: c.file_claim(settlement_id, layer_id), "cadre")
    # FileClaim answers the claim filed now or the one already on file (a settlement files its
    # claims itself): say what is on file, never that it was filed just now
    _show_claim(c, as_json, f"on file, filed for {yuan(c.filed_amount)} yuan at {c.filed_at} "
                            f"by {c.filed_by}; status {c.status}")  # fmt: skip
