"""A server of one source tree for the A/B benchmarks (``service_ab``, ``groupcommit_bench``):
the chain table and the generated registry in its work folder, ``python -m MODULE serve`` run
from the tree (its own ``PYTHONPATH``) on a store URL, waited for until it answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from adapters.grpc.client import Client
from adapters.grpc.testing import CHAIN
from benchmarks import grpc_bench as G


def start(
    tree: Path, url: str, work: Path, module: str, serve_args: list[str], children: int = 0
) -> tuple[Any, str]:
    """(the server process, its target); ``children``: connections more to wait on, so that
    every process of a ``--processes N`` server answers before the first round."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "policies").mkdir(exist_ok=True)
    (work / "policies" / "chain.yaml").write_text(CHAIN)
    (work / "registry.json").write_text(json.dumps(G.persons()))
    port = G.free_port()
    cmd = [
        sys.executable, "-m", module, "serve", "--db", url, "--port", str(port),
        "--policies", str(work / "policies"), "--registry", str(work / "registry.json"),
        *serve_args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    log = (work / "server.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"
    try:
        for _ in range(1 + children):
            with Client(target) as c:
                c.wait_serving(300)
    except TimeoutError:
        proc.kill()
        raise SystemExit(f"server did not start:\n{(work / 'server.log').read_text()}") from None
    return proc, target
