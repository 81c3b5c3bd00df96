"""``onestop batch`` keeps the memory it frees, instead of handing it back to the system.

A batch run allocates and frees the same large arrays part after part (the item columns
read, the checks' temporaries, the output columns and Arrow tables: hundreds of MB a part).
By default glibc serves each block over ~32 MB (and every block of a thread's arena, whose
heap is unmapped once it empties) with a fresh ``mmap`` and returns it with ``munmap`` when
freed, and Arrow's mimalloc purges freed pages; every new block then page-faults and the
kernel zero-fills it again. On the 2-core VM of benchmarks/README.md that zeroing was 13-30 %
of the command's CPU (``perf``: ``clear_page_erms`` under huge-page faults; the VM also
reports freed pages to its host).

So the command runs with (``batch_env``):

- glibc's tunables: no ``mmap`` for large blocks (``mmap_max`` 0), one arena for every
  thread (``arena_max`` 1: no thread heap to unmap), the heap's top never trimmed
  (``trim_threshold``): a freed block stays in the heap and the next part's arrays reuse it,
  already mapped;
- Arrow's default pool on the same allocator (``ARROW_DEFAULT_MEMORY_POOL=system``) instead
  of mimalloc, whose purging cannot be turned off once the library is loaded.

Both are read when the process starts (glibc's tunables by the dynamic loader), so ``onestop
batch`` runs itself again at once with them (``reexec_keeping_memory``: ``exec``, same pid
and arguments, ~40 ms); ``mallopt`` at run time cannot do it, since the threads pyarrow and
numpy start at import already have an arena of their own. The cost: the process holds its
peak heap until it exits (it exits when the run ends), and threads share one allocator lock
(the batch's threads allocate few, large blocks). ``ONESTOP_BATCH_MEMORY=0`` keeps the
defaults; settings the user gave in ``GLIBC_TUNABLES`` or ``ARROW_DEFAULT_MEMORY_POOL`` win.
Only on glibc Linux. Money is untouched: this is where memory comes from, not what is in it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

#: set in the environment of the process run again (and "0" by a user: keep the defaults)
MARK = "ONESTOP_BATCH_MEMORY"
TUNABLES = (
    "glibc.malloc.mmap_max=0",
    "glibc.malloc.arena_max=1",
    f"glibc.malloc.trim_threshold={2**40}",
)


def glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError, AttributeError):  # not a name this platform knows
        return False


def batch_env(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The environment to run the batch command in, or None to run it as it is (already so,
    turned off, or not glibc). The user's own tunables come after ours (the later wins)."""
    if MARK in environ or not glibc():
        return None
    env = dict(environ)
    env[MARK] = "1"
    env["GLIBC_TUNABLES"] = ":".join([*TUNABLES, *filter(None, [environ.get("GLIBC_TUNABLES")])])
    env.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    return env


def in_force(environ: Mapping[str, str]) -> bool:
    """Whether a process with this environment runs with the batch memory settings: ``MARK``
    "1" and each of ``TUNABLES`` at its value (where a tunable is named twice the later wins,
    as glibc reads them: a user's own value after ours turns ours off)."""
    if environ.get(MARK) != "1":
        return False
    got = dict(t.partition("=")[::2] for t in environ.get("GLIBC_TUNABLES", "").split(":"))
    return all(got.get(k) == v for k, v in (t.partition("=")[::2] for t in TUNABLES))


def reexec_keeping_memory() -> None:
    """Replace this process by the same command line with ``batch_env`` (no return), unless
    that is None. Call it before any work: nothing of this process survives."""
    env = batch_env(os.environ)
    if env is None or not getattr(sys, "orig_argv", None):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
