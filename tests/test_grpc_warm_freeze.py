"""Once the server is warm, what start-up made is frozen out of the cycle collector's later
runs (``Server.warm``: ``gc.freeze``), so a full collection under load does not walk the
modules, the app and the compiled kernels again."""

from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grpc_health.v1 import health

from adapters.bootstrap import build
from adapters.grpc.server import Server
from adapters.grpc.testing import CHAIN


def test_warm_freezes_what_start_up_made(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "chain.yaml").write_text(CHAIN)
    app = build(f"sqlite:///{tmp_path / 'onestop.db'}", tmp_path / "policies", None)
    server = Server.__new__(Server)  # only what warm() uses
    server.app, server.samples, server.service_names = app, None, ()
    server.executor = ThreadPoolExecutor(1)
    gc.unfreeze()
    try:

        async def warm() -> None:
            server.health = health.aio.HealthServicer()
            await server.warm()

        asyncio.run(warm())
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the other tests' objects are collected as before
        server.executor.shutdown()
        app.close()
