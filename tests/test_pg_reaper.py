"""A test process killed without its teardown leaves no PostgreSQL server running
(``tests/pgreaper.py``): the server it started is stopped and its directory removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pg import Cluster, find_bindir, unavailable

ROOT = Path(__file__).resolve().parent.parent
#: a test process that starts a cluster, says where, and waits to be killed
_STARTS = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from tests.pg import Cluster\n"
    "c = Cluster(Path(sys.argv[1]))\n"
    "c.start()\n"
    "print(c.root, flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture()
def bindir() -> Path:
    """The PostgreSQL binaries (skipped locally, failed in CI, when there are none)."""
    found = find_bindir()
    if found is None:
        unavailable("no initdb/pg_ctl/postgres found")
    assert found is not None
    return found


def _gone(root: Path, pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            if not root.exists():
                return True
        time.sleep(0.1)
    return False


@pytest.mark.postgres
def test_a_killed_test_process_leaves_no_server(bindir: Path) -> None:
    p = subprocess.Popen([sys.executable, "-c", _STARTS, str(bindir)], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert p.stdout is not None
        root = Path(p.stdout.readline().strip())
        pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)  # the server runs
    finally:
        p.send_signal(signal.SIGKILL)  # no teardown, no atexit
        p.wait()
    assert _gone(root, pid, 30), f"the server {pid} in {root} outlived its test process"


@pytest.mark.postgres
def test_a_stopped_cluster_ends_its_reaper_at_once(bindir: Path) -> None:
    c = Cluster(bindir)
    c.start()
    reaper = c._reaper
    assert reaper is not None and reaper.poll() is None
    c.stop()
    assert reaper.returncode == 0 and not c.root.exists()
