"""Per-test CPU, not wall: a ranking of what the suite spends its cores on.

Off unless asked: ``ONESTOP_TEST_CPU=FILE pytest ...`` appends one line a test to FILE (every
xdist worker to the same file: each line one ``write`` of an ``O_APPEND`` file), the CPU of the
whole test (set-up, call, tear-down): the test process's own (``time.process_time``: every
thread) plus that of the children it waited for in that time (``RUSAGE_CHILDREN``: the CLI
runs, servers stopped and reaped, ...). A module fixture's cost lands on the module's first
test (set-up) and last one (tear-down). Not counted: a daemon that outlives its parent (the
throwaway PostgreSQL cluster's server, started by ``pg_ctl``) and children not yet reaped.

``python -m tests.cputime FILE [N]`` prints the N costliest tests, the costliest files and the
total (wall there is the tests' own wall, summed over the workers).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

ENV = "ONESTOP_TEST_CPU"


def _children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    path = os.environ.get(ENV)
    if not path:
        yield
        return
    wall, own, kids = time.perf_counter(), time.process_time(), _children()
    yield
    line = {
        "test": item.nodeid,
        "cpu": round(time.process_time() - own, 4),
        "children": round(_children() - kids, 4),
        "wall": round(time.perf_counter() - wall, 4),
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
    }
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def ranking(lines: list[dict[str, Any]], n: int = 40) -> str:  # the JSON records
    """The report: the n costliest tests, the costliest files, the totals."""
    rows = [(float(r["cpu"]) + float(r["children"]), r) for r in lines]
    rows.sort(key=lambda t: -t[0])
    total = sum(t for t, _ in rows)
    out = [f"{len(rows)} tests: {total:.1f} s CPU (own + children), "
           f"{sum(float(r['wall']) for _, r in rows):.1f} s of test wall summed over workers"]  # fmt: skip
    out.append(f"\nthe {n} costliest tests (CPU s = own + children; wall s):")
    for t, r in rows[:n]:
        out.append(
            f"{t:8.2f} = {r['cpu']:7.2f} + {r['children']:7.2f}  wall {r['wall']:7.2f}  {r['test']}"
        )
    files: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    for t, r in rows:
        f = files[str(r["test"]).split("::", 1)[0]]
        f[0] += t
        f[1] += float(r["children"])
        f[2] += float(r["wall"])
        f[3] += 1
    out.append(f"\nthe {n} costliest files (CPU s, of it children; wall s; tests):")
    for name, (t, c, w, k) in sorted(files.items(), key=lambda kv: -kv[1][0])[:n]:
        out.append(f"{t:8.1f} {c:7.1f}  wall {w:7.1f}  {int(k):4d}  {name}")
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        recs = [json.loads(x) for x in fh if x.strip()]
    print(ranking(recs, int(sys.argv[2]) if len(sys.argv) > 2 else 40))
