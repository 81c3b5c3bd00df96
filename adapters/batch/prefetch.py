"""Work a local batch run needs later, started in threads beside the plan (issue 13 target 3).

``plan.plan`` reads the bills' keys and the items' bill ids on one core while the other idles;
then the first part waits for the persons file (read and coded whole, ~0.2-0.3 s of CPU on
355 k persons) and for numba (imported, and its compiled functions loaded from the cache:
~0.6 s of CPU the first time any of them is called), and the manifest, written after the last
part, for the SHA-256 of every input file (~0.2 s a 300 MB items file). ``Prefetch`` does these
in three threads while the plan runs: the persons file into ``run._persons``' cache (a part
that needs the persons during that read waits for it, and reads them no second time), numba
and the part's compiled item check and figures loaded (the first part then finds them
loaded: numba's own locks make a concurrent first call wait, not load twice), the digests into
a table ``digest`` answers from (hashlib and pyarrow release the GIL for most of it). A digest
is of the file as it was when the run started.

A failure here is not raised: the persons file is then read again where the first part needs
it, and fails there with the same message as before; a digest missing is taken when asked.

A refused run does not wait for the work it will not use (``cancel``): the digests stop at
their next 1 MiB block, the persons file is not read after the cancel nor coded after a read
the cancel came during. What is under way then (a read inside pyarrow, numba's load) is waited
for in process (tests, a caller of ``settle_files``: nothing is left running), but not by the
``onestop batch`` process (``EXIT_REFUSED_AT_ONCE``), which ends at once under those threads
(``exit_refused``): an ordinary interpreter exit would stop them inside native code, which can
abort it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from adapters.batch import io
from adapters.batch import run as R
from adapters.batch.heapahead import HeapAhead

#: set by the ``onestop batch`` process (adapters/cli/main.py): a refused run's ``close``
#: then does not wait for the threads, and the process ends with ``exit_refused``
EXIT_REFUSED_AT_ONCE = False
_NAMES = ("onestop-compiled", "onestop-persons", "onestop-digest", "onestop-heap")


def running() -> bool:
    """Whether a thread of a ``Prefetch`` still runs in this process."""
    return any(t.name in _NAMES and t.is_alive() for t in threading.enumerate())


def exit_refused(code: int) -> None:
    """End this process with ``code`` at once if a prefetch thread still runs (a refused run:
    its one-line error is printed; stdout and stderr are flushed first): ``os._exit``, no
    interpreter shutdown that would stop those threads inside pyarrow or numba. Returns if
    none runs (the process then exits as usual)."""
    if not running():
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


class Prefetch:
    """Threads reading the persons file (``persons=True``), digesting ``digest_paths``
    (files; directories are left to the manifest) and mapping ``heap`` bytes of the heap the
    parts will need (``heapahead``; cancelled by ``cancel`` and ``close``)."""

    def __init__(self, spec: R.Spec, persons: bool, digest_paths: Iterable[str], heap: int = 0):
        self._digests: dict[str, str] = {}
        # the heap the parts will need, mapped beside the plan (adapters/batch/heapahead.py)
        self._heap = HeapAhead(heap) if heap > 0 else None
        self._stop = threading.Event()
        self._refused = False
        self._compiled = threading.Thread(target=self._load_compiled, name="onestop-compiled",
                                          daemon=True)  # fmt: skip
        self._persons = threading.Thread(
            target=self._read_persons, args=(spec, self._stop), name="onestop-persons",
            daemon=True,
        )  # fmt: skip
        paths = [str(Path(p)) for p in dict.fromkeys(digest_paths) if Path(p).is_file()]
        self._digest = threading.Thread(
            target=self._take_digests, args=(paths,), name="onestop-digest", daemon=True
        )
        if persons:
            self._persons.start()
            self._compiled.start()
        self._digest.start()

    @staticmethod
    def _read_persons(spec: R.Spec, stop: threading.Event) -> None:
        try:
            io.use_encoding(spec.inputs(), spec.encoding)
            with R._PERSONS_LOCK:  # the file, into read_all's cache (one reader at a time)
                if stop.is_set():
                    return
                io.read_all(spec.persons, "persons")
            if not stop.is_set():
                R._persons(spec.persons)  # coded from the table read
        except Exception:  # read again (and refused) where the first part needs it
            pass

    @staticmethod
    def _load_compiled() -> None:
        try:
            import engine.columnar.prepare  # noqa: F401  (numba, the kernel)
            from engine.columnar.figures import warm_figures
            from engine.columnar.itemcheck import warm_item_check

            warm_item_check()
            warm_figures()
        except Exception:  # loaded (or compiled) where the first part calls them
            pass

    def _take_digests(self, paths: list[str]) -> None:
        for p in paths:
            with contextlib.suppress(OSError):  # taken again (and raised) when the manifest asks
                got = self._sha256(p)
                if got is None:
                    return
                self._digests[p] = got

    def _sha256(self, path: str) -> str | None:
        """``run.sha256_of``, None once ``cancel`` is called (checked at every 1 MiB block)."""
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                if self._stop.is_set():
                    return None
                h.update(block)
        return h.hexdigest()

    def cancel(self, refused: bool = False) -> None:
        """The run is refused (``refused``: with an exit code, then printed) or failed: stop
        what it will not use. ``close`` then waits for the rest, but after a refusal in the
        ``onestop batch`` process, which ends at once (``EXIT_REFUSED_AT_ONCE``)."""
        self._refused = refused
        self._stop.set()
        if self._heap is not None:
            self._heap.cancel()

    def digest(self, path: str | Path) -> str:
        """The SHA-256 of ``path``: the one taken beside the plan, or taken now."""
        if self._digest.is_alive():
            self._digest.join()
        got = self._digests.get(str(Path(path)))
        return got if got is not None else R.sha256_of(path)

    def close(self) -> None:
        """Wait for the threads (a run that stops early leaves nothing running), but after a
        refusal (``cancel(refused=True)``) in the ``onestop batch`` process, which ends under
        them (``exit_refused``)."""
        if self._heap is not None:
            self._heap.cancel()  # of no use once the parts are done
        if self._refused and EXIT_REFUSED_AT_ONCE:
            return
        if self._heap is not None:
            self._heap.close()
        for t in (self._persons, self._compiled, self._digest):
            if t.is_alive():
                t.join()
