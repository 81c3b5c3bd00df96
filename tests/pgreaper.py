"""Stops a test's throwaway PostgreSQL server when the test process that started it is gone
without stopping it (an xdist worker killed, a run interrupted or timed out): otherwise the
server, a daemon of ``pg_ctl``, runs on after the tests, with its directory under /tmp.

``tests.pg.Cluster`` starts this beside its server, in a session of its own (a Ctrl-C to the
test run's process group does not reach it), with a pipe on standard input whose write end only
the test process holds. End of file on it means that process has stopped the server itself
(``Cluster.stop`` closes the pipe after) or has died. Then, if the server still runs (its
``postmaster.pid``): ``pg_ctl stop -m immediate``; and the directory is removed.

    python tests/pgreaper.py PG_CTL DATA ROOT [RUNUSER PREFIX...]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    pg_ctl, data, root, *prefix = argv
    sys.stdin.buffer.read()  # until the test process closes its end, or dies
    if (Path(data) / "postmaster.pid").exists():
        stop = [*prefix, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"]
        subprocess.run(stop, capture_output=True, timeout=60, check=False)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
