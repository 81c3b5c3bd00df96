"""benchmarks.harness's rounds: the contenders' order alternates round by round (A B, B A, ...),
so that whichever runs first in a round (often the slower: batch15's null A/B) is not always
the same contender; the warm-up is not counted."""

from __future__ import annotations

from benchmarks import harness as H


def test_in_turn_alternates() -> None:
    assert [H.in_turn("ab", r) for r in range(4)] == [
        ["a", "b"],
        ["b", "a"],
        ["a", "b"],
        ["b", "a"],
    ]
    assert H.in_turn({"x": 1, "y": 2}.items(), 1) == [("y", 2), ("x", 1)]


def test_interleave_runs_each_first_in_half_the_rounds() -> None:
    ran: list[str] = []

    def runner(name: str) -> H.Contender:
        return H.Contender(name, lambda _state: ran.append(name))

    cs = [runner("a"), runner("b")]
    figs = H.interleave(cs, rounds=4, say=None)
    assert ran == ["b", "a", "a", "b", "b", "a", "a", "b", "b", "a"]  # warm-up first (round -1)
    firsts = ran[2::2]  # each counted round's first contender
    assert firsts.count("a") == firsts.count("b") == 2
    assert all(len(f.seconds) == 4 for f in figs.values())


def test_stat_cpu_reads_user_and_system_seconds_of_this_process() -> None:
    import time

    import pytest

    u0, s0 = H.stat_cpu("/proc/self/stat")
    t = time.process_time()
    while time.process_time() - t < 0.05:  # 50 ms of CPU: five clock ticks
        pass
    u1, s1 = H.stat_cpu("/proc/self/stat")
    assert u1 + s1 - u0 - s0 >= 0.02 and s1 >= s0 >= 0.0
    with pytest.raises(OSError):  # no such process
        H.stat_cpu("/proc/0/stat")
