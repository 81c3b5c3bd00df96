"""The port of a trial answered where nothing may wait on the store (the gRPC server's event
loop): the store's "nothing committed since" figure is awaited, then the trial runs answering
only from the reads the store kept under that figure, and signals ``NotKept`` before it would
send anything. The caller runs such a trial again where it may wait (the thread pool).

Implemented by the SQL store on PostgreSQL (``adapters.store.sql.snapshotcheck``), wired by the
composition root (``adapters.bootstrap.kept_trials``); a store without one answers its trials
where it may wait."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol


class NotKept(Exception):
    """A read that is not kept, asked for under ``KeptTrials.only_kept`` (the caller runs the
    trial again where it may wait for the store)."""


class KeptTrials(Protocol):
    async def figure(self) -> Any:
        """The store's figure, read after this call asked; raises when it cannot be read in
        time (``TimeoutError`` past the store's bound, or the store's own error)."""
        ...

    def only_kept(self, figure: Any) -> AbstractContextManager[None]:
        """Inside: this thread's trials answer from the reads kept under ``figure`` and raise
        ``NotKept`` before anything is sent to the store."""
        ...

    async def close(self) -> None:
        """What the figure's reads hold released (the server's stop)."""
        ...
