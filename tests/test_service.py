"""Use cases over the in-memory store: the parts not reached through gRPC or SQL tests."""

from __future__ import annotations

import pytest

from adapters.grpc.testing import JIANG, YUBEI, YUBEI_BILL
from adapters.store.memory import MemoryStore, MemoryUnitOfWork
from engine.bill import Person, parse_bill_request
from engine.errors import Conflict, InputError
from engine.service.usecases import SettlementService


def service(store: MemoryStore) -> SettlementService:
    svc = SettlementService(store.uow)
    svc.POLICY_RECHECK = 0.0
    return svc


def test_a_table_put_through_one_process_reaches_the_others() -> None:
    store = MemoryStore()
    a, b = service(store), service(store)
    a.put_policy(YUBEI, "yubei.yaml")
    a.import_registry([Person.model_validate(JIANG)])
    req = parse_bill_request(YUBEI_BILL)
    assert b.pre_settle(req).window_pay == 562520
    # a new version (same region and start) supersedes the old one in both services
    a.put_policy(YUBEI.replace("ratio: 7000}]", "ratio: 7500}]", 1), "yubei-2.yaml")
    assert b.pre_settle(req).window_pay == a.pre_settle(req).window_pay < 562520


def test_overlapping_table_is_refused_and_stores_nothing() -> None:
    store = MemoryStore()
    svc = service(store)
    svc.put_policy(YUBEI, "yubei.yaml")
    with pytest.raises(Exception, match="overlaps"):
        svc.put_policy(YUBEI.replace("effective_from: 2023-01-01", "effective_from: 2023-06-01"))
    assert len(svc.policy_versions()) == 1


class _RaceUoW(MemoryUnitOfWork):
    """A unit of work whose commit loses a race: a twin with the same request id (another
    household's window, same id) commits just before it."""

    twin: dict | None = None

    def commit(self) -> None:
        if self.staged_s and _RaceUoW.twin is not None:
            twin, _RaceUoW.twin = _RaceUoW.twin, None
            other = SettlementService(self.s.uow)
            other.settle(twin["request_id"], twin["bill"])
        super().commit()


def test_a_request_id_race_across_households_is_a_conflict_and_writes_nothing() -> None:
    """Two households' windows send one request id at once (the household locks do not
    serialize them): the loser's commit meets the winner's row, and the loser gets a Conflict
    naming the request id; only the winner's settlement and accounts are stored."""
    store = MemoryStore()
    svc = SettlementService(lambda: _RaceUoW(store))
    svc.put_policy(YUBEI, "yubei.yaml")
    wang = {**JIANG, "id": "wang", "household": "h-wang"}
    svc.import_registry([Person.model_validate(JIANG), Person.model_validate(wang)])
    req = parse_bill_request(YUBEI_BILL)
    twin = parse_bill_request({**YUBEI_BILL, "id": "yubei-wang", "person_id": "wang"})
    _RaceUoW.twin = {"request_id": "r-1", "bill": twin}
    with pytest.raises(Conflict, match="'r-1' was already used for bill 'yubei-wang'"):
        svc.settle("r-1", req)
    assert [r.settlement.person_id for r in store.settlements.values()] == ["wang"]
    assert ("jiang", 2023) not in store.person_acc
    # the winner's retry replays
    rec, replay = svc.settle("r-1", twin)
    assert replay and rec.settlement.person_id == "wang"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_reversal_request_id_names_one_reversal(kind: str, tmp_path) -> None:
    """Reversing with the reversal request id of another settlement's reversal is a Conflict
    that changes nothing; the same id again for the same settlement replays."""
    from adapters.store.sql import SqlStore

    store = MemoryStore() if kind == "memory" else SqlStore(f"sqlite:///{tmp_path}/s.db")
    svc = SettlementService(store.uow)
    svc.put_policy(YUBEI, "yubei.yaml")
    svc.import_registry([Person.model_validate(JIANG)])
    a, _ = svc.settle("r-a", parse_bill_request(YUBEI_BILL))
    b, _ = svc.settle("r-b", parse_bill_request({**YUBEI_BILL, "id": "yubei-2"}))
    svc.reverse(settlement_id=a.settlement_id, reversal_request_id="x-1")
    with pytest.raises(Conflict, match="'x-1' was already used to reverse another settlement"):
        svc.reverse(settlement_id=b.settlement_id, reversal_request_id="x-1")
    assert svc.get(b.settlement_id).status == "settled"
    assert svc.reversed_by("x-1") and not svc.reversed_by("x-2")
    done, replay = svc.reverse(settlement_id=a.settlement_id, reversal_request_id="x-1")
    assert replay and done.status == "reversed"


def test_request_id_and_unknown_person_are_input_errors() -> None:
    store = MemoryStore()
    svc = service(store)
    svc.put_policy(YUBEI, "yubei.yaml")
    req = parse_bill_request(YUBEI_BILL)
    with pytest.raises(InputError, match="request_id"):
        svc.settle("", req)
    with pytest.raises(InputError, match="person_id: 'jiang' is not in the person registry"):
        svc.settle("r", req)
    assert store.settlements == {}


def test_a_tag_no_table_declares_is_refused_at_import() -> None:
    """A typo in a tag was accepted at import and refused only at the window at discharge:
    now the import is refused, naming persons[i].tags[j], the value and the declared tags."""
    store = MemoryStore()
    svc = service(store)
    svc.put_policy(YUBEI, "yubei.yaml")
    odd = {**JIANG, "id": "wang", "tags": [JIANG["tags"][0], "low_incom_edge"]}
    with pytest.raises(InputError) as e:
        svc.import_registry([Person.model_validate(JIANG), Person.model_validate(odd)])
    (p,) = e.value.problems
    assert (p.field, p.value) == ("persons[1].tags[1]", "low_incom_edge")
    assert "is not a tag declared by the policy tables in force (" in p.rule
    assert "low_income_edge" in p.rule
    assert store.persons == {}
    assert svc.import_registry([Person.model_validate(JIANG)]) == 1


def test_the_same_table_text_again_is_the_same_version_and_dry_run_stores_nothing() -> None:
    store = MemoryStore()
    svc = service(store)
    v1 = svc.put_policy(YUBEI, "yubei.yaml")
    again = svc.put_policy(YUBEI, "yubei-again.yaml")
    assert again.unchanged and again.version == v1.version and again.source_name == "yubei.yaml"
    assert len(svc.policy_versions()) == 1 and not v1.unchanged
    other = YUBEI.replace("ratio: 7000}]", "ratio: 7500}]", 1)
    dry = svc.put_policy(other, "yubei-2.yaml", dry_run=True)
    assert dry.version == 0 and not dry.unchanged and len(svc.policy_versions()) == 1
    with pytest.raises(Exception, match="overlaps"):  # a dry run validates as a put does
        svc.put_policy(other.replace("effective_from: 2023-01-01", "effective_from: 2023-06-01"),
                       dry_run=True)  # fmt: skip
    v2 = svc.put_policy(other, "yubei-2.yaml")
    assert v2.version == 2 and not v2.unchanged
    # the first text again is not the version in force: it is stored as a new version
    assert svc.put_policy(YUBEI, "yubei.yaml").version == 3


def test_policy_changes_name_layers_and_parameters() -> None:
    from engine.policy.diff import changes, unified

    other = YUBEI.replace("ratio: 7000}]", "ratio: 7500}]", 1)
    got = changes(YUBEI, other)
    assert len(got) == 1 and got[0].startswith("layer ") and got[0].endswith(": 7000 -> 7500")
    assert "-" in unified(YUBEI, other) and unified(YUBEI, YUBEI) == ""


def test_accounts_of_many_person_years_read_as_accounts_does() -> None:
    """``accounts_many`` (the stream's trials): each known (person, year) as ``accounts``
    gives it, an unknown person None, after a settlement moved the accounts."""
    svc = service(MemoryStore())
    svc.put_policy(YUBEI, "yubei.yaml")
    svc.import_registry([Person.model_validate(JIANG)])
    rec, _ = svc.settle("r1", parse_bill_request(YUBEI_BILL))
    pid, year = JIANG["id"], rec.settlement.year
    keys = [(pid, year), ("nobody", year), (pid, year - 1), (pid, year)]
    got = svc.accounts_many(keys)
    assert list(got) == keys[:3]
    assert got[(pid, year)] == svc.accounts(pid, year)
    now = got[(pid, year)]
    assert now is not None and now[1].layers  # the settlement moved them
    assert got[(pid, year - 1)] == svc.accounts(pid, year - 1)
    assert got[("nobody", year)] is None
    with pytest.raises(InputError, match="person_id"):
        svc.accounts_many([(pid, year), ("bad\x00id", year)])
