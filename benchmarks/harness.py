"""The shared measuring rules of the benchmarks (issue 13): one place, so every figure is taken
the same way.

- Contenders run **interleaved in one process**: a warm-up round per contender (not counted),
  then R rounds of A B C ... A B C ..., so a slow minute of the shared machine hits every
  contender alike instead of one of them.
- Every figure is reported as **minimum, median and maximum** over the rounds; a ratio of two
  contenders is given from the minima **and** from the medians.
- Wall seconds **and CPU seconds** (this process's, plus its finished children's: user +
  system) of every run: on a loaded machine the wall time mostly says how long the scheduler
  kept the contender waiting; the CPU time is what it cost. A contender on two threads uses
  up to twice its wall time in CPU.
- The 1-minute **load average** (``os.getloadavg``) is read before and after each timed run;
  a figure carries the load at its first and last run and the highest seen.
- The **machine** (CPU model, cores, RAM, Python, numba, numpy, OS) is printed once per run.
- Warm by default; a cold run (fresh process, empty caches) is only ever labelled ``cold``.

Nothing here asserts a target: benchmarks measure, the README says met or missed.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent


def stat_cpu(stat: str | Path) -> tuple[float, float]:
    """User and system CPU seconds of a process or thread so far, from its ``/proc/.../stat``
    file (fields 14 and 15, after the command name in parentheses). OSError: it has ended."""
    f = Path(stat).read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(f[11]) / tick, int(f[12]) / tick


def load1() -> float:
    return os.getloadavg()[0]


def machine() -> dict[str, Any]:
    """What the figures were measured on (printed once per run)."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    out: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }
    for mod in ("numba", "numpy", "pyarrow", "pandas", "polars", "grpc"):
        with contextlib.suppress(ImportError):
            out[mod] = __import__(mod).__version__
    out["load_at_start"] = [round(x, 2) for x in os.getloadavg()]
    out["utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    return out


def machine_line(m: dict[str, Any]) -> str:
    libs = ", ".join(f"{k} {m[k]}" for k in ("numba", "numpy", "pyarrow", "pandas", "polars",
                                             "grpc") if k in m)  # fmt: skip
    return (
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"{libs}, {m['os']}; {m['utc']} UTC; load average (1, 5, 15 min) at the start "
        f"{m['load_at_start']} (a shared machine: other engineers' work runs beside this)"
    )


@dataclass
class Figure:
    """The timed runs of one contender: seconds per round, and the load around them."""

    name: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # CPU seconds of each run (user + system)
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    work: float = 0.0  # units of work per run (items, bills, calls): for rates
    unit: str = ""
    cold: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, seconds: float, before: float, after: float, cpu: float = float("nan")) -> None:
        self.seconds.append(seconds)
        self.cpu.append(cpu)
        self.load_before.append(before)
        self.load_after.append(after)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def max(self) -> float:
        return max(self.seconds)

    def load(self) -> str:
        seen = self.load_before + self.load_after
        return f"load {self.load_before[0]:.2f}->{self.load_after[-1]:.2f} (max {max(seen):.2f})"

    def rate(self, which: str = "min") -> float:
        """work per second at the fastest (``min``) or the median run."""
        return self.work / getattr(self, which)

    def line(self) -> str:
        tag = " [COLD]" if self.cold else ""
        s = (
            f"{self.name}{tag}: min {fmt_s(self.min)}, median {fmt_s(self.median)}, "
            f"max {fmt_s(self.max)} over {len(self.seconds)} run(s)"
        )
        if self.work and self.unit:
            s += (f"; {fmt_n(self.rate('min'))} {self.unit}/s best, "
                  f"{fmt_n(self.rate('median'))} median")  # fmt: skip
        if self.cpu and self.cpu[0] == self.cpu[0]:
            s += f"; CPU min {fmt_s(min(self.cpu))}, median {fmt_s(statistics.median(self.cpu))}"
        return f"{s}; {self.load()}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(min=self.min, median=self.median, max=self.max)
        if self.cpu:
            d.update(cpu_min=min(self.cpu), cpu_median=statistics.median(self.cpu))
        return d


@dataclass
class Contender:
    """``run(state)`` is timed; ``setup()`` (untimed, before each run) makes its state, e.g. a
    fresh prepared batch for a kernel that settles a batch once."""

    name: str
    run: Callable[[Any], Any]
    setup: Callable[[], Any] | None = None
    work: float = 0.0
    unit: str = ""


T = TypeVar("T")


def in_turn(contenders: Iterable[T], r: int) -> list[T]:
    """The contenders in round ``r``'s order: as given in even rounds, reversed in odd ones
    (A B, B A, A B, ...). Whichever runs first in a round can be systematically slower or
    faster (the memory the one before it freed, the host's pageout, a cache the other left
    warm): a null A/B of one commit against itself in two trees put 0.38 s (12 %) between
    them, with the first listed the slower, and again when the trees were swapped (batch15).
    Alternating spreads that over both."""
    items = list(contenders)
    return items if r % 2 == 0 else items[::-1]


def interleave(contenders: Sequence[Contender], rounds: int, warmup: int = 1,
               say: Callable[[str], None] | None = print) -> dict[str, Figure]:  # fmt: skip
    """Warm-up round(s) for every contender, then ``rounds`` rounds A B C ..., C B A ... (the
    order alternates: ``in_turn``), each timed once per round, all in this process."""
    figs = {c.name: Figure(c.name, work=c.work, unit=c.unit) for c in contenders}
    for r in range(-warmup, rounds):
        for c in in_turn(contenders, r):
            state = c.setup() if c.setup else None
            before = load1()
            c0, k0 = time.process_time(), _children()
            t = time.perf_counter()
            c.run(state)
            dt = time.perf_counter() - t
            cpu = time.process_time() - c0 + _children() - k0
            after = load1()
            del state
            if r >= 0:
                figs[c.name].add(dt, before, after, cpu)
            if say:
                what = "warm-up" if r < 0 else f"round {r + 1}/{rounds}"
                say(f"  {what} {c.name}: {fmt_s(dt)}, CPU {fmt_s(cpu)} "
                    f"(load {before:.2f}->{after:.2f})")  # fmt: skip
    return figs


def _children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ratio(slow: Figure, fast: Figure, per: str = "run") -> dict[str, float]:
    """How many times ``fast`` beats ``slow``: from the minima and from the medians. ``per``
    ``"work"`` divides each by its own work first (different amounts of work per run)."""
    ws, wf = (slow.work, fast.work) if per == "work" else (1.0, 1.0)
    return {
        "from_min": (slow.min / ws) / (fast.min / wf),
        "from_median": (slow.median / ws) / (fast.median / wf),
        "from_cpu_min": (min(slow.cpu) / ws) / (min(fast.cpu) / wf),
        "from_cpu_median": (statistics.median(slow.cpu) / ws) / (statistics.median(fast.cpu) / wf),
    }


def ratio_line(label: str, r: dict[str, float]) -> str:
    return (f"{label}: {r['from_min']:.1f}x from the minima, {r['from_median']:.1f}x from the "
            f"medians (CPU time: {r['from_cpu_min']:.1f}x from the minima, "
            f"{r['from_cpu_median']:.1f}x from the medians)")  # fmt: skip


def user_env(tree: Path | str, **extra: str) -> dict[str, str]:
    """The environment of a whole process a benchmark starts: this one's, the tree on
    PYTHONPATH, ``extra``, and without ``PYTHONDONTWRITEBYTECODE`` / ``PYTHONPYCACHEPREFIX``,
    as a user's shell has it. The shells of the development machine set the first, and uv
    installs no ``.pyc``: with it, every process (servers, ``onestop batch``) compiled pyarrow,
    grpc, dask and pydantic from source again (1.5-3.6 s of CPU a start; benchmarks/README.md,
    "The fourth quiet-machine run")."""
    env = {**os.environ, "PYTHONPATH": str(tree), **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def timed_process(cmd: Sequence[str], env: dict[str, str] | None = None,
                  cwd: Path = ROOT) -> float:  # fmt: skip
    """Wall seconds of one whole process, start to exit (it must succeed)."""
    t = time.perf_counter()
    r = subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr[-2000:]}")
    return dt


def fmt_s(x: float) -> str:
    if x < 1e-3:
        return f"{x * 1e6:.0f} us"
    if x < 1:
        return f"{x * 1e3:.1f} ms"
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def fmt_n(x: float) -> str:
    for div, suf in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if x >= div:
            return f"{x / div:.2f}{suf}"
    return f"{x:.0f}"


def save(path: Path, doc: dict[str, Any]) -> None:
    def conv(o: Any) -> Any:
        if isinstance(o, Figure):
            return o.as_dict()
        return str(o)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=conv))


def python() -> str:
    return sys.executable
