"""Amounts in Chinese capital numerals (大写金额), from integer fen. No engine, no floats.

The rules (the usual ones for cheques and receipts, 《支付结算办法》 附件):
- digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟 within a group of four, groups 万 and 亿;
  ``10`` is 壹拾 (never bare 拾);
- one 零 for a run of zeros between two non-zero digits (壹仟零肆, 壹拾万零壹, 壹亿零壹万); no
  零 for trailing zeros (壹佰万);
- 元 after the yuan, then 角 and 分; 整 when there is neither jiao nor fen (壹拾元整); no 整 after
  角 or 分 (壹元壹角, 壹元伍角陆分);
- a zero jiao before a non-zero fen is written 零 (壹元零伍分); a zero yuan digit before a
  non-zero jiao is not (壹拾元伍角: the rules allow either);
- less than one yuan: no 元 part (壹分, 伍角); nothing at all is 零元整;
- a negative amount (a reversal) starts with 负.
"""

from __future__ import annotations

DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")


def _below_10000(n: int) -> str:
    """1..9999 with 零 for inner zeros, none for trailing ones."""
    out: list[str] = []
    zero = False
    for pos in range(3, -1, -1):
        d = n // 10**pos % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(DIGITS[d] + _UNITS[pos])
    return "".join(out)


def _integer(n: int) -> str:
    """A positive integer in capitals (any size: 亿 groups nest, 壹万亿)."""
    for size, unit in ((10**8, "亿"), (10**4, "万")):
        if n >= size:
            hi, lo = divmod(n, size)
            s = _integer(hi) + unit
            if lo:
                # a gap of zeros after the group unit (its lower part has a leading zero)
                s += ("零" if lo < size // 10 else "") + _integer(lo)
            return s
    return _below_10000(n)


def capitals(fen: int) -> str:
    """``123456`` (fen) -> '壹仟贰佰叁拾肆元伍角陆分'; ``0`` -> '零元整'."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError("capitals() takes integer fen")
    if fen < 0:
        return "负" + capitals(-fen)
    yuan, rest = divmod(fen, 100)
    jiao, f = divmod(rest, 10)
    if rest == 0:
        return (_integer(yuan) if yuan else "零") + "元整"
    out = _integer(yuan) + "元" if yuan else ""
    if jiao:
        out += DIGITS[jiao] + "角"
    elif yuan:
        out += "零"
    if f:
        out += DIGITS[f] + "分"
    return out
