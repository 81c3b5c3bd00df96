"""The audit ledger over the stores (memory, SQLite, PostgreSQL): events written with their
effect (and not without it), sealing behind concurrent settlements, ``onestop ledger verify``
catching each kind of tampering done directly in the database, and prove / check-proof."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from adapters.cli.app import app as cli
from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore
from engine import ledger as L
from engine.bill import BillRequest, Person
from engine.errors import Conflict
from engine.service.ledger import LedgerService
from engine.service.usecases import SettlementService
from tests.pg import db_url, fresh_database, pg_url  # noqa: F401  (fixtures)
from tests.test_store_sql import Clock, FailAtCommit, bill, golden, ids

runner = CliRunner()


@pytest.fixture(params=["memory", "sql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield MemoryStore()
        return
    s = SqlStore(f"sqlite:///{tmp_path / 'l.db'}")
    yield s
    s.dispose()


@pytest.fixture
def store(db_url: str) -> Any:  # noqa: F811
    s = SqlStore(db_url)
    yield s
    s.dispose()


@pytest.fixture
def pg_store(pg_url: str) -> Any:  # noqa: F811
    """PostgreSQL only: what needs two write transactions interleaved (SQLite has one writer)."""
    s = SqlStore(fresh_database(pg_url))
    yield s
    s.dispose()


def persons(person: Person, n: int) -> list[Person]:
    return [person.model_copy(update={"id": f"p{i}", "household": f"h{i}"}) for i in range(n)]


def for_person(req: BillRequest, pid: str, bill_id: str, amount: int) -> BillRequest:
    return bill(req, bill_id, amount).model_copy(update={"person_id": pid})


def setup(store: Any, n_persons: int = 4) -> tuple[SettlementService, LedgerService, BillRequest]:
    text, person, req = golden()
    svc = SettlementService(store.uow, clock=Clock(), new_id=ids())
    svc.put_policy(text, "yubei.yaml", principal="bureau:500115")
    svc.import_registry([person, *persons(person, n_persons)])
    return svc, LedgerService(store.uow), req


def all_events(store: Any) -> list[dict[str, Any]]:
    led = LedgerService(store.uow)
    led.seal()
    with store.uow() as u:
        head = u.ledger.head()
        rows = u.ledger.events(1, head.header.last_seq) if head else []
    return [r.event() for r in rows]


def test_every_change_appends_one_event(any_store: Any) -> None:
    svc, led, req = setup(any_store)
    rec, _ = svc.settle("r1", req, principal="cashier:H1")
    svc.settle("r1", req)  # a replay changes nothing: no event
    rec2, _ = svc.settle("r2", bill(req, "b2", 3_000_000))
    svc.reverse(settlement_id=rec2.settlement_id)
    svc.reverse(settlement_id=rec2.settlement_id)  # replay: no event
    evs = all_events(any_store)
    assert [e["method"] for e in evs] == ["PutPolicy", "ImportRegistry", "Settle", "Settle",
                                          "Reverse"]  # fmt: skip
    assert [e["seq"] for e in evs] == [1, 2, 3, 4, 5]
    assert evs[0]["principal"] == "bureau:500115" and evs[0]["version"] == 1
    assert evs[1]["persons"] == ["jiang", "p0", "p1", "p2", "p3"]
    s = evs[2]
    assert s["principal"] == "cashier:H1" and s["settlement_id"] == rec.settlement_id
    funds: dict[str, int] = {}
    for layer in rec.settlement.layers:
        funds[layer.fund_code] = funds.get(layer.fund_code, 0) + layer.pay
    assert s["funds"] == funds and sum(funds.values()) == rec.settlement.funds_total
    assert s["total"] == rec.settlement.buckets.total
    assert s["window_pay"] == rec.settlement.window_pay
    assert s["at"].endswith("Z") and s["bill_digest"] == rec.bill_digest
    assert evs[4]["settlement_id"] == rec2.settlement_id and evs[4]["reversal_request_id"]
    text = json.dumps(evs)
    assert "birth_date" not in text and "items" not in text  # ids and amounts only
    for e in evs:  # integers and strings only (and the funds object, the persons list)
        for v in e.values():
            assert isinstance(v, int | str | dict | list) and not isinstance(v, float)
    report, pending = led.verify()
    assert report.ok and report.events == 5 and pending == 0


def test_no_event_without_its_effect(any_store: Any) -> None:
    svc, led, req = setup(any_store)
    svc.settle("r1", req)
    with pytest.raises(Conflict):  # the same bill again: refused, nothing written
        svc.settle("r2", req)
    if isinstance(any_store, SqlStore):  # dies just before COMMIT: neither effect nor event
        failing = SettlementService(lambda: FailAtCommit(any_store.uow()), clock=Clock())
        with pytest.raises(RuntimeError, match="crash"):
            failing.settle("r3", bill(req, "b3", 2_000_000))
    assert led.pending() == 3  # policy, registry, one Settle
    assert [e["method"] for e in all_events(any_store)][-1] == "Settle"


def test_concurrent_settles_seal_to_consecutive_seqs(store: SqlStore) -> None:
    svc, led, req = setup(store, n_persons=6)
    led.seal()
    errors: list[BaseException] = []
    done = threading.Event()

    def settler(i: int) -> None:
        try:
            for k in range(8):
                svc.settle(f"r{i}-{k}", for_person(req, f"p{i}", f"b{i}-{k}", 100_000 + k))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def sealer() -> None:
        while not done.is_set():
            try:
                led.seal()
            except BaseException as e:  # pragma: no cover
                errors.append(e)
                return

    threads = [threading.Thread(target=settler, args=(i,)) for i in range(6)]
    sealers = [threading.Thread(target=sealer) for _ in range(2)]  # two sealers race too
    for t in [*sealers, *threads]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    for t in sealers:
        t.join()
    assert not errors
    led.seal()
    report, pending = led.verify()
    assert report.ok, report.problems
    assert pending == 0 and report.events == 2 + 48
    with store.uow() as u:
        rows = u.ledger.events(1, 10_000)
        blocks = u.ledger.blocks(-1, 10_000)
    assert [r.seq for r in rows] == list(range(1, 51))
    assert len({r.subject for r in rows if r.method == "Settle"}) == 48
    assert blocks[0].header.first_seq == 1
    for a, b in itertools.pairwise(blocks):
        assert b.header.first_seq == a.header.last_seq + 1 and b.header.prev_hash == a.hash


# --- tampering, directly in the database ---------------------------------------------------


def _tamper(engine: sa.Engine, kind: str) -> str:
    """Change the database as an insider could; returns what verify must name first."""
    with engine.begin() as c:
        ev = sa.text("SELECT id, seq, content, digest FROM ledger_events WHERE seq = :s")
        if kind == "edit":  # an amount in the first Settle event's content
            row = c.execute(
                sa.text(
                    "SELECT id, seq, content FROM ledger_events WHERE method = 'Settle' "
                    "ORDER BY seq LIMIT 1"
                )
            ).one()
            total = json.loads(row.content)["window_pay"]
            new = row.content.replace(f'"window_pay":{total}', f'"window_pay":{total - 100}')
            assert new != row.content
            c.execute(
                sa.text("UPDATE ledger_events SET content = :c WHERE id = :i"),
                {"c": new, "i": row.id},
            )
            return f"event seq {row.seq} (row {row.id}) (Settle"
        if kind == "delete":
            c.execute(sa.text("DELETE FROM ledger_events WHERE seq = 4"))
            return "event seq 4 (block"
        if kind == "insert":  # a forged Settle, given a seq and digest of its own
            row = c.execute(ev, {"s": 4}).one()
            forged = {**json.loads(row.content), "settlement_id": "forged", "window_pay": 0}
            content = L.canonical(forged).decode()
            c.execute(
                sa.text(
                    "INSERT INTO ledger_events (method, subject, content, seq, digest) "
                    "VALUES ('Settle', 'forged', :c, 4, :d)"
                ),
                {"c": content, "d": L.event_digest({**forged, "seq": 4})},
            )
            return "event seq 4 (block 0): stored 2 times"
        if kind == "insert_after":  # a forged event after the last block
            c.execute(
                sa.text(
                    "INSERT INTO ledger_events (method, subject, content, seq, digest) "
                    "VALUES ('Settle', 'forged', '{}', 99, :d)"
                ),
                {"d": "0" * 64},
            )
            return "event seq 99"
        if kind == "swap":  # two events change places (content and digest move together)
            a, b = c.execute(ev, {"s": 3}).one(), c.execute(ev, {"s": 4}).one()
            upd = sa.text("UPDATE ledger_events SET seq = :s, digest = :d WHERE id = :i")
            c.execute(upd, {"s": -1, "d": b.digest, "i": a.id})
            c.execute(upd, {"s": 3, "d": a.digest, "i": b.id})
            c.execute(upd, {"s": 4, "d": b.digest, "i": a.id})
            return "event seq 3 (row"
        if kind == "block":  # a block's root replaced (with its hash recomputed)
            c.execute(sa.text("UPDATE ledger_blocks SET merkle_root = :r WHERE height = 0"),
                      {"r": "ab" * 32})  # fmt: skip
            return "block 0: merkle_root differs"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["edit", "delete", "insert", "insert_after", "swap", "block"])
def test_verify_catches_tampering(store: SqlStore, kind: str) -> None:
    svc, led, req = setup(store)
    for i in range(3):
        svc.settle(f"r{i}", for_person(req, f"p{i}", f"b{i}", 1_000_000 + i))
    led.seal()
    svc.settle("r9", for_person(req, "p3", "b9", 2_000_000))
    led.seal()
    url = store.url.render_as_string(hide_password=False)
    ok = runner.invoke(cli, ["ledger", "verify", "--db", url])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("ledger intact: 6 events, 2 blocks, head ")
    expected = _tamper(store.engine, kind)
    res = runner.invoke(cli, ["ledger", "verify", "--db", url])
    assert res.exit_code == 1, res.output
    assert res.output.startswith("ledger damaged: " + expected), res.output
    assert len(res.output.strip().splitlines()) == 1


# --- prove / check-proof through the CLI ------------------------------------------------


def test_prove_and_check_proof_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = SqlStore(url)
    try:
        svc, _led, req = setup(store)
        rec, _ = svc.settle("r1", req)
        other, _ = svc.settle("r2", for_person(req, "p1", "b2", 2_000_000))
    finally:
        store.dispose()
    proof = tmp_path / "proof.json"
    res = runner.invoke(
        cli, ["ledger", "prove", rec.settlement_id, "--db", url, "--out", str(proof)]
    )
    assert res.exit_code == 4 and "not sealed yet" in res.output  # exitcodes: conflict
    assert runner.invoke(cli, ["ledger", "seal", "--db", url]).exit_code == 0
    res = runner.invoke(cli, ["ledger", "checkpoint", "--db", url, "--json"])
    cp = json.loads(res.output)
    assert cp["height"] == 0 and cp["last_seq"] == 4
    root0 = cp["hash"]
    res = runner.invoke(
        cli, ["ledger", "prove", rec.settlement_id, "--db", url, "--out", str(proof)]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(proof.read_text())
    assert sorted(doc) == ["event", "header", "leaf_index", "path"]
    assert doc["event"]["settlement_id"] == rec.settlement_id and doc["event"]["seq"] == 3

    res = runner.invoke(cli, ["ledger", "check-proof", str(proof), "--root", root0])
    assert res.exit_code == 0 and res.output.startswith("proof valid: event seq 3"), res.output

    # a later checkpoint: the proof's block reaches it through the later headers
    store = SqlStore(url)
    try:
        svc2 = SettlementService(store.uow, clock=Clock(), new_id=lambda: "late")
        svc2.reverse(settlement_id=other.settlement_id)
    finally:
        store.dispose()
    runner.invoke(cli, ["ledger", "seal", "--db", url])
    root1 = json.loads(runner.invoke(cli, ["ledger", "checkpoint", "--db", url, "--json"]).output)
    later = tmp_path / "later.json"
    res = runner.invoke(
        cli, ["ledger", "headers", "--after", "0", "--db", url, "--out", str(later)]
    )
    assert res.exit_code == 0, res.output
    # it says what it wrote (as prove does); at the head there are none to write, and above
    # it no block exists: not found, in one line (it had written [] and exited 0)
    assert res.output == f"1 block header(s) after height 0 written to {later}\n"
    assert json.loads(later.read_text())[0]["height"] == 1
    res = runner.invoke(cli, ["ledger", "headers", "--after", "1", "--db", url])
    assert res.exit_code == 0 and json.loads(res.output) == [], res.output
    res = runner.invoke(cli, ["ledger", "headers", "--after", "7", "--db", url])
    assert res.exit_code == 3, res.output
    assert res.output == "error: no sealed block at height 7: the head is at height 1\n"
    res = runner.invoke(cli, ["ledger", "check-proof", str(proof), "--root", root1["hash"]])
    assert res.exit_code == 1 and "is not the published" in res.output
    # one line, saying what a checkpoint published after the proof needs
    assert res.output.count("\n") == 1 and res.output.rstrip().endswith(
        "(if it was published after block 0, give the headers after it: onestop ledger "
        "headers --after 0 --out later.json, then --headers later.json)"
    ), res.output
    res = runner.invoke(
        cli, ["ledger", "check-proof", str(proof), "--root", root1["hash"], "--headers", str(later)]
    )
    assert res.exit_code == 0, res.output

    # tampered proofs are refused, with the reason
    for change, why in (
        (lambda d: d["event"]["funds"].update({k: v + 1 for k, v in d["event"]["funds"].items()}),
         "merkle_root"),
        (lambda d: d.update(leaf_index=d["leaf_index"] + 1), "first_seq + leaf_index"),
        (lambda d: d["header"].update(sealed_at="2030-01-01T00:00:00.000000Z"), "published"),
    ):  # fmt: skip
        bad = json.loads(proof.read_text())
        change(bad)
        p = tmp_path / "bad.json"
        p.write_text(json.dumps(bad))
        res = runner.invoke(cli, ["ledger", "check-proof", str(p), "--root", root0, "--json"])
        assert res.exit_code == 1 and json.loads(res.output)["valid"] is False
        assert why in json.loads(res.output)["reason"], res.output

    # user errors: one line, no traceback
    for args, code in (
        (["ledger", "prove", "nope", "--db", url], 3),  # exitcodes: not found
        (["ledger", "verify", "--db", f"sqlite:///{tmp_path / 'missing.db'}"], 5),  # unavailable
        (["ledger", "check-proof", str(tmp_path / "missing.json"), "--root", root0], 1),
    ):
        res = runner.invoke(cli, args)
        assert res.exit_code == code and len(res.output.strip().splitlines()) == 1, res.output
        assert "Traceback" not in res.output


# --- the server's sealer ----------------------------------------------------------------


def test_server_seals_in_the_background_and_on_stop(tmp_path: Path) -> None:
    import time

    from adapters.grpc.testing import YUBEI, YUBEI_BILL, served

    url = f"sqlite:///{tmp_path / 'var' / 'onestop.db'}"
    with served(url, (YUBEI,)) as (app, server, c):
        assert app.ledger is not None
        server.sealer.interval = 0.05
        server.sealer.trigger()
        deadline = time.monotonic() + 10
        while app.ledger.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.ledger.pending() == 0  # PutPolicy and ImportRegistry sealed meanwhile
        server.sealer.interval = 3600.0  # from now on only stop() seals
        time.sleep(0.2)
        sid = c.settle(YUBEI_BILL, "req-1").settlement.settlement_id
        report, _ = app.ledger.verify()
        assert report.ok
    store = SqlStore(url)
    try:
        led = LedgerService(store.uow)
        assert led.pending() == 0  # sealed when the server stopped
        assert led.prove(sid)["event"]["settlement_id"] == sid
        assert led.verify()[0].ok
    finally:
        store.dispose()


@pytest.mark.postgres
def test_late_commit_lands_in_a_later_block_without_gap(pg_store: SqlStore) -> None:
    """A transaction that took its storage id first but commits after a seal: the sealer never
    saw it uncommitted, so it is sealed later with the next seq; no gap, no reordering of seqs.
    (SQLite has one writer at a time, so only PostgreSQL can interleave them.)"""
    store = pg_store
    led = LedgerService(store.uow)
    early = store.uow()
    early.ledger.append("Test", "early", '{"method":"Test","n":1}')
    early.conn()  # sent: its row (and storage id) exists, uncommitted
    with store.uow() as u:
        u.ledger.append("Test", "late", '{"method":"Test","n":2}')
        u.commit()
    [h0] = led.seal()
    assert (h0.first_seq, h0.last_seq) == (1, 1)
    early.commit()
    [h1] = led.seal()
    assert (h1.first_seq, h1.last_seq) == (2, 2)
    with store.uow() as u:
        rows = u.ledger.events(1, 2)
    assert [(r.seq, r.subject) for r in rows] == [(1, "late"), (2, "early")]
    assert rows[0].id > rows[1].id  # storage order differs from seal order
    assert led.verify()[0].ok


@pytest.mark.postgres
def test_settles_do_not_wait_for_the_sealer(pg_store: SqlStore) -> None:
    """PostgreSQL: while a sealer holds its lock (mid-seal), settlements still commit."""
    store = pg_store
    svc, led, req = setup(store)
    sealer = store.uow()
    sealer.ledger.lock_sealer()
    assert sealer.ledger.unsealed(100)  # it holds the lock and is reading
    done: list[str] = []
    t = threading.Thread(
        target=lambda: done.append(svc.settle("r1", req)[0].settlement_id), daemon=True
    )
    t.start()
    t.join(20)
    assert done, "a settlement waited for the sealer's lock"
    other = threading.Thread(target=led.seal, daemon=True)  # a second sealer waits, though
    other.start()
    other.join(0.5)
    assert other.is_alive()
    sealer.rollback()
    other.join(20)
    assert not other.is_alive() and led.pending() == 0


def test_fast_paths_give_the_checked_bytes(any_store: Any) -> None:
    from engine.service import ledger as SL

    svc, _, req = setup(any_store)
    rec, _ = svc.settle("r1", req)
    d = rec.settlement.to_dict()
    # to_dict is built field by field; dataclasses.asdict is the plain definition of it
    s = rec.settlement
    plain = {
        **dataclasses.asdict(s),
        "discharge_date": s.discharge_date.isoformat(),
        "funds_total": s.funds_total,
        "alerts": [dataclasses.asdict(a) for a in s.alerts],
    }
    assert s.layers and L.canonical(d) == L.canonical(plain)
    assert SL._fast_digest(d) == L.sha256_hex(L.canonical(d))
    # a Settle builds the dictionary once for the stored settlement and its event's digest:
    # the stored event's digest is the plain definition's, the stored settlement reads back
    assert SL.settle_event(rec, "local", d) == SL.settle_event(rec, "local")
    with any_store.uow() as u:
        found = u.ledger.find("Settle", rec.settlement_id)
        back = u.settlements.by_id(rec.settlement_id)
    assert found is not None and back is not None
    assert found.event()["content_digest"] == L.sha256_hex(L.canonical(plain))
    assert back.settlement == s and back.settlement.to_dict() == d


def test_verify_ignores_a_seal_landing_while_it_reads() -> None:
    """PostgreSQL reads each statement afresh: events sealed after verify read the blocks are
    in a newer block, not stray rows."""
    store = MemoryStore()
    svc, led, req = setup(store)
    led.seal()
    svc.settle("r1", req)

    class Racing:
        def __init__(self) -> None:
            self.u = store.uow()
            self.ledger = self

        def __enter__(self) -> Racing:
            return self

        def __exit__(self, *exc: object) -> None:
            self.u.__exit__(*exc)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.u.ledger, name)

        def stray(self, last_seq: int) -> Any:
            LedgerService(store.uow).seal()  # lands between the block reads and this one
            return self.u.ledger.stray(last_seq)

    report, _ = LedgerService(Racing).verify()
    assert report.ok, report.problems
    assert report.blocks == 1 and LedgerService(store.uow).verify()[0].blocks == 2


class _Waiting:
    """A ledger for the sealer: ``waiting`` events unsealed; ``seal`` seals them all."""

    def __init__(self) -> None:
        self.waiting = 0
        self.seals: list[int] = []

    def pending(self) -> int:
        return self.waiting

    def seal(self) -> list[Any]:
        self.seals.append(self.waiting)
        self.waiting = 0
        return []


def test_the_sealer_seals_early_once_enough_events_wait() -> None:
    """Every tenth of its interval the sealer looks at how many events wait: ``early`` of them
    are sealed then, fewer wait for the interval (a busy server seals small blocks often, an
    idle one once an interval)."""
    import time

    from engine.service.ledger import Sealer

    led = _Waiting()
    sealer = Sealer(led, interval=2.0, early=10)  # type: ignore[arg-type]
    sealer.start()
    try:
        led.waiting = 9
        time.sleep(1.2)  # six checks, one each 0.2 s: too few waiting
        assert led.seals == []
        led.waiting = 10
        deadline = time.monotonic() + 1.5
        while not led.seals and time.monotonic() < deadline:
            time.sleep(0.02)
        assert led.seals == [10]  # at the next check, before the interval is up (at 2 s)
        led.waiting = 3
        deadline = time.monotonic() + 4.0
        while len(led.seals) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert led.seals == [10, 3]  # the interval's seal, with fewer waiting
    finally:
        sealer.stop()
