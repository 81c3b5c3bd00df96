"""The in-memory audit ledger: events and sealed blocks (domain.md section 15)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from engine.ledger import StoredBlock, StoredEvent

if TYPE_CHECKING:
    from adapters.store.memory.uow import MemoryUnitOfWork


class Ledger:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def append(self, method: str, subject: str, content: str) -> None:
        self.u.staged_events.append(StoredEvent(0, content, None, None, method, subject))

    def append_many(self, events: Sequence[tuple[str, str, str]]) -> None:
        for method, subject, content in events:
            self.append(method, subject, content)

    def lock_sealer(self) -> None:
        if self.u.s.sealer not in self.u._held:
            self.u.s.sealer.acquire()
            self.u._held.append(self.u.s.sealer)

    def head(self) -> StoredBlock | None:
        with self.u.s.mutex:
            return self.u.s.blocks[-1] if self.u.s.blocks else None

    def unsealed(self, limit: int) -> list[StoredEvent]:
        with self.u.s.mutex:
            return [e for e in self.u.s.events.values() if e.seq is None][:limit]

    def seal(self, events: list[StoredEvent], block: StoredBlock) -> None:
        self.u.staged_seal = (events, block)

    def pending(self) -> int:
        with self.u.s.mutex:
            return sum(e.seq is None for e in self.u.s.events.values())

    def blocks(self, after: int, limit: int) -> list[StoredBlock]:
        with self.u.s.mutex:
            return [b for b in self.u.s.blocks if b.header.height > after][:limit]

    def _sealed(self, keep: Callable[[int], bool]) -> list[StoredEvent]:
        with self.u.s.mutex:
            rows = [e for e in self.u.s.events.values() if e.seq is not None and keep(e.seq)]
        return sorted(rows, key=lambda e: (e.seq, e.id))

    def events(self, first_seq: int, last_seq: int) -> list[StoredEvent]:
        return self._sealed(lambda s: first_seq <= s <= last_seq)

    def stray(self, last_seq: int) -> list[StoredEvent]:
        return self._sealed(lambda s: s < 1 or s > last_seq)

    def find(self, method: str, subject: str) -> StoredEvent | None:
        with self.u.s.mutex:
            found = [
                e for e in self.u.s.events.values() if e.method == method and e.subject == subject
            ]
        return found[-1] if found else None

    def block_with(self, seq: int) -> StoredBlock | None:
        with self.u.s.mutex:
            return next(
                (b for b in self.u.s.blocks if b.header.first_seq <= seq <= b.header.last_seq),
                None,
            )
