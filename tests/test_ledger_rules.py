"""engine/ledger.py against domain.md section 15: canonical JSON, RFC 6962 trees and paths
(checked against a naive recursive MTH/PATH written here), proofs and ``verify``."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import ledger as L

# --- canonical JSON ---------------------------------------------------------------------


def test_canonical_vectors() -> None:
    assert L.canonical({"b": 1, "a": [True, False, None], "c": {}}) == (
        b'{"a":[true,false,null],"b":1,"c":{}}'
    )
    assert L.canonical({"s": '"\\/<>&\u2028\u00e9\U0001f600'}) == (
        '{"s":"\\"\\\\/<>&\u2028\u00e9\U0001f600"}'.encode()
    )
    assert L.canonical("\x00\x08\t\n\x0c\r\x1f\x7f") == b'"\\u0000\\b\\t\\n\\f\\r\\u001f\x7f"'
    assert (
        L.canonical([0, -1, 2**53 - 1, -(2**53 - 1)])
        == b"[0,-1,9007199254740991,-9007199254740991]"
    )
    assert L.canonical({"B": 1, "a": 2, "_": 3}) == b'{"B":1,"_":3,"a":2}'  # code point order


def _json_module(x: Any) -> bytes:
    return json.dumps(x, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def test_sorted_json_writes_the_json_modules_bytes() -> None:
    """``sorted_json`` (orjson) writes what the json module does: every control character,
    quotes and backslashes, non-ASCII and astral text, key order by code point (astral keys
    after private-use ones), 64-bit integers; and hands what orjson refuses or would write
    otherwise to json, which writes it or raises as before."""
    import enum

    text = "".join(chr(i) for i in range(0x80)) + "\u2028\u2029\u00e9\U0001f600\ufffe\ue000"
    tricky = {
        "b": text,
        "a": [text, 0, -1, -(2**63), 2**63 - 1, None, True, False, "", (1, "x")],
        "\ue000k": 1,
        "\U0001f600k": 2,
        "Z": {"y": 1, "x": [{}, []]},
    }
    assert L.sorted_json(tricky) == _json_module(tricky)

    class Code(enum.IntEnum):
        A = 7

    class Name(enum.StrEnum):
        B = "b"

    for odd in ([2**64, -(2**70)], {2: "x", 1: "y"}, {"k": Code.A, "n": Name.B}):
        assert L.sorted_json(odd) == _json_module(odd)
    with pytest.raises(UnicodeEncodeError):  # as json's bytes would
        L.sorted_json({"s": "a\ud800"})
    with pytest.raises(TypeError):  # json has no form for it; orjson would write one
        L.sorted_json({"d": datetime(2024, 1, 1, tzinfo=UTC)})


def test_sorted_json_without_orjson_is_the_json_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """The base install (no ``server`` extra) has no orjson: the core's ledger JSON is then
    json's own, the same bytes."""
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson -> ImportError
    with pytest.raises(ImportError):
        import orjson  # noqa: F401
    x = {"b": [1, -(2**53) + 1, "é\n"], "a": {"z": None, "y": True}}
    assert L.sorted_json(x) == _json_module(x)
    assert L.canonical(x) == _json_module(x)


@pytest.mark.parametrize(
    "bad, why",
    [
        (1.5, "float"),
        ({"a": 1.0}, "float"),
        ({1: "x"}, "not a string"),
        ({"é": 1}, "not ASCII"),
        ("a\ud800b", "surrogate"),
        ([2**53], "outside"),
        ({"x": -(2**53)}, "outside"),
        ({"x": {1, 2}}, "no JSON form"),
    ],
)
def test_canonical_refuses(bad: Any, why: str) -> None:
    with pytest.raises(L.CanonicalError, match=why):
        L.canonical(bad)


def test_loads_refuses_duplicates_and_constants() -> None:
    with pytest.raises(L.CanonicalError, match="twice"):
        L.loads('{"a":1,"a":2}')
    with pytest.raises(L.CanonicalError):
        L.loads('{"a":NaN}')


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53 - 1), 2**53 - 1)
    | st.text(st.characters(blacklist_categories=["Cs"])),
    lambda xs: (
        st.lists(xs, max_size=4)
        | st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=5), xs, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_round_trips_and_is_stable(x: Any) -> None:
    b = L.canonical(x)
    assert L.canonical(json.loads(b)) == b
    assert b"\n" not in b.replace(b"\\n", b"")


class _Int(int):
    pass


class _Str(str):
    pass


# anything a caller might hand ``canonical``: out-of-bound integers, floats, lone surrogates,
# keys not strings or not ASCII, sets, subclasses of int and str, tuples
any_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.sampled_from([2**53 - 1, 2**53, -(2**53 - 1), -(2**53)])
    | st.floats(allow_nan=False)
    | st.text()
    | st.sampled_from(["a\ud800b", "\udfff", "é", _Str("s"), _Int(3), {1, 2}]),
    lambda xs: (
        st.lists(xs, max_size=4)
        | st.lists(xs, max_size=3).map(tuple)
        | st.dictionaries(
            st.text(max_size=3) | st.integers(0, 3) | st.just(_Str("k")), xs, max_size=4
        )
    ),
    max_leaves=20,
)


@given(any_values)
def test_the_quick_check_passes_only_what_the_checker_passes(x: Any) -> None:
    """``canonical``'s quick check (no path per value) says yes only where ``_check`` does;
    where it says no, ``_check`` decides: canonical refuses exactly what ``_check`` refuses,
    with ``_check``'s message."""
    try:
        L._check(x, "$")
    except L.CanonicalError as exc:
        assert not L._plain_ok(x)
        with pytest.raises(L.CanonicalError) as got:
            L.canonical(x)
        assert str(got.value) == str(exc)
    else:
        assert L.canonical(x) == L.sorted_json(x)


# --- Merkle trees: a naive RFC 6962 MTH / PATH ------------------------------------------


def mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def digests(n: int, salt: int = 0) -> list[str]:
    return [hashlib.sha256(f"{salt}:{i}".encode()).hexdigest() for i in range(n)]


def header_for(ds: list[str], first_seq: int = 1) -> L.Header:
    return L.make_block(None, first_seq, ds, datetime(2026, 12, 1, tzinfo=UTC))


@given(st.integers(1, 70), st.integers(0, 3))
def test_root_and_every_path_match_rfc6962(n: int, salt: int) -> None:
    ds = digests(n, salt)
    raw = [bytes.fromhex(d) for d in ds]
    assert L.merkle_root(ds) == mth(raw).hex()
    h = header_for(ds)
    for i in range(n):
        p = L.inclusion_path(ds, i)
        assert p == [x.hex() for x in path(i, raw)]
        event_digest = ds[i]
        # the section 15 checker, fed the leaf directly through a one-event "event"
        assert L._root_from_path(L.leaf_hash(event_digest), i, n, p).hex() == h.merkle_root


def test_small_trees_by_hand() -> None:
    a, b, c = digests(3)
    la, lb, lc = (hashlib.sha256(b"\x00" + bytes.fromhex(x)).digest() for x in (a, b, c))
    ab = hashlib.sha256(b"\x01" + la + lb).digest()
    assert L.merkle_root([a]) == la.hex()
    assert L.merkle_root([a, b]) == ab.hex()
    assert L.merkle_root([a, b, c]) == hashlib.sha256(b"\x01" + ab + lc).hexdigest()
    assert L.inclusion_path([a, b, c], 2) == [ab.hex()]  # c carried up: one sibling only
    assert L.inclusion_path([a, b, c], 0) == [lb.hex(), lc.hex()]
    assert L.inclusion_path([a], 0) == []


def test_header_hash_vector() -> None:
    h = L.Header(0, L.ZERO_HASH, "ab" * 32, 1, 3, "2026-12-01T00:00:00.000000Z")
    text = (
        '{"first_seq":1,"height":0,"last_seq":3,"merkle_root":"' + "ab" * 32 + '",'
        '"prev_hash":"' + "0" * 64 + '","sealed_at":"2026-12-01T00:00:00.000000Z"}'
    )
    assert L.canonical(h.to_json()) == text.encode()
    assert h.hash() == hashlib.sha256(text.encode()).hexdigest()


# --- proofs -----------------------------------------------------------------------------


def events(n: int, first_seq: int = 1) -> list[dict[str, Any]]:
    return [
        {"method": "Settle", "subject": f"s{i}", "funds": {"390100": 100 * i}, "seq": first_seq + i}
        for i in range(n)
    ]


@given(st.integers(1, 40), st.data())
def test_proofs_check_and_tampering_fails(n: int, data: st.DataObject) -> None:
    evs = events(n, first_seq=5)
    ds = [L.event_digest(e) for e in evs]
    h = L.make_block(None, 5, ds, datetime(2026, 12, 1, tzinfo=UTC))
    i = data.draw(st.integers(0, n - 1))
    proof = json.loads(json.dumps(L.make_proof(evs[i], ds, h)))
    assert L.check_proof(proof, h.hash())[1] == h.hash()
    bad = json.loads(json.dumps(proof))
    bad["event"]["funds"]["390100"] += 1
    with pytest.raises(L.ProofError, match="merkle_root"):
        L.check_proof(bad, h.hash())
    if proof["path"]:
        bad = json.loads(json.dumps(proof))
        bad["path"] = bad["path"][:-1]
        with pytest.raises(L.ProofError):
            L.check_proof(bad, h.hash())
        bad = json.loads(json.dumps(proof))
        bad["path"].append(bad["path"][0])
        with pytest.raises(L.ProofError):
            L.check_proof(bad, h.hash())
    if n > 1:  # another leaf index with the same path and event fails
        bad = json.loads(json.dumps(proof))
        bad["leaf_index"] = (i + 1) % n
        with pytest.raises(L.ProofError):
            L.check_proof(bad, h.hash())


def test_proof_reaches_published_root_through_later_headers() -> None:
    t = datetime(2026, 12, 1, tzinfo=UTC)
    evs = events(3)
    ds = [L.event_digest(e) for e in evs]
    b0 = L.make_block(None, 1, ds, t)
    b1 = L.make_block(b0, 4, digests(2), t)
    b2 = L.make_block(b1, 6, digests(1), t)
    proof = L.make_proof(evs[1], ds, b0)
    later = [b1.to_json(), b2.to_json()]
    assert L.check_proof(proof, b2.hash(), later)[0] == b0
    with pytest.raises(L.ProofError, match="does not reach"):
        L.check_proof(proof, b2.hash(), later[:1])
    with pytest.raises(L.ProofError, match="does not follow"):
        L.check_proof(proof, b2.hash(), later[1:])
    with pytest.raises(L.ProofError, match="is not the published"):
        L.check_proof(proof, b1.hash())
    bad = {**proof, "header": {**proof["header"], "sealed_at": "2026-12-02T00:00:00.000000Z"}}
    with pytest.raises(L.ProofError, match="is not the published"):
        L.check_proof(bad, b0.hash())
    with pytest.raises(L.ProofError, match="keys"):
        L.check_proof({**proof, "header": {**proof["header"], "x": 1}}, b0.hash())
    with pytest.raises(L.ProofError, match="first_seq"):
        L.check_proof({**proof, "event": {**proof["event"], "seq": 3}}, b0.hash())


# --- verify -----------------------------------------------------------------------------


def chain(sizes: list[int]) -> list[tuple[L.StoredBlock, list[L.StoredEvent]]]:
    out: list[tuple[L.StoredBlock, list[L.StoredEvent]]] = []
    prev: L.Header | None = None
    seq = 1
    for n in sizes:
        rows = []
        for _ in range(n):
            content = L.canonical({"method": "Settle", "subject": f"s{seq}", "total": seq})
            d = L.event_digest({**json.loads(content), "seq": seq})
            rows.append(L.StoredEvent(seq + 100, content.decode(), seq, d, "Settle", f"s{seq}"))
            seq += 1
        h = L.make_block(prev, rows[0].seq or 0, [r.digest or "" for r in rows], datetime.now(UTC))
        out.append((L.StoredBlock(h, h.hash()), rows))
        prev = h
    return out


def test_verify_intact_and_each_tampering() -> None:
    c = chain([3, 1, 4])
    r = L.verify(c)
    assert r.ok and (r.events, r.blocks, r.height, r.head) == (8, 3, 2, c[-1][0].hash)

    edited = [(b, list(rs)) for b, rs in c]
    e = edited[1][1][0]
    edited[1][1][0] = replace(e, content=e.content.replace('"total":4', '"total":5'))
    assert L.verify(edited).problems[0].startswith("event seq 4 (row 104) (Settle s4)")

    deleted = [(b, list(rs)) for b, rs in c]
    del deleted[2][1][1]
    assert "event seq 6 (block 2): missing" in L.verify(deleted).problems[0]

    inserted = [(b, list(rs)) for b, rs in c]
    inserted[0][1].insert(1, L.StoredEvent(999, '{"method":"Settle"}', 2, "00" * 32))
    assert "event seq 2 (block 0): stored 2 times" in L.verify(inserted).problems[0]

    swapped = [(b, list(rs)) for b, rs in c]
    x, y = swapped[2][1][0], swapped[2][1][1]
    swapped[2][1][0] = L.StoredEvent(x.id, y.content, x.seq, x.digest)
    swapped[2][1][1] = L.StoredEvent(y.id, x.content, y.seq, y.digest)
    assert L.verify(swapped).problems[0].startswith("event seq 5 ")

    # content and digest rewritten together: the block's root names the block
    redone = [(b, list(rs)) for b, rs in c]
    e = redone[0][1][2]
    content = e.content.replace('"total":3', '"total":30')
    redone[0][1][2] = L.StoredEvent(
        e.id, content, 3, L.event_digest({**json.loads(content), "seq": 3})
    )
    assert L.verify(redone).problems == ["block 0: merkle_root differs from its events' tree"]

    stray = L.StoredEvent(500, '{"method":"Settle"}', 9, "00" * 32)
    assert "sealed but in no block" in L.verify(c, [stray]).problems[0]
    assert "expected height 1" in L.verify([c[0], c[2]]).problems[0]
