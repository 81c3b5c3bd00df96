"""The SettleStream request read with its item columns as views of the received bytes
(``adapters.grpc.packedwire``): the same message as upb's whole parse, the same answers and the
same refusals, naming the same fields."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.message import DecodeError

from adapters.grpc import packedwire
from adapters.grpc.client import pack_bills
from adapters.grpc.errors import Undecodable, bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.packedwire import read_stream_request
from adapters.grpc.registration import Received, _deserializer
from adapters.grpc.testing import CHAIN, YUBEI, chain_bill, served

pytestmark = pytest.mark.xdist_group("packedwire")

BILLS = [chain_bill(i, p, seed=31) for i in range(5) for p in ("wang", "wang-wife")]


def _msg(mode: pb.StreamMode = pb.STREAM_MODE_TRIAL, /, **kw: bool) -> pb.SettleStreamRequest:
    settle = mode == pb.STREAM_MODE_SETTLE
    rids = [f"wire-{b['id']}" for b in BILLS] if settle else None
    return pb.SettleStreamRequest(
        mode=mode, packed=pack_bills(BILLS, rids, **kw), packed_results_le=True
    )


def _whole(msg: pb.SettleStreamRequest, cut: dict) -> pb.SettleStreamRequest:
    """``msg`` with the cut fields written back into it."""
    out = pb.SettleStreamRequest()
    out.CopyFrom(msg)
    for f, v in cut.items():
        assert getattr(msg.packed, f) == b""  # left empty in the message
        setattr(out.packed, f, bytes(v))
    return out


FORMS = {
    "repeated": {},
    "raw": {"raw": True},
    "narrow": {"raw": True, "narrow": True},
    "joined": {"raw": True, "narrow": True, "joined": True, "item_text": False},
    # item codes and names are a field an item: parsed whole
    "joined, item texts": {"raw": True, "narrow": True, "joined": True, "item_text": True},
}


@pytest.mark.parametrize("form", FORMS)
def test_the_message_read_with_views_is_upbs_whole_parse(form: str) -> None:
    data = _msg(**FORMS[form]).SerializeToString()
    msg, cut = read_stream_request(data)
    assert _whole(msg, dict(cut)) == pb.SettleStreamRequest.FromString(data)
    # the joined form is cut (its columns views of the bytes); the others are parsed whole
    assert bool(cut) == (form == "joined")
    if cut:
        assert (
            {"amount_i32", "category_i8", "qty_e4_i32"} <= set(cut) <= set(packedwire.CUT.values())
        )
        assert all(v.readonly and v.obj is data for v in cut.values())


def _field(num: int, wt: int, value: bytes) -> bytes:
    v = packedwire._varint_bytes
    head = v((num << 3) | wt)
    return head + (v(len(value)) + value if wt == 2 else value)


def test_anything_but_the_plain_case_is_parsed_whole_as_upb_reads_it() -> None:
    """A column sent twice (the last one counts), the packed field sent twice (merged), bills
    after packed (the oneof's last), unknown fields: each read as upb reads it."""
    base = _msg(**FORMS["joined"])
    data = base.SerializeToString()
    amount = pb.PackedBills.DESCRIPTOR.fields_by_name["amount_i32"].number
    other = bytes(reversed(base.packed.amount_i32))
    twice = base.packed.SerializeToString() + _field(amount, 2, other)
    cases = {
        "a column twice": _field(1, 0, b"\x01") + _field(3, 2, twice),
        "packed twice": data + _field(3, 2, _field(amount, 2, other)),
        "bills after packed": data + _field(2, 2, b""),
        "unknown fields": _field(99, 0, b"\x05")
        + _field(3, 2, base.packed.SerializeToString() + _field(999, 5, b"abcd"))
        + _field(98, 2, b"xyz"),
        "a column also as a varint": _field(
            3, 2, base.packed.SerializeToString() + _field(amount, 0, b"\x07")
        ),
    }
    for what, raw in cases.items():
        assert pb.SettleStreamRequest.FromString(raw) != base, what
        msg, cut = read_stream_request(raw)
        whole = pb.SettleStreamRequest.FromString(raw)
        assert _whole(msg, dict(cut)) == whole, what
        assert _whole(msg, dict(cut)).SerializeToString() == whole.SerializeToString(), what
    assert read_stream_request(cases["a column twice"])[0].packed.amount_i32 == other
    assert read_stream_request(cases["bills after packed"])[0].WhichOneof("payload") == "bills"
    # unknown fields are kept where they were: the columns still cut
    assert read_stream_request(cases["unknown fields"])[1]


def test_bytes_that_are_not_a_message_are_refused_as_upb_refuses_them() -> None:
    data = _msg(**FORMS["joined"]).SerializeToString()
    for bad in (data[:-7], data[:40], b"\xff" * 12, data[:3] + b"\x0f" + data[4:]):
        with pytest.raises(DecodeError):
            pb.SettleStreamRequest.FromString(bad)
        with pytest.raises(DecodeError):
            read_stream_request(bad)
    parse = _deserializer(pb.SettleStreamRequest, keep=True)
    assert isinstance(parse(data[:-7]), Undecodable)
    got = parse(data)
    assert isinstance(got, Received) and got.data is data and got.cut


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('packedwire') / 'onestop.db'}"
    with served(url, (YUBEI, CHAIN)) as (app, server, client):
        yield app, server, client


def test_the_joined_form_answers_as_the_repeated_form_over_grpc(env) -> None:
    _, _, c = env
    (a,), (b,) = (
        list(c.settlement.SettleStream(iter([_msg(**FORMS[f])]), timeout=60))
        for f in ("repeated", "joined")
    )
    assert b.n_items == a.n_items > 0
    assert b.SerializeToString() == a.SerializeToString()


@pytest.mark.parametrize("mode", [pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE])
def test_malformed_columns_cut_from_the_bytes_are_named(env, mode: pb.StreamMode) -> None:
    _, _, c = env
    cases = {
        "packed.amount_i32": lambda p: setattr(p, "amount_i32", p.amount_i32[:-2]),
        "packed.category_i8": lambda p: setattr(p, "category_i8", p.category_i8[:-1]),
        "packed.qty_e4_i32": lambda p: setattr(p, "qty_e4_le", b"\0" * 2 * len(p.qty_e4_i32)),
        "packed.selfpay_ratio_i16": lambda p: setattr(p, "selfpay_ratio_i16", b"\1"),
    }
    for want, spoil in cases.items():
        msg = _msg(mode, **FORMS["joined"])
        spoil(msg.packed)
        # TRIAL read through the views; SETTLE's request ids are a field a bill: read whole
        cut = read_stream_request(msg.SerializeToString())[1]
        assert bool(cut) == (mode == pb.STREAM_MODE_TRIAL)
        with pytest.raises(grpc.RpcError) as e:
            list(c.settlement.SettleStream(iter([msg]), timeout=60))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in bad_request(e.value)] == [want], want


def test_mutated_messages_read_as_upb_reads_them() -> None:
    """Bytes changed, cut or inserted at random in a joined message: either both readers
    refuse the bytes, or the cut message with its views written back is upb's whole parse."""
    import random

    base = _msg(**FORMS["joined"]).SerializeToString()
    rng = random.Random(5)
    cut_seen = refused = 0
    for _ in range(3000):
        b = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            i, op = rng.randrange(len(b)), rng.random()
            if op < 0.5:
                b[i] = rng.randrange(256)
            elif op < 0.75:
                del b[i : i + rng.randint(1, 8)]
            else:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        data = bytes(b)
        try:
            want = pb.SettleStreamRequest.FromString(data)
        except DecodeError:
            with pytest.raises(DecodeError):
                read_stream_request(data)
            refused += 1
            continue
        msg, cut = read_stream_request(data)
        whole = _whole(msg, dict(cut))
        assert whole == want and whole.SerializeToString() == want.SerializeToString()
        cut_seen += bool(cut)
    assert cut_seen > 100 and refused > 100  # both kinds were tried
