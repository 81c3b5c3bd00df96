"""protobuf's upb without its ``malloc_trim``: a serving process keeps the memory it frees
(``heapkeep``), and upb handed it back every 10,000 frees whatever the thresholds say.

protobuf's Python module (``google._upb._message``, protobuf 7) frees its arenas' blocks
through an allocator that calls glibc's ``malloc_trim(0)`` at every 10,000th free: every free
page of every heap is handed back to the kernel (``madvise``), and the next messages fault
them in again: ~100 page faults and ~1.5 ms of system time a packed stream message
(benchmarks/README.md, stream11 and stream12; newer upb sources have the call under
``#if 0``). The call goes through the module's slot for ``malloc_trim`` in its global offset
table (a lazily bound jump slot); ``skip`` points that slot at a C function that does nothing
with the argument and returns an int (libc's ``abs``), so the trim is not made. Nothing else
changes: glibc still trims the heap tops past ``heapkeep.TRIM_THRESHOLD``.

The slot is written only when everything is as expected: Linux, an ELF64 module of this
machine (x86-64 or aarch64) that has one jump slot or GOT entry for ``malloc_trim``, a slot
that holds libc's ``malloc_trim`` or the module's own lazy stub, on a writable page (a
read-only one, under full RELRO, is left alone). Otherwise nothing is done (False)."""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys
from pathlib import Path

#: (ELF e_machine, its jump slot and GOT entry relocation types)
_RELOCS = {62: (7, 6), 183: (1026, 1025)}  # x86-64, aarch64
_SHT_RELA, _PT_LOAD, _RTLD_DI_LINKMAP = 4, 1, 2
_SKIPPED: list[bool] = []  # done once a process


def skip() -> bool:
    """Point upb's ``malloc_trim`` slot at a function that does nothing; True when it is so
    (now or before)."""
    if _SKIPPED:
        return _SKIPPED[0]
    ok = False
    if sys.platform.startswith("linux"):
        try:
            ok = _skip()
        except (ImportError, OSError, AttributeError, ValueError, IndexError, struct.error):
            ok = False
    _SKIPPED.append(ok)
    return ok


def _skip() -> bool:
    from google._upb import _message  # (not installed, or pure Python: ImportError)

    path = str(_message.__file__)
    found = _slot_and_size(Path(path).read_bytes(), b"malloc_trim")
    if found is None:
        return False
    offset, size = found
    libc = ctypes.CDLL(None)
    lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD)  # the loaded module (not loaded again)
    link_map = ctypes.c_void_p()
    if libc.dlinfo(ctypes.c_void_p(lib._handle), _RTLD_DI_LINKMAP, ctypes.byref(link_map)):
        return False
    if not link_map.value:
        return False
    base = ctypes.c_size_t.from_address(link_map.value).value  # link_map.l_addr
    slot = ctypes.c_size_t.from_address(base + offset)
    trim = ctypes.cast(libc.malloc_trim, ctypes.c_void_p).value
    if slot.value != trim and not base <= slot.value < base + size:
        return False
    if not _writable(base + offset):
        return False
    nothing = ctypes.cast(libc.abs, ctypes.c_void_p).value  # int f(int): no effect
    if nothing is None:
        return False
    slot.value = nothing
    return True


def _slot_and_size(elf: bytes, name: bytes) -> tuple[int, int] | None:
    """(the offset from the load address of the one jump slot or GOT entry of symbol
    ``name``, the loaded image's size) of a little-endian ELF64 shared object of this
    machine's kind, else None."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return None
    machine = struct.unpack_from("<H", elf, 0x12)[0]
    if machine != _machine() or machine not in _RELOCS:
        return None
    phoff, shoff = struct.unpack_from("<QQ", elf, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", elf, 0x36)
    size = 0
    for i in range(phnum):
        p_type, _, _, vaddr, _, _, memsz = struct.unpack_from(
            "<IIQQQQQ", elf, phoff + i * phentsize
        )
        if p_type == _PT_LOAD:
            size = max(size, vaddr + memsz)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    slots = []
    for sh in sections:
        if sh[1] != _SHT_RELA:
            continue
        symtab = sections[sh[6]]
        strtab = sections[symtab[6]]
        for at in range(sh[4], sh[4] + sh[5], 24):
            r_offset, r_info = struct.unpack_from("<QQ", elf, at)
            if r_info & 0xFFFFFFFF not in _RELOCS[machine]:
                continue
            st_name = struct.unpack_from("<I", elf, symtab[4] + (r_info >> 32) * 24)[0]
            start = strtab[4] + st_name
            if elf[start : elf.index(b"\0", start)] == name:
                slots.append(r_offset)
    return (slots[0], size) if len(slots) == 1 else None


def _machine() -> int:
    """This machine's ELF e_machine (0: one not in ``_RELOCS``)."""
    return {"x86_64": 62, "aarch64": 183}.get(platform.machine(), 0)


def _writable(address: int) -> bool:
    """The page holding ``address`` is mapped writable in this process."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, perms = line.split()[:2]
        lo, hi = (int(x, 16) for x in span.split("-"))
        if lo <= address < hi:
            return perms[1] == "w"
    return False
