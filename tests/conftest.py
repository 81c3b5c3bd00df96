"""Shared test set-up. Append only: other fixtures may be added below.

Hypothesis profiles (chosen by the env var HYPOTHESIS_PROFILE, default "dev"):
- dev: 200 examples per property;
- ci: derandomized, 300 examples per property (the kernel == reference property reads its own
  count from ONESTOP_HYPOTHESIS_EXAMPLES, default 4000, 20000 in make test-deep; see tests/test_properties.py);
- quick: 20 examples, e.g. for a run with NUMBA_DISABLE_JIT=1.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

_common: dict[str, Any] = {  # register_profile's keywords
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("dev", max_examples=200, **_common)
settings.register_profile("ci", max_examples=300, derandomize=True, database=None, **_common)
settings.register_profile("quick", max_examples=20, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# The longest test files run first: pytest-xdist hands tests out in collection order, so a long
# test collected late kept one worker busy while the other idled at the end of the pass (in
# the last CI runs' --durations these files held the longest tests: 20-270 s each under load).
import pytest  # noqa: E402 (this file is append-only)

SLOW_FIRST = (
    "test_properties.py",
    "test_allocation_properties.py",
    "test_fuzz.py",
    "test_budgets.py",
    "test_auth.py",
    "test_example_hongan.py",
    "test_simulate_walkthrough.py",  # one xdist group: its fixture runs two CLI subprocesses
    "test_java_client.py",
    "test_grpc_durability.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of SLOW_FIRST first, in that order; the rest keep theirs (a stable sort)."""
    rank = {name: k for k, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# --dist loadgroup: xdist 3.8 marks a grouped test by renaming it ("nodeid@group"), which
# pytest 9's read-only node ids ignore: every xdist_group (node, and the modules whose module
# fixtures start a server, a browser or CLI runs) was split over the workers, each making
# the module's fixtures again. This scheduler reads a module's group from its pytestmark
# line instead (a whole module is the unit of grouping here).
import functools  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

_MODULE_GROUP = re.compile(r'^pytestmark = pytest\.mark\.xdist_group\("([\w-]+)"\)$', re.M)


@functools.cache
def _module_group(path: str) -> str | None:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return None
    m = _MODULE_GROUP.search(text)
    return m.group(1) if m else None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    root = config.rootpath

    class ModuleGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # the renaming worked after all
                return super()._split_scope(nodeid)
            return _module_group(str(root / nodeid.split("::", 1)[0])) or nodeid

    return ModuleGroupScheduling(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    """An xdist_group mark other than a module's ``pytestmark`` line is refused: the scheduler
    above reads only that line, so such a mark would be ignored in silence."""
    for item in session.items:
        mark = item.get_closest_marker("xdist_group")
        if mark is None:
            continue
        name = mark.args[0] if mark.args else mark.kwargs.get("name")
        if _module_group(str(item.path)) != name:
            raise pytest.UsageError(
                f"{item.nodeid}: xdist_group({name!r}) is not its module's group: write it as "
                f'the one line pytestmark = pytest.mark.xdist_group("{name}") (tests/conftest.py '
                "groups whole modules only)"
            )


# Per-test CPU (own + reaped children) appended to a file when ONESTOP_TEST_CPU names one; off
# otherwise. Rank it with python -m tests.cputime FILE (tests/cputime.py).
from tests.cputime import pytest_runtest_protocol  # noqa: E402, F401
