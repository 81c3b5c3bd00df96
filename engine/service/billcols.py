"""A bill request as columns: the service's one-bill fast path (issue 13, item 3).

An adapter turns a bill message into ``BillColumns`` (plain strings and int64 arrays, no
per-item model). ``checked`` tests them with vectorized numpy against every rule
``BillRequest`` checks (the same limits as ``engine.columnar``'s item checks); ``run_one``
builds the kernel's arrays for the one bill directly (no batch sorting, no per-item objects)
and reads the settlement back from the output arrays.

A bill that breaks any rule (rare) is not reported from here: ``request()`` parses it with the
model (``parse_bill_request``), so its errors are exactly those of the model path (same
fields, values, wording and order). Checking here is therefore only ever stricter than the
model: whatever passes here also passes the model, with the same values.

``digest_of`` is the request digest (idempotency): sha256 of canonical bytes of the
normalized request, the same for a ``BillRequest`` and for its columns.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

import numpy as np

from engine import kernel as K
from engine.accounts import YearAccounts
from engine.batch import FundYearKey, KernelBatch, compiled_for, settlement_of_rows
from engine.bill import (
    CATEGORY_NAMES,
    DATE_MAX,
    DATE_MIN,
    MAX_ITEMS_PER_BILL,
    BillRequest,
    Person,
    is_hospital_code,
    parse_bill_request,
)
from engine.ledger import sorted_json
from engine.policy.compiled import CompiledPolicies, mask
from engine.policy.model import PolicyTable
from engine.result import Settlement
from engine.service.itemrules import NULL, Kernel, kernel_items, kernel_items_plain
from engine.validation import bad_id_chars

_CAT = {k: int(v) for k, v in CATEGORY_NAMES.items()}
_CAT_NAME = {int(v): v.name for v in CATEGORY_NAMES.values()}


class BillFacts(NamedTuple):
    """What the checks ask of a bill's items, as the adapter's compiled reader found them
    while reading the bytes (``adapters.grpc.billwire``), so ``checked`` need not look again:
    no string holds NUL (the reader does not take one that does)."""

    bad_code: bool  # a code holds a control character (``bad_id_chars``)
    longest_code: int  # characters
    longest_name: int
    #: the categories' codes (1/2/3; int8 with ``kernel``, as the kernel takes them, else
    #: int64); None if one is unknown
    cat: np.ndarray | None
    #: (qty, price_cap, sp_ratio) in the kernel's form, if the reader ran the item rules
    #: (``itemrules``) on the int columns and ``cat`` and they kept every one; else None
    #: (``checked`` runs them)
    kernel: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


class ItemTexts:
    """The items' codes, names and categories of a ``BillColumns``: three lists as given, or
    the compiled reader's text of them (every code, then every name, then every category,
    NUL-separated, none holding a NUL), split into the lists when first asked. A PreSettle
    never asks (its checks take ``BillFacts``, its answer names no item): the split of 100
    items' 300 strings (~6-7 us) is left out of it."""

    __slots__ = ("_lists", "_n", "_text")

    def __init__(self, code: list[str], name: list[str], category: list[str]):
        self._lists: tuple[list[str], list[str], list[str]] | None = (code, name, category)
        self._text, self._n = "", 0

    @classmethod
    def joined(cls, text: str, n: int) -> ItemTexts:
        """The texts of ``n`` items from ``text``: 3n strings joined by NUL (none inside)."""
        t = cls([], [], [])
        t._lists, t._text, t._n = None, text, n
        return t

    def lists(self) -> tuple[list[str], list[str], list[str]]:
        got = self._lists
        if got is None:  # (two threads may both split: the same lists either way)
            n = self._n
            parts = self._text.split("\x00") if n else []
            got = self._lists = (parts[:n], parts[n : 2 * n], parts[2 * n :])
        return got


@dataclass(frozen=True)
class BillColumns:
    """A bill request as the client sent it: strings as given ('' = not given for region),
    item fields as int64 arrays (``NULL`` = not given for qty_e4, unit_price_cap and
    selfpay_ratio), categories as the codes given (``code``, ``name``, ``category``: read
    from ``texts`` when asked)."""

    id: str
    hospital: str
    region: str
    person_id: str
    hospital_level: str
    admission_date: str
    discharge_date: str
    texts: ItemTexts
    qty_e4: np.ndarray
    unit_price: np.ndarray
    amount: np.ndarray
    unit_price_cap: np.ndarray
    selfpay_ratio: np.ndarray
    facts: BillFacts | None = None

    def __len__(self) -> int:
        return len(self.amount)

    @property
    def code(self) -> list[str]:
        return self.texts.lists()[0]

    @property
    def name(self) -> list[str]:
        return self.texts.lists()[1]

    @property
    def category(self) -> list[str]:
        return self.texts.lists()[2]

    def plain(self) -> dict[str, Any]:
        """The request as the plain data a JSON bill would be (only given optional fields)."""
        items = []
        for j in range(len(self)):
            it: dict[str, Any] = {
                "code": self.code[j],
                "name": self.name[j],
                "category": self.category[j],
                "unit_price": int(self.unit_price[j]),
                "amount": int(self.amount[j]),
            }
            for k in ("qty_e4", "unit_price_cap", "selfpay_ratio"):
                v = int(getattr(self, k)[j])
                if v != NULL:
                    it[k] = v
            items.append(it)
        d: dict[str, Any] = {
            "id": self.id,
            "hospital": self.hospital,
            "person_id": self.person_id,
            "hospital_level": self.hospital_level,
            "admission_date": self.admission_date,
            "discharge_date": self.discharge_date,
            "items": items,
        }
        if self.region:
            d["region"] = self.region
        return d

    def request(self) -> BillRequest:
        """The model of the request, or the model path's InputError naming every bad field."""
        return parse_bill_request(self.plain())


@dataclass(frozen=True)
class Checked:
    """Columns that pass every rule of ``BillRequest``, in the kernel's form."""

    cols: BillColumns
    admission: date
    discharge: date
    cat: np.ndarray  # 1/2/3 (int8 from PreSettle's reader, int64 from the others)
    qty: np.ndarray  # default one unit
    price_cap: np.ndarray  # -1 = none
    sp_ratio: np.ndarray  # -1 = none

    @property
    def region(self) -> str | None:
        return self.cols.region or None

    @property
    def year(self) -> int:
        return self.discharge.year

    def digest(self) -> str:
        return _digest(
            [self.cols.id, self.cols.hospital, self.cols.region, self.cols.person_id,
             self.cols.hospital_level, self.admission.isoformat(), self.discharge.isoformat()],
            self.cols.code, self.cols.name,
            (self.cat, self.qty, self.cols.unit_price, self.cols.amount, self.price_cap,
             self.sp_ratio),
        )  # fmt: skip

    def stored(self) -> dict[str, Any]:
        """The request as stored with a settlement: ``BillRequest.model_dump(mode="json")``."""
        c = self.cols
        items = [
            {"code": code, "name": name, "category": _CAT_NAME[cat], "qty_e4": q,
             "unit_price": up, "amount": a, "unit_price_cap": None if cap < 0 else cap,
             "selfpay_ratio": None if r < 0 else r}
            for code, name, cat, q, up, a, cap, r in zip(
                c.code, c.name, self.cat.tolist(), self.qty.tolist(), c.unit_price.tolist(),
                c.amount.tolist(), self.price_cap.tolist(), self.sp_ratio.tolist(), strict=True)
        ]  # fmt: skip
        return {
            "id": c.id, "hospital": c.hospital, "region": self.region,
            "hospital_level": c.hospital_level, "admission_date": self.admission.isoformat(),
            "discharge_date": self.discharge.isoformat(), "items": items,
            "person_id": c.person_id,
        }  # fmt: skip


def _digest(
    head: list[str], codes: list[str], names: list[str], ints: tuple[np.ndarray, ...]
) -> str:
    """sha256 of a versioned, unambiguous encoding: the strings as one JSON array (escaped,
    so no separator can be forged: ``json.dumps(ensure_ascii=False, separators=(",", ":"))``
    as UTF-8, written by ``sorted_json``, the same bytes by orjson: ~45 us of a Settle's
    100 items), then the item integers as little-endian int64 rows."""
    h = hashlib.sha256(b"onestop.bill.v2\n")
    h.update(sorted_json([head, codes, names]))
    h.update(b"\n")
    h.update(np.stack([np.asarray(a, dtype="<i8") for a in ints]).tobytes())
    return h.hexdigest()


def digest_of(req: BillRequest) -> str:
    """The digest of a parsed request: the same as its columns' (``Checked.digest``)."""
    items = req.items
    return _digest(
        [req.id, req.hospital, req.region or "", req.person_id, req.hospital_level,
         req.admission_date.isoformat(), req.discharge_date.isoformat()],
        [it.code for it in items], [it.name for it in items],
        (np.array([int(it.category) for it in items], dtype=np.int64),
         np.array([it.qty_e4 for it in items], dtype=np.int64),
         np.array([it.unit_price for it in items], dtype=np.int64),
         np.array([it.amount for it in items], dtype=np.int64),
         np.array([-1 if it.unit_price_cap is None else it.unit_price_cap for it in items],
                  dtype=np.int64),
         np.array([-1 if it.selfpay_ratio is None else it.selfpay_ratio for it in items],
                  dtype=np.int64)),
    )  # fmt: skip


def _id_ok(v: str, longest: int = 64) -> bool:
    return 1 <= len(v) <= longest and not bad_id_chars(v)


#: the days read so far, by their text (bills share their days: a dict look-up, not ~1.5 us
#: of checks and ``fromisoformat``); emptied when full
_DAYS: dict[str, date] = {}
_DAYS_MAX = 4096


def _day(v: str) -> date | None:
    d = _DAYS.get(v)
    if d is None:
        d = _read_day(v)
        if d is not None:
            if len(_DAYS) >= _DAYS_MAX:
                _DAYS.clear()
            _DAYS[v] = d
    return d


def _read_day(v: str) -> date | None:
    if len(v) != 10 or v[4] != "-" or v[7] != "-" or not (v[:4] + v[5:7] + v[8:]).isdigit():
        return None
    if not v.isascii():
        return None
    try:
        d = date.fromisoformat(v)
    except ValueError:
        return None
    return d if DATE_MIN <= d <= DATE_MAX else None


def checked(c: BillColumns) -> Checked | None:
    """The columns in the kernel's form if they pass every rule of ``BillRequest``; None if
    anything is off (then ``c.request()`` names it)."""
    n = len(c)
    if not 1 <= n <= MAX_ITEMS_PER_BILL:
        return None
    i, p, lv = c.id, c.person_id, c.hospital_level  # (one search for the three ids' chars)
    if not (0 < len(i) <= 64 and 0 < len(p) <= 64 and 0 < len(lv) <= 64) or bad_id_chars(
        i + p + lv
    ):
        return None
    if not is_hospital_code(c.hospital) or (c.region and not _id_ok(c.region, 32)):
        return None
    adm, dis = _day(c.admission_date), _day(c.discharge_date)
    if adm is None or dis is None or dis < adm:
        return None
    f = c.facts
    k: Kernel | None = None
    if f is not None:  # as the reader found them
        if f.bad_code or f.longest_code > 64 or f.longest_name > 200 or f.cat is None:
            return None
        cat, k = f.cat, f.kernel
    else:
        codes, names = c.code, c.name
        if bad_id_chars("".join(codes)) or "\x00" in "".join(names):
            return None
        if max(map(len, codes)) > 64 or max(map(len, names)) > 200:
            return None
        try:
            cat = np.fromiter(map(_CAT.__getitem__, c.category), np.int64, n)
        except KeyError:
            return None
    if k is None:  # the int columns' rules in one compiled pass (numpy for another form)
        got = kernel_items(c, cat)
        if got is None:
            got = kernel_items_plain(c, cat)
        if not isinstance(got, tuple):
            return None
        k = got
    return Checked(c, adm, dis, cat, *k)


def fits_table(ch: Checked, person: Person, table: PolicyTable) -> bool:
    """What ``check_bill`` and ``with_person`` check, as a yes/no: admitted on or after the
    birth, a level of the table, only tags of the table."""
    if ch.admission < person.birth_date or ch.cols.hospital_level not in table.hospital_levels:
        return False
    tags = person.tags
    return not tags or all(t.tag in table.tags for t in tags)


#: no hard budget (``KernelBatch``'s defaults, made once: ``set_budgets`` replaces them)
_NO_BAL = np.full((0, 0), -1, dtype=np.int64)
_NO_FYEAR = np.zeros(0, dtype=np.int64)
_NO_BAL.flags.writeable = _NO_FYEAR.flags.writeable = False


def run_one(
    ch: Checked,
    person: Person,
    table: PolicyTable,
    pa: YearAccounts,
    ha: YearAccounts,
    budgets: dict[FundYearKey, int] | None,
) -> KernelBatch | None:
    """The kernel run of the one bill from the accounts ``pa`` and ``ha``; None if the kernel
    refused it at the account limit (the model path names the limit)."""
    compiled, kept_acc, tags, age = _fixed(person, table, pa, ha, ch.admission)
    n, L = len(ch.cols), compiled.max_layers
    # the one-bill arrays as views of three buffers (an allocation each, not one an array)
    acc = kept_acc.copy()  # the person's, the household's accounts (the kernel writes them)
    level = table.hospital_levels.index(ch.cols.hospital_level)
    # 0: zero (the policy and slots), 0-1: item_start, 2: level, 3: tags, 4: age,
    # 5: admissions (the kernel counts it up), 6-7: chunk_start
    small = np.array([0, n, level, tags, age, pa.admissions, 0, 1], dtype=np.int64)
    out = np.zeros(K.N_BILL + L * K.N_FIELDS, dtype=np.int64)
    one = small[0:1]
    kb = KernelBatch(
        compiled=compiled, order=one, item_start=small[0:2], cat=ch.cat, qty=ch.qty,
        amount=ch.cols.amount, price_cap=ch.price_cap, sp_ratio=ch.sp_ratio, b_policy=one,
        b_level=small[2:3], b_tags=small[3:4], b_age=small[4:5], b_pslot=one, b_hslot=one,
        p_acc=acc[0], p_adm=small[5:6], h_acc=acc[1],
        out_bill=out[: K.N_BILL].reshape(1, K.N_BILL),
        out_layer=out[K.N_BILL :].reshape(1, L, K.N_FIELDS), chunk_start=small[6:8],
        bal=_NO_BAL, b_fyear=_NO_FYEAR,
    )  # fmt: skip
    if budgets:
        kb.set_budgets(budgets, np.array([ch.year], dtype=np.int64))
    kb.run()
    return None if kb.out_bill[0, K.B_STATUS] else kb


#: each thread's ``_fixed`` answers with what each was built from (``threading.local``), by
#: (person id, admission day); at most ``FIXED_MAX`` (emptied when full)
_KEPT = threading.local()
FIXED_MAX = 1024


def _fixed(
    person: Person, table: PolicyTable, pa: YearAccounts, ha: YearAccounts, admission: date
) -> tuple[CompiledPolicies, np.ndarray, int, int]:
    """What a one-bill run takes from its person, table, accounts and admission day alone: the
    compiled table, the accounts as the kernel's (2, 1, slots, 4) rows (read-only: the run
    takes a copy), the tags' mask and the age. Kept for the next bill of the same objects on
    this thread: a trial's reads return the same (immutable) objects while nothing is
    committed (``adapters.store.sql.trialreads``) and new ones once anything is, so a match
    by identity is the same figures (a kept answer holds its objects: no id is reused)."""
    kept: dict[tuple[str, date], Any] | None = getattr(_KEPT, "fixed", None)
    if kept is None:
        kept = _KEPT.fixed = {}
    key = (person.id, admission)
    last = kept.get(key)
    if (
        last is not None
        and last[0] is person
        and last[1] is table
        and last[2] is pa
        and last[3] is ha
    ):
        return last[4]
    compiled = compiled_for([table])
    acc = np.zeros((2, 1, compiled.n_slots, 4), dtype=np.int64)
    for li, lid in enumerate(compiled.layer_ids):
        a = pa.layers.get(lid)
        if a is not None:
            acc[0, 0, li] = a.as_tuple()
        b = ha.layers.get(lid)
        if b is not None:
            acc[1, 0, li] = b.as_tuple()
    acc.flags.writeable = False
    got = (compiled, acc, mask(person.tags_on(admission), table.tags), person.age_on(admission))
    if len(kept) >= FIXED_MAX:
        kept.clear()
    kept[key] = (person, table, pa, ha, got)
    return got


def settlement_of(kb: KernelBatch, ch: Checked, person: Person, table: PolicyTable) -> Settlement:
    """The settlement read from the output arrays of ``run_one``."""
    return settlement_of_rows(
        kb.out_bill[0].tolist(), kb.out_layer[0].tolist(), table, ch.cols.id, ch.cols.hospital,
        person, ch.year, ch.discharge,
    )  # fmt: skip
