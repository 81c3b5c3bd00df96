"""The audit ledger's rules (domain.md section 15), pure: canonical JSON, event digests, RFC 6962
Merkle trees and inclusion paths, block headers and hashes, proof checking, and ``verify``,
which recomputes a chain of stored blocks from their events and names the first difference.

Hashes are lowercase hex strings in JSON and in this module's API; raw 32 bytes only inside
the hash functions. No I/O here: the stores hand rows in, the CLI prints what comes out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ZERO_HASH = "0" * 64
HEADER_KEYS = ("first_seq", "height", "last_seq", "merkle_root", "prev_hash", "sealed_at")
MAX_INT = 2**53 - 1  # what RFC 8785 (I-JSON) represents exactly; the spec's bound
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")


class CanonicalError(ValueError):
    """A value that has no canonical JSON form (section 15)."""


class ProofError(ValueError):
    """An inclusion proof that does not hold; the message says why."""


# --- canonical JSON ----------------------------------------------------------------------


def _check(x: Any, path: str) -> None:
    if x is None or isinstance(x, bool):
        return
    if isinstance(x, int):
        if not -MAX_INT <= x <= MAX_INT:
            raise CanonicalError(f"{path}: integer {x} is outside +-(2^53-1)")
        return
    if isinstance(x, float):
        raise CanonicalError(f"{path}: {x!r} is a float; use integers (fen, bp, qty_e4)")
    if isinstance(x, str):
        try:
            x.encode("utf-8")
        except UnicodeEncodeError as e:
            raise CanonicalError(f"{path}: string holds a lone surrogate at {e.start}") from e
        return
    if isinstance(x, list | tuple):
        for i, v in enumerate(x):
            _check(v, f"{path}[{i}]")
        return
    if isinstance(x, dict):
        for k, v in x.items():
            if not isinstance(k, str):
                raise CanonicalError(f"{path}: key {k!r} is not a string")
            if not k.isascii():
                raise CanonicalError(f"{path}: key {k!r} is not ASCII")
            _check(v, f"{path}.{k}")
        return
    raise CanonicalError(f"{path}: {type(x).__name__} has no JSON form")


def _utf8(x: str) -> bool:
    """A string that is not ASCII encodes as UTF-8 (no lone surrogate)."""
    try:
        x.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain_ok(x: Any) -> bool:
    """True only if ``_check`` passes ``x``, without building a path per value (a Settle's
    three events: ~35 us of ``_check``'s f-strings and recursion). Exact types only: a value
    of any other type (a float, a subclass, ...) is False, and ``_check`` then decides and
    names the path (tests/test_ledger_rules.py holds the two to each other). A dict's or
    list's strings, integers, None and booleans are checked in its own loop (a call a value
    was half of a Settle event's check)."""
    t = type(x)
    if t is dict:
        for k in x:
            if type(k) is not str or not k.isascii():
                return False
        return _values_ok(x.values())
    if t is list or t is tuple:
        return _values_ok(x)
    if t is str:
        return x.isascii() or _utf8(x)
    if t is int:
        return -MAX_INT <= x <= MAX_INT
    return x is None or t is bool


def _values_ok(values: Iterable[Any]) -> bool:
    """``_plain_ok`` of each value: strings, integers, None and booleans in this loop, the
    rest by ``_plain_ok``."""
    for v in values:
        tv = type(v)
        if tv is str:
            if not v.isascii() and not _utf8(v):
                return False
        elif tv is int:
            if not -MAX_INT <= v <= MAX_INT:
                return False
        elif v is not None and tv is not bool and not _plain_ok(v):
            return False
    return True


def canonical(x: Any) -> bytes:
    """The canonical JSON bytes of ``x`` (section 15); CanonicalError for floats, non-string or
    non-ASCII keys, lone surrogates, integers beyond +-(2^53-1) and non-JSON types."""
    if not _plain_ok(x):
        _check(x, "$")  # raises, naming the path (or passes what only it accepts)
    return sorted_json(x)


def sorted_json(x: Any) -> bytes:
    """``json.dumps(x, ensure_ascii=False, separators=(",", ":"), sort_keys=True)`` as UTF-8:
    by orjson (a tenth of the CPU: a Settle's ledger event and content digest), the same bytes
    for dicts with string keys, lists, tuples, strings, integers, booleans and None
    (tests/test_ledger_rules.py); what orjson refuses (an integer beyond 64 bits, a key that is
    not a string, a lone surrogate, ...) goes to the json module, which writes it or raises as
    before. Not for floats (the two write some differently; ``canonical`` refuses them).
    orjson comes with the ``server`` extra; the core does not require it: without it, json."""
    try:
        import orjson  # here: the commands that never write the ledger do not load it
    except ImportError:  # the base install (engine only): the json module, the same bytes
        return _json_sorted(x)
    # sorted keys; what it would write otherwise than json (dataclasses, dates, subclasses of
    # str, int, dict, list) it refuses instead, and json is asked
    opt = (
        orjson.OPT_SORT_KEYS
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )
    try:
        return orjson.dumps(x, option=opt)
    except TypeError:  # orjson.JSONEncodeError
        return _json_sorted(x)


def _json_sorted(x: Any) -> bytes:
    return json.dumps(x, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise CanonicalError(f"key {k!r} appears twice in one object")
        d[k] = v
    return d


def _no_constant(name: str) -> Any:
    raise CanonicalError(f"{name} is not JSON")


def loads(text: str | bytes) -> Any:
    """Parse JSON strictly: duplicate keys, NaN and Infinity refused (CanonicalError)."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def event_digest(event: dict[str, Any]) -> str:
    """SHA-256 (hex) of the event's canonical JSON, ``seq`` included."""
    if not isinstance(event, dict):
        raise CanonicalError("an event is a JSON object")
    return sha256_hex(canonical(event))


def rfc3339(t: datetime) -> str:
    """RFC 3339 UTC with microseconds, ending in Z: 2026-12-01T18:30:28.123456Z."""
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- Merkle trees (RFC 6962, odd node carried up) ----------------------------------------


def _raw(h: str, what: str) -> bytes:
    if not isinstance(h, str) or not _HEX64.fullmatch(h):
        raise ProofError(f"{what} is not 64 lowercase hex characters: {h!r}")
    return bytes.fromhex(h)


def leaf_hash(digest: str) -> bytes:
    return hashlib.sha256(b"\x00" + _raw(digest, "event digest")).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(digests: Sequence[str]) -> list[list[bytes]]:
    if not digests:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = [leaf_hash(d) for d in digests]
    levels = [level]
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # carried up unchanged
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(digests: Sequence[str]) -> str:
    """The RFC 6962 root (hex) over event digests (hex), in leaf order."""
    return _levels(digests)[-1][0].hex()


def inclusion_path(digests: Sequence[str], index: int) -> list[str]:
    """RFC 6962 PATH of leaf ``index``: sibling hashes from leaf to root (hex); no entry for
    a level where the node was carried up."""
    if not 0 <= index < len(digests):
        raise IndexError(f"leaf {index} of {len(digests)}")
    path = []
    for level in _levels(digests)[:-1]:
        sib = index ^ 1
        if sib < len(level):
            path.append(level[sib].hex())
        index >>= 1
    return path


# --- block headers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    height: int
    prev_hash: str
    merkle_root: str
    first_seq: int
    last_seq: int
    sealed_at: str

    @property
    def n(self) -> int:
        return self.last_seq - self.first_seq + 1

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in HEADER_KEYS}

    def hash(self) -> str:
        return sha256_hex(canonical(self.to_json()))

    @classmethod
    def from_json(cls, d: Any) -> Header:
        """A header object with exactly the section 15 keys and types (ProofError if not)."""
        if not isinstance(d, dict):
            raise ProofError("header is not an object")
        if sorted(d) != list(HEADER_KEYS):
            raise ProofError(f"header keys are {sorted(d)}, not {list(HEADER_KEYS)}")
        for k in ("height", "first_seq", "last_seq"):
            if not isinstance(d[k], int) or isinstance(d[k], bool) or d[k] < 0:
                raise ProofError(f"header.{k} is not a non-negative integer")
        for k in ("prev_hash", "merkle_root"):
            _raw(d[k], f"header.{k}")
        if not isinstance(d["sealed_at"], str) or not _RFC3339_Z.fullmatch(d["sealed_at"]):
            raise ProofError("header.sealed_at is not RFC 3339 UTC ending in Z")
        if d["last_seq"] < d["first_seq"]:
            raise ProofError("header.last_seq < first_seq: a block holds at least one event")
        return cls(**{k: d[k] for k in HEADER_KEYS})


def make_block(
    prev: Header | None, first_seq: int, digests: Sequence[str], sealed_at: datetime
) -> Header:
    """The header of the block after ``prev`` holding events first_seq.. (their digests)."""
    return Header(
        height=0 if prev is None else prev.height + 1,
        prev_hash=ZERO_HASH if prev is None else prev.hash(),
        merkle_root=merkle_root(digests),
        first_seq=first_seq,
        last_seq=first_seq + len(digests) - 1,
        sealed_at=rfc3339(sealed_at),
    )


# --- proofs ------------------------------------------------------------------------------


def make_proof(event: dict[str, Any], digests: Sequence[str], header: Header) -> dict[str, Any]:
    """The section 15 inclusion proof of ``event`` (which carries its seq) in the block."""
    i = event["seq"] - header.first_seq
    return {
        "event": event,
        "leaf_index": i,
        "path": inclusion_path(digests, i),
        "header": header.to_json(),
    }


def _root_from_path(leaf: bytes, index: int, n: int, path: Sequence[str]) -> bytes:
    h, fn, sn = leaf, index, n - 1
    for i, p in enumerate(path):
        if sn == 0:
            raise ProofError(f"path is too long: {len(path)} hashes, the root was reached at {i}")
        pb = _raw(p, f"path[{i}]")
        if fn % 2 == 1 or fn == sn:
            h = node_hash(pb, h)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            h = node_hash(h, pb)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"path is too short: {len(path)} hashes do not reach the root")
    return h


def check_proof(
    proof: Any, root: str, later: Sequence[Any] = ()
) -> tuple[Header, str]:  # (the proof's header, its hash)
    """Check an inclusion proof by section 15 alone. ``root`` is the published block hash;
    ``later`` are headers (objects) of the blocks after the proof's, in height order, through
    which the proof's header may reach it. Raises ProofError saying why it fails."""
    if not isinstance(proof, dict) or sorted(proof) != ["event", "header", "leaf_index", "path"]:
        raise ProofError("a proof is the object {event, leaf_index, path, header}")
    event, index, path = proof["event"], proof["leaf_index"], proof["path"]
    header = Header.from_json(proof["header"])
    if not isinstance(event, dict):
        raise ProofError("event is not an object")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ProofError("leaf_index is not a non-negative integer")
    if not isinstance(path, list):
        raise ProofError("path is not a list")
    if index >= header.n:
        raise ProofError(f"leaf_index {index} is not below n = {header.n}")
    seq = event.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq != header.first_seq + index:
        raise ProofError(
            f"event.seq {seq!r} is not first_seq + leaf_index = {header.first_seq + index}"
        )
    try:
        digest = event_digest(event)
    except CanonicalError as e:
        raise ProofError(f"event has no canonical form: {e}") from e
    h = _root_from_path(leaf_hash(digest), index, header.n, path)
    if h.hex() != header.merkle_root:
        raise ProofError("the path does not lead to the header's merkle_root")
    _raw(root, "published root")
    cur, cur_hash = header, header.hash()
    if cur_hash == root:
        return header, cur_hash
    for i, d in enumerate(later):
        nxt = Header.from_json(d)
        if nxt.height != cur.height + 1 or nxt.prev_hash != cur_hash:
            raise ProofError(
                f"later header {i} (height {nxt.height}) does not follow block {cur.height}"
            )
        cur, cur_hash = nxt, nxt.hash()
        if cur_hash == root:
            return header, cur_hash
    raise ProofError(
        f"block {header.height} hash {header.hash()} "
        + ("does not reach" if later else "is not")
        + f" the published {root}"
    )


# --- verifying stored blocks -------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    """An event row: its storage id, ``content`` (canonical JSON of the event without seq),
    and the seq and digest the sealer gave it (None until sealed)."""

    id: int
    content: str
    seq: int | None = None
    digest: str | None = None
    method: str = ""
    subject: str = ""  # the event's main object id (settlement id, policy version, ...)

    def event(self) -> dict[str, Any]:
        body = loads(self.content)
        if not isinstance(body, dict) or "seq" in body:
            raise CanonicalError("content is not an object without seq")
        return {**body, "seq": self.seq}

    def label(self) -> str:
        what = " ".join(x for x in (self.method, self.subject) if x)
        return f"event seq {self.seq} (row {self.id})" + (f" ({what})" if what else "")


@dataclass(frozen=True)
class StoredBlock:
    header: Header
    hash: str


@dataclass
class Report:
    events: int = 0
    blocks: int = 0
    head: str = ZERO_HASH
    height: int = -1
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    chain: Iterable[tuple[StoredBlock, Sequence[StoredEvent]]],
    stray: Sequence[StoredEvent] = (),
    max_problems: int = 20,
) -> Report:
    """Recompute every block from its events: each event's digest (from its content and
    seq), the block's Merkle root, header hash and link to the previous block, and the seqs
    (consecutive from 1, each exactly once). ``chain`` gives the stored blocks in height
    order, each with the event rows whose seq lies in its range (ordered by seq, then
    row id); ``stray`` the rows with a seq outside every block. ``problems`` lists the
    differences in ledger order, the first one first."""
    r = Report()
    prev: Header | None = None
    prev_hash = ZERO_HASH
    next_seq = 1
    for block, rows in chain:
        h = block.header
        where = f"block {h.height}"
        if h.height != r.blocks:
            r.problems.append(f"{where}: expected height {r.blocks} (a block is missing)")
        if h.prev_hash != prev_hash:
            r.problems.append(f"{where}: prev_hash is not the hash of block {r.blocks - 1}")
        if h.first_seq != next_seq:
            r.problems.append(f"{where}: starts at seq {h.first_seq}, expected {next_seq}")
        by_seq: dict[int, list[StoredEvent]] = {}
        for e in rows:
            by_seq.setdefault(e.seq or 0, []).append(e)
        digests: list[str] = []
        for seq in range(h.first_seq, h.last_seq + 1):
            found = by_seq.pop(seq, [])
            if not found:
                r.problems.append(f"event seq {seq} ({where}): missing (row deleted?)")
                continue
            if len(found) > 1:
                ids = ", ".join(str(e.id) for e in found)
                r.problems.append(
                    f"event seq {seq} ({where}): stored {len(found)} times (rows {ids}; "
                    "a row inserted?)"
                )
            e = found[0]
            try:
                d = event_digest(e.event())
            except (CanonicalError, ValueError) as exc:
                r.problems.append(f"{e.label()}: content unreadable: {exc}")
                continue
            if d != e.digest:
                r.problems.append(
                    f"{e.label()} ({where}): content does not match its digest (edited, or "
                    "moved to another seq)"
                )
            digests.append(d)
        for _seq, es in sorted(by_seq.items()):
            for e in es:
                r.problems.append(f"{e.label()}: outside {where}'s range")
        if digests and len(digests) == h.n and merkle_root(digests) != h.merkle_root:
            r.problems.append(f"{where}: merkle_root differs from its events' tree")
        if h.hash() != block.hash:
            r.problems.append(f"{where}: stored hash differs from its header's hash")
        prev, prev_hash = h, h.hash()
        next_seq = h.last_seq + 1
        r.blocks += 1
        r.events += len(rows)
        if len(r.problems) >= max_problems:
            break
    for e in stray:
        r.problems.append(f"{e.label()}: sealed but in no block (row inserted?)")
    if prev is not None:
        r.head, r.height = prev_hash, prev.height
    return r
