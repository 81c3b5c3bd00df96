"""The candidate's tables: the base tables with each candidate laid over its own region.

A candidate table replaces the base tables of its region whose effective range overlaps its
own; every other table (other regions, and its region's other years) stays. With
``as_if_effective`` it replaces every base table of its region and its effective range is
widened to cover theirs (from the earliest effective_from to the latest effective_to, open if
any is open): "next year's table on last year's bills", the same as the table copied into the
base with moved dates. The result is a directory, written out for the batch run and kept
with the outputs: the kept base tables and funds.yaml files, copied, and the candidates (as
given, or with the moved dates and a header saying so).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from engine.errors import PolicyError, PolicyProblem
from engine.funds import funds_files
from engine.policy.load import load_policies, load_table
from engine.policy.model import PolicyTable


class OverlayUsage(Exception):
    """The candidates cannot be laid over the base as asked (a usage error, exit 2)."""


@dataclass(frozen=True)
class Overlay:
    directory: Path  # the candidate's policy directory
    regions: tuple[str, ...]  # the regions the candidates change
    replaced: tuple[str, ...]  # the base files left out
    moved: tuple[tuple[str, str, str | None], ...]  # (candidate file, from, to) with as_if


def _overlaps(a: PolicyTable, b: PolicyTable) -> bool:
    a_to, b_to = a.effective_to or date.max, b.effective_to or date.max
    return a.effective_from <= b_to and b.effective_from <= a_to


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:  # tables refuse anchors and aliases
        return True


def _moved_text(path: Path, start: date, end: date | None) -> str:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["effective_from"], data["effective_to"] = start, end
    head = (
        f"# {path.name} with moved dates (onestop simulate --as-if-effective): effective "
        f"{start.isoformat()}..{end.isoformat() if end else 'open'} instead of its own\n"
    )
    return head + yaml.dump(data, Dumper=_NoAliases, allow_unicode=True, sort_keys=False)


def _root_of(f: str, bases: Sequence[Path]) -> tuple[int, Path]:
    p = Path(f).resolve()
    for i, b in enumerate(bases):
        b = b.resolve()
        if b.is_dir() and p.is_relative_to(b):
            return i, p.relative_to(b)
    return len(bases), Path(p.name)


def build(
    bases: Sequence[Path], candidates: Sequence[Path], as_if_effective: bool, out: Path
) -> Overlay:
    """Write the candidate's policy directory ``out`` (replaced if it exists). PolicyError for
    a bad base or candidate table (their problems name the file), OverlayUsage when
    ``as_if_effective`` gets two candidates of one region."""
    base = load_policies(*bases)
    cand = [(str(f), load_table(f)) for f in candidates]
    problems = [p for f, t in cand for p in _not_a_funds_file(f)]
    if problems:
        raise PolicyError(problems)
    regions = sorted({t.region.code for _, t in cand})
    if as_if_effective:
        for r in regions:
            files = [f for f, t in cand if t.region.code == r]
            if len(files) > 1:
                raise OverlayUsage(
                    f"--as-if-effective takes one candidate per region; region {r} has "
                    f"{len(files)} ({', '.join(files)})"
                )
    keep, replaced = [], []
    for f, t in zip(base.files, base.tables, strict=True):
        mine = [c for _, c in cand if c.region.code == t.region.code]
        if mine and (as_if_effective or any(_overlaps(t, c) for c in mine)):
            replaced.append(f)
        else:
            keep.append(f)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    multi = len(bases) > 1
    for f in [*keep, *(str(x) for b in bases for x in funds_files(b))]:
        i, rel = _root_of(f, bases)
        dest = out / (f"{i}" if multi else "") / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    moved = []
    for f, t in cand:
        dest = out / "candidates" / t.region.code / Path(f).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if as_if_effective:
            gone = [x for x in base.tables if x.region.code == t.region.code]
            start = min([t.effective_from, *(x.effective_from for x in gone)])
            ends = [t.effective_to, *(x.effective_to for x in gone)]
            end = None if any(e is None for e in ends) else max(e for e in ends if e)
            dest.write_text(_moved_text(Path(f), start, end), encoding="utf-8")
            moved.append((f, start.isoformat(), end.isoformat() if end else None))
        else:
            shutil.copyfile(f, dest)
    load_policies(out)  # the result must load (two candidates of a region may overlap)
    return Overlay(out, tuple(regions), tuple(replaced), tuple(moved))


def _not_a_funds_file(f: str) -> list[PolicyProblem]:
    if Path(f).name == "funds.yaml":
        return [PolicyProblem(f, "", "is a fund declaration, not a table; a candidate is a "
                              "policy table (the budgets come from the base's funds.yaml)")]  # fmt: skip
    return []
