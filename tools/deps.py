"""Dependency sets of pyproject.toml: the lock of the tested set, and the lowest versions.

    python tools/deps.py lock  > requirements.lock   # (make lock) the set installed in this venv
    python tools/deps.py lowest                      # (make test-min) name==lower bound

``lock`` walks the requirements of pyproject.toml (the base and every extra) through the
installed distributions, markers evaluated for this interpreter, and prints
them pinned: run it with the interpreter of the venv that passed ``make test``. ``lowest`` pins
each dependency of the base install and of the server and batch extras, and the test runner, at
its declared lower bound (the version constraints given to pip for the lower-bound smoke test).
Standard library only, so that it runs before any venv exists.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOWEST_EXTRAS = ("server", "batch")
LOWEST_DEV = ("pytest", "hypothesis")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def lowest() -> list[str]:
    p = _project()
    reqs = list(p["dependencies"])
    for extra in LOWEST_EXTRAS:
        reqs += p["optional-dependencies"][extra]
    reqs += [r for r in p["optional-dependencies"]["dev"] if _norm(_NAME.match(r)[1]) in LOWEST_DEV]
    out = []
    for r in reqs:
        m = _NAME.match(r.split(";")[0].split("#")[0])
        name, spec = m[1], m[3]
        low = re.search(r"(?:>=|==)\s*([0-9][^,\s]*)", spec)
        if low is None:
            raise SystemExit(f"pyproject.toml: {r!r} has no lower bound")
        out.append(f"{_norm(name)}=={low[1]}")
        if (
            _norm(name) == "psycopg" and m[2]
        ):  # psycopg[binary]: the binary wheel at the same version
            out.append(f"psycopg-binary=={low[1]}")
    return sorted(set(out))


def lock() -> list[str]:
    from importlib import metadata

    from packaging.markers import Marker  # the venv's, not needed by `lowest`
    from packaging.requirements import Requirement

    p = _project()
    roots = list(p["dependencies"])
    for extra_reqs in p["optional-dependencies"].values():
        roots += [r for r in extra_reqs if _norm(Requirement(r).name) != "onestop"]
    seen: dict[str, str] = {}
    todo = [(_norm(r.name), frozenset(r.extras)) for r in map(Requirement, roots)]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        dist = metadata.distribution(name)
        seen[_norm(dist.metadata["Name"])] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None:
                envs = [{"extra": e} for e in extras] or [{"extra": ""}]
                if not any(Marker(str(req.marker)).evaluate(env) for env in envs):
                    continue
            todo.append((_norm(req.name), frozenset(req.extras)))
    return [f"{n}=={v}" for n, v in sorted(seen.items())]


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "lowest":
        print("\n".join(lowest()))
    elif what == "lock":
        print(
            "# The tested set: every dependency of onestop[dev] (all extras), pinned.\n"
            "# Regenerate after `make test` passes: make lock. Installed by `make setup`.\n"
            "# Python " + ".".join(map(str, sys.version_info[:2])) + ", " + sys.platform
        )
        print("\n".join(lock()))
    else:
        raise SystemExit("usage: python tools/deps.py lock|lowest")


if __name__ == "__main__":
    main()
