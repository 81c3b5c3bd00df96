"""User mistakes and missing pieces, as a user meets them from a shell: one line on stderr naming
the file, field or address, the exit code of the table, never a traceback; and the offline
commands keep working when the server's libraries are missing or of the wrong version."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine import __version__
from tests.inprocess import onestop_in_process

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "policies" / "samples" / "longzhou-1.json"
# the exit codes (adapters/cli/exitcodes.py)
REFUSED, USAGE, UNAVAILABLE = 1, 2, 5


def onestop(
    *args: str, pythonpath: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "COLUMNS": "160", "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (pythonpath, ROOT) if p is not None)
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout,
    )  # fmt: skip


def one_line(r: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert r.returncode == code, (r.returncode, r.stderr)
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# ---- window settle: the bill file ----------------------------------------------------------


def _bad_bills(tmp: Path) -> list[tuple[Path, tuple[str, ...]]]:
    bill = json.loads(SAMPLE.read_text(encoding="utf-8"))
    cases: list[tuple[Path, tuple[str, ...]]] = []
    p = tmp / "missing.json"
    cases.append((p, (str(p), "no such file")))
    p = tmp / "invalid.json"
    p.write_text('{"id": "B1", "items": [', encoding="utf-8")
    cases.append((p, (str(p), "not valid JSON", "line 1")))
    p = tmp / "list.json"
    p.write_text(json.dumps([bill]), encoding="utf-8")
    cases.append((p, (str(p), "a list", "one bill object")))
    p = tmp / "string-amount.json"
    b = json.loads(json.dumps(bill))
    b["items"][1]["amount"] = str(b["items"][1]["amount"])
    p.write_text(json.dumps(b), encoding="utf-8")
    cases.append((p, (str(p), "items[1].amount", "whole number")))
    return cases


@pytest.mark.parametrize("command", ["settle", "pre-settle"])
def test_window_bill_file_mistakes_are_one_line(tmp_path: Path, command: str) -> None:
    for k, (path, words) in enumerate(_bad_bills(tmp_path)):
        # the file is checked before the server is called: no server is needed; the first
        # from a shell, the others in this process (the same command and line)
        args = ("window", command, str(path), "--server", "127.0.0.1:1")
        r = onestop(*args) if k == 0 else onestop_in_process(*args, columns=160)
        one_line(r, REFUSED, *words)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ("cannot be read: No such file or directory",)),
        ('{"totals": {', ("not valid JSON", "(line 1, column 13)")),
        (b"\xff\xfe{}", ("not UTF-8 text",)),
    ],
    ids=["missing", "not-json", "not-utf8"],
)
@pytest.mark.parametrize("command", ["reconcile", "import-registry"])
def test_bureau_json_file_mistakes_are_one_line(
    tmp_path: Path, command: str, content: str | bytes | None, words: tuple[str, ...]
) -> None:
    """The hospital's --theirs file and the registry file are read before the server is
    called: a missing or broken file is one line naming it, in words (it had been Python's
    "[Errno 2] No such file or directory: '...'" and json's bare message)."""
    path = tmp_path / "his-march.json"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif content is not None:
        path.write_bytes(content)
    if command == "reconcile":
        args = ["reconcile", "--hospital", "H500112001", "--from", "2024-03-01",
                "--to", "2024-03-31", "--theirs", str(path)]  # fmt: skip
        named = f"--theirs {path}: "
    else:
        args, named = ["import-registry", str(path)], f"refused: {path}: "
    r = onestop_in_process("bureau", *args, "--server", "127.0.0.1:1", columns=160)
    line = one_line(r, REFUSED, named, *words)
    assert "Errno" not in line


# ---- serve ---------------------------------------------------------------------------------


def test_serve_on_an_address_in_use_says_so_at_once(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        r = onestop("serve", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    one_line(r, UNAVAILABLE, f"127.0.0.1:{port}", "in use")
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "x.db").exists()  # refused before the store is opened


def test_serve_bad_store_url_and_missing_policies(tmp_path: Path) -> None:
    one_line(onestop("serve", "--port", "0", "--db", "mysql://u@h/x"), REFUSED, "--db", "mysql://")
    missing = tmp_path / "no-such-dir"
    r = onestop("serve", "--port", "0", "--db", "memory://", "--policies", str(missing))
    one_line(r, REFUSED, "--policies", str(missing))


SERVE_LIGHT = """
import sys
from adapters.cli.main import main
sys.argv = ["onestop", "serve", "--port", "0", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    heavy = ("grpc", "numba", "numpy", "sqlalchemy", "asyncio", "adapters.bootstrap")
    print(e.code, [m for m in heavy if m in sys.modules])
    raise
"""


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--group-max", "0"], USAGE, ("--group-max 0",)),
        (["--host", "0.0.0.0"], USAGE, ("--host 0.0.0.0", "loopback")),
        (["--tls-cert", "x.pem"], USAGE, ("TLS needs", "--tls-key")),
        (
            [
                "--tls-cert",
                "x.pem",
                "--tls-key",
                "k.pem",
                "--client-ca",
                "c.pem",
                "--principals",
                "p.yaml",
            ],
            REFUSED,
            ("--tls-cert x.pem: no such file",),
        ),
        (["--db", "memory://", "--policies", "no/such/dir"], REFUSED, ("--policies no/such/dir",)),
        (["--db", "memory://", "--policy", "no/such/dir"], REFUSED, ("--policies no/such/dir",)),
        (["--db", "mysql://u:pw@h/x"], REFUSED, ("--db: store URL 'mysql://u:***@h/x'",)),
    ],
)
def test_serve_refuses_before_importing_the_server(args: list[str], code: int, words: Any) -> None:
    """The options are checked before gRPC, the kernel's helpers, the store and the service are
    imported: a refusal took ~1.3-2 s of CPU (2026-12-03), now ~0.2 s (serve-http's the same:
    tests/test_http_gateway.py)."""
    env = {"PATH": os.environ.get("PATH", ""), "COLUMNS": "160", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", SERVE_LIGHT, *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.stdout.strip() == f"{code} []", r.stdout + r.stderr
    one_line(r, code, *words)


def test_serve_unreachable_store_hides_the_password() -> None:
    url = "postgresql+psycopg://onestop:s3cret@127.0.0.1:1/onestop"
    line = one_line(onestop("serve", "--port", "0", "--db", url), UNAVAILABLE, "127.0.0.1:1")
    assert "s3cret" not in line


# ---- batch on an unreachable Dask scheduler ------------------------------------------------


def test_batch_unreachable_dask_scheduler_fails_in_seconds(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    files = []
    for name in ("bills", "items", "persons"):
        files.append(tmp_path / f"{name}.parquet")
        files[-1].write_bytes(b"")
    t0 = time.monotonic()
    r = onestop(
        "batch", *map(str, files), "--policy", "policies", "--out", str(tmp_path / "out"),
        "--dask-scheduler", "tcp://127.0.0.1:1", "--dask-timeout", "2", "--quiet",
    )  # fmt: skip
    one_line(r, UNAVAILABLE, "tcp://127.0.0.1:1", "2 s")
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "out").exists()
    # a usage error: in this process (the unreachable scheduler above is the run from a shell)
    from tests.test_batch_helpers import batch_cli

    r = batch_cli(
        *map(str, files), "--policy", "policies", "--out", str(tmp_path / "out"),
        "--dask-scheduler", "scheduler-without-port",
    )  # fmt: skip
    one_line(r, USAGE, "--dask-scheduler", "scheduler-without-port")


# ---- version, missing extras, protobuf of the wrong version --------------------------------


def test_version() -> None:
    r = onestop("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"onestop {__version__}"


def _blocked(tmp: Path, code: str) -> Path:
    d = tmp / "site"
    d.mkdir()
    (d / "sitecustomize.py").write_text(code, encoding="utf-8")
    return d


NO_GRPC = "import sys\nsys.modules['grpc'] = None  # as if the server extra were not installed\n"
OLD_PROTOBUF = """\
from google.protobuf import runtime_version as rv

def _mismatch(*args, **kwargs):  # what protobuf 6 says of code generated for 7.35.1
    raise rv.VersionError("Detected incompatible Protobuf Gencode/Runtime versions when loading "
                          "onestop/settlement/v1/settlement.proto: gencode 7.35.1 runtime 6.31.1")

rv.ValidateProtobufRuntimeVersion = _mismatch
"""


@pytest.mark.parametrize("site", [NO_GRPC, OLD_PROTOBUF], ids=["no-grpc", "old-protobuf"])
def test_offline_commands_work_without_a_working_server_extra(tmp_path: Path, site: str) -> None:
    if site is OLD_PROTOBUF:
        pytest.importorskip("google.protobuf.runtime_version")
    path = _blocked(tmp_path, site)
    r = onestop("settle", str(SAMPLE), pythonpath=path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    r = onestop("policy", "check", "policies", pythonpath=path)
    assert r.returncode == 0, r.stderr
    r = onestop("--help", pythonpath=path)
    assert r.returncode == 0, r.stderr
    assert "serve" in r.stdout and "settle" in r.stdout
    if site is NO_GRPC:  # listed without importing it: found missing (find_spec)
        assert "(not available: needs the server extra)" in " ".join(
            r.stdout.replace("│", " ").split()
        )
    # serve on port 0: the default 50051 is where `make serve` listens while a user runs
    # `make test` (the README's two commands), and an address in use is refused first (exit 5)
    for args in (["serve", "--port", "0"], ["window", "settle", str(SAMPLE)],
                 ["bureau", "policies"]):  # fmt: skip
        r = onestop(*args, pythonpath=path)
        line = one_line(r, USAGE, f"onestop {args[0]}", "pip install 'onestop[server]'")
        assert "No such command" not in line
        if site is OLD_PROTOBUF:
            assert "VersionError" in line
        else:
            assert "'grpc' is not installed" in line


def test_settle_does_not_import_the_server_or_batch_libraries(tmp_path: Path) -> None:
    probe = _blocked(
        tmp_path,
        "import atexit, sys\n"
        "atexit.register(lambda: print('LOADED', sorted(m for m in ('grpc', 'google.protobuf',"
        " 'sqlalchemy', 'pyarrow', 'dask') if m in sys.modules), file=sys.stderr))\n",
    )
    r = onestop("settle", str(SAMPLE), pythonpath=probe)
    assert r.returncode == 0, r.stderr
    assert "LOADED []" in r.stderr, r.stderr


def test_a_refused_window_bill_is_told_before_grpc_is_imported(tmp_path: Path) -> None:
    """``onestop window settle BAD`` reads the file before it loads the client (windowcmds /
    windowcalls): the refusal costs a light start, not gRPC's and the engine models' imports."""
    probe = _blocked(
        tmp_path,
        "import atexit, sys\n"
        "atexit.register(lambda: print('LOADED', sorted(m for m in ('grpc', 'google.protobuf',"
        " 'numba', 'sqlalchemy') if m in sys.modules), file=sys.stderr))\n",
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "B1", "items": [', encoding="utf-8")
    for args in (["settle", str(bad)], ["pre-settle", str(bad)]):
        r = onestop("window", *args, pythonpath=probe)
        assert r.returncode == REFUSED, r.stderr
        refused, loaded = r.stderr.strip().splitlines()
        assert str(bad) in refused and "not valid JSON" in refused, refused
        assert loaded == "LOADED []", r.stderr


def test_bureau_and_fund_refusals_are_told_before_grpc_is_imported(tmp_path: Path) -> None:
    """``onestop bureau put-policy`` and ``fund put`` read every file before the first is sent
    (an unreadable second file stores nothing: the refusal comes before any connection, here to
    a port nobody listens on), and a usage error or an unreadable file loads neither gRPC nor
    protobuf (bureaucmds, fundcommands: the client is imported by ``clicommon._client``)."""
    probe = _blocked(
        tmp_path,
        "import atexit, sys\n"
        "atexit.register(lambda: print('LOADED', sorted(m for m in ('grpc', 'google.protobuf',"
        " 'numba', 'sqlalchemy') if m in sys.modules), file=sys.stderr))\n",
    )
    good = ROOT / "policies" / "hongan" / "funds.yaml"  # read, never sent
    missing = tmp_path / "second.yaml"
    for args in (["bureau", "put-policy"], ["fund", "put"]):
        r = onestop(*args, str(good), str(missing), "--server", "127.0.0.1:1", pythonpath=probe)
        assert r.returncode == REFUSED, r.stderr
        refused, loaded = r.stderr.strip().splitlines()
        assert str(missing) in refused and "cannot be read" in refused, refused
        assert loaded == "LOADED []", r.stderr
    for args in (["bureau", "totals", "--region", "x"], ["fund", "approve"]):
        r = onestop(*args, pythonpath=probe)
        assert r.returncode == USAGE, r.stderr
        assert r.stderr.strip().splitlines()[-1] == "LOADED []", r.stderr


def test_a_missing_tls_file_of_a_client_is_refused_as_a_missing_bill_is(tmp_path: Path) -> None:
    """A missing --ca, --cert or --key exited 2 (usage) where a missing bill file exits 1: both
    are a file that cannot be read (exit 1, the table of ``onestop --help``)."""
    key = tmp_path / "k.pem"
    key.write_text("not used: the missing certificate is told first")
    for opts, words in (
        (["--ca", str(tmp_path / "ca.pem")], ("--ca", "ca.pem: no such file")),
        (["--cert", str(tmp_path / "c.pem"), "--key", str(key)], ("--cert", "c.pem: no such file")),
    ):
        r = onestop_in_process("window", "pre-settle", str(SAMPLE), "--server", "127.0.0.1:1",
                               *opts, columns=160)  # fmt: skip
        one_line(r, REFUSED, *words)


def test_unreadable_or_unwritable_paths_are_one_line(tmp_path: Path) -> None:
    """In this process, through the console script's ``main`` (its OSError handler): both
    commands have runs from a shell above."""
    missing = tmp_path / "nope.yaml"
    r = onestop_in_process("bureau", "put-policy", str(missing), "--server", "127.0.0.1:1",
                           columns=160)  # fmt: skip
    one_line(r, REFUSED, str(missing), "No such file")
    out = tmp_path / "no-dir" / "after.json"
    r = onestop_in_process("settle", str(SAMPLE), "--accounts-out", str(out), columns=160)
    one_line(r, REFUSED, str(out), "No such file")
