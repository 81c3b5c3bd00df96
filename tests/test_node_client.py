"""The grpc-js example (adapters/clients/node/settle.js) against a real server: it settles a
sample bill, then decodes the google.rpc.BadRequest of a bad one from grpc-status-details-bin
with the vendored google/rpc protos (protos/third_party). Skipped, saying why, without node
and npm; the packages come from adapters/clients/node/package-lock.json (npm ci)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from adapters.bootstrap import build
from adapters.grpc.server import running

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "adapters" / "clients" / "node"

# both tests on one xdist worker (``--dist loadgroup``), and a file lock besides: two `npm ci`
# at once in one folder remove each other's node_modules (CI saw ENOTEMPTY and a missing module)
pytestmark = pytest.mark.xdist_group("node")


def _npm_ci() -> None:
    """npm ci once per lock file (a stamp in node_modules names the lock's checksum), one
    process at a time (an exclusive lock on a file beside package-lock.json)."""
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    stamp = NODE_DIR / "node_modules" / f".installed-{zlib.crc32(lock)}"
    with (NODE_DIR / ".npm-ci.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file is closed
        if stamp.exists():
            return
        r = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, f"npm ci failed in {NODE_DIR}:\n{r.stdout}\n{r.stderr}"
        stamp.touch()


def test_node_client_settles_and_decodes_bad_request() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found: the grpc-js example needs Node.js")
    _npm_ci()
    app = build(
        "memory://", policies=ROOT / "policies", registry=ROOT / "policies/samples/registry.json"
    )
    try:
        with running(app, workers=4) as server:
            address = f"127.0.0.1:{server.port}"
            cmd = ["node", "settle.js", "--address", address]
            runs = [
                subprocess.run(cmd, cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
                for _ in range(2)
            ]
    finally:
        app.close()
    for r in runs:
        assert r.returncode == 0, r.stdout + r.stderr
    first, again = runs[0].stdout, runs[1].stdout
    assert "settled longzhou-1: settlement " in first and "(replay: false)" in first, first
    assert "basic (fund 390100) pays " in first
    assert "patient pays at the window " in first
    # the same request_id again: the stored settlement, nothing paid twice
    assert "(replay: true)" in again, again
    assert first.split("settlement ")[1].split()[0] == again.split("settlement ")[1].split()[0]
    # the bad bill: INVALID_ARGUMENT with the BadRequest detail decoded from the trailer
    assert "refused: INVALID_ARGUMENT (3)" in first, first
    assert "BadRequest field violation: items[0].amount: -1 is negative" in first, first
    assert "ErrorInfo: reason INPUT_ERROR, domain onestop" in first, first


def test_node_client_names_a_bill_it_cannot_read(tmp_path: Path) -> None:
    """A missing or malformed bill file: one line naming it, exit 1, no stack trace."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node or npm not found: the grpc-js example needs Node.js")
    _npm_ci()
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": ', encoding="utf-8")
    for path, reason in ((tmp_path / "none.json", "no such file"), (bad, "JSON")):
        r = subprocess.run(["node", "settle.js", "--address", "127.0.0.1:9", str(path)],
                           cwd=NODE_DIR, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert r.returncode == 1, r.stdout + r.stderr
        assert r.stderr.startswith(f"{path}: cannot read the bill: "), r.stderr
        assert reason in r.stderr and "    at " not in r.stderr, r.stderr
