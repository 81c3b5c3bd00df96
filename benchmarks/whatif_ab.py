"""``onestop policy whatif`` on the 10 sample bills, another tree against this one (issue 13,
target 12), interleaved whole processes: 1 warm-up (not counted; a fresh tree compiles its numba
cache) + ROUNDS rounds; wall and CPU min/median, the load, and whether the JSON is equal.

    git archive main | tar -x -C /tmp/main-tree
    python -m benchmarks.whatif_ab /tmp/main-tree [ROUNDS]
"""

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import in_turn, user_env

B = (
    [f"policies/samples/hongan-{i}.json" for i in range(1, 6)]
    + [f"policies/samples/weixian-{i}.json" for i in range(1, 5)]
    + ["policies/samples/longzhou-1.json"]
)
args = [
    "policy",
    "whatif",
    *B,
    "--candidate",
    "policies/drafts/hongan-2019-draft.yaml",
    "--as-if-effective",
    "--json",
]
trees = {"baseline": sys.argv[1], "this tree": str(Path(__file__).resolve().parent.parent)}
res: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in trees}
outs: dict[str, object] = {}
loads = [os.getloadavg()[0]]
for r in range((int(sys.argv[2]) if len(sys.argv) > 2 else 5) + 1):
    for k, d in in_turn(trees.items(), r):
        b = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run(
            [sys.executable, "-m", "adapters.cli.main", *args],
            cwd=d,
            env=user_env(d),
            capture_output=True,
            text=True,
            check=True,
        )
        w = time.perf_counter() - t
        a = resource.getrusage(resource.RUSAGE_CHILDREN)
        doc = json.loads(p.stdout)
        doc.pop("generated_at")
        outs[k] = doc
        if r:  # the first round is the warm-up (main compiles its numba cache)
            res[k][0].append(w)
            res[k][1].append(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime)
        loads.append(os.getloadavg()[0])


def med(v: list[float]) -> float:
    return sorted(v)[len(v) // 2]


for k, (walls, cpus) in res.items():
    print(
        f"{k}: wall min {min(walls):.2f} med {med(walls):.2f} max {max(walls):.2f} s;"
        f" CPU min {min(cpus):.2f} med {med(cpus):.2f} s"
    )
print(
    "outputs equal:",
    outs["baseline"] == outs["this tree"],
    "load first/max/last",
    loads[0],
    max(loads),
    loads[-1],
)
