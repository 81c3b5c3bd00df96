"""A server process stopped with SIGTERM (while settling) and started again over the same
SQLite file has every settlement it acknowledged, and the accounts they moved."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from adapters.grpc.client import Client
from adapters.grpc.convert import account_from_pb, year_accounts_from_pb
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, JIANG, YUBEI, chain_bill
from tests.ports import start_server

ROOT = Path(__file__).resolve().parents[1]


def start(db: Path, policies: Path, registry: Path, log: Path) -> tuple[subprocess.Popen, int]:
    def popen(port: int) -> subprocess.Popen:
        cmd = [
            sys.executable, "-m", "adapters.grpc.commands", "serve",
            "--db", f"sqlite:///{db}", "--port", str(port),
            "--policies", str(policies), "--registry", str(registry),
        ]  # fmt: skip
        with log.open("ab") as out:
            return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    return start_server(popen, log)


def test_sigterm_loses_no_acknowledged_settlement(tmp_path: Path) -> None:
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "yubei.yaml").write_text(YUBEI)
    (pol / "chain.yaml").write_text(CHAIN)
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps([JIANG, *CHAIN_PERSONS]))
    db, log = tmp_path / "var" / "onestop.db", tmp_path / "server.log"
    proc, port = start(db, pol, reg, log)
    acked: list[tuple[str, str]] = []
    try:
        with Client(f"127.0.0.1:{port}", timeout=10) as c:
            c.wait_serving(120)
            stop = threading.Event()

            def settle_loop() -> None:
                i = 0
                while not stop.is_set():
                    try:
                        r = c.settle(chain_bill(i, "wang", seed=9), f"dur-{i}")
                        acked.append((f"dur-{i}", r.settlement.settlement_id))
                    except grpc.RpcError:
                        return  # the server is going away
                    i += 1

            t = threading.Thread(target=settle_loop)
            t.start()
            time.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
            stop.set()
            t.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 3, log.read_text()

    proc, port = start(db, pol, reg, log)
    try:
        with Client(f"127.0.0.1:{port}", timeout=10) as c:
            c.wait_serving(120)
            for rid, sid in acked:
                assert c.get(request_id=rid).settlement_id == sid
            recs = c.list("wang", 2024)
            assert len(recs) >= len(acked)
            # the accounts are the sum of what the stored settlements moved
            acc = year_accounts_from_pb(c.accounts("wang", 2024).person)
            assert acc.admissions == len(recs)
            # ... and those the last one left
            last = max(recs, key=lambda r: r.created_at).result
            for r in last.layers:
                if r.scope == "person":
                    assert acc.get(r.layer_id) == account_from_pb(r.account_after)
            # no table stored twice on restart
            assert len(c.admin.ListPolicies(pb.ListPoliciesRequest()).versions) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("server did not stop on SIGTERM")


def test_several_processes_share_the_port_and_the_store(tmp_path: Path) -> None:
    """``serve --processes 2``: both children answer on one port, settle into one SQLite
    file, and stop on SIGTERM to the parent."""
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "chain.yaml").write_text(CHAIN)
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(CHAIN_PERSONS))
    db, log = tmp_path / "onestop.db", tmp_path / "server.log"

    def popen(port: int) -> subprocess.Popen:
        cmd = [
            sys.executable, "-m", "adapters.grpc.commands", "serve", "--db", f"sqlite:///{db}",
            "--port", str(port), "--policies", str(pol), "--registry", str(reg), "--processes", "2",
        ]  # fmt: skip
        with log.open("ab") as out:
            return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def serving() -> set[str]:  # the pids of the children that logged SERVING (warm)
        lines = log.read_text().splitlines()
        return {line.split()[2] for line in lines if "SERVING" in line}

    proc, port = start_server(popen, log)
    try:
        # both children warm before the calls (on a loaded machine the second can still be
        # importing when the first has answered all six)
        deadline = time.monotonic() + 120
        while len(serving()) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        ids = []
        for i in range(6):  # a new connection each time: spread over the children
            with Client(f"127.0.0.1:{port}", timeout=10) as c:
                c.wait_serving(120)
                ids.append(
                    c.settle(chain_bill(i, "wang", seed=2), f"mp-{i}").settlement.settlement_id
                )
        with Client(f"127.0.0.1:{port}") as c:
            assert [r.settlement_id for r in c.list("wang", 2024)] == ids
            assert year_accounts_from_pb(c.accounts("wang", 2024).person).admissions == 6
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(serving()) == 2, log.read_text()  # two processes warmed up


def test_serve_starts_one_process_per_core_and_they_die_with_the_parent(tmp_path: Path) -> None:
    """``serve`` without --processes on SQLite: one process per core it may use, each warmed;
    the parent killed with SIGKILL (no chance to pass a signal on) takes its children with it,
    so nothing keeps serving the port."""
    import os
    import socket

    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "chain.yaml").write_text(CHAIN)
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(CHAIN_PERSONS))
    log = tmp_path / "server.log"
    cores = len(os.sched_getaffinity(0))
    proc, port = start(tmp_path / "onestop.db", pol, reg, log)
    try:
        with Client(f"127.0.0.1:{port}", timeout=10) as c:
            c.wait_serving(120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            served_by = {ln.split()[2] for ln in log.read_text().splitlines() if "SERVING" in ln}
            if len(served_by) >= cores:
                break
            time.sleep(0.2)
        assert len(served_by) == cores, log.read_text()
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"port {port} still served after the parent was killed")
    finally:
        if proc.poll() is None:
            proc.kill()
