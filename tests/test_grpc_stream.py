"""SettleStream: bills as messages and packed columns, TRIAL (writes nothing, chains a
person's bills like a batch) and SETTLE (durable, idempotent per request id)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from adapters.grpc import packedtrial
from adapters.grpc import stream as S
from adapters.grpc.client import Client, pack_bills
from adapters.grpc.convert import bill_request, bill_to_pb, settlement_from_pb
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.packedresults import INT_COLUMNS, columns
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, YUBEI, chain_bill, served
from adapters.store.sql import SqlStore
from engine.accounts import Opening
from engine.batch import reference_batch
from engine.bill import Person, parse_bill_request
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet
from engine.service.usecases import SettlementService

# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("grpc_stream")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('grpc-stream') / 'onestop.db'}"
    with served(url, (YUBEI, CHAIN)) as (app, server, client):
        yield app, server, client


def stream(c: Client, *reqs: pb.SettleStreamRequest) -> list[pb.SettleStreamResponse]:
    return list(c.settlement.SettleStream(iter(reqs), timeout=60))


def bills_msg(
    mode: pb.StreamMode, bills: list[dict], packed_results: bool = False, prefix: str = "s"
):
    return pb.SettleStreamRequest(
        mode=mode,
        bills=pb.BillList(
            bills=[
                pb.SettleRequest(request_id=f"{prefix}-{b['id']}", bill=bill_to_pb(b))
                for b in bills
            ]
        ),
        packed_results=packed_results,
    )


def reference(bills: list[dict]) -> list:
    persons = {p["id"]: Person.model_validate(p) for p in CHAIN_PERSONS}
    full = [parse_bill_request(b).with_person(persons[b["person_id"]]) for b in bills]
    return reference_batch(full, PolicySet.of([parse_table(CHAIN)]), Opening()).settlements


def snapshot(c: Client) -> tuple:
    return tuple(
        (c.accounts(p, 2024).SerializeToString(), len(c.list(p))) for p in ("wang", "wang-wife")
    )


BILLS = [chain_bill(i, p, seed=21) for i in range(6) for p in ("wang", "wang-wife")]


def test_trial_bills_chain_like_a_batch_and_write_nothing(env) -> None:
    _, _, c = env
    before = snapshot(c)
    (r,) = stream(c, bills_msg(pb.STREAM_MODE_TRIAL, BILLS))
    assert r.n_bills == len(BILLS) and r.n_items == sum(len(b["items"]) for b in BILLS)
    got = [settlement_from_pb(s) for s in r.results]
    assert got == reference(BILLS)
    assert snapshot(c) == before


def test_trial_packed_equals_trial_bills(env) -> None:
    _, _, c = env
    before = snapshot(c)
    (full,) = stream(c, bills_msg(pb.STREAM_MODE_TRIAL, BILLS))
    (packed,) = stream(
        c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(BILLS))
    )
    p = packed.packed
    assert packed.n_bills == len(BILLS) and list(p.bill_ids) == [b["id"] for b in BILLS]
    for k, s in enumerate(full.results):
        assert p.total[k] == s.buckets.total and p.in_scope[k] == s.buckets.in_scope
        assert p.window_pay[k] == s.window_pay and p.net_selfpay[k] == s.net_selfpay
        assert p.funds_total[k] == s.funds_total
        rows = range(p.layer_offsets[k], p.layer_offsets[k + 1])
        assert [p.layer_ids[j] for j in rows] == [la.layer_id for la in s.layers]
        assert [p.layer_pay[j] for j in rows] == [la.pay for la in s.layers]
        assert [p.layer_relief[j] for j in rows] == [la.relief for la in s.layers]
    assert snapshot(c) == before


def test_settle_mode_is_durable_and_idempotent(env) -> None:
    _, _, c = env
    bills = [chain_bill(20 + i, "wang-wife", seed=4) for i in range(3)]
    (r,) = stream(c, bills_msg(pb.STREAM_MODE_SETTLE, bills, prefix="st"))
    assert len(r.settlement_ids) == 3 and not any(r.replay)
    for b, sid in zip(bills, r.settlement_ids, strict=True):
        assert c.get(request_id=f"st-{b['id']}").settlement_id == sid
    before = snapshot(c)
    (again,) = stream(c, bills_msg(pb.STREAM_MODE_SETTLE, bills, packed_results=True, prefix="st"))
    assert list(again.settlement_ids) == list(r.settlement_ids) and all(again.replay)
    assert list(again.packed.window_pay) == [s.window_pay for s in r.results]
    assert snapshot(c) == before
    # packed, SETTLE mode: request ids per bill
    more = [chain_bill(30 + i, "wang-wife", seed=4) for i in range(2)]
    (p,) = stream(
        c,
        pb.SettleStreamRequest(
            mode=pb.STREAM_MODE_SETTLE,
            packed=pack_bills(more, [f"pk-{b['id']}" for b in more]),
            packed_results=True,
        ),
    )
    assert len(p.settlement_ids) == 2
    assert c.get(request_id=f"pk-{more[1]['id']}").settlement_id == p.settlement_ids[1]


@pytest.mark.parametrize("form", ["bills", "packed"])
def test_bad_bill_in_stream_names_bill_and_field(env, form: str) -> None:
    _, _, c = env
    bad = [dict(b) for b in BILLS[:3]]
    bad[2] = dict(bad[2], items=[dict(bad[2]["items"][0], amount=-5)])
    before = snapshot(c)
    if form == "bills":
        req = bills_msg(pb.STREAM_MODE_TRIAL, bad)
        want = "bills[2].items[0].amount"
    else:
        req = pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(bad))
        n_before = sum(len(b["items"]) for b in bad[:2])
        want = f"items[{n_before}].amount"
    with pytest.raises(grpc.RpcError) as e:
        stream(c, req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f == want for f, _ in bad_request(e.value)), bad_request(e.value)
    assert snapshot(c) == before


def test_a_bill_twice_in_a_packed_trial_is_named_in_plain_values(env) -> None:
    """The packed TRIAL's bill columns are numpy strings and codes: the reject still names the
    row, the bill id and the hospital as sent (not numpy's np.str_('...'))."""
    _, _, c = env
    bills = [dict(b) for b in BILLS[:3]]
    bills[2] = dict(bills[0])  # the same (hospital, bill id) twice
    with pytest.raises(grpc.RpcError) as e:
        stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(bills)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = bad_request(e.value)
    assert [f for f, _ in found] == ["bills[2].bill_id"], found
    why = found[0][1]
    assert f"same hospital {bills[0]['hospital']!r};" in why and "np." not in why, why


def test_unknown_persons_in_a_packed_trial_are_named_at_their_first_bill(env) -> None:
    """Each person of a packed TRIAL not in the registry is named once, at the first bill that
    names them (whatever the years of their bills), and nothing else fails the message."""
    _, _, c = env
    bills = [dict(b) for b in BILLS[:6]]
    for i, who, year in ((1, "nobody-a", "2023"), (3, "nobody-b", "2024"),
                         (4, "nobody-a", "2024")):  # fmt: skip
        day = year + bills[i]["discharge_date"][4:]
        bills[i] = dict(bills[i], person_id=who, admission_date=day, discharge_date=day)
    with pytest.raises(grpc.RpcError) as e:
        stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(bills)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = bad_request(e.value)
    assert [f for f, _ in found] == ["bills[1].person_id", "bills[3].person_id"], found
    assert all("is not in the person registry" in why for _, why in found), found


def test_stream_mode_is_required(env) -> None:
    _, _, c = env
    with pytest.raises(grpc.RpcError) as e:
        stream(c, pb.SettleStreamRequest(bills=pb.BillList()))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(e.value)[0][0] == "mode"


def test_many_messages_one_stream(env) -> None:
    _, _, c = env
    reqs = [
        pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(BILLS[k::3]))
        for k in range(3)
    ]
    out = stream(c, *reqs)
    assert [r.n_bills for r in out] == [len(BILLS[k::3]) for k in range(3)]


def test_packed_settle_with_a_malformed_bill_settles_none(env) -> None:
    _, _, c = env
    bills = [chain_bill(40 + i, "wang-wife", seed=8) for i in range(3)]
    bills[1]["items"][2]["amount"] = -1
    before = snapshot(c)
    req = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_SETTLE, packed=pack_bills(bills, [f"mal-{i}" for i in range(3)])
    )
    with pytest.raises(grpc.RpcError) as e:
        stream(c, req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(e.value)[0][0] == "bills[1].items[2].amount"
    assert snapshot(c) == before


# --------------------------------------------------------------------------- strict input

#: bad value -> (change to one JSON bill, field inside the bill). Forms: bills as messages,
#: packed columns (item fields of a packed TRIAL are items[<position in the message>]).
STRICT = {
    "unix timestamp date": (lambda b: b.update(admission_date="1552608000"), "admission_date"),
    "datetime date": (lambda b: b.update(discharge_date="2024-03-12T00:00:00"), "discharge_date"),
    "numpy-style year": (lambda b: b.update(admission_date="2024"), "admission_date"),
    "date after 2199": (lambda b: b.update(discharge_date="2200-01-01"), "discharge_date"),
    "admission before birth": (  # wang-wife was born 1961-07-09
        lambda b: b.update(admission_date="1961-07-08"),
        "admission_date",
    ),
    "NUL in bill id": (lambda b: b.update(id=b["id"] + "\x00"), "id"),
    "NUL in person id": (lambda b: b.update(person_id="wang-wife\x00"), "person_id"),
    "NUL in item code": (lambda b: b["items"][1].update(code="X\x00"), "items[1].code"),
    "NUL in item name": (lambda b: b["items"][1].update(name="x\x00"), "items[1].name"),
    "item code too long": (lambda b: b["items"][1].update(code="X" * 65), "items[1].code"),
}
MESSAGE_ONLY = {  # the packed form has no strings for categories
    "lower-case category": (lambda b: b["items"][1].update(category="b"), "items[1].category"),
    "padded category": (lambda b: b["items"][1].update(category=" B "), "items[1].category"),
    "alias category": (lambda b: b["items"][1].update(category="乙"), "items[1].category"),
    "number as category": (lambda b: b["items"][1].update(category="2"), "items[1].category"),
}
PACKED_ONLY = {
    "category 4": (lambda b: b["items"][1].update(category=4), "items[1].category"),
    "category 0": (lambda b: b["items"][1].update(category=0), "items[1].category"),
}


def _strict_cases() -> list[tuple[str, str, str]]:
    out = []
    for mode in ("TRIAL", "SETTLE"):
        out += [("bills", mode, c) for c in (*STRICT, *MESSAGE_ONLY)]
        out += [("packed", mode, c) for c in (*STRICT, *PACKED_ONLY)]
    return out


@pytest.mark.parametrize(("form", "mode", "case"), _strict_cases())
def test_strict_input_in_a_stream_names_the_field_and_writes_nothing(
    env, form: str, mode: str, case: str
) -> None:
    _, _, c = env
    change, field = {**STRICT, **MESSAGE_ONLY, **PACKED_ONLY}[case]
    bills = [chain_bill(60 + i, "wang-wife", seed=11) for i in range(2)]
    # the bad bill comes first when only settling finds it (SETTLE mode settles bill by bill)
    k = 0 if case == "admission before birth" and mode == "SETTLE" else 1
    change(bills[k])
    m = pb.STREAM_MODE_TRIAL if mode == "TRIAL" else pb.STREAM_MODE_SETTLE
    rids = [f"strict-{form}-{mode}-{case}-{i}" for i in range(2)]
    if form == "bills":
        req = bills_msg(m, bills, prefix=f"strict-{form}-{mode}-{case}")
    else:
        req = pb.SettleStreamRequest(mode=m, packed=pack_bills(bills, rids))
    if form == "packed" and mode == "TRIAL" and field.startswith("items["):
        j = int(field[len("items[") : field.index("]")])
        want = f"items[{len(bills[0]['items']) * k + j}]{field[field.index(']') + 1 :]}"
    else:
        want = f"bills[{k}].{field}"
    before = snapshot(c)
    with pytest.raises(grpc.RpcError) as e:
        stream(c, req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert want in [f for f, _ in bad_request(e.value)], bad_request(e.value)
    assert snapshot(c) == before
    assert not [r for r in c.list("wang-wife") if r.request_id.startswith("strict-")]


def test_packed_request_ids_are_checked_before_any_bill_is_settled(env) -> None:
    _, _, c = env
    bills = [chain_bill(70 + i, "wang-wife", seed=12) for i in range(2)]
    before = snapshot(c)
    req = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_SETTLE, packed=pack_bills(bills, ["rid-ok-70", "rid\x00-71"])
    )
    with pytest.raises(grpc.RpcError) as e:
        stream(c, req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(e.value)] == ["bills[1].request_id"]
    assert snapshot(c) == before


def test_packed_item_text_columns_must_match_the_items(env) -> None:
    _, _, c = env
    bills = [chain_bill(80, "wang-wife", seed=13)]
    p = pack_bills(bills, ["len-80"], item_text=False)
    p.item_codes.extend(["only-one"])
    with pytest.raises(grpc.RpcError) as e:
        stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_SETTLE, packed=p))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(e.value)] == ["packed.item_codes"]


def test_a_bill_is_stored_the_same_whichever_form_settled_it(tmp_path) -> None:
    """Settle (message) and SettleStream (packed) into two fresh stores: the stored bill JSON,
    its digest and the figures are equal (the packed form used to drop codes and names)."""
    from adapters.bootstrap import build
    from adapters.grpc import stream as st

    bill = chain_bill(5, "wang", n_items=7, seed=3)
    bill["items"][2]["name"] = "头孢 cefuroxime 0.75g"
    got = []
    for form in ("message", "packed"):
        app = build(f"sqlite:///{tmp_path / form / 'onestop.db'}", policies=None, registry=None)
        try:
            svc = app.service
            svc.put_policy(CHAIN, "chain.yaml")
            svc.import_registry([Person.model_validate(p) for p in CHAIN_PERSONS])
            if form == "message":
                svc.settle("rid-1", bill_request(bill_to_pb(bill)))
            else:
                msg = pb.SettleStreamRequest(
                    mode=pb.STREAM_MODE_SETTLE, packed=pack_bills([bill], ["rid-1"])
                )
                (sid,) = st.handle(svc, msg).settlement_ids
                assert svc.get(settlement_id=sid).request_id == "rid-1"
            rec = svc.get(request_id="rid-1")
            got.append((rec.bill, rec.bill_digest, rec.settlement))
        finally:
            app.close()
    (bill_m, digest_m, s_m), (bill_p, digest_p, s_p) = got
    assert [it["code"] for it in bill_p["items"]] == [it["code"] for it in bill["items"]]
    assert [it["name"] for it in bill_p["items"]] == [it["name"] for it in bill["items"]]
    assert bill_p == bill_m
    assert digest_p == digest_m
    assert s_p == s_m


def test_each_message_is_answered_before_the_next_is_sent(env) -> None:
    """A HIS that sends one message and waits for its answer (request/response over one
    stream) gets it: answers are not held back until more messages arrive (before: a single
    TRIAL message waited for a second one or the end of the stream)."""
    import queue

    _, _, c = env
    outbox: queue.Queue = queue.Queue()

    def requests():
        while (m := outbox.get()) is not None:
            yield m

    answers = c.settlement.SettleStream(requests(), timeout=60)
    try:
        for mode, bills in [
            (pb.STREAM_MODE_TRIAL, BILLS[:2]),
            (pb.STREAM_MODE_TRIAL, BILLS[2:4]),
            (pb.STREAM_MODE_SETTLE, BILLS[4:5]),
            (pb.STREAM_MODE_TRIAL, BILLS[5:6]),
        ]:
            outbox.put(bills_msg(mode, bills, prefix="lockstep"))
            got = next(answers)  # would block forever (then DEADLINE_EXCEEDED) before
            assert got.n_bills == len(bills)
    finally:
        outbox.put(None)
    assert list(answers) == []


def test_packed_trial_without_regions_over_several_regions_names_the_column(env) -> None:
    """Before: INTERNAL (a ValueError inside the columnar path)."""
    _, _, c = env
    p = pack_bills(BILLS[:2])
    del p.regions[:]
    with pytest.raises(grpc.RpcError) as e:
        stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=p))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(e.value)] == ["packed.regions"]


def test_an_empty_packed_trial_is_answered_with_no_bills(env) -> None:
    """Zero bills, no regions column, several regions in force (found by the fuzz test:
    INTERNAL before)."""
    _, _, c = env
    req = pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pb.PackedBills(item_offsets=[0]))
    [out] = stream(c, req)
    assert out.n_bills == 0 and out.n_items == 0


# --------------------------------------------------------------------------- bytes results


def as_lists(p: pb.PackedResults) -> dict:
    return {k: v.tolist() if hasattr(v, "tolist") else v for k, v in columns(p).items()}


def test_bytes_results_hold_the_same_figures_as_the_repeated_fields(env) -> None:
    """``packed_results_le``: the number columns as int64 bytes fields and each layer row's id
    and fund code as an int32 key, the repeated fields left empty; the same figures as the
    repeated form in TRIAL (packed columns, bills as messages, no bills) and SETTLE mode."""
    _, _, c = env
    trial = pb.STREAM_MODE_TRIAL
    for packed in (pack_bills(BILLS, raw=True, narrow=True), pb.PackedBills(item_offsets=[0])):
        (a,) = stream(c, pb.SettleStreamRequest(mode=trial, packed=packed))
        (b,) = stream(c, pb.SettleStreamRequest(mode=trial, packed=packed, packed_results_le=True))
        assert as_lists(b.packed) == as_lists(a.packed) and b.n_items == a.n_items
        assert not any(len(getattr(b.packed, n)) for n in (*INT_COLUMNS, "layer_ids", "fund_codes"))
    assert b.packed.layer_offsets_le == b"\0" * 8  # no bills: the one offset
    assert len(a.packed.layer_ids) == 0
    (a,) = stream(c, pb.SettleStreamRequest(mode=trial, packed=pack_bills(BILLS)))
    (b,) = stream(c, pb.SettleStreamRequest(mode=trial, packed=pack_bills(BILLS),
                                            packed_results_le=True))  # fmt: skip
    assert b.packed.total_le and b.packed.layer_key_i32 and not b.packed.total
    assert len(b.packed.layer_key_ids) == len(b.packed.layer_key_fund_codes) > 0
    assert as_lists(b.packed) == as_lists(a.packed) and len(a.packed.layer_ids) > len(BILLS)
    msg = bills_msg(trial, BILLS, packed_results=True)
    (x,) = stream(c, msg)
    msg.packed_results_le = True
    (y,) = stream(c, msg)
    assert y.packed.window_pay_le and as_lists(y.packed) == as_lists(x.packed) == as_lists(a.packed)
    bills = [chain_bill(40 + i, "wang-wife", seed=9) for i in range(2)]
    first = bills_msg(pb.STREAM_MODE_SETTLE, bills, packed_results=True, prefix="le")
    first.packed_results_le = True
    (s,) = stream(c, first)
    (again,) = stream(c, bills_msg(pb.STREAM_MODE_SETTLE, bills, packed_results=True, prefix="le"))
    assert all(again.replay) and not any(s.replay) and s.packed.net_selfpay_le
    assert as_lists(s.packed) == as_lists(again.packed)
    assert columns(s.packed)["settlement_ids"] == list(s.settlement_ids)


def test_malformed_bytes_results_are_named() -> None:
    cases = {
        "packed.total_le": pb.PackedResults(total_le=b"\0" * 7),
        "packed.layer_pay_le": pb.PackedResults(layer_pay=[1], layer_pay_le=b"\0" * 8),
        "packed.layer_key_i32": pb.PackedResults(
            layer_key_i32=b"\x01\0\0\0", layer_key_ids=["a"], layer_key_fund_codes=["f"]
        ),
    }
    for field, res in cases.items():
        with pytest.raises(ValueError, match=field):
            columns(res)


# --------------------------------------------------------------------------- raw bytes columns


def test_raw_columns_answer_byte_for_byte_as_the_repeated_fields(env) -> None:
    """The item columns as little-endian bytes fields (``amount_le``, ``category_i8``, ...):
    the same answer as the packed repeated fields, in TRIAL and SETTLE mode."""
    _, _, c = env
    packed, raw = pack_bills(BILLS), pack_bills(BILLS, raw=True)
    assert raw.amount_le and not raw.amount and not raw.item_offsets
    (a,) = stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=packed))
    (b,) = stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=raw))
    assert b.SerializeToString() == a.SerializeToString() and b.n_items > 0
    bills = [chain_bill(90 + i, "wang-wife", seed=14) for i in range(2)]
    rids = [f"raw-{b['id']}" for b in bills]
    (s,) = stream(
        c,
        pb.SettleStreamRequest(
            mode=pb.STREAM_MODE_SETTLE, packed=pack_bills(bills, rids, raw=True)
        ),
    )
    assert not any(s.replay)
    # the same bills in the repeated form are the same requests: replays of the raw ones
    (again,) = stream(
        c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_SETTLE, packed=pack_bills(bills, rids))
    )
    assert all(again.replay) and list(again.settlement_ids) == list(s.settlement_ids)


def test_narrow_columns_answer_byte_for_byte_as_the_repeated_fields(env) -> None:
    """int32 / int16 bytes fields (``amount_i32``, ``selfpay_ratio_i16``, ...) for columns whose
    values fit, int64 bytes for a column that does not: the same answer as the repeated form."""
    _, _, c = env
    big = [dict(b) for b in BILLS]
    big[0] = dict(big[0], items=[dict(big[0]["items"][0], amount=2**31 + 7)])
    for bills in (BILLS, big):
        packed, narrow = pack_bills(bills), pack_bills(bills, raw=True, narrow=True)
        assert narrow.qty_e4_i32 and narrow.item_offsets_i32 and not narrow.qty_e4_le
        assert bool(narrow.amount_i32) == (bills is BILLS) != bool(narrow.amount_le)
        (a,) = stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=packed))
        (b,) = stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=narrow))
        assert b.SerializeToString() == a.SerializeToString() and b.n_items > 0
    assert max(a.packed.total) > 2**31  # the int64 amount was read whole


@pytest.mark.parametrize("mode", [pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE])
def test_malformed_narrow_columns_are_named(env, mode: pb.StreamMode) -> None:
    _, _, c = env
    before = snapshot(c)
    cases = {
        "packed.amount_i32": lambda p: setattr(p, "amount_i32", p.amount_i32[:-2]),
        "packed.qty_e4_i32": lambda p: setattr(p, "qty_e4_le", b"\0" * 8 * len(p.qty_e4_i32)),
        "packed.item_offsets_i32": lambda p: p.item_offsets.extend([0, 1, 2]),
    }
    for want, spoil in cases.items():
        p = pack_bills(BILLS[:2], [f"bad-narrow-{i}" for i in range(2)], raw=True, narrow=True)
        spoil(p)
        with pytest.raises(grpc.RpcError) as e:
            stream(c, pb.SettleStreamRequest(mode=mode, packed=p))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in bad_request(e.value)] == [want]
    assert snapshot(c) == before


@pytest.mark.parametrize("mode", [pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE])
def test_malformed_raw_columns_are_named(env, mode: pb.StreamMode) -> None:
    _, _, c = env
    before = snapshot(c)
    cases = {
        "packed.amount_le": lambda p: setattr(p, "amount_le", p.amount_le[:-3]),
        "packed.category_i8": lambda p: p.category.extend([1] * len(p.category_i8)),
    }
    for want, spoil in cases.items():
        p = pack_bills(BILLS[:2], [f"bad-raw-{i}" for i in range(2)], raw=True)
        spoil(p)
        with pytest.raises(grpc.RpcError) as e:
            stream(c, pb.SettleStreamRequest(mode=mode, packed=p))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in bad_request(e.value)] == [want]
    # a bad value in a raw column is named as in the repeated form
    bad = [dict(b) for b in BILLS[:2]]
    bad[1] = dict(bad[1], items=[dict(bad[1]["items"][0], amount=-5, category=4)])
    p = pack_bills(bad, [f"bad-raw-v{i}" for i in range(2)], raw=True)
    with pytest.raises(grpc.RpcError) as e:
        stream(c, pb.SettleStreamRequest(mode=mode, packed=p))
    fields = {f for f, _ in bad_request(e.value)}
    n0 = len(bad[0]["items"])
    named = (
        {f"items[{n0}].amount", f"items[{n0}].category"}
        if mode == pb.STREAM_MODE_TRIAL
        else {"bills[1].items[0].amount", "bills[1].items[0].category"}
    )
    assert named <= fields, fields
    assert snapshot(c) == before


def test_a_packed_trial_in_any_bill_order_settles_as_in_settlement_order(env) -> None:
    """The packed trial settles in the message's order only when it already is the settlement
    order within each household (no item copy); a message out of order is sorted first: the
    order-sensitive series gives every bill the same figures either way."""
    _, _, c = env
    in_order = sorted(BILLS, key=lambda b: (b["discharge_date"], b["admission_date"], b["id"]))
    figures = []
    # the repeated form, and the narrow bytes form (columns read in place, copied once)
    forms: list[dict[str, bool]] = [{}, {"raw": True, "narrow": True}]
    for bills, form in [(b, f) for b in (in_order, in_order[::-1], BILLS) for f in forms]:
        (r,) = stream(
            c,
            pb.SettleStreamRequest(
                mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(bills, None, **form)
            ),
        )
        p = r.packed
        figures.append(
            {
                bid: (
                    p.window_pay[k],
                    p.net_selfpay[k],
                    tuple(p.layer_pay[p.layer_offsets[k] : p.layer_offsets[k + 1]]),
                )
                for k, bid in enumerate(p.bill_ids)
            }
        )
    # the same message as bills (engine.batch, which sorts on its own), from the same accounts
    (full,) = stream(c, bills_msg(pb.STREAM_MODE_TRIAL, BILLS))
    want = {
        s.bill_id: (s.window_pay, s.net_selfpay, tuple(la.pay for la in s.layers))
        for s in full.results
    }
    assert len(set(want.values())) > 1  # the figures differ from bill to bill
    assert figures == [want] * 6


# --------------------------------------------------------------------------- joined strings


def test_joined_strings_answer_byte_for_byte_as_the_repeated_fields(env) -> None:
    """The per-bill strings joined (``bill_ids_joined`` + offsets, persons, hospitals and
    regions as indexes into tables, dates 10 bytes each): the same answer as the repeated
    form in TRIAL mode, and the same requests in SETTLE mode (replays of each other)."""
    _, _, c = env
    bills = [dict(b) for b in BILLS]
    bills[1] = dict(bills[1], id="账单-1")  # not ASCII: offsets are bytes, not characters
    packed, joined = pack_bills(bills), pack_bills(bills, raw=True, narrow=True, joined=True)
    assert joined.bill_ids_joined and joined.person_index_i32 and joined.hospital_index_i32
    assert (
        joined.region_index_i32 and joined.admission_dates_joined and joined.discharge_dates_joined
    )
    assert not (joined.bill_ids or joined.person_ids or joined.hospitals or joined.regions)
    assert not (joined.admission_dates or joined.discharge_dates)
    assert list(joined.person_table) == ["wang", "wang-wife"]
    (a,) = stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=packed))
    (b,) = stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=joined))
    assert b.SerializeToString() == a.SerializeToString() and b.n_bills == len(bills)
    assert b.packed.bill_ids[1] == "账单-1"
    some = [chain_bill(95 + i, "wang-wife", seed=15) for i in range(2)]
    rids = [f"joined-{b['id']}" for b in some]
    (s,) = stream(
        c,
        pb.SettleStreamRequest(
            mode=pb.STREAM_MODE_SETTLE, packed=pack_bills(some, rids, joined=True)
        ),
    )
    assert not any(s.replay)
    (again,) = stream(
        c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_SETTLE, packed=pack_bills(some, rids))
    )
    assert all(again.replay) and list(again.settlement_ids) == list(s.settlement_ids)


def _i32(*v: int) -> bytes:
    import numpy as np

    return np.array(v, dtype="<i4").tobytes()


@pytest.mark.parametrize("mode", [pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE])
def test_malformed_joined_strings_are_named(env, mode: pb.StreamMode) -> None:
    _, _, c = env
    before = snapshot(c)
    cases = {
        "packed.bill_id_offsets_i32": lambda p: setattr(
            p, "bill_id_offsets_i32", p.bill_id_offsets_i32[:-4] + _i32(len(p.bill_ids_joined) + 1)
        ),
        "packed.bill_ids_joined": lambda p: p.bill_ids.extend(["x", "y"]),
        "packed.person_index_i32[1]": lambda p: setattr(p, "person_index_i32", _i32(0, 7)),
        "packed.person_table": lambda p: p.person_table.append(p.person_table[0]),
        "packed.hospital_index_i32": lambda p: setattr(p, "hospital_index_i32", _i32(0)),
        "packed.region_index_i32": lambda p: p.regions.extend(["450100", "450100"]),
        "packed.admission_dates_joined": lambda p: setattr(
            p, "admission_dates_joined", p.admission_dates_joined[:-1]
        ),
        "packed.discharge_dates_joined": lambda p: setattr(
            p, "discharge_dates_joined", p.discharge_dates_joined[:10]
        ),
        "bills[1].admission_date": lambda p: setattr(
            p, "admission_dates_joined", p.admission_dates_joined[:10] + b"2024-02-30"
        ),
        "bills[0].id": lambda p: setattr(p, "bill_ids_joined", b"b\x01" + p.bill_ids_joined[2:]),
    }
    for want, spoil in cases.items():
        p = pack_bills(BILLS[:2], [f"bad-joined-{i}" for i in range(2)], joined=True)
        spoil(p)
        with pytest.raises(grpc.RpcError) as e:
            stream(c, pb.SettleStreamRequest(mode=mode, packed=p))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, want
        assert want in [f for f, _ in bad_request(e.value)], (want, bad_request(e.value))
    assert snapshot(c) == before


def test_a_bad_person_in_the_table_is_named_at_each_bill(env) -> None:
    """A person id refused by the id rule, sent once in ``person_table``, is named at each bill
    that refers to it, as the repeated form names it."""
    _, _, c = env
    bills = [dict(b) for b in BILLS[:4]]
    bills[1] = dict(bills[1], person_id="bad\x01id")
    bills[3] = dict(bills[3], person_id="bad\x01id")
    found = []
    for p in (pack_bills(bills), pack_bills(bills, joined=True)):
        with pytest.raises(grpc.RpcError) as e:
            stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=p))
        found.append(bad_request(e.value))
    assert found[1] == found[0]
    assert [f for f, _ in found[1]] == ["bills[1].person_id", "bills[3].person_id"]


def test_a_packed_trial_reads_the_accounts_a_settle_left(env) -> None:
    """A packed trial's person-years are read as trials (kept on SQLite while nothing else
    commits, ``trialreads``): the same message after a settle of the same person-year is
    settled from the accounts that settle left, not from what the first trial read."""
    app, _, c = env
    trial = [chain_bill(60 + i, "wang", seed=13) for i in range(3)]
    persons = {p["id"]: Person.model_validate(p) for p in CHAIN_PERSONS}
    policies = PolicySet.of([parse_table(CHAIN)])

    def expected() -> list:  # the reference from the accounts stored now (a pooled read)
        person, pa, ha = app.service.accounts("wang", 2024)
        opening = Opening({("wang", 2024): pa}, {(person.household, 2024): ha})
        full = [parse_bill_request(b).with_person(persons["wang"]) for b in trial]
        return reference_batch(full, policies, opening).settlements

    def packed_trial() -> list[tuple[int, int, int]]:
        msg = pb.SettleStreamRequest(
            mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(trial, raw=True, narrow=True)
        )
        (r,) = stream(c, msg, msg)[-1:]  # the second of two alike: its reads were kept
        p = r.packed
        return list(zip(p.window_pay, p.net_selfpay, p.funds_total, strict=True))

    def figures(settlements: list) -> list[tuple[int, int, int]]:
        return [(s.window_pay, s.net_selfpay, s.funds_total) for s in settlements]

    first = packed_trial()
    assert first == figures(expected())
    x = chain_bill(70, "wang", seed=13)
    (done,) = stream(c, bills_msg(pb.STREAM_MODE_SETTLE, [x], prefix="kept"))
    assert len(done.settlement_ids) == 1
    again = packed_trial()
    assert again == figures(expected()) and again != first
    # ... and one by another connection (as another process: a second store on the file)
    other = SqlStore(app.url)
    try:
        n = iter(f"elsewhere-{i}" for i in range(9))
        SettlementService(other.uow, new_id=n.__next__).settle(
            "kept-elsewhere", parse_bill_request(chain_bill(71, "wang", seed=13))
        )
    finally:
        other.dispose()
    third = packed_trial()
    assert third == figures(expected()) and third != again


def test_each_pool_thread_keeps_its_own_last_columns(env, monkeypatch) -> None:
    """The server's pool threads take a stream's messages in turn, and each thread's kept reads
    return its own objects: the persons' and opening columns are kept per thread, so messages
    alternating between two threads build them once on each, not on every message, and every
    answer is the same."""
    app, _, _ = env
    bills = [chain_bill(80 + i, ("wang", "wang-wife")[i % 2], seed=17) for i in range(6)]
    req = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(bills, raw=True, narrow=True)
    )
    built = []
    person_cols = packedtrial._person_cols

    def counted(p: Any) -> Any:
        built.append(1)
        return person_cols(p)

    monkeypatch.setattr(packedtrial, "_person_cols", counted)
    barrier = threading.Barrier(2)

    def two(_: int) -> list[bytes]:  # each thread: two messages in turn with the other's
        out = []
        for _ in range(2):
            barrier.wait()
            out.append(S.handle(app.service, req).SerializeToString())
        return out

    with ThreadPoolExecutor(2) as ex:
        answers = [a for got in ex.map(two, range(2)) for a in got]
    assert len(set(answers)) == 1
    assert len(built) <= 2  # once on each thread (or none: columns a thread kept before)
