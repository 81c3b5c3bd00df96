"""What a new policy table text changes against the version in force: a unified diff of the
YAML and, per layer, the parameters that differ (for ``bureau put-policy --dry-run``)."""

from __future__ import annotations

import difflib
from typing import Any

import yaml


def unified(old: str, new: str, old_name: str = "in force", new_name: str = "new") -> str:
    """The unified diff of two YAML texts ('' when they are the same)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name
        )
    )


def _flat(x: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(x, dict):
        out: dict[str, Any] = {}
        for k, v in x.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(x, list) and any(isinstance(v, dict | list) for v in x):
        out = {}
        for i, v in enumerate(x):
            out.update(_flat(v, f"{prefix}[{i}]"))
        return out
    return {prefix: x}


def changes(old: str, new: str) -> list[str]:
    """One line per change: layers added or removed, and for every layer (by id) and the
    table's other fields each parameter whose value differs, as ``path: old -> new``. Source
    notes (sources, assumptions, source) are left out."""
    a, b = yaml.safe_load(old) or {}, yaml.safe_load(new) or {}
    la = {x.get("id"): x for x in a.get("layers") or []}
    lb = {x.get("id"): x for x in b.get("layers") or []}
    out = [f"layer {k}: added" for k in lb if k not in la]
    out += [f"layer {k}: removed" for k in la if k not in lb]
    if [k for k in la if k in lb] != [k for k in lb if k in la]:
        out.append(f"layer order: {', '.join(map(str, la))} -> {', '.join(map(str, lb))}")
    skip = ("layers", "sources", "assumptions", "source")
    pairs = [("", {k: v for k, v in a.items() if k not in skip},
              {k: v for k, v in b.items() if k not in skip})]  # fmt: skip
    pairs += [(f"layer {k}: ", la[k], lb[k]) for k in lb if k in la]
    for head, x, y in pairs:
        fx, fy = (
            _flat({k: v for k, v in x.items() if k != "source"}),
            _flat({k: v for k, v in y.items() if k != "source"}),
        )
        for p in sorted(set(fx) | set(fy)):
            if fx.get(p, "<none>") != fy.get(p, "<none>"):
                out.append(f"{head}{p}: {fx.get(p, '<none>')} -> {fy.get(p, '<none>')}")
    return out
