"""The grpc-java example (adapters/clients/java): build.sh generates the Java classes from
protos/ (protoc with the grpc-java plugin; google/rpc from the vendored protos/third_party) and
compiles SettleClient.java against Debian's protobuf-java and grpc-java jars (no Maven
download); the client then settles a sample bill on a real server and decodes the BadRequest of
a bad one. Skipped, naming what is missing, when those packages are not installed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from adapters.bootstrap import build
from adapters.grpc.server import running

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "adapters" / "clients" / "java" / "build.sh"


def test_java_client_settles_and_decodes_bad_request(tmp_path: Path) -> None:
    out = tmp_path / "java"
    r = subprocess.run(["sh", str(BUILD), str(out)], capture_output=True, text=True, timeout=600)
    if r.returncode == 3:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    classpath = (out / "classpath").read_text().strip()
    app = build(
        "memory://", policies=ROOT / "policies", registry=ROOT / "policies/samples/registry.json"
    )
    try:
        with running(app, workers=4) as server:
            cmd = ["java", "-cp", classpath, "SettleClient", f"127.0.0.1:{server.port}",
                   str(ROOT / "policies/samples/longzhou-1.json")]  # fmt: skip
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            # the Node example's request id: run after it (or again), the settlement replays
            again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            missing = subprocess.run([*cmd[:-1], str(tmp_path / "none.json")],
                                     capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        app.close()
    assert run.returncode == 0, run.stdout + run.stderr
    text = run.stdout
    assert "settled longzhou-1: settlement " in text and "(replay: false)" in text, text
    assert "basic (fund 390100) pays " in text
    assert "refused: INVALID_ARGUMENT (3)" in text, text
    assert "BadRequest field violation: items[0].amount: -1 is negative" in text, text
    assert "ErrorInfo: reason INPUT_ERROR, domain onestop" in text, text
    assert again.returncode == 0 and "(replay: true)" in again.stdout, again.stdout + again.stderr
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "none.json: cannot read the bill: no such file" in missing.stderr, missing.stderr
    assert "Exception" not in missing.stderr, missing.stderr
