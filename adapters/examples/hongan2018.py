"""The seed's Hong'an year as a runnable example: the Backbone (顶梁柱) insurance in Hong'an
county, 2018 (policy-sources.md §8: RMB 1.78 million for 65,940 people; 336 claims paid RMB
1.16 million by 2019-08-28).

``generate`` writes, deterministically from a seed, a synthetic registry of the insured people
and a year of discharges as the batch input files (``onestop batch`` reads them); ``run_batch``
settles them with the Hong'an table and its funds.yaml and reads the Backbone figures back.

Nothing here is real data. The registry, the admission rates and the bill sizes are stated
assumptions (``ASSUMPTIONS``, also written to ``assumptions.json`` beside the files); the
settlement rules are the policy table's (policies/hongan/2018.yaml).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
POLICIES = ROOT / "policies" / "hongan"
REGION = "421122"
YEAR = 2018
PEOPLE = 65_940  # insured by the Backbone in Hong'an, 2018 (CFPA artid 205)
MONEY_IN = 178_000_000  # fen: RMB 1.78 million (CFPA artid 205)
BACKBONE = "backbone"
BACKBONE_FUND = "370200"

#: what the seed reports for the 2018 cohort (CFPA, by 2019-08-28)
SEED = {
    "insured": 65_940,
    "money_in": 178_000_000,
    "claims": 336,
    "paid": 116_000_000,
    "largest_single_payout": 1_600_000,  # one beneficiary received 16,000 yuan
    "source": "http://en.cfpa.org.cn/index.php?file=article&cmd=show&artid=205",
}

# Hong'an's townships (红安县: 10 镇 1 乡). Village names are synthetic (村01, 村02, ...).
TOWNSHIPS = (
    "城关镇", "七里坪镇", "华家河镇", "二程镇", "上新集镇", "高桥镇", "觅儿寺镇",
    "八里湾镇", "太平桥镇", "永佳河镇", "杏花乡",
)  # fmt: skip
LEVELS = ("township", "county", "city", "province", "out_of_province")

ASSUMPTIONS: dict[str, str] = {
    "registry": (
        "ASSUMPTION: the 65,940 insured are the Backbone's eligible population (registered poor "
        "aged 18-60, policy-sources.md §8.1), so every person is tagged registered_poor (the "
        "share of registered poor among the insured is 100% by the Backbone's eligibility); ages "
        "at 2018-01-01: 18-29 20%, 30-44 35%, 45-60 45% (working-age poor skew older: the young "
        "migrate); 15% also 低保 (subsistence), 1% 特困 (extreme poverty) - not sourced"
    ),
    "households": (
        "ASSUMPTION: 1, 2 or 3 insured adults per household with probability 35/50/15% (a poor "
        "household of about 3 people, 1.8 of them aged 18-60) - not sourced"
    ),
    "places": (
        "ASSUMPTION: the 11 township names are Hong'an's (10 镇 1 乡); village names are "
        "synthetic (村01..村30); people are spread evenly"
    ),
    "admissions": (
        "ASSUMPTION: inpatient admissions in 2018 per insured person are Poisson with mean 0.06 "
        "(18-29), 0.09 (30-44), 0.16 (45-60): about 0.11 on average. policy-sources.md §11 "
        "gives 16.31万 poor admissions in Hong'an from 2015-12 to 2021 (about 0.3 a year per "
        "registered-poor person of every age, the old and the chronically ill included); the "
        "working-age rate is taken at about a third of that"
    ),
    "levels": (
        "ASSUMPTION: hospital level township 40%, county 50%, city 5%, province 4%, outside "
        "Hubei 1% (about 90% in the county: policy-sources.md §1.1 gives 94.5% of poor patients "
        "treated in their county in 2019)"
    ),
    "bill_size": (
        "ASSUMPTION: the bill total is log-normal with median 2,500 / 6,000 / 15,000 / 30,000 / "
        "40,000 yuan by level and sigma 0.8 (Hong'an's average poor inpatient self-pay was "
        "2,704.58 yuan per stay before the 2016 policies, policy-sources.md §11, i.e. bills of "
        "several thousand yuan); length of stay 3 + Poisson(4 + 2 x level index) days"
    ),
    "categories": (
        "ASSUMPTION: 目录外 (category C) share Beta(2, 23) of the bill (mean 8%); 乙类 (B) 25% of "
        "the rest, 甲类 (A) the rest, split over care, drugs and a bed fee (priced 50 yuan a day, "
        "paid up to 40: over-limit); at city level and above 5% of bills (2% at county level) add "
        "a targeted or imported drug out of catalogue, uniform 10,000-40,000 yuan - not sourced"
    ),
}


@dataclass(frozen=True)
class Files:
    bills: Path
    items: Path
    persons: Path
    registry: Path
    assumptions: Path


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def generate(out: str | Path, seed: int = YEAR, people: int = PEOPLE) -> Files:
    """Write persons.csv, bills.csv, items.csv (batch inputs), registry.json (the same persons
    for the service, with township and village) and assumptions.json under ``out``. The same
    ``seed`` and ``people`` give byte-identical files."""
    if people < 1:
        raise ValueError("people is at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    jan1 = date(YEAR, 1, 1)

    # ---------------------------------------------------------------- registry
    sizes: list[int] = []
    left = people
    while left > 0:
        k = int(rng.choice([1, 2, 3], p=[0.35, 0.50, 0.15]))
        k = min(k, left)
        sizes.append(k)
        left -= k
    band = rng.choice(3, size=people, p=[0.20, 0.35, 0.45])
    lo = np.array([18, 30, 45])[band]
    hi = np.array([29, 44, 60])[band]
    age = rng.integers(lo, hi + 1)
    # birth date: age full years on 2018-01-01 -> born between (2018-age-1)-01-02 and (2018-age)-01-01
    offset = rng.integers(0, 365, size=people)
    extra = rng.random(people)
    sub = extra < 0.15
    extreme = extra < 0.01
    town = rng.integers(0, len(TOWNSHIPS), size=len(sizes))
    village = rng.integers(1, 31, size=len(sizes))
    persons: list[dict[str, Any]] = []
    i = 0
    for h, k in enumerate(sizes):
        hid = f"HAH{h + 1:06d}"
        for _ in range(k):
            born = date(YEAR - int(age[i]), 1, 1) - timedelta(days=int(offset[i]))
            tags: list[dict[str, str]] = [{"tag": "registered_poor", "valid_from": "2014-10-01"}]
            if sub[i]:
                tags.append({"tag": "subsistence", "valid_from": "2016-01-01"})
            if extreme[i]:
                tags.append({"tag": "extreme_poverty", "valid_from": "2016-01-01"})
            persons.append({
                "id": f"HA{i + 1:06d}", "birth_date": born.isoformat(), "household": hid,
                "tags": tags, "region": REGION, "township": TOWNSHIPS[int(town[h])],
                "village": f"{TOWNSHIPS[int(town[h])]}村{int(village[h]):02d}",
            })  # fmt: skip
            i += 1

    # ---------------------------------------------------------------- discharges
    rate = np.array([0.06, 0.09, 0.16])[band]
    n_adm = rng.poisson(rate)
    median = {"township": 250000, "county": 600000, "city": 1500000, "province": 3000000,
              "out_of_province": 4000000}  # fmt: skip
    bills: list[list[Any]] = []
    items: list[list[Any]] = []
    seq = 0
    for pi, n in enumerate(n_adm):
        p = persons[pi]
        for _ in range(int(n)):
            seq += 1
            lv = int(rng.choice(5, p=[0.40, 0.50, 0.05, 0.04, 0.01]))
            level = LEVELS[lv]
            stay = 3 + int(rng.poisson(4 + 2 * lv))
            adm = jan1 + timedelta(days=int(rng.integers(0, 365 - stay)))
            dis = adm + timedelta(days=stay)
            total = int(median[level] * float(np.exp(rng.normal(0.0, 0.8))))
            total = max(total, 20000)
            ooc = int(total * float(rng.beta(2, 23)))
            bed_days = stay
            bed = 5000 * bed_days
            rest = max(total - ooc - bed, 0)
            b_amt = rest // 4
            a_drugs = rest // 5
            care = rest - b_amt - a_drugs
            hosp = {
                "township": f"H4211221{int(town[_household_index(p)]):02d}",
                "county": "H421122001", "city": "H421100001", "province": "H420000001",
                "out_of_province": "H000000001",
            }[level]  # fmt: skip
            bid = f"HA18-{seq:06d}"
            bills.append([bid, hosp, p["id"], level, adm.isoformat(), dis.isoformat(),
                          p["household"], REGION])  # fmt: skip
            rows: list[list[Any]] = [
                ["TRT", "住院诊疗及护理 inpatient care", "A", 10000, care, care, ""],
                ["DRA", "甲类药品 category A drugs", "A", 10000, a_drugs, a_drugs, ""],
                ["DRB", "乙类药品 category B drugs", "B", 10000, b_amt, b_amt, ""],
                ["BED", "床位费 bed fee (50/day, paid to 40)", "A", bed_days * 10000, 5000, bed,
                 4000],
                ["ZF", "目录外药品耗材 out-of-catalogue drugs and materials", "C", 10000, ooc, ooc,
                 ""],
            ]  # fmt: skip
            big = {"city": 0.05, "province": 0.05, "out_of_province": 0.05, "county": 0.02}
            if rng.random() < big.get(level, 0.0):
                drug = int(rng.integers(1000000, 4000001))
                rows.append(["ZFT", "靶向/进口药 targeted or imported drug (out of catalogue)",
                             "C", 10000, drug, drug, ""])  # fmt: skip
            for code, name, cat, qty, price, amount, cap in rows:
                if amount > 0:
                    items.append([bid, code, name, cat, qty, price, amount, cap])

    # batch order: household, discharge, admission, bill id (code-point order)
    order = sorted(range(len(bills)), key=lambda k: (bills[k][6], bills[k][5], bills[k][4],
                                                     bills[k][0]))  # fmt: skip
    pos = {bills[k][0]: n for n, k in enumerate(order)}
    bills = [bills[k] for k in order]
    items.sort(key=lambda r: pos[r[0]])  # stable: item order within a bill is kept

    files = Files(out / "bills.csv", out / "items.csv", out / "persons.csv",
                  out / "registry.json", out / "assumptions.json")  # fmt: skip
    _csv(files.bills, ["bill_id", "hospital", "person_id", "hospital_level", "admission_date",
                       "discharge_date", "household_id", "region"], bills)  # fmt: skip
    # no hospital column: bill ids are unique in the county
    _csv(files.items, ["bill_id", "code", "name", "category", "qty_e4", "unit_price", "amount",
                       "unit_price_cap"], items)  # fmt: skip
    prow = [
        [p["id"], p["birth_date"], p["household"], t["tag"], t["valid_from"], "",
         p["township"], p["village"]]
        for p in persons for t in p["tags"]
    ]  # fmt: skip
    _csv(files.persons, ["person_id", "birth_date", "household_id", "tag", "tag_valid_from",
                         "tag_valid_to", "township", "village"], prow)  # fmt: skip
    files.registry.write_text(json.dumps(persons, ensure_ascii=False) + "\n", encoding="utf-8")
    files.assumptions.write_text(
        json.dumps({"seed": seed, "people": people, "assumptions": ASSUMPTIONS},
                   ensure_ascii=False, indent=2) + "\n", encoding="utf-8")  # fmt: skip
    return files


def _household_index(p: dict[str, Any]) -> int:
    return int(p["household"][3:]) - 1


def run_batch(
    files: Files, out: str | Path, policies: str | Path = POLICIES, money_in: int = MONEY_IN
) -> dict[str, Any]:
    """Settle the files with ``onestop batch`` (a subprocess of this Python) and return its
    summary (summary.json) with the Backbone figures."""
    out = Path(out)
    cmd = [sys.executable, "-m", "adapters.cli.main", "batch", str(files.bills), str(files.items),
           str(files.persons), "--policy", str(policies), "--out", str(out), "--quiet", "--json"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "", "COLUMNS": "120"})  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"onestop batch failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    summary = json.loads(r.stdout)
    return {"summary": summary, "backbone": backbone_figures(out, summary, money_in)}


def backbone_figures(
    out: Path, summary: dict[str, Any], money_in: int = MONEY_IN
) -> dict[str, Any]:
    """Claims (bills the Backbone pays > 0), persons, paid, loss ratio against the money in,
    and the largest payouts, from the batch's layers/ output."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    f = next(x for x in summary["funds"] if x["layer_id"] == BACKBONE)
    t = ds.dataset(out / "layers", format="parquet").to_table(
        columns=["bill_id", "layer_id", "pay"], filter=pc.field("layer_id") == BACKBONE
    )
    pays = np.sort(np.asarray(t.column("pay").to_numpy(), dtype=np.int64))[::-1]
    pays = pays[pays > 0]
    return {
        "claims": f["bills"],
        "persons": f["persons"],
        "paid": f["amount"],
        "money_in": money_in,
        "loss_ratio_bp": loss_ratio_bp(f["amount"], money_in),
        "largest": int(pays[0]) if len(pays) else 0,
        "at_least_16000_yuan": int((pays >= 1_600_000).sum()),
        "mean_claim": (2 * f["amount"] + f["bills"]) // (2 * f["bills"]) if f["bills"] else 0,
    }


def loss_ratio_bp(paid: int, money_in: int) -> int | None:
    """domain.md section 12: paid / money in, in basis points rounded half-up; None when no
    money came in."""
    if money_in <= 0:
        return None
    return (paid * 10000 * 2 + money_in) // (2 * money_in)


def money_in_for(people: int) -> int:
    """The premium for ``people`` insured: the seed's 1.78 million yuan for 65,940, in
    proportion for a smaller or larger registry (rounded half-up to the fen)."""
    if people == PEOPLE:
        return MONEY_IN
    return (2 * MONEY_IN * people + PEOPLE) // (2 * PEOPLE)


def run(
    out: str | Path, seed: int = YEAR, people: int = PEOPLE, service: bool = True
) -> dict[str, Any]:
    """Generate, settle with ``onestop batch``, then (``service``) run the year through the
    service use cases; write ``figures.json`` under ``out``."""
    out = Path(out)
    files = generate(out / "input", seed, people)
    res = run_batch(files, out / "batch", money_in=money_in_for(people))
    with files.bills.open(encoding="utf-8") as f:
        n_bills = sum(1 for _ in f) - 1
    doc: dict[str, Any] = {
        "seed": seed, "people": people, "bills": n_bills, "money_in": money_in_for(people),
        "batch": res["backbone"], "patients": res["summary"]["patients"],
    }  # fmt: skip
    if service:
        svc = run_service(files, out / "service", seed)
        fig = svc["figures"]
        doc["service"] = {
            "settled": svc["settled"],
            "claims": fig["claims"]["all"]["count"],
            "paid_claims": fig["claims"]["paid"]["count"],
            "paid": fig["claims"]["paid"]["fen"],
            "money_in": fig["money_in"]["fen"],
            "loss_ratio_bp": fig["loss_ratio_bp"],
            "days_to_payment": {
                k: v for k, v in fig["days_to_payment"].items() if k != "histogram"
            },
            "enrolled": fig["enrolled"],
        }
        (out / "service" / "fund-figures.json").write_text(
            json.dumps(fig, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    doc["seed_facts"] = SEED
    doc["assumptions"] = {**ASSUMPTIONS, **(SERVICE_ASSUMPTIONS if service else {})}
    (out / "figures.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return doc


# --------------------------------------------------------------------------- the service year

#: when things happen, in Asia/Shanghai: discharges are settled at 10:00 on the discharge day
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
MONEY_IN_DAY = date(YEAR, 1, 1)
REVIEW_DAYS = (1, 2)  # the operator approves 1 or 2 days after filing
PAY_DAYS = (3, 7)  # and pays 3 to 7 days after filing (both inclusive)
SERVICE_ASSUMPTIONS: dict[str, str] = {
    "money_in": (
        "ASSUMPTION: the 1.78 million yuan is recorded as one premium from CFPA on 2018-01-01 "
        "(CFPA gives the amount for 2018, not the date); a registry of another size gets the "
        "same premium per person (1.78 million x people / 65,940, half-up to the fen)"
    ),
    "filing": (
        "ASSUMPTION: every Backbone pay is a claim filed at settlement (domain.md section 13: "
        "the service files it when the bill is settled at 10:00 on the discharge day); in "
        "reality the patient or the village doctor files through Alipay and some never do"
    ),
    "operator": (
        "ASSUMPTION: a simulated operator approves every claim at its filed amount 1-2 days "
        "after filing and pays it 3-7 days after filing (uniform, from the seed): policy-sources.md "
        "§8.1 and §12 report money 'in about 3 days to 1 week' (Xishui, Zhenxiong, Xide)"
    ),
}


class _Clock:
    """The service's clock, moved by the simulation (time only goes forward)."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, t: datetime) -> None:
        self.now = max(self.now, t)


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(UTC)


def bill_requests(files: Files) -> list[dict[str, Any]]:
    """The batch input files as service bill requests (person by id), in discharge order."""
    items: dict[str, list[dict[str, Any]]] = {}
    with files.items.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            it: dict[str, Any] = {
                "code": r["code"], "name": r["name"], "category": r["category"],
                "qty_e4": int(r["qty_e4"]), "unit_price": int(r["unit_price"]),
                "amount": int(r["amount"]),
            }  # fmt: skip
            if r["unit_price_cap"]:
                it["unit_price_cap"] = int(r["unit_price_cap"])
            items.setdefault(r["bill_id"], []).append(it)
    with files.bills.open(encoding="utf-8") as f:
        bills = [
            {"id": r["bill_id"], "hospital": r["hospital"], "region": r["region"],
             "hospital_level": r["hospital_level"], "admission_date": r["admission_date"],
             "discharge_date": r["discharge_date"], "person_id": r["person_id"],
             "items": items[r["bill_id"]]}
            for r in csv.DictReader(f)
        ]  # fmt: skip
    # the service settles in commit order: discharge, admission, bill id
    bills.sort(key=lambda b: (b["discharge_date"], b["admission_date"], b["id"]))
    return bills


def run_service(
    files: Files, out: str | Path, seed: int = YEAR, money_in: int | None = None
) -> dict[str, Any]:
    """The year through the service use cases, in-process on SQLite (``out/store.db``):
    record the premium as money in, settle every discharge on its day (claims are filed at
    settlement), let a simulated operator approve and pay each claim after a delay, and
    compute the fund's figures (engine.fundstats) from ``FundService.facts``."""
    import heapq

    from adapters.bootstrap import build
    from engine.bill import BillRequest
    from engine.fundstats import figures
    from engine.service.usecases import SettlementService

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "store.db"
    db.unlink(missing_ok=True)
    clock = _Clock(_at(MONEY_IN_DAY, 9))
    ids = iter(range(1, 10**9))
    app = build(
        f"sqlite:///{db}", policies=POLICIES, registry=files.registry,
        service_factory=lambda uow: SettlementService(
            uow, clock=clock, new_id=lambda: f"s{next(ids):08d}"
        ),
    )  # fmt: skip
    try:
        funds = app.funds
        assert funds is not None
        people = len(json.loads(files.registry.read_text(encoding="utf-8")))
        if money_in is None:
            money_in = money_in_for(people)
        funds.record_money_in(
            "hongan-2018-backbone-premium", REGION, BACKBONE_FUND, YEAR, "premium",
            "China Foundation for Poverty Alleviation (CFPA)", money_in, MONEY_IN_DAY,
            f"Backbone 2018 premium for {people:,} insured (CFPA artid 205: 1.78 million yuan "
            "for 65,940)", principal="cfpa",
        )  # fmt: skip
        rng = np.random.default_rng([seed, 13])
        events: list[tuple[datetime, int, str, Any]] = []
        n = 0
        for b in bill_requests(files):
            n += 1
            heapq.heappush(
                events, (_at(date.fromisoformat(b["discharge_date"]), 10), n, "settle", b)
            )
        settled = claims_filed = 0
        while events:
            t, _, what, x = heapq.heappop(events)
            clock.at(t)
            if what == "settle":
                rec, _replay = app.service.settle(x["id"], BillRequest.model_validate(x),
                                                  principal="hospital")  # fmt: skip
                settled += 1
                for c in funds.claims_of(rec.settlement_id):
                    if c.kind != "claim" or c.fund_code != BACKBONE_FUND:
                        continue
                    claims_filed += 1
                    review = int(rng.integers(REVIEW_DAYS[0], REVIEW_DAYS[1] + 1))
                    pay = int(rng.integers(PAY_DAYS[0], PAY_DAYS[1] + 1))
                    n += 1
                    heapq.heappush(events, (t + timedelta(days=review), n, "approve", c.claim_id))
                    n += 1
                    heapq.heappush(events, (t + timedelta(days=pay), n, "pay", c.claim_id))
            elif what == "approve":
                funds.approve(x, principal="operator")
            else:
                day = clock.now.astimezone(SHANGHAI).date()
                funds.pay(x, day, f"pay-{x}", principal="operator")
        facts = funds.facts(REGION, BACKBONE_FUND, YEAR, date(YEAR, 1, 1))
        fig = figures(facts).to_json()
    finally:
        app.close()
    return {"settled": settled, "claims_filed": claims_filed, "figures": fig}
