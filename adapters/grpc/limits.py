"""The limits of the gRPC server, in one place: each a named setting with its default.

The server refuses a request over a limit with RESOURCE_EXHAUSTED (sizes and counts: the
ErrorInfo's metadata names the limit and its value) or INVALID_ARGUMENT (a policy table's size
and depth: the BadRequest names the file and the limit). The engine's own limits (items per
bill, policy tables, the use cases') live in the engine so that the CLI and the batch runs share
them; they are listed here too (``ENGINE``) for the README's table.

Build a server with other values: ``Server(app, limits=Limits(max_message_bytes=...))`` or
``onestop serve --max-message-mib ... --max-concurrent-streams ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import LimitExceeded

# the engine's own limits (ENGINE) are read on first use: importing engine.bill and the
# use cases' inputs (pydantic, numpy: ~0.3 s of CPU) made `onestop serve` slow to refuse an option

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    #: Largest request message, bytes. gRPC itself refuses a larger one with
    #: RESOURCE_EXHAUSTED before it is decoded (a 10^6-item bill once took the server from
    #: 250 MB to 1.86 GB).
    max_message_bytes: int = 16 * MIB
    #: Largest response message, bytes: a SettleStream message of max_bills_per_message bills
    #: answered with one SettlementResult each (about 1.7 KB for a 4-layer table) must fit.
    #: Clients receiving such answers set their receive limit to this (or ask packed_results).
    max_response_bytes: int = 64 * MIB
    #: Calls in flight on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); more wait
    #: in the client until one ends.
    max_concurrent_streams: int = 64
    #: Bills in one SettleStream message (bills or packed).
    max_bills_per_message: int = 10_000
    #: Items in one SettleStream message, all bills together.
    max_items_per_message: int = 1_000_000
    #: PostgreSQL, PreSettle on the event loop: the longest wait for the store's figure (the
    #: snapshot's check), seconds. Past it the waiting calls go to the thread pool (the
    #: store's own timeouts) and the stuck check's connection is abandoned for a fresh one.
    kept_figure_seconds: float = 0.3

    def options(self) -> list[tuple[str, int]]:
        """The channel arguments that enforce the transport limits."""
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_response_bytes),
            ("grpc.max_concurrent_streams", self.max_concurrent_streams),
        ]

    def check_message(self, bills: int, items: int) -> None:
        """LimitExceeded when one stream message holds too many bills or items."""
        if bills > self.max_bills_per_message:
            raise LimitExceeded(
                "bills", "max_bills_per_message", self.max_bills_per_message, bills,
                "send them in several messages",
            )  # fmt: skip
        if items > self.max_items_per_message:
            raise LimitExceeded(
                "items", "max_items_per_message", self.max_items_per_message, items,
                "send the bills in several messages",
            )  # fmt: skip


DEFAULT = Limits()


def __getattr__(name: str) -> Any:
    """``ENGINE``: the engine's limits, enforced whatever the adapter (name -> value)."""
    if name != "ENGINE":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from engine.bill import MAX_ITEMS_PER_BILL
    from engine.policy.load import MAX_TABLE_BYTES, MAX_TABLE_DEPTH
    from engine.service.inputs import (
        DEFAULT_PAGE_SIZE,
        MAX_HOSPITAL_LINES,
        MAX_PAGE_SIZE,
        MAX_PERSONS_PER_IMPORT,
        MAX_RECONCILE_DAYS,
        MAX_SOURCE_NAME,
        MAX_VERSIONS_PER_REGION,
    )

    return {
        "MAX_ITEMS_PER_BILL": MAX_ITEMS_PER_BILL,
        "MAX_TABLE_BYTES": MAX_TABLE_BYTES,
        "MAX_TABLE_DEPTH": MAX_TABLE_DEPTH,
        "MAX_VERSIONS_PER_REGION": MAX_VERSIONS_PER_REGION,
        "MAX_PERSONS_PER_IMPORT": MAX_PERSONS_PER_IMPORT,
        "MAX_SOURCE_NAME": MAX_SOURCE_NAME,
        "MAX_PAGE_SIZE": MAX_PAGE_SIZE,
        "DEFAULT_PAGE_SIZE": DEFAULT_PAGE_SIZE,
        "MAX_RECONCILE_DAYS": MAX_RECONCILE_DAYS,
        "MAX_HOSPITAL_LINES": MAX_HOSPITAL_LINES,
    }
