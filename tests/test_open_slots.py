"""``opening.open_slots`` (the opening rows into the kernel's account slots, found by integer keys)
equals a naive reference: a dict of the slots by (id, year), the rows in order (the last of
two rows for one slot and layer wins), admissions the maximum. Rows of unknown ids, scopes,
layers and of years outside the batch's (also 10,000 years off, which a key of
``code * 10000 + year`` took for the next id's slot) are left out."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.grpc.testing import CHAIN
from engine import columnar as C
from engine.accounts import ACCOUNT_FIELDS
from engine.columnar.opening import open_slots as _open
from engine.policy.compiled import compile_tables
from engine.policy.load import load_policies


def _policies():  # the chain table: four layers
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.yaml"
        path.write_text(CHAIN)
        return load_policies(path)


POLICIES = _policies()

IDS = ["a", "b", "c", "d"]
rows = st.tuples(
    st.sampled_from(["person", "household", "other"]),
    st.sampled_from([*IDS, "zz"]),
    st.sampled_from([2019, 2020, 2021, 2023, 12020, -5]),
    st.sampled_from(["", "nope", "L?"]),  # "L?": a layer of the policies, drawn below
    st.lists(st.integers(0, 10**6), min_size=5, max_size=5),
)


@settings(max_examples=200)
@given(st.lists(rows, max_size=30), st.data())
def test_open_fills_the_slots_as_the_naive_reference(rs, data) -> None:
    compiled = compile_tables(POLICIES.tables)
    layers = list(compiled.layer_ids)
    assert len(layers) == 4
    rs = [(sc, i, y, data.draw(st.sampled_from(layers)) if lid == "L?" else lid, v)
          for sc, i, y, lid, v in rs]  # fmt: skip
    ymin, span = 2019, 3  # the batch's years 2019-2021
    slots = {}
    for scope in ("person", "household"):
        u = np.array(data.draw(st.lists(st.sampled_from(IDS), unique=True).map(sorted)), object)
        keys = data.draw(st.lists(st.integers(0, max(len(u) * span - 1, 0)), unique=True))
        slots[scope] = (u, np.array(sorted(keys) if len(u) else [], dtype=np.int64))
    S = compiled.n_slots
    got = [np.zeros((len(slots[s][1]), S, 4), np.int64) for s in ("person", "household")]
    p_adm = np.zeros(len(slots["person"][1]), np.int64)
    d = np.array
    # the account columns, by field name (OpeningCols' keywords)
    accounts: dict[str, Any] = {f: d([r[4][k] for r in rs], dtype=np.int64)
                                for k, f in enumerate(ACCOUNT_FIELDS)}  # fmt: skip
    op = C.OpeningCols(
        scope=d([r[0] for r in rs], dtype=object), id=d([r[1] for r in rs], dtype=object),
        year=d([r[2] for r in rs], dtype=np.int64), layer_id=d([r[3] for r in rs], dtype=object),
        **accounts,
        admissions=d([r[4][4] % 5 for r in rs], dtype=np.int64),
    )  # fmt: skip
    if len(rs):
        _open(op, compiled, slots["person"], slots["household"], span, ymin, got[0], p_adm, got[1])
    want = [np.zeros_like(g) for g in got]
    want_adm = np.zeros_like(p_adm)
    where = {
        s: {(str(u[k // span]), int(k % span + ymin)): i for i, k in enumerate(keys.tolist())}
        for s, (u, keys) in slots.items()
    }
    for sc, i, y, lid, v in rs:
        slot = where.get(sc, {}).get((i, y))
        if slot is None:
            continue
        acc = want[0] if sc == "person" else want[1]
        if lid in layers:
            acc[slot, layers.index(lid)] = v[:4]
        if sc == "person":
            want_adm[slot] = max(want_adm[slot], v[4] % 5)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert np.array_equal(p_adm, want_adm)
