"""``LayerAccount``'s field-by-field steps (a Settle's moves and normalized accounts) agree
with the plain tuple arithmetic and with ``== ZERO``, to the fen, integers of any size."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.accounts import ZERO, LayerAccount, YearAccounts
from engine.settle import moves

_fen = st.integers(min_value=-(10**18), max_value=10**18) | st.sampled_from([0, 0, 0, 10**30])
_acc = st.builds(LayerAccount, _fen, _fen, _fen, _fen)
_layers = st.dictionaries(st.sampled_from(["L1", "L2", "L3", "b\\s"]), _acc | st.just(ZERO))


@given(_acc, _acc)
def test_minus_plus_and_is_zero_are_the_tuples(a: LayerAccount, b: LayerAccount) -> None:
    assert a.minus(b).as_tuple() == tuple(
        x - y for x, y in zip(a.as_tuple(), b.as_tuple(), strict=True)
    )
    assert a.plus(b).as_tuple() == tuple(
        x + y for x, y in zip(a.as_tuple(), b.as_tuple(), strict=True)
    )
    assert a.is_zero() == (a == ZERO) and ZERO.is_zero() and a.minus(a).is_zero()


@given(_layers, _layers)
def test_moves_and_normalized_drop_only_zero_layers(
    before: dict[str, LayerAccount], after: dict[str, LayerAccount]
) -> None:
    got = moves(YearAccounts(before), YearAccounts(after))
    want = {
        k: after.get(k, ZERO).minus(before.get(k, ZERO))
        for k in set(before) | set(after)
        if after.get(k, ZERO) != before.get(k, ZERO)
    }
    assert got == want
    norm = YearAccounts(after, 2).normalized()
    assert norm.layers == {k: a for k, a in after.items() if a != ZERO} and norm.admissions == 2
