"""Work a local batch run needs later, started in threads beside the plan (issue 13 target 3).

``run.plan`` reads the bills' keys and the items' bill ids on one core while the other idles;
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
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from pathlib import Path

from adapters.batch import io
from adapters.batch import run as R


class Prefetch:
    """Threads reading the persons file (``persons=True``) and digesting ``digest_paths``
    (files; directories are left to the manifest)."""

    def __init__(self, spec: R.Spec, persons: bool, digest_paths: Iterable[str]):
        self._digests: dict[str, str] = {}
        self._compiled = threading.Thread(target=self._load_compiled, name="onestop-compiled",
                                          daemon=True)  # fmt: skip
        self._persons = threading.Thread(
            target=self._read_persons, args=(spec,), name="onestop-persons", daemon=True
        )
        paths = [str(Path(p)) for p in dict.fromkeys(digest_paths) if Path(p).is_file()]
        self._digest = threading.Thread(
            target=self._take_digests, args=(paths,), name="onestop-digest", daemon=True
        )
        if persons:
            self._persons.start()
            self._compiled.start()
        self._digest.start()

    @staticmethod
    def _read_persons(spec: R.Spec) -> None:
        try:
            io.use_encoding(spec.inputs(), spec.encoding)
            R._persons(spec.persons)
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
                self._digests[p] = R.sha256_of(p)

    def digest(self, path: str | Path) -> str:
        """The SHA-256 of ``path``: the one taken beside the plan, or taken now."""
        if self._digest.is_alive():
            self._digest.join()
        got = self._digests.get(str(Path(path)))
        return got if got is not None else R.sha256_of(path)

    def close(self) -> None:
        """Wait for both threads (a run that stops early leaves nothing running)."""
        for t in (self._persons, self._compiled, self._digest):
            if t.is_alive():
                t.join()
