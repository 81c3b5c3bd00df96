"""``onestop ledger``: verify, seal, checkpoint, prove and check proofs (domain.md section 15).

    onestop ledger verify --db sqlite:///var/onestop.db      # exit 0 intact, 1 names the damage
    onestop ledger seal                                       # seal committed events now
    onestop ledger checkpoint --json                          # what the county publishes
    onestop ledger prove SETTLEMENT_ID --out proof.json       # a beneficiary's proof
    onestop ledger headers --after HEIGHT --out later.json    # headers up to the newest block
    onestop ledger check-proof proof.json --root HASH [--headers later.json]   # offline

Exit codes (the one table, adapters/cli/exitcodes.py): 0 done (intact, valid), 1 damaged
ledger, invalid proof, or a file that cannot be read or written, 2 usage (memory:// holds no
ledger), 3 an unknown settlement or no block yet, 4 the event is not sealed yet, 5 a store that
cannot be opened. Every error is one line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, cast

import typer

from adapters.cli.exitcodes import Exit
from adapters.defaults import DEFAULT_DB
from engine import ledger as L
from engine.errors import Conflict, NotFound, OnestopError
from engine.service.ledger import LedgerService

ledger_app = typer.Typer(
    no_args_is_help=True,
    help="The tamper-evident audit ledger: verify, seal, checkpoint, prove, check-proof.",
)

Db = Annotated[
    str, typer.Option("--db", help="Store URL: sqlite:///path or postgresql+psycopg://...")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _say(text: str, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def _user_error(msg: str, code: Exit = Exit.REFUSED) -> NoReturn:
    _say(f"error: {msg}", err=True)
    raise typer.Exit(code)


@contextmanager
def open_store(db: str, what: str = "ledger") -> Iterator[Any]:
    """The SQL store at ``db``, not migrated (these commands change no schema); every failure
    inside (an OnestopError, a database error) becomes one line and its exit code."""
    if db.startswith("memory:"):
        _user_error(
            f"memory:// holds no {what} between runs; give the server's --db URL", Exit.USAGE
        )
    import sqlalchemy as sa

    from adapters.store.sql import SqlStore

    if db.startswith("sqlite:///"):
        path = Path(db[len("sqlite:///") :].split("?")[0])
        if not path.is_file():
            _user_error(f"no database at {path} (give the server's --db URL)", Exit.UNAVAILABLE)
    try:  # not migrated here: the ledger commands change no schema
        store = SqlStore(db, migrate=False)
    except Exception as e:  # a bad URL, a missing driver
        _user_error(f"cannot open the store {db!r}: {str(e).splitlines()[0]}", Exit.UNAVAILABLE)
    try:
        yield store
    except OnestopError as e:
        code = (
            Exit.NOT_FOUND if isinstance(e, NotFound)
            else Exit.CONFLICT if isinstance(e, Conflict) else Exit.REFUSED
        )  # fmt: skip
        _user_error(" ".join(str(e).split()), code)
    except sa.exc.SQLAlchemyError as e:  # unreachable, or a database without the ledger
        first = str(getattr(e, "orig", None) or e).splitlines()[0]
        _user_error(
            f"store {store!r}: {first} (is it an onestop store, migrated by serve?)",
            Exit.UNAVAILABLE,
        )
    finally:
        store.dispose()


@contextmanager
def _ledger(db: str) -> Iterator[LedgerService]:
    with open_store(db) as store:
        yield LedgerService(cast(Any, store.uow))


@ledger_app.command()
def verify(db: Db = DEFAULT_DB, as_json: Json = False) -> None:
    """Recompute every block from the stored events (seals nothing); exit 1 naming the first
    event or block that differs."""
    with _ledger(db) as svc:
        report, pending = svc.verify()
    if as_json:
        _say(json.dumps({
            "intact": report.ok, "events": report.events, "blocks": report.blocks,
            "height": report.height, "head": report.head, "pending": pending,
            "problems": report.problems,
        }))  # fmt: skip
    elif report.ok:
        _say(
            f"ledger intact: {report.events} events, {report.blocks} blocks, head {report.head}"
            + (f" ({pending} events not sealed yet)" if pending else "")
        )
    else:
        more = len(report.problems) - 1
        _say(
            f"ledger damaged: {report.problems[0]}"
            + (f" (and {more} more problem(s); --json lists them)" if more else "")
        )
    raise typer.Exit(0 if report.ok else 1)


@ledger_app.command()
def seal(db: Db = DEFAULT_DB, as_json: Json = False) -> None:
    """Seal the committed events now (a running server also seals every second)."""
    with _ledger(db) as svc:
        made = svc.seal()
        head = svc.checkpoint()
    if as_json:
        _say(json.dumps({
            "blocks": [h.to_json() | {"hash": h.hash()} for h in made],
            "head": None if head is None else head.hash,
        }))  # fmt: skip
    elif not made:
        _say("nothing to seal" + ("" if head is None else f"; head {head.hash}"))
    else:
        _say(
            f"sealed {len(made)} block(s), events {made[0].first_seq}..{made[-1].last_seq}; "
            f"head {made[-1].hash()} at height {made[-1].height}"
        )


@ledger_app.command()
def checkpoint(db: Db = DEFAULT_DB, as_json: Json = False) -> None:
    """The latest block's hash and height: what a county publishes (daily)."""
    with _ledger(db) as svc:
        head = svc.checkpoint()
    if head is None:
        _user_error("no block sealed yet (onestop ledger seal)", Exit.NOT_FOUND)
    h = head.header
    if as_json:
        _say(json.dumps({
            "height": h.height, "hash": head.hash, "last_seq": h.last_seq,
            "sealed_at": h.sealed_at,
        }))  # fmt: skip
    else:
        _say(f"height {h.height} hash {head.hash} (events 1..{h.last_seq}, sealed {h.sealed_at})")


def _write(doc: Any, out: Path | None) -> None:
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        _user_error(f"cannot write {out}: {e.strerror}")


@ledger_app.command()
def prove(
    settlement_id: Annotated[str, typer.Argument(help="The settlement whose payout to prove")],
    db: Db = DEFAULT_DB,
    out: Annotated[Path | None, typer.Option("--out", help="Write the proof here")] = None,
) -> None:
    """Write the inclusion proof (section 15) of a settlement's Settle event."""
    with _ledger(db) as svc:
        proof = svc.prove(settlement_id)
    _write(proof, out)
    if out is not None:
        h = proof["header"]
        _say(f"proof of event seq {proof['event']['seq']} in block {h['height']} written to {out}")


@ledger_app.command()
def headers(
    after: Annotated[int, typer.Option(help="Headers of the blocks above this height")],
    db: Db = DEFAULT_DB,
    out: Annotated[Path | None, typer.Option("--out", help="Write them here")] = None,
) -> None:
    """The block headers after a height (JSON list), for check-proof --headers: they lead a
    proof's block to a checkpoint published later."""
    with _ledger(db) as svc:
        docs = svc.headers_after(after)
        head = None if docs else svc.checkpoint()
    if not docs and (head is None or after > head.header.height):
        # no block at that height: a mistyped height is not "no later block" (exit 3)
        top = (
            "no block sealed yet" if head is None else f"the head is at height {head.header.height}"
        )
        _user_error(f"no sealed block at height {after}: {top}", Exit.NOT_FOUND)
    _write(docs, out)
    if out is not None:
        _say(f"{len(docs)} block header(s) after height {after} written to {out}")


def _read_json(path: Path, what: str) -> Any:
    try:
        return L.loads(path.read_bytes())
    except OSError as e:
        _user_error(f"cannot read {what} {path}: {e.strerror}")
    except (ValueError, L.CanonicalError) as e:
        _say(f"proof invalid: {what} {path} is not JSON: {e}")
        raise typer.Exit(1) from None


def _headers_hint(doc: Any, headers: Path | None) -> str:
    """What to try when the proof's block is not the published one and no later headers were
    given: a checkpoint published after the proof was made needs them."""
    height = (doc.get("header") or {}).get("height") if isinstance(doc, dict) else None
    if headers is not None or not isinstance(height, int):
        return ""
    return (
        f" (if it was published after block {height}, give the headers after it: onestop "
        f"ledger headers --after {height} --out later.json, then --headers later.json)"
    )


@ledger_app.command("check-proof")
def check_proof(
    proof: Annotated[Path, typer.Argument(help="The proof JSON file")],
    root: Annotated[str, typer.Option("--root", help="The published block hash (checkpoint)")],
    headers: Annotated[
        Path | None,
        typer.Option(help="Later headers (JSON list) leading to the published hash"),
    ] = None,
    as_json: Json = False,
) -> None:
    """Check an inclusion proof offline (no database): exit 0 valid, 1 invalid (why)."""
    doc = _read_json(proof, "proof")
    later = [] if headers is None else _read_json(headers, "headers")
    if not isinstance(later, list):
        _say(f"proof invalid: {headers} is not a JSON list of headers")
        raise typer.Exit(1)
    try:
        header, _ = L.check_proof(doc, root.strip().lower(), later)
    except L.ProofError as e:
        if as_json:
            _say(json.dumps({"valid": False, "reason": str(e)}))
        else:
            _say(f"proof invalid: {e}{_headers_hint(doc, headers)}")
        raise typer.Exit(1) from None
    ev = doc["event"]
    what = f"{ev.get('method', '?')} {ev.get('settlement_id', '')}".strip()
    if as_json:
        _say(json.dumps({"valid": True, "seq": ev["seq"], "height": header.height, "root": root}))
    else:
        _say(f"proof valid: event seq {ev['seq']} ({what}) is in block {header.height}, "
             f"which reaches the published {root}")  # fmt: skip
