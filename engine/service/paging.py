"""Keyset page tokens and sizes, shared by the listings (claims, cover lists).

A token is opaque to the caller: url-safe base64 of JSON ``[1, listing key, *position]``. The
listing key is the listing's filters: a token is refused under other filters, so a page never
continues a different listing.
"""

from __future__ import annotations

import base64
import json

from engine.errors import InputError, LimitExceeded


def page_size(n: int, default: int, most: int, limit_name: str) -> int:
    """The size of a page (0: ``default``); LimitExceeded above ``most``."""
    if n < 0:
        raise InputError.one("page_size", n, f"is negative; give 0 (default {default}) to {most}")
    if n > most:
        raise LimitExceeded("page_size", limit_name, most, n)
    return n or default


def encode(key: list[object], position: list[str]) -> str:
    raw = json.dumps([1, key, *position], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, key: list[object], width: int) -> list[str]:
    """The position (``width`` strings) a token of the listing ``key`` names; InputError on a
    token of another listing or none at all."""
    bad = InputError.one(
        "page_token",
        token,
        "is not a next_page_token of this listing (same filters); start again with an empty "
        "page_token",
    )
    try:
        got = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        raise bad from None
    if not isinstance(got, list) or len(got) != 2 + width or got[0] != 1 or got[1] != key:
        raise bad
    position = got[2:]
    if not all(isinstance(x, str) for x in position):
        raise bad
    return position
