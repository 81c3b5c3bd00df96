"""Seeded synthetic bills, items and persons with a realistic shape, written sorted.

- households of 1-6 persons, ages 0-90, a tag mix declared by the sample policy:
  registered_poor (about 30% of households, some leaving the register mid-period),
  extreme_poverty, subsistence, low_income;
- several admissions per person per year (a frequent-patient minority), stays of 0-60 days,
  hospital levels township/county/city/province;
- 20-300 items per bill (a long tail around the requested mean), lognormal unit prices, an
  A/B/C mix, unit price caps on a quarter of A/B items (some bills go over the cap), first
  self-pay ratios on some B items.

Bills are sorted by household, discharge date, admission date, bill id; items follow the bills
(grouped by bill, in the bills' order); persons are sorted by household and person. Same seed,
same files.

    python -m benchmarks.synth --bills 100000 --items 40 --out benchmarks/out/data [--csv]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import typer

if TYPE_CHECKING:  # not imported at run time: the generator needs no engine
    from engine.policy.model import PolicyTable

REGION = "450000"
LEVELS = ["township", "county", "city", "province"]
TAGS = ["registered_poor", "extreme_poverty", "subsistence", "low_income"]
N_HOSPITALS = 40  # hospitals of a county (bills spread over them)
START = np.datetime64("2019-01-01")
END = np.datetime64("2020-12-31")


def _ids(prefix: str, n: int) -> pa.Array:
    return pa.array(np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), 9)).astype(object))


def generate(
    n_bills: int,
    mean_items: float = 40,
    seed: int = 0,
    region: str = REGION,
    levels: list[str] | None = None,
    start: str | np.datetime64 = START,
    end: str | np.datetime64 = END,
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(bills, items, persons) as Arrow tables, sorted as the batch command wants them.
    ``levels`` (most frequent first), ``region`` and the date range can follow a policy table
    (see ``for_table``)."""
    rng = np.random.default_rng(seed)
    levels = list(levels or LEVELS)
    START, END = np.array([start, end], dtype="M8[D]")  # days, from text or datetime64
    n_persons = max(1, n_bills // 3)
    # households: runs of 1-6 persons
    sizes = rng.integers(1, 7, size=n_persons)
    hh_of_person = np.repeat(np.arange(len(sizes)), sizes)[:n_persons]
    n_households = int(hh_of_person[-1]) + 1
    birth = START - rng.integers(0, 91 * 365, size=n_persons).astype("m8[D]")

    # bills: most persons rarely, a frequent minority often
    frequent = rng.random(n_bills) < 0.4
    person = np.where(
        frequent,
        rng.integers(0, max(1, n_persons // 10), size=n_bills),
        rng.integers(0, n_persons, size=n_bills),
    )
    days = int((END - START).astype(int)) + 1
    adm = START + rng.integers(0, days - 1, size=n_bills).astype("m8[D]")
    stay = np.minimum(rng.geometric(1 / 7, size=n_bills) - 1, 60).astype("m8[D]")
    dis = np.minimum(adm + stay, END)
    bill_no = rng.permutation(n_bills)
    hh = hh_of_person[person]
    order = np.lexsort((bill_no, adm, dis, hh))
    person, adm, dis, bill_no, hh = (a[order] for a in (person, adm, dis, bill_no, hh))
    w = np.array([0.4, 0.4, 0.15, 0.05] + [0.02] * max(0, len(levels) - 4))[: len(levels)]
    level = rng.choice(len(levels), size=n_bills, p=w / w.sum()).astype(np.int8)

    # items per bill: at least min(20, mean/2), a lognormal tail, at most 300
    lo = int(min(20, max(1, mean_items // 2)))
    extra = max(mean_items - lo, 0.5)
    sigma = 0.9
    drawn = lo + np.round(rng.lognormal(np.log(extra) - sigma**2 / 2, sigma, n_bills))
    n_items = np.clip(drawn, lo, 300).astype(np.int64)
    N = int(n_items.sum())
    item_bill = np.repeat(np.arange(n_bills, dtype=np.int32), n_items)
    cat = rng.choice(3, size=N, p=[0.55, 0.30, 0.15]).astype(np.int8)  # 0=A 1=B 2=C
    price = np.clip(np.round(rng.lognormal(np.log(1500), 1.3, N)), 1, 10**8).astype(np.int32)
    qty = np.where(
        rng.random(N) < 0.9, rng.integers(1, 11, size=N) * 10000, rng.integers(1, 40000, size=N)
    ).astype(np.int32)
    amount = (price.astype(np.int64) * qty + 5000) // 10000
    capped = (cat < 2) & (rng.random(N) < 0.25)
    cap = np.round(price * rng.uniform(0.85, 1.15, size=N)).astype(np.int32)
    ratio_given = (cat == 1) & (rng.random(N) < 0.4)
    ratio = rng.choice(np.array([500, 1000, 1500, 2000], dtype=np.int16), size=N)

    bill_ids = np.char.add("B", np.char.zfill(bill_no.astype(str), 9)).astype(object)
    person_ids = _ids("P", n_persons)
    hh_ids = _ids("H", n_households)
    bills = pa.table(
        {
            "bill_id": pa.array(bill_ids, pa.string()),
            # the hospital (NHSA fixmedins_code) of each bill: one of a county's few dozen
            "hospital": pa.DictionaryArray.from_arrays(
                np.random.default_rng([seed, 7])  # own stream: the other columns unchanged
                .integers(0, N_HOSPITALS, size=n_bills)
                .astype(np.int16),
                pa.array([f"H{region}{h:03d}" for h in range(N_HOSPITALS)]),
            ),
            "person_id": pa.DictionaryArray.from_arrays(person.astype(np.int32), person_ids),
            "household_id": pa.DictionaryArray.from_arrays(hh.astype(np.int32), hh_ids),
            "region": pa.DictionaryArray.from_arrays(
                np.zeros(n_bills, dtype=np.int8), pa.array([region])
            ),
            "hospital_level": pa.DictionaryArray.from_arrays(level, pa.array(levels)),
            "admission_date": pa.array(adm.astype("M8[D]"), pa.date32()),
            "discharge_date": pa.array(dis.astype("M8[D]"), pa.date32()),
        }
    )
    items = pa.table(
        {
            "bill_id": pa.DictionaryArray.from_arrays(item_bill, pa.array(bill_ids, pa.string())),
            "category": pa.DictionaryArray.from_arrays(cat, pa.array(["A", "B", "C"])),
            "qty_e4": pa.array(qty),
            "unit_price": pa.array(price),
            "amount": pa.array(amount),
            "unit_price_cap": pa.array(cap, mask=~capped),
            "selfpay_ratio": pa.array(ratio, mask=~ratio_given),
        }
    )
    # tags by household, some registered_poor spans ending mid-period
    hh_tags = {
        "registered_poor": rng.random(n_households) < 0.30,
        "extreme_poverty": rng.random(n_households) < 0.03,
        "subsistence": rng.random(n_households) < 0.10,
        "low_income": rng.random(n_households) < 0.06,
    }
    rows_p, rows_t, rows_to = [], [], []
    for t, has in hh_tags.items():
        ps = np.flatnonzero(has[hh_of_person])
        rows_p.append(ps)
        rows_t.append(np.full(len(ps), TAGS.index(t), dtype=np.int8))
        ends = rng.random(len(ps)) < (0.15 if t == "registered_poor" else 0.0)
        to = START + rng.integers(0, days, size=len(ps)).astype("m8[D]")
        rows_to.append(np.where(ends, to, np.datetime64("NaT")))
    tagged = np.concatenate(rows_p)
    untagged = np.setdiff1d(np.arange(n_persons), tagged)
    p_all = np.concatenate([tagged, untagged])
    t_all = np.concatenate([*rows_t, np.full(len(untagged), -1, dtype=np.int8)])
    to_all = np.concatenate([*rows_to, np.full(len(untagged), np.datetime64("NaT"), "M8[D]")])
    o = np.lexsort((t_all, p_all))  # persons are numbered in household order
    p_all, t_all, to_all = p_all[o], t_all[o], to_all[o]
    persons = pa.table(
        {
            "person_id": pa.DictionaryArray.from_arrays(p_all.astype(np.int32), person_ids),
            "birth_date": pa.array(birth[p_all].astype("M8[D]"), pa.date32()),
            "household_id": pa.DictionaryArray.from_arrays(
                hh_of_person[p_all].astype(np.int32), hh_ids
            ),
            "tag": pa.DictionaryArray.from_arrays(
                pa.array(np.maximum(t_all, 0), mask=t_all < 0), pa.array(TAGS)
            ),
            "tag_valid_from": pa.nulls(len(p_all), pa.date32()),
            "tag_valid_to": pa.array(to_all.astype("M8[D]"), pa.date32()),
        }
    )
    return bills, items, persons


def for_table(table: PolicyTable) -> dict[str, Any]:
    """``generate`` keywords that fit one policy table: its region, its levels (in the
    table's order, the first ones most frequent), and dates inside its effective range (two
    years from effective_from, cut at effective_to). The tags are the four of this module:
    the table must declare them."""
    t = table
    start = np.datetime64(t.effective_from, "D")
    end = start + np.timedelta64(730, "D")
    if t.effective_to is not None:
        end = min(end, np.datetime64(t.effective_to, "D"))
    missing = [x for x in TAGS if x not in t.tags]
    if missing:
        raise ValueError(f"policy {t.label} does not declare the tags {missing}")
    return {"region": t.region.code, "levels": list(t.hospital_levels),
            "start": start, "end": end}  # fmt: skip


def _compact(t: pa.Table) -> pa.Table:
    """Dictionary columns with only the values their rows use (so that each row group's
    Parquet dictionary stays small and readers get the dictionary back without hashing)."""
    cols = []
    for c in t.columns:
        c = c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c
        if pa.types.is_dictionary(c.type) and len(c):
            idx = pc.fill_null(c.indices, 0).to_numpy()
            valid = ~c.is_null().to_numpy(zero_copy_only=False)
            used = np.unique(idx[valid])
            remap = np.zeros(len(c.dictionary), dtype=np.int64)
            remap[used] = np.arange(len(used))
            new = pa.array(remap[idx], mask=~valid).cast(c.type.index_type)
            c = pa.DictionaryArray.from_arrays(new, c.dictionary.take(pa.array(used)))
        cols.append(c)
    return pa.table(cols, names=t.column_names)


def write(
    out: str | Path, tables: tuple[pa.Table, pa.Table, pa.Table], csv: bool = False
) -> list[Path]:
    """bills/items/persons .parquet (row groups of 100k bills, 1M items) or .csv."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, t, rg in zip(
        ("bills", "items", "persons"), tables, (100_000, 1_000_000, 200_000), strict=True
    ):
        if csv:
            p = out / f"{name}.csv"
            plain = pa.table(
                [
                    c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c
                    for c in t.columns
                ],
                names=t.column_names,
            )
            pcsv.write_csv(plain, p)
        else:
            p = out / f"{name}.parquet"
            with pq.ParquetWriter(p, t.schema) as w:
                for off in range(0, max(t.num_rows, 1), rg):
                    w.write_table(_compact(t.slice(off, rg)))
        paths.append(p)
    return paths


def main(
    bills: int = typer.Option(100_000, help="number of bills"),
    items: float = typer.Option(40, help="mean items per bill"),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("benchmarks/out/data")),
    csv: bool = typer.Option(False, help="write CSV instead of Parquet"),
) -> None:
    paths = write(out, generate(bills, items, seed), csv=csv)
    for p in paths:
        print(p)


if __name__ == "__main__":
    typer.run(main)
