"""``PolicySet.table_for``: the table in force by region and discharge date, looked up in the
region's own tables (kept once per set, as the sorted region codes) and the same as a scan of
every table, for tables given in any order; the same refusals."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.policy.load import load_policies
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet

ROOT = Path(__file__).resolve().parents[1]


def scan(tables: tuple[PolicyTable, ...], code: str, day: date) -> PolicyTable | None:
    for t in tables:
        if t.region.code == code and t.covers_date(day):
            return t
    return None


def test_table_for_is_the_scan_of_every_table_in_any_order() -> None:
    loaded = load_policies(ROOT / "policies")
    assert len(loaded.regions) > 1
    rng = random.Random(7)
    shuffled = list(loaded.tables)
    rng.shuffle(shuffled)
    for ps in (loaded, PolicySet(tuple(shuffled))):
        assert ps.regions == sorted({t.region.code for t in ps.tables})
        for t in ps.tables:
            for day in (t.effective_from, t.effective_from - timedelta(days=1),
                        t.effective_to or date(2099, 1, 1), date(1990, 1, 1)):  # fmt: skip
                want = scan(ps.tables, t.region.code, day)
                if want is None:
                    with pytest.raises(InputError) as e:
                        ps.table_for(t.region.code, day)
                    assert e.value.problems[0].field == "discharge_date"
                else:
                    assert ps.table_for(t.region.code, day) is want
    with pytest.raises(InputError) as e:
        loaded.table_for("000000", date(2024, 1, 1))
    assert e.value.problems[0].field == "region" and "known regions" in str(e.value)
    with pytest.raises(InputError) as e:
        loaded.table_for(None, date(2024, 1, 1))
    assert e.value.problems[0].field == "region" and "several" in str(e.value)
    one = PolicySet((loaded.tables[0],))
    t0 = loaded.tables[0]
    assert one.table_for(None, t0.effective_from) is t0 and one.regions == [t0.region.code]
