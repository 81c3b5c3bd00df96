"""Parallel Settle calls for one person serialize: the stored accounts are exactly those of a
serial replay through the reference (engine.batch.reference_batch) in commit order, on a
SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from adapters.grpc.convert import settlement_from_pb
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, YUBEI, chain_bill, served
from engine.accounts import Opening
from engine.batch import reference_batch
from engine.bill import Person, parse_bill_request
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)

N = 8


def replay(bills: list[dict], persons: dict[str, Person]) -> tuple[list, Opening]:
    """The reference, one bill at a time in the given order, accounts chained."""
    policies = PolicySet.of([parse_table(CHAIN, "chain")])
    opening = Opening()
    out = []
    for b in bills:
        req = parse_bill_request(b)
        res = reference_batch([req.with_person(persons[req.person_id])], policies, opening)
        out.append(res.settlements[0])
        opening = res.closing
    return out, opening


@pytest.mark.parametrize("rounds", [2])
def test_parallel_settles_equal_serial_replay_in_commit_order(db_url: str, rounds: int) -> None:  # noqa: F811
    persons = {p["id"]: Person.model_validate(p) for p in CHAIN_PERSONS}
    with served(db_url, (YUBEI, CHAIN), workers=N) as (_, _, c):
        bills = {}
        for r in range(rounds):
            batch = [chain_bill(r * N + i, "wang", seed=3) for i in range(N)]
            # the wife's bills share the household accounts (household alert layer)
            batch += [chain_bill(r * N + i, "wang-wife", seed=5) for i in range(N // 2)]
            bills.update({b["id"]: b for b in batch})
            with ThreadPoolExecutor(len(batch)) as pool:
                done = list(pool.map(lambda b: c.settle(b, f"par-{b['id']}"), batch))
            assert all(not d.replay for d in done)
        # commit order: the service stamps created_at under the household lock
        recs = sorted(
            c.list("wang", 2024) + c.list("wang-wife", 2024),
            key=lambda rec: rec.created_at,
        )
        assert len(recs) == len(bills)
        order = [rec.result.bill_id for rec in recs]
        ref, closing = replay([bills[i] for i in order], persons)
        for rec, s in zip(recs, ref, strict=True):
            assert settlement_from_pb(rec.result) == s, rec.result.bill_id
        for pid in ("wang", "wang-wife"):
            a = c.accounts(pid, 2024)
            assert settlement_accounts(a.person) == closing.person_year(pid, 2024).to_dict()
        a = c.accounts("wang", 2024)
        assert (
            settlement_accounts(a.household_accounts)
            == closing.household_year("h-wang", 2024).to_dict()
        )


def settlement_accounts(m) -> dict:
    from adapters.grpc.convert import year_accounts_from_pb

    return year_accounts_from_pb(m).to_dict()


def test_parallel_retries_of_one_request_pay_once(db_url: str) -> None:  # noqa: F811
    with served(db_url, (YUBEI, CHAIN), workers=N) as (_, _, c):
        bill = chain_bill(3, "wang", seed=11)
        with ThreadPoolExecutor(N) as pool:
            done = list(pool.map(lambda _: c.settle(bill, "same-request"), range(N)))
        assert len({d.settlement.settlement_id for d in done}) == 1
        assert sum(not d.replay for d in done) == 1
        assert len(c.list("wang", 2024)) == 1
        one, _ = replay([bill], {p["id"]: Person.model_validate(p) for p in CHAIN_PERSONS})
        assert settlement_from_pb(done[0].settlement.result) == one[0]
