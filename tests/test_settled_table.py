"""Re-reading a stored settlement's allocation uses the policy table it was settled with (its
recorded policy version, migration 0009), not the table in force now: GetSettlement(allocate)
over gRPC, the FHIR $submit replay and the service, on the memory store and on SQLite."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from adapters.grpc.testing import YUBEI, YUBEI_BILL, served
from adapters.http.money import dumps
from adapters.http.serve import running
from tests.test_fhir import claim, r4

#: the same table (region, start, layer ids) with tilted_assistance covering the
#: out-of-catalogue bucket instead of in-scope: its 937.80 of the stored settlement falls on
#: item C1 instead of A1 when read with this table
YUBEI_V2 = YUBEI.replace(
    '    fund_code: "610200"\n    kind: reimburse\n',
    '    fund_code: "610200"\n    kind: reimburse\n    covers: [out_of_catalogue]\n',
)


def per_item(alloc) -> list[dict[str, int]]:
    return [{s.layer_id: s.amount for s in it.shares if s.amount} for it in alloc.items]


def fhir_benefits(cr: dict) -> list[dict[str, Decimal]]:
    out = []
    for it in cr["item"]:
        out.append({a["reason"]["coding"][0]["code"]: a["amount"]["value"]
                    for a in it["adjudication"]
                    if a["category"]["coding"][0]["code"] == "benefit"})  # fmt: skip
    return out


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_reread_uses_the_table_settled_with(kind: str, tmp_path: Path) -> None:
    assert YUBEI_V2 != YUBEI
    url = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'onestop.db'}"
    with (
        served(url, (YUBEI,)) as (app, _srv, c),
        running(app) as http,
        httpx.Client(base_url=http.url, timeout=30) as h,
    ):
        svc = app.service
        first = c.settle(YUBEI_BILL, "v-1", allocate=True).settlement
        original = [{s.layer_id: s.amount for s in it.shares if s.amount}
                    for it in first.result.items]  # fmt: skip
        rec = svc.get(request_id="v-1")
        assert rec.policy_version == max(v.version for v in svc.policy_versions())
        fj = {"content-type": "application/fhir+json"}
        body = dumps(claim("fhir-v-1", "yubei-fhir-v"))
        cr1 = h.post("/fhir/Claim/$submit", content=body, headers=fj).json(parse_float=Decimal)

        c.put_policy(YUBEI_V2, "yubei-v2.yaml")  # replaces the table: same region and start
        now = svc.policies().table_for("500112", rec.settlement.discharge_date)
        assert now.layers[2].covers == ("out_of_catalogue",)
        assert [x.id for x in now.layers] == [r.layer_id for r in rec.settlement.layers]

        # gRPC GetSettlement(allocate) and the service: the original allocation
        got = c.get(request_id="v-1", allocate=True)
        assert [{s.layer_id: s.amount for s in it.shares if s.amount}
                for it in got.result.items] == original  # fmt: skip
        assert per_item(svc.allocation_of(svc.get(request_id="v-1"))) == original
        # FHIR: the replay of the same Claim answers the original per-item benefits
        cr2 = h.post("/fhir/Claim/$submit", content=body, headers=fj).json(parse_float=Decimal)
        r4(cr2)
        assert fhir_benefits(cr2) == fhir_benefits(cr1)
        # the slip renders with that table too
        assert h.get(f"/slip/{rec.settlement_id}").status_code == 200

        # a settlement stored before versions were recorded (NULL) is read with the table in
        # force (today's behaviour): here the same layer ids, so no refusal, and another
        # allocation; what the recorded version prevents
        old = replace(svc.get(request_id="v-1"), policy_version=None)
        assert per_item(svc.allocation_of(old))[1] == {"tilted_assistance": 93780}
        assert original[1] == {}
        # and a settlement under the new table records the new version
        bill2 = {**YUBEI_BILL, "id": "yubei-v-2"}
        c.settle(bill2, "v-2")
        new, old_version = svc.get(request_id="v-2").policy_version, rec.policy_version
        assert new is not None and old_version is not None and new > old_version
