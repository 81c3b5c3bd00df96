"""Shared test set-up. Append only: other fixtures may be added below.

Hypothesis profiles (chosen by the env var HYPOTHESIS_PROFILE, default "dev"):
- dev: 200 examples per property;
- ci: derandomized, 300 examples per property (the kernel == reference property reads its own
  count from ONESTOP_HYPOTHESIS_EXAMPLES, default 4000, 20000 in make test-deep; see tests/test_properties.py);
- quick: 20 examples, e.g. for a run with NUMBA_DISABLE_JIT=1.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_common = {
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
    "test_java_client.py",
    "test_grpc_durability.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of SLOW_FIRST first, in that order; the rest keep theirs (a stable sort)."""
    rank = {name: k for k, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
