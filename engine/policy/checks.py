"""Semantic checks of a policy table (domain.md section 9): every problem at once, each with
the path inside the table and the reason. Structure and types were already checked by the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.policy.model import BUCKETS, Layer, PolicyTable, Variant

# parameters each kind may use (everything else on its variants is an error)
KIND_PARAMS = {
    "reimburse": {"deductible", "segments", "tiers_basis", "admission_cap", "annual_cap"},
    "backstop": {"max_share", "annual_ceiling"},
    "alert": {"threshold", "segments", "annual_cap"},
}
KIND_REQUIRED = {
    "reimburse": ({"segments"}, "segments"),
    "backstop": ({"max_share", "annual_ceiling"}, "max_share or annual_ceiling (or both)"),
    "alert": ({"threshold"}, "threshold"),
}
_LEVEL_PARAMS = ("admission_cap", "annual_cap", "max_share", "annual_ceiling", "threshold")
_ALL_PARAMS = {"deductible", "segments", "tiers_basis", "admission_cap", "annual_cap",
               "max_share", "annual_ceiling", "threshold"}  # fmt: skip


def check_table(t: PolicyTable) -> list[tuple[str, str]]:
    """(path, reason) for every inconsistency of one table; empty when it is sound."""
    out: list[tuple[str, str]] = []
    levels, tags = set(t.hospital_levels), set(t.tags)
    cited = set(t.sources) | set(t.assumptions)

    _dupes(out, "hospital_levels", t.hospital_levels, "hospital level")
    _dupes(out, "tags", t.tags, "tag")
    if t.effective_to is not None and t.effective_to < t.effective_from:
        out.append(
            ("effective_to", f"{t.effective_to} is before effective_from {t.effective_from}")
        )
    _cites(out, "source", t.source, cited)
    _dupes(out, "layers", [layer.id for layer in t.layers], "layer id")

    seen_after = seen_alert = None
    for i, layer in enumerate(t.layers):
        p = f"layers[{i}]"
        if layer.kind == "alert":
            seen_alert = seen_alert or layer.id
        elif seen_alert:
            out.append(
                (
                    f"{p}.kind",
                    f"{layer.kind!r} layer {layer.id!r} comes after alert "
                    f"layer {seen_alert!r}; alert layers come last, after every paying layer",
                )
            )
        if layer.kind != "alert" and layer.settle_at == "after_discharge":
            seen_after = seen_after or layer.id
        elif layer.kind != "alert" and seen_after:
            out.append(
                (
                    f"{p}.settle_at",
                    f"window layer {layer.id!r} comes after "
                    f"after_discharge layer {seen_after!r}; after-discharge layers must come "
                    "after all window layers",
                )
            )
        _check_layer(out, p, layer, levels, tags, cited)
    return out


def _check_layer(
    out: list[tuple[str, str]],
    p: str,
    layer: Layer,
    levels: set[str],
    tags: set[str],
    cited: set[str],
) -> None:
    e = layer.eligibility
    _known(out, f"{p}.eligibility.tags_any", e.tags_any, tags, "tag", "tags")
    _known(out, f"{p}.eligibility.tags_none", e.tags_none, tags, "tag", "tags")
    _known(out, f"{p}.eligibility.levels", e.levels, levels, "level", "hospital_levels")
    if e.age_min is not None and e.age_max is not None and e.age_min > e.age_max:
        out.append((f"{p}.eligibility.age_max", f"{e.age_max} is below age_min {e.age_min}"))
    if not layer.covers:
        out.append((f"{p}.covers", f"is empty; name at least one of {', '.join(BUCKETS)}"))
    _dupes(out, f"{p}.covers", layer.covers, "bucket")
    if layer.scope == "household" and layer.kind != "alert":
        out.append(
            (
                f"{p}.scope",
                f"'household' is only for alert layers; a {layer.kind} layer keeps person accounts",
            )
        )
    if layer.kind == "alert" and layer.settle_at != "window":
        out.append(
            (
                f"{p}.settle_at",
                "alert layers pay nothing, so settle_at does not apply; leave it out",
            )
        )
    _cites(out, f"{p}.source", layer.source, cited)

    layer_levels = set(e.levels) or levels
    fallback_at = None
    whens: dict[object, int] = {}
    for j, v in enumerate(layer.variants):
        q = f"{p}.variants[{j}]"
        if fallback_at is not None:
            out.append(
                (
                    q,
                    f"is never used: variant {fallback_at} before it has no 'when' conditions and "
                    "matches every bill; put fallbacks last",
                )
            )
        when_key = (frozenset(v.when.tags_any), frozenset(v.when.levels)) if v.when else None
        if v.when is None or when_key == (frozenset(), frozenset()):
            fallback_at = j if fallback_at is None else fallback_at
            applies = layer_levels
        else:
            if when_key in whens and fallback_at is None:
                out.append(
                    (
                        q,
                        f"is never used: variant {whens[when_key]} before it has the "
                        "same 'when' and is chosen first",
                    )
                )
            whens.setdefault(when_key, j)
            _known(out, f"{q}.when.tags_any", v.when.tags_any, tags, "tag", "tags")
            _known(out, f"{q}.when.levels", v.when.levels, levels, "level", "hospital_levels")
            applies = layer_levels & set(v.when.levels) if v.when.levels else layer_levels
        _check_variant(out, q, layer.kind, v, levels, applies)
        _cites(out, f"{q}.source", v.source, cited)


def _check_variant(
    out: list[tuple[str, str]], q: str, kind: str, v: Variant, levels: set[str], applies: set[str]
) -> None:
    given = {k for k in _ALL_PARAMS if getattr(v, k) is not None and k != "tiers_basis"}
    if v.tiers_basis != "admission":
        given.add("tiers_basis")
    for param in sorted(given - KIND_PARAMS[kind]):
        out.append(
            (
                f"{q}.{param}",
                f"is not a parameter of a {kind} layer (it takes "
                f"{', '.join(sorted(KIND_PARAMS[kind]))})",
            )
        )
    need, words = KIND_REQUIRED[kind]
    if not (given & need):
        out.append((q, f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} variant needs {words}"))
    if kind == "alert" and v.segments is None:
        out.append((q, "an alert variant needs segments (the relief ratios above the threshold)"))

    for name in _LEVEL_PARAMS:
        _level_map(out, f"{q}.{name}", getattr(v, name), levels, applies)
    if v.deductible is not None:
        d = v.deductible
        _level_map(out, f"{q}.deductible.amount", d.amount, levels, applies)
        _level_map(out, f"{q}.deductible.later_admissions", d.later_admissions, levels, applies)
        if d.basis == "year" and d.later_admissions is not None:
            out.append(
                (
                    f"{q}.deductible.later_admissions",
                    "only applies with basis "
                    "'admission'; a yearly deductible is charged once a year",
                )
            )
    if v.segments is not None:
        if not v.segments:
            out.append((f"{q}.segments", "is empty; give at least one segment (the last open)"))
        prev = 0
        for k, seg in enumerate(v.segments):
            sp = f"{q}.segments[{k}]"
            _level_map(out, f"{sp}.ratio", seg.ratio, levels, applies)
            last = k == len(v.segments) - 1
            if seg.up_to is None and not last:
                out.append((f"{sp}.up_to", "is missing; only the last segment is open"))
            elif seg.up_to is not None and last:
                out.append(
                    (
                        f"{sp}.up_to",
                        f"{seg.up_to}: the last segment must be open (no "
                        "up_to) so that every amount falls in a segment",
                    )
                )
            if seg.up_to is not None:
                if seg.up_to <= prev:
                    out.append(
                        (
                            f"{sp}.up_to",
                            f"{seg.up_to} is not above the previous bound "
                            f"{prev}; segments must be strictly increasing",
                        )
                    )
                prev = max(prev, seg.up_to)


def _level_map(
    out: list[tuple[str, str]], path: str, value: object, levels: set[str], applies: set[str]
) -> None:
    if not isinstance(value, dict):
        return
    for k in value:
        if k not in levels:
            out.append(
                (
                    f"{path}.{k}",
                    f"{k!r} is not a declared level; declared "
                    f"hospital_levels are {', '.join(sorted(levels))}",
                )
            )
    missing = sorted(applies - set(value))
    if missing:
        out.append(
            (
                path,
                f"has no value for level(s) {', '.join(missing)}, where this "
                "variant can apply; add them or use one number for all levels",
            )
        )


def _known(
    out: list[tuple[str, str]],
    path: str,
    names: tuple[str, ...],
    known: set[str],
    what: str,
    where: str,
) -> None:
    for i, n in enumerate(names):
        if n not in known:
            out.append(
                (
                    f"{path}[{i}]",
                    f"{n!r} is not a declared {what}; declare it in "
                    f"{where} ({', '.join(sorted(known)) or 'none declared'})",
                )
            )


def _dupes(out: list[tuple[str, str]], path: str, names: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            out.append((f"{path}[{i}]", f"{n!r} is a duplicate {what}"))
        seen.add(n)


def _cites(
    out: list[tuple[str, str]],
    path: str,
    source: Mapping[str, str | tuple[str, ...]],
    cited: set[str],
) -> None:
    for param, keys in source.items():
        for key in (keys,) if isinstance(keys, str) else keys:
            if key not in cited:
                out.append(
                    (
                        f"{path}.{param}",
                        f"cites {key!r}, which is not in the table's sources or assumptions",
                    )
                )
