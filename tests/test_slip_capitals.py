"""Chinese capital numerals (大写) of amounts in fen: hand-written cases."""

from __future__ import annotations

import pytest

from adapters.slip.capitals import capitals

CASES = [
    (0, "零元整"),
    (1, "壹分"),
    (10, "壹角"),
    (55, "伍角伍分"),
    (100, "壹元整"),
    (105, "壹元零伍分"),
    (110, "壹元壹角"),
    (1000, "壹拾元整"),
    (1050, "壹拾元伍角"),
    (1234_56, "壹仟贰佰叁拾肆元伍角陆分"),
    (1004_00, "壹仟零肆元整"),
    (1040_00, "壹仟零肆拾元整"),
    (1_0000_00, "壹万元整"),
    (1_0010_00, "壹万零壹拾元整"),
    (10_0001_10, "壹拾万零壹元壹角"),
    (10_0100_00, "壹拾万零壹佰元整"),
    (100_0000_00, "壹佰万元整"),
    (101_0000_00, "壹佰零壹万元整"),
    (1_0000_0000_00, "壹亿元整"),
    (1_0001_0000_00, "壹亿零壹万元整"),
    (1_1000_0000_00, "壹亿壹仟万元整"),
    (1_0000_0001_00, "壹亿零壹元整"),
    (1_0000_0000_0000_00, "壹万亿元整"),
    (20_3040_5060_70, "贰拾亿叁仟零肆拾万伍仟零陆拾元柒角"),
    (-1234_56, "负壹仟贰佰叁拾肆元伍角陆分"),
]


@pytest.mark.parametrize(("fen", "want"), CASES)
def test_capitals(fen: int, want: str) -> None:
    assert capitals(fen) == want


def test_only_integer_fen() -> None:
    with pytest.raises(TypeError):
        capitals(1.5)  # type: ignore[arg-type]  # a float, on purpose: refused
    with pytest.raises(TypeError):
        capitals(True)
