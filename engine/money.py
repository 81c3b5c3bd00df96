"""Money and ratio arithmetic. Integer fen and integer basis points only.

The one rounding rule of the engine (domain.md section 2): a non-negative product
``amount_fen * ratio_bp`` is rounded half-up to the fen, ``(amount * ratio + 5000) // 10000``.
Quantities are integer ten-thousandths (``qty_e4``) and use the same rule.
"""

from __future__ import annotations

BP = 10_000  # 100% in basis points, and the divisor for qty_e4

#: Upper bounds that keep every product below 2**63 (checked on input, documented in README).
MAX_AMOUNT = 10**12  # fen per item or per policy amount: 10 billion yuan
MAX_BILL_TOTAL = 10**13  # fen per bill
#: fen in one year-to-date account field: checked on opening accounts and after every bill (a
#: bill that would pass it is refused: engine.reference.settle_bill, the kernel's B_STATUS)
MAX_ACCOUNT = 10**15
MAX_QTY_E4 = 10**9  # 100,000 units
MAX_UNIT_PRICE = 10**9  # fen: 10 million yuan per unit


def round_bp(amount: int, ratio_bp: int) -> int:
    """``amount * ratio_bp / 10000`` rounded half-up to the fen (both non-negative)."""
    return (amount * ratio_bp + 5000) // BP


_CENTS = tuple(f"{c:02d}" for c in range(100))


def yuan(fen: int) -> str:
    """12345 -> '123.45', 123456789 -> '1,234,567.89' (for slips and explanations; never
    parsed back). The fen from a table of the 100 two-digit strings, the thousands separator
    only asked for when there is one."""
    if fen < 0:
        return "-" + yuan(-fen)
    y, f = divmod(fen, 100)
    return f"{y:,}.{_CENTS[f]}" if y >= 1000 else f"{y}.{_CENTS[f]}"
