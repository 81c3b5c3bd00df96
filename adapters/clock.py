"""Times as the window's clock reads them. Stored times are UTC; a slip or a terminal line
handed to a patient or cashier shows them in the counties' time zone (Asia/Shanghai, UTC+8):
``2026-12-02 09:18:39 (UTC+8)``. ``--json`` keeps the stored ISO text."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

#: The counties' time zone.
LOCAL = ZoneInfo("Asia/Shanghai")


def window_clock(t: datetime | str | None) -> str:
    """``t`` (an aware datetime, naive = UTC, or ISO text with an offset) in UTC+8; a date or a
    text whose zone is not known is returned as given; None is ''."""
    if t is None:
        return ""
    if isinstance(t, str):  # an ISO time from a client (gRPC answers carry them as text)
        try:
            parsed = datetime.fromisoformat(t)
        except ValueError:
            return t
        if parsed.tzinfo is None:
            return t  # a date, or a time whose zone is not known: as given
        t = parsed
    if t.tzinfo is None:  # stored times are UTC
        t = t.replace(tzinfo=UTC)
    return t.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S (UTC+8)")
