"""The machinery of tests/test_fuzz.py: a corpus of valid requests built from the sample data,
structural and byte-level mutators, an asyncio client that sends raw bytes to every rpc of a
real server (a separate process, so client and server each get a core), and the checks of
the store against what the server acknowledged and against a serial replay through the
reference.

Every request is built from a seeded ``random.Random`` (one per method: ``Random(f"{seed}:
{method}")``). Ids drawn from what earlier requests created (settlement and request ids for
Reverse, GetSettlement, replays) depend on the order the server answered, so a run is
reproducible up to those; each failure example carries the request's bytes (hex) so that it
can be sent again as is.

Mutations (labels appear in the report as ``<path>:<kind>``; paths leave out indices):
numbers to 0/-1/negative/int32 and int64 extremes/10^9, 10^12, 10^13, 10^15 (+1)/x10^k;
strings to empty/long (65, 129, 201, 6000 chars)/unicode/NUL/control chars/padded/odd dates
(Unix timestamps, datetimes, Feb 30, full-width digits)/odd categories ("a", " b ", "1", "甲",
"D")/known ids of other fields; repeated fields cleared, an element dropped, duplicated,
grown, reversed, an extreme or empty element appended (so packed columns get mismatched
lengths and bad offsets, level_index out of range or into an empty ``levels``); optional and
message fields cleared; oneofs switched; enums to unknown values; YAML text edits for
PutPolicy (numbers, deleted/duplicated/swapped lines, tabs, unknown keys, deep nesting,
small bounded aliases, tags); a max-size bill (10 items x 10^12 fen) for one person; replays
of acknowledged Settle bytes. Byte level: random bytes, one 0xff, bit flips, truncation,
inserted bytes, two messages concatenated. Alias bombs are left out (they cost seconds of
CPU each today; issue 7 defect 8 has its own test); every call has a deadline (DEADLINE_S)
and DEADLINE_EXCEEDED counts as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa
from google.protobuf.descriptor import FieldDescriptor as FD
from google.protobuf.message import DecodeError, Message

from adapters.grpc import convert as cv
from adapters.grpc.client import Client, pack_bills
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import JIANG, YUBEI, YUBEI_BILL
from engine.policy.load import policy_files
from tests.ports import start_server

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
SAMPLES = POLICIES / "samples"

DEADLINE_S = 5.0
KEEP_ANSWERS = 50_000  # acknowledged answers kept to compare with the replay
MAX_STATUS_BYTES = 8192
#: codes a refusal may have; anything else (INTERNAL, UNKNOWN, DEADLINE_EXCEEDED,
#: UNAVAILABLE, ...) is a failure
REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
#: codes after which the client cannot know whether the server wrote
UNKNOWN_OUTCOME = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    }
)

S = "/onestop.settlement.v1.SettlementService/"
A = "/onestop.settlement.v1.PolicyAdminService/"
#: method -> (path, request class)
UNARY = {
    "PreSettle": (S + "PreSettle", pb.PreSettleRequest),
    "Settle": (S + "Settle", pb.SettleRequest),
    "Reverse": (S + "Reverse", pb.ReverseRequest),
    "GetSettlement": (S + "GetSettlement", pb.GetSettlementRequest),
    "ListSettlements": (S + "ListSettlements", pb.ListSettlementsRequest),
    "GetAccounts": (S + "GetAccounts", pb.GetAccountsRequest),
    "PutPolicy": (A + "PutPolicy", pb.PutPolicyRequest),
    "ListPolicies": (A + "ListPolicies", pb.ListPoliciesRequest),
    "GetPolicy": (A + "GetPolicy", pb.GetPolicyRequest),
    "ImportRegistry": (A + "ImportRegistry", pb.ImportRegistryRequest),
}
STREAM_PATH = S + "SettleStream"
#: the forms of SettleStream, counted as methods of their own
STREAMS = ("SettleStream/list", "SettleStream/packed")


# --------------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    """Valid requests' raw material: the tables of policies/, the sample registry and bills,
    plus a probe region (YUBEI) and person (jiang) that no mutation touches."""

    tables: dict[str, str]  # relative path -> YAML text
    persons: list[dict[str, Any]]
    bills: list[dict[str, Any]]  # with person_id
    levels: list[str]
    regions: list[str]
    tags: list[str]

    @classmethod
    def load(cls) -> Corpus:
        tables = {
            str(p.relative_to(POLICIES)): p.read_text(encoding="utf-8")
            for p in policy_files(POLICIES)  # tables only: no funds.yaml, cases/, drafts/
        }
        persons = json.loads((SAMPLES / "registry.json").read_text(encoding="utf-8"))
        bills = []
        for f in sorted(SAMPLES.glob("*.json")):
            if f.name == "registry.json":
                continue
            data = json.loads(f.read_text(encoding="utf-8"))
            for b in data if isinstance(data, list) else [data]:
                b = dict(b)
                b["person_id"] = b.pop("person")["id"] if "person" in b else b["person_id"]
                bills.append(b)
        levels = sorted(
            {b["hospital_level"] for b in bills}
            | set(re.findall(r"hospital_levels: \[([^\]]*)\]", " ".join(tables.values())))
        )
        levels = sorted({x.strip() for lv in levels for x in lv.split(",") if x.strip()})
        regions = sorted({b["region"] for b in bills if b.get("region")})
        tags = sorted(
            {t if isinstance(t, str) else t["tag"] for p in persons for t in p.get("tags", [])}
        )
        return cls(tables, persons, bills, levels, regions, tags)

    def write_server_inputs(self, root: Path) -> tuple[Path, Path]:
        """A policies directory (every table + the probe table) and a registry file."""
        pol = root / "policies"
        for rel, text in self.tables.items():
            (pol / rel).parent.mkdir(parents=True, exist_ok=True)
            (pol / rel).write_text(text, encoding="utf-8")
        (pol / "probe").mkdir(parents=True, exist_ok=True)
        (pol / "probe" / "yubei.yaml").write_text(YUBEI, encoding="utf-8")
        reg = root / "registry" / "registry.json"
        reg.parent.mkdir(parents=True, exist_ok=True)
        reg.write_text(json.dumps([*self.persons, JIANG]), encoding="utf-8")
        return pol, reg


# --------------------------------------------------------------------------- mutations

INT_RANGE = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
BIG = [10**9, 10**9 + 1, 10**12, 10**12 + 1, 10**13, 10**13 + 1, 10**15, 10**15 + 1, 10**18]
ODD_DATES = [
    "", "2019-02-30", "2019-13-01", "2019-00-10", "1552608000", "2019-03-15T00:00:00",
    "2019-03-15 00:00", "2019-3-5", " 2019-03-15", "2019-03-15 ", "0001-01-01", "9999-12-31",
    "1800-01-01", "2200-01-01", "20190315", "2019/03/15", "２０１９-０３-１５", "-2019-03-15",
    "+2019-03-15", "2019-W11-5", "2019-074", "2019-03-15Z", "NaT", "today",
]  # fmt: skip
ODD_CATEGORIES = [
    "", "a", "b", "c", " b ", "1", "2", "3", "01", "02", "03", "04", "0", "甲", "乙", "丙",
    "丁", "D", "AB", "Ａ", "A ", "a\t", "3.0", "-1",
]  # fmt: skip
UNICODE = ["甲乙丙", "😀", "\u202e", "e\u0301", "\ufeff", "\u00a0", "Ω≈ç√", "\U0010fffd", "ﷺ"]
CONTROL = ["\x00", "\x01", "\x1b", "\x7f", "\n", "\r\n", "\t", "\x08", "\x85", "\u2028"]


def _int_label(v: int, lo: int, hi: int) -> str:
    if v == lo:
        return "min" if lo else "zero"
    if v == hi:
        return "max"
    if v < 0:
        return "negative"
    if v == 0:
        return "zero"
    if v > 10**15:
        return "huge"
    if v in BIG:
        return "limit"
    return "other"


def new_int(rng: random.Random, old: int, f: Any) -> tuple[int, str]:
    lo, hi = INT_RANGE.get(f.type, (-(2**63), 2**63 - 1))
    cands = [
        0, 1, -1, lo, hi, lo + 1, hi - 1, -old, old + 1, old - 1, old * 10, old * 1000,
        2**31 - 1, -(2**31), 2**31, 2**32, *BIG, rng.randint(lo, hi), rng.randint(-1000, 100_000),
    ]  # fmt: skip
    v = rng.choice(cands)
    v = min(max(v, lo), hi)
    return v, _int_label(v, lo, hi)


def new_str(rng: random.Random, old: str, pool: Callable[[random.Random], str]) -> tuple[str, str]:
    kind = rng.choice(
        [
            "empty", "long", "unicode", "nul", "control", "pad", "case", "date", "category",
            "known", "known", "truncate", "double", "random",
        ]
    )  # fmt: skip
    if kind == "empty":
        return "", kind
    if kind == "long":
        n = rng.choice([64, 65, 128, 129, 200, 201, 6000])
        return ((old or "x") * (n // max(len(old), 1) + 1))[:n], kind
    if kind == "unicode":
        u = rng.choice(UNICODE)
        return rng.choice([u, old + u, u + old]), kind
    if kind in ("nul", "control"):
        c = "\x00" if kind == "nul" else rng.choice(CONTROL)
        i = rng.randint(0, len(old))
        return old[:i] + c + old[i:], kind
    if kind == "pad":
        return rng.choice([" ", "\t", "\u3000"]) + old + rng.choice(["", " "]), kind
    if kind == "case":
        return old.swapcase(), kind
    if kind == "date":
        return rng.choice(ODD_DATES), kind
    if kind == "category":
        return rng.choice(ODD_CATEGORIES), kind
    if kind == "known":
        return pool(rng), kind
    if kind == "truncate":
        return old[: rng.randint(0, max(len(old) - 1, 0))], kind
    if kind == "double":
        return old + old, kind
    n = rng.choice([1, 8, 64])
    return "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(n)), kind


def _pick(rng: random.Random, msg: Message, path: str) -> tuple[str, Message, Any, int, str]:
    """A random place in ``msg``: a walk down from the top, each level choosing one of its
    fields (or going into a set sub-message or a repeated element)."""
    cands: list[tuple[str, Any]] = []
    for f in msg.DESCRIPTOR.fields:
        if f.is_repeated:
            cands.append(("rep", f))
            if len(getattr(msg, f.name)):
                cands.append(("into" if f.type == FD.TYPE_MESSAGE else "elem", f))
        elif f.type == FD.TYPE_MESSAGE:
            cands.append(("msg", f))
            if msg.HasField(f.name):
                cands.append(("into", f))
                cands.append(("into", f))
        else:
            cands.append(("scalar", f))
    kind, f = rng.choice(cands)
    p = f"{path}.{f.name}" if path else f.name
    if kind == "into":
        if f.is_repeated:
            seq = getattr(msg, f.name)
            return _pick(rng, seq[rng.randrange(len(seq))], p)
        return _pick(rng, getattr(msg, f.name), p)
    if kind == "elem":
        return "elem", msg, f, rng.randrange(len(getattr(msg, f.name))), p
    if kind == "rep":
        return "rep", msg, f, -1, p + "[]"
    if kind == "msg":
        return "msg", msg, f, -1, p + "{}"
    return "scalar", msg, f, -1, p


def _set_scalar(
    rng: random.Random, msg: Message, f: Any, old: Any, pool: Callable[[random.Random], str]
) -> tuple[Any, str]:
    if f.type == FD.TYPE_STRING:
        return new_str(rng, old, pool)
    if f.type == FD.TYPE_BOOL:
        return (not old), "flip"
    if f.type == FD.TYPE_ENUM:
        v = rng.choice([-1, 0, 1, 2, 3, 7, 2**31 - 1])
        return v, f"enum{v}"
    if f.type == FD.TYPE_BYTES:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 16))), "bytes"
    if f.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e300]), "float"
    return new_int(rng, int(old), f)


def mutate(rng: random.Random, msg: Message, pool: Callable[[random.Random], str]) -> str:
    """One structural mutation of ``msg`` in place; its label."""
    kind, parent, f, i, path = _pick(rng, msg, "")
    if kind == "msg":
        op = rng.choice(["clear", "empty"])
        if op == "clear":
            parent.ClearField(f.name)
        else:
            getattr(parent, f.name).SetInParent()
            getattr(parent, f.name).Clear()
        return f"{path}:{op}"
    if kind == "scalar":
        if f.has_presence and rng.random() < 0.2:
            parent.ClearField(f.name)
            return f"{path}:unset"
        v, label = _set_scalar(rng, parent, f, getattr(parent, f.name), pool)
        setattr(parent, f.name, v)
        return f"{path}:{label}"
    seq = getattr(parent, f.name)
    if kind == "elem":
        v, label = _set_scalar(rng, parent, f, seq[i], pool)
        seq[i] = v
        return f"{path}[i]:{label}"
    # a whole repeated field
    n = len(seq)
    op = rng.choice(["clear", "drop", "dup", "grow", "reverse", "append", "append"])
    if op == "clear" or (n == 0 and op in ("drop", "dup", "grow", "reverse")):
        parent.ClearField(f.name)
        return f"{path}:clear"
    if op == "drop":
        del seq[rng.randrange(n)]
    elif op in ("dup", "grow"):
        k = 1 if op == "dup" else rng.choice([3, 10, 50])
        j = rng.randrange(n)
        for _ in range(k):
            if f.type == FD.TYPE_MESSAGE:
                seq.add().CopyFrom(seq[j])
            else:
                seq.append(seq[j])
    elif op == "reverse":
        items = list(seq)
        parent.ClearField(f.name)
        if f.type == FD.TYPE_MESSAGE:
            for m in reversed(items):
                getattr(parent, f.name).add().CopyFrom(m)
        else:
            getattr(parent, f.name).extend(reversed(items))
    else:  # append an extreme or empty element
        if f.type == FD.TYPE_MESSAGE:
            seq.add()
            op = "append_empty"
        else:
            v, label = _set_scalar(rng, parent, f, seq[-1] if n else _zero(f), pool)
            seq.append(v)
            op = f"append_{label}"
    return f"{path}:{op}"


def _zero(f: Any) -> Any:
    return "" if f.type == FD.TYPE_STRING else False if f.type == FD.TYPE_BOOL else 0


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    kind = rng.choice(
        ["random", "ff", "flip", "flip", "truncate", "insert", "overwrite", "concat", "garbage"]
    )
    if kind == "random":
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 8, 64, 512]))), kind
    if kind == "ff":
        return rng.choice([b"\xff", b"\xff" * rng.randint(2, 64), data + b"\xff"]), kind
    b = bytearray(data)
    if kind == "flip" and b:
        for _ in range(rng.choice([1, 1, 2, 4, 8])):
            j = rng.randrange(len(b) * 8)
            b[j // 8] ^= 1 << (j % 8)
    elif kind == "truncate":
        del b[rng.randint(0, max(len(b) - 1, 0)) :]
    elif kind == "insert":
        j = rng.randint(0, len(b))
        b[j:j] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    elif kind == "overwrite" and b:
        b[rng.randrange(len(b))] = rng.choice([0x00, 0x80, 0xFF, 0x7F, 0x0A, 0x12])
    elif kind == "concat":
        b += data
    elif kind == "garbage":  # an unknown field, a wrong wire type, a huge length prefix
        b += rng.choice([b"\xf8\x07\x01", b"\x0a\xff\xff\xff\xff\x0f", b"\x08\x80", b"\x7a"])
    return bytes(b), f"bytes:{kind}"


#: A small valid table of its own region (so that no acknowledged PutPolicy replaces the
#: tables the settlement phase used or the probe's)
TINY_TABLE = """\
region: {code: "990009", name: "fuzz county"}
effective_from: 2030-01-01
effective_to: 2030-12-31
hospital_levels: [l1, l2]
tags: [poor]
b_selfpay_ratio: 1000
layers:
  - {id: basic, name: basic, fund_code: "390100", kind: reimburse,
     variants: [{deductible: {basis: admission, amount: 30000}, segments: [{ratio: 7000}]}]}
  - {id: backstop, name: backstop, fund_code: "640100", kind: backstop,
     eligibility: {tags_any: [poor]}, variants: [{max_share: 1000, annual_ceiling: 500000}]}
"""

YAML_KEYS = ["foo", "layers", "variants", "segments", "region", "when", "tags", "<<", "~"]


def mutate_yaml(rng: random.Random, text: str) -> tuple[str, str]:
    """A textual edit of a policy table (bounded: nothing that costs seconds to parse)."""
    lines = text.split("\n")
    kind = rng.choice(
        [
            "number", "number", "number", "del_line", "dup_line", "swap_lines", "indent", "tab",
            "unknown_key", "deep", "alias", "tag", "bom", "docs", "region", "dates", "empty",
        ]
    )  # fmt: skip
    j = rng.randrange(len(lines))
    if kind == "number":
        nums = list(re.finditer(r"(?<![\w.-])\d+(?![\w.-])", text))
        if nums:
            m = rng.choice(nums)
            v = rng.choice(["-1", "0", "10001", "99999999999999999999", "1e3", "0x10", "1_000",
                            "9223372036854775808", "-9223372036854775809", ".5", "null"])  # fmt: skip
            return text[: m.start()] + v + text[m.end() :], "yaml:number"
    elif kind == "del_line":
        del lines[j]
    elif kind == "dup_line":
        lines.insert(j, lines[j])
    elif kind == "swap_lines":
        k = rng.randrange(len(lines))
        lines[j], lines[k] = lines[k], lines[j]
    elif kind == "indent":
        lines[j] = rng.choice(["  ", " ", "\t"]) + lines[j]
    elif kind == "tab":
        lines[j] = lines[j].replace("  ", "\t", 1)
    elif kind == "unknown_key":
        lines.insert(j, f"{rng.choice(YAML_KEYS)}: {rng.choice(['1', '[]', '{}', 'x', ''])}")
    elif kind == "deep":
        d = rng.choice([10, 100, 500, 2000])
        return text + f"\nx: {'[' * d}{']' * d}\n", f"yaml:deep{d}"
    elif kind == "alias":  # bounded: two levels of small lists
        return (
            text + "\nq0: &a [1, 2, 3]\nq1: &b [*a, *a, *a]\nq2: [*b, *b]\n",
            "yaml:alias_small",
        )
    elif kind == "tag":
        lines.insert(j, rng.choice(["x: !!python/object/apply:os.system ['true']",
                                    "x: !!binary aGVsbG8=", "x: !custom 1", "x: !!set {a}"]))  # fmt: skip
    elif kind == "bom":
        return "\ufeff" + text, "yaml:bom"
    elif kind == "docs":
        return text + "\n---\n" + text, "yaml:two_docs"
    elif kind == "region":
        return re.sub(
            r'code: "[^"]*"', f'code: "{rng.choice(["", "x", "1" * 70, "新"])}"', text, count=1
        ), "yaml:region"
    elif kind == "dates":
        return re.sub(
            r"effective_from: \S+", f"effective_from: {rng.choice(ODD_DATES) or '~'}", text, count=1
        ), "yaml:effective_from"
    elif kind == "empty":
        return rng.choice(["", "~", "[]", "{}", "x", "- 1\n- 2"]), "yaml:not_a_table"
    return "\n".join(lines), f"yaml:{kind}"


# --------------------------------------------------------------------------- generators


@dataclass
class Pools:
    """What the server acknowledged so far, for ids drawn by later requests (thread-safe
    enough for one event loop)."""

    settlement_ids: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    settle_bytes: list[bytes] = field(default_factory=list)
    versions: int = 1
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def remember(self, pool: list[Any], x: Any, cap: int = 20_000) -> None:
        """Append, or past ``cap`` replace a random entry (bounded memory at nightly size)."""
        if len(pool) < cap:
            pool.append(x)
        else:
            pool[self.rng.randrange(cap)] = x


class Generator:
    """Valid seed requests per method and their mutations. ``make(method, rng)`` returns
    (list of message bytes, label): one message for unary methods, 1-3 for a stream."""

    def __init__(self, corpus: Corpus, pools: Pools, *, tag: str):
        self.c = corpus
        self.p = pools
        self.tag = tag  # keeps ids of this run apart from the ones of another phase
        self.static = [
            corpus.levels, corpus.regions, corpus.tags, [x["id"] for x in corpus.persons],
            [x["household"] for x in corpus.persons], [b["id"] for b in corpus.bills],
        ]  # fmt: skip
        self.bill_pb = [cv.bill_to_pb(b) for b in corpus.bills]  # built once: 10x faster
        self.packed_one = [pack_bills([b], ["r"], unit_price=True) for b in corpus.bills]
        mx = dict(corpus.bills[0])
        mx["items"] = [{"code": "MAX", "name": "max", "category": "A", "amount": 10**12}] * 10
        self.max_pb = cv.bill_to_pb(mx)

    # --- pools of plausible strings
    def known(self, rng: random.Random) -> str:
        p = self.p
        choices = list(self.static)
        if p.settlement_ids:
            choices.append(p.settlement_ids)
        if p.request_ids:
            choices.append(p.request_ids)
        return rng.choice(rng.choice(choices))

    def _bill(self, rng: random.Random, k: int) -> pb.Bill:
        i = rng.randrange(len(self.bill_pb))
        b = pb.Bill()
        b.CopyFrom(self.bill_pb[i])
        b.id = f"{b.id}~{self.tag}{k}"
        return b

    def _packed(self, rng: random.Random, n: int, k: int, rids: list[str]) -> pb.PackedBills:
        """``n`` sample bills as one packed message, from cached one-bill columns."""
        out = pb.PackedBills(item_offsets=[0], request_ids=rids)
        levels: dict[str, int] = {}
        price = rng.random() < 0.3
        regions = []
        for j in range(n):
            one = self.packed_one[rng.randrange(len(self.packed_one))]
            out.bill_ids.append(f"{one.bill_ids[0]}~{self.tag}{k}-{j}")
            out.person_ids.append(one.person_ids[0])
            out.level_index.append(levels.setdefault(one.levels[0], len(levels)))
            out.admission_dates.append(one.admission_dates[0])
            out.discharge_dates.append(one.discharge_dates[0])
            regions.append(one.regions[0] if one.regions else "")
            out.category.extend(one.category)
            out.qty_e4.extend(one.qty_e4)
            out.amount.extend(one.amount)
            out.unit_price_cap.extend(one.unit_price_cap or [-1] * len(one.amount))
            out.selfpay_ratio.extend(one.selfpay_ratio or [-1] * len(one.amount))
            if price:
                out.unit_price.extend(one.unit_price)
            out.item_offsets.append(len(out.amount))
        out.levels.extend(levels)
        if any(regions):
            out.regions.extend(regions)
        return out

    def seed(self, method: str, rng: random.Random) -> tuple[Message, str]:
        k = next(self.p.counter)
        p = self.p
        if method == "PreSettle":
            return pb.PreSettleRequest(bill=self._bill(rng, k)), ""
        if method == "Settle":
            if p.settle_bytes and rng.random() < 0.04:
                return pb.SettleRequest.FromString(rng.choice(p.settle_bytes)), "replay:"
            b = self._bill(rng, k)
            label = ""
            if rng.random() < 0.03:  # a maximum-size bill, always the same person
                b = pb.Bill()
                b.CopyFrom(self.max_pb)
                b.id = f"max~{self.tag}{k}"
                label = "max_bill:"
            return pb.SettleRequest(request_id=f"fz-{self.tag}{k}", bill=b), label
        if method == "Reverse":
            r = pb.ReverseRequest()
            if p.settlement_ids and rng.random() < 0.5:
                r.settlement_id = rng.choice(p.settlement_ids)
            elif p.request_ids:
                r.request_id = rng.choice(p.request_ids)
            if rng.random() < 0.5:
                r.reversal_request_id = f"rv-{self.tag}{k}"
            return r, ""
        if method == "GetSettlement":
            g = pb.GetSettlementRequest()
            if p.settlement_ids and rng.random() < 0.5:
                g.settlement_id = rng.choice(p.settlement_ids)
            elif p.request_ids:
                g.request_id = rng.choice(p.request_ids)
            return g, ""
        if method in ("ListSettlements", "GetAccounts"):
            cls = (
                pb.ListSettlementsRequest if method == "ListSettlements" else pb.GetAccountsRequest
            )
            m = cls(person_id=rng.choice(self.c.persons)["id"])
            roll = rng.random()
            if method == "ListSettlements" and roll < 0.8:
                # ListSettlements has no paging: a person's whole history costs ~0.1 ms per
                # settlement to answer, so most calls name a person or year with few of them
                if roll < 0.4:
                    m.person_id = JIANG["id"]
                else:
                    m.year = rng.choice([2016, 2020])
            elif roll < 0.9:
                m.year = rng.choice([2017, 2018, 2019])
            return m, ""
        if method == "PutPolicy":
            # mostly a small table (a real one costs ~100 ms of YAML parsing per call), and
            # mostly one that overlaps the stored one (refused after every check): each stored
            # version makes every later PutPolicy slower (it reads them all)
            roll = rng.random()
            name, text = "tiny.yaml", TINY_TABLE
            if roll < 0.01:
                name, text = rng.choice(sorted(self.c.tables.items()))
            elif roll > 0.03:
                day = f"2030-{rng.randint(2, 12):02d}-{rng.randint(1, 28):02d}"
                text = text.replace("effective_from: 2030-01-01", f"effective_from: {day}")
            return pb.PutPolicyRequest(yaml=text, source_name=f"fz-{self.tag}{k}-{name}"), ""
        if method == "ListPolicies":
            return pb.ListPoliciesRequest(region=rng.choice(["", *self.c.regions])), ""
        if method == "GetPolicy":
            return pb.GetPolicyRequest(version=rng.randint(1, p.versions + 1)), ""
        if method == "ImportRegistry":
            ps = [dict(x) for x in rng.sample(self.c.persons, rng.randint(1, 3))]
            if rng.random() < 0.5:
                for x in ps:
                    x["id"] = f"fzp-{self.tag}{k}-{x['id']}"
            return pb.ImportRegistryRequest(persons=[cv.person_to_pb(x) for x in ps]), ""
        raise ValueError(method)

    def stream_seed(self, form: str, rng: random.Random) -> pb.SettleStreamRequest:
        mode = rng.choice([pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE])
        k = next(self.p.counter)
        n = rng.choice([1, 1, 2, 3, 5])
        rids = [f"fs-{self.tag}{k}-{i}" for i in range(n)]
        req = pb.SettleStreamRequest(mode=mode, packed_results=rng.random() < 0.3)
        if form.endswith("packed"):
            req.packed.CopyFrom(self._packed(rng, n, k, rids))
        else:
            req.bills.bills.extend(
                pb.SettleRequest(request_id=r, bill=self._bill(rng, k * 10 + i))
                for i, r in enumerate(rids)
            )
        return req

    def _mutated(
        self, rng: random.Random, msg: Message, label: str, yaml: bool
    ) -> tuple[bytes, str]:
        r = rng.random()
        if label == "max_bill:" and r < 0.7:  # enough of them to reach the account limits
            return msg.SerializeToString(), label + "valid"
        if r < 0.08:  # valid, unchanged: the server must accept it (or refuse it properly)
            return msg.SerializeToString(), label + "valid"
        labels = []
        if r < 0.75:
            for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 5])):
                if yaml and rng.random() < 0.6:
                    msg.yaml, lab = mutate_yaml(rng, msg.yaml)
                    labels.append(lab)
                else:
                    labels.append(mutate(rng, msg, self.known))
            return msg.SerializeToString(), label + "+".join(labels)
        data, lab = mutate_bytes(rng, msg.SerializeToString())
        return data, label + lab

    def make(self, method: str, rng: random.Random) -> tuple[list[bytes], str]:
        if method in STREAMS:
            msgs, labels = [], []
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                data, lab = self._mutated(rng, self.stream_seed(method, rng), "", False)
                msgs.append(data)
                labels.append(lab)
            return msgs, " | ".join(labels)
        msg, label = self.seed(method, rng)
        data, lab = self._mutated(rng, msg, label, method == "PutPolicy")
        return [data], lab


# --------------------------------------------------------------------------- outcomes


@dataclass
class Call:
    """One request (or stream message) and what came back."""

    method: str
    index: int
    label: str
    request: bytes
    code: grpc.StatusCode
    details: str = ""
    status_bytes: int = 0
    response: bytes = b""
    seconds: float = 0.0
    stream_pos: int = 0  # position of the message in its stream
    stream: tuple[bytes, ...] = ()  # every message of the stream (stream calls)
    violations: tuple[str, ...] = ()
    cause: str = ""  # for INTERNAL: the exception in the server log


def _norm(s: str) -> str:
    """A message with ids, numbers and quoted values blurred, to group failures."""
    s = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", s)
    s = re.sub(r"[0-9a-f]{12,}", "…", s)
    return re.sub(r"\d+", "N", s)[:120]


def _kinds(label: str) -> list[str]:
    """The mutations of a label, without the request-specific parts."""
    return sorted({re.sub(r"\[i\]", "", x.strip()) for x in label.split("+") if x.strip()})


@dataclass
class Report:
    seed: int
    calls: Counter[str] = field(default_factory=Counter)
    codes: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: dict[tuple[str, str, str], list[Call]] = field(default_factory=dict)
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # store / replay checks
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    biggest: Counter[str] = field(default_factory=Counter)
    internal: list[Call] = field(default_factory=list)  # regrouped by ``causes``
    kinds: dict[tuple[str, str, str], Counter[str]] = field(default_factory=dict)
    slowest: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, c: Call) -> None:
        self.calls[c.method] += 1
        self.seconds[c.method] += c.seconds
        self.slowest[c.method] = max(self.slowest[c.method], c.seconds)
        self.codes[(c.method, c.code.name)] += 1
        why = ""
        if c.code != grpc.StatusCode.OK and c.code not in REFUSALS:
            why = c.code.name
        elif c.status_bytes > MAX_STATUS_BYTES:
            why = f"{c.code.name} with status message + trailers over {MAX_STATUS_BYTES} bytes"
            self.biggest[c.method] = max(self.biggest[c.method], c.status_bytes)
        if why == "INTERNAL" and "incident" in c.details:  # light copies: nightly runs are big
            self.internal.append(
                Call(
                    c.method,
                    c.index,
                    c.label[:300],
                    c.request[:400],
                    c.code,
                    c.details,
                    stream_pos=c.stream_pos,
                )
            )
        if why:
            key = (c.method, why, _norm(c.details) if "over" not in why else "")
            self.counts[key] += 1
            self.kinds.setdefault(key, Counter()).update(_kinds(c.label))
            ex = self.failures.setdefault(key, [])
            if len(ex) < 3:
                ex.append(c)

    def causes(self, log: str) -> None:
        """Regroup the INTERNAL failures by the exception the server logged for their
        incident, and attach it to each example."""
        found: dict[str, str] = {}
        stamp = re.compile(r"\n\d{4}-\d\d-\d\d ")
        exc = re.compile(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b.*$", re.M)
        for m in re.finditer(r"internal error, incident ([0-9a-f]{12})\n", log):
            end = stamp.search(log, m.end())
            block = log[m.end() : end.start() if end else len(log)]
            lines = [x.group(0) for x in exc.finditer(block)]
            found[m.group(1)] = (lines[-1] if lines else "")[:240]
        for key in [k for k in self.failures if "incident" in k[2]]:
            del self.failures[key]
            kinds = self.kinds.pop(key, Counter())
            del kinds
            self.counts.pop(key, None)
        for c in self.internal:
            hit = re.search(r"incident ([0-9a-f]{12})", c.details)
            c.cause = found.get(hit.group(1), "") if hit else ""
            key = (c.method, "INTERNAL", "server log: " + _norm(c.cause or "(not found)"))
            self.counts[key] += 1
            self.kinds.setdefault(key, Counter()).update(_kinds(c.label))
            ex = self.failures.setdefault(key, [])
            if len(ex) < 3:
                ex.append(c)

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)

    @property
    def failed(self) -> bool:
        return bool(self.failures or self.problems)

    def text(self) -> str:
        out = [f"fuzz seed {self.seed} (rerun: ONESTOP_FUZZ_SEED={self.seed})"]
        out.append(
            "requests per method (mean / slowest ms): "
            + ", ".join(
                f"{m} {n} ({self.codes[(m, 'OK')]} OK; "
                f"{1000 * self.seconds[m] / n:.1f}/{1000 * self.slowest[m]:.0f})"
                for m, n in self.calls.items()
            )
        )
        for (method, why, msg), exs in sorted(self.failures.items(), key=lambda kv: kv[0]):
            n = self.counts[(method, why, msg)]
            big = f" (largest {self.biggest[method]} bytes)" if "over" in why else ""
            out.append(f"- {method}: {why} x{n}{big}: {msg!r}")
            top = self.kinds[(method, why, msg)].most_common(6)
            out.append("    mutations: " + ", ".join(f"{k} x{v}" for k, v in top))
            for c in exs:
                hexed = c.request[:160].hex()
                more = "…" if len(c.request) > 160 else ""
                out.append(
                    f"    #{c.index} [{c.label[:160]}] msg {c.stream_pos} "
                    f"details={c.details[:160]!r} request={hexed}{more} ({len(c.request)} bytes)"
                )
                if c.cause:
                    out.append(f"      server log: {c.cause}")
        for p in self.problems:
            out.append(f"- check: {p}")
        return "\n".join(out)


# --------------------------------------------------------------------------- client


def _status_size(err: Any) -> int:
    n = len((err.details() or "").encode())
    for k, v in err.trailing_metadata() or ():
        n += len(k) + len(v if isinstance(v, bytes) else v.encode())
    return n


CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 512 * 1024 * 1024),
    ("grpc.max_send_message_length", 512 * 1024 * 1024),
    ("grpc.max_metadata_size", 16 * 1024 * 1024),  # receive oversized trailers to measure them
    ("grpc.absolute_max_metadata_size", 16 * 1024 * 1024),
]


async def _unary(channel: grpc.aio.Channel, method: str, data: bytes) -> Call:
    mc = channel.unary_unary(UNARY[method][0])
    t0 = time.monotonic()
    try:
        resp = await mc(data, timeout=DEADLINE_S)
        return Call(method, 0, "", data, grpc.StatusCode.OK, response=resp,
                    seconds=time.monotonic() - t0)  # fmt: skip
    except grpc.aio.AioRpcError as err:
        return _failed(method, data, err, t0)


def _failed(method: str, data: bytes, err: Any, t0: float) -> Call:
    from adapters.grpc.errors import bad_request

    try:
        v = tuple(f for f, _ in bad_request(err))
    except Exception:
        v = ()
    return Call(
        method, 0, "", data, err.code(), details=err.details() or "",
        status_bytes=_status_size(err), seconds=time.monotonic() - t0, violations=v,
    )  # fmt: skip


def _stream(channel: grpc.Channel, method: str, msgs: list[bytes]) -> list[Call]:
    """One stream carrying ``msgs`` (all written at once: the server answers TRIAL messages
    in pipelined pairs, see ``interactive_trial``). Response i answers message i; the status
    that ends the stream belongs to the first unanswered message, later ones are not counted.

    The synchronous client, run in a thread: the asyncio client, when the server ends the
    stream while it is still writing messages, reports INTERNAL "Internal error from Core"
    instead of the server's status (about 1 in 4 times), which is the client's fault."""
    mc = channel.stream_stream(STREAM_PATH)
    out: list[Call] = []
    t0 = time.monotonic()
    try:
        for resp in mc(iter(msgs), timeout=DEADLINE_S * len(msgs)):
            i = len(out)
            out.append(Call(method, 0, "", msgs[i] if i < len(msgs) else b"", grpc.StatusCode.OK,
                            response=resp, seconds=time.monotonic() - t0, stream_pos=i))  # fmt: skip
        if len(out) != len(msgs):
            out.append(Call(method, 0, f"{len(out)} responses to {len(msgs)} messages", b"",
                            grpc.StatusCode.UNKNOWN, details="response count",
                            stream_pos=len(out)))  # fmt: skip
    except grpc.RpcError as err:
        c = _failed(method, msgs[len(out)] if len(out) < len(msgs) else b"", err, t0)
        c.stream_pos = len(out)
        out.append(c)
    for c in out:
        c.stream = tuple(msgs)
    return out


async def interactive_trial(target: str) -> str:
    """A client that sends one TRIAL message and waits for its answer before sending more
    (a normal way to use a bidirectional stream): '' if answered within DEADLINE_S."""
    from adapters.grpc import convert as cv

    msg = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_TRIAL,
        bills=pb.BillList(bills=[pb.SettleRequest(bill=cv.bill_to_pb(YUBEI_BILL))]),
    )
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        call = channel.stream_stream(STREAM_PATH)(timeout=DEADLINE_S)
        try:
            await call.write(msg.SerializeToString())
            resp = await call.read()
            if resp is grpc.aio.EOF:
                return f"stream ended: {(await call.code()).name}"
            await call.done_writing()
            return ""
        except grpc.aio.AioRpcError as err:
            return (
                f"SettleStream: a TRIAL message waiting for its answer before the next one got "
                f"{err.code().name} after {DEADLINE_S:.0f} s (the answer is held until a second "
                "message or the end of the stream)"
            )


@dataclass
class Acks:
    """Everything the server said it did (or may have done, after an unknown outcome)."""

    settled: list[tuple[str, str, pb.SettlementResult | None]] = field(default_factory=list)
    replays: list[tuple[str, pb.SettlementResult | None]] = field(default_factory=list)
    packed: list[tuple[str, int, int, int]] = field(
        default_factory=list
    )  # sid, total, window, funds
    reversed: set[str] = field(default_factory=set)
    unknown_rids: set[str] = field(default_factory=set)  # writes allowed, outcome unknown
    unknown_sids: set[str] = field(default_factory=set)
    unknown_admin: bool = False
    refused_streams: list[tuple[list[str], int | None]] = field(default_factory=list)
    policies: dict[int, tuple[str, str]] = field(default_factory=dict)  # version -> text, source
    persons: list[pb.Person] = field(default_factory=list)


def _parse(cls: type[Message], data: bytes) -> Message | None:
    try:
        return cls.FromString(data)
    except (DecodeError, RuntimeError, ValueError):
        return None


def _stream_rids(data: bytes) -> list[str]:
    m = _parse(pb.SettleStreamRequest, data)
    if m is None or m.mode != pb.STREAM_MODE_SETTLE:
        return []
    if m.WhichOneof("payload") == "packed":
        return list(m.packed.request_ids)
    if m.WhichOneof("payload") == "bills":
        return [b.request_id for b in m.bills.bills]
    return []


def record_ack(c: Call, acks: Acks, pools: Pools) -> None:
    """What an answered call wrote, by its response (OK) or the request (unknown outcome)."""
    ok = c.code == grpc.StatusCode.OK
    unknown = c.code in UNKNOWN_OUTCOME  # INTERNAL, UNKNOWN: refused, must not have written
    if c.method == "Settle":
        req = _parse(pb.SettleRequest, c.request)
        if ok:
            r = pb.SettleResponse.FromString(c.response)
            sid, rid = r.settlement.settlement_id, r.settlement.request_id
            keep = len(acks.settled) < KEEP_ANSWERS  # answers compared: the first ones
            if r.replay:
                acks.replays.append((sid, r.settlement.result if keep else None))
            else:
                acks.settled.append((sid, rid, r.settlement.result if keep else None))
                pools.remember(pools.settle_bytes, c.request)
            pools.remember(pools.settlement_ids, sid)
            pools.remember(pools.request_ids, rid)
        elif unknown and req is not None:
            acks.unknown_rids.add(req.request_id)
    elif c.method == "Reverse":
        if ok:
            r = pb.ReverseResponse.FromString(c.response)
            if not r.replay:
                acks.reversed.add(r.settlement.settlement_id)
        elif unknown:
            req = _parse(pb.ReverseRequest, c.request)
            if req is not None:
                acks.unknown_sids.add(req.settlement_id)
                acks.unknown_rids.add("reverse-by:" + req.request_id)
    elif c.method.startswith("SettleStream"):
        rids = _stream_rids(c.request)
        if ok and rids:
            r = pb.SettleStreamResponse.FromString(c.response)
            for i, (sid, again) in enumerate(zip(r.settlement_ids, r.replay, strict=False)):
                res = r.results[i] if len(r.results) > i else None
                res = res if len(acks.settled) < KEEP_ANSWERS else None
                if again:
                    acks.replays.append((sid, res))
                else:
                    acks.settled.append((sid, rids[i], res))
                    if res is None and len(r.packed.total) > i:
                        p = r.packed
                        acks.packed.append((sid, p.total[i], p.window_pay[i], p.funds_total[i]))
                pools.remember(pools.settlement_ids, sid)
                pools.remember(pools.request_ids, rids[i])
        elif unknown:
            acks.unknown_rids.update(rids)
        elif rids:
            j = None
            for v in c.violations:
                m = re.match(r"bills\[(\d+)\]", v)
                if m:
                    j = int(m.group(1)) if j is None else min(j, int(m.group(1)))
            acks.refused_streams.append((rids, j))
    elif c.method == "PutPolicy":
        if ok:
            v = pb.PutPolicyResponse.FromString(c.response).policy
            req = pb.PutPolicyRequest.FromString(c.request)
            if not (v.unchanged or req.dry_run):  # those store nothing (answered as stored)
                acks.policies[v.version] = (req.yaml, req.source_name or "<request>")
                pools.versions = max(pools.versions, v.version)
        elif unknown:
            acks.unknown_admin = True
    elif c.method == "ImportRegistry":
        if ok:
            acks.persons.extend(pb.ImportRegistryRequest.FromString(c.request).persons)
        elif unknown:
            acks.unknown_admin = True


async def fuzz_phase(
    target: str,
    gen: Generator,
    methods: list[str],
    n: int,
    report: Report,
    acks: Acks,
    *,
    workers: int = 3,
) -> None:
    """``n`` requests (stream messages) to each method, ``workers`` in flight per method."""
    sync = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        await channel.channel_ready()

        async def worker(method: str, rng: random.Random, sent: list[int]) -> None:
            while report.calls[method] < n:
                msgs, label = gen.make(method, rng)
                index = sent[0]
                sent[0] += len(msgs)
                if method in UNARY:
                    calls = [await _unary(channel, method, msgs[0])]
                else:
                    calls = await asyncio.to_thread(_stream, sync, method, msgs)
                labels = label.split(" | ")
                for c in calls:
                    c.index = index + c.stream_pos
                    c.label = labels[min(c.stream_pos, len(labels) - 1)] + (
                        f" [{c.label}]" if c.label else ""
                    )
                    report.add(c)
                    record_ack(c, acks, gen.p)

        tasks = []
        for method in methods:
            sent = [0]
            for w in range(workers):
                rng = random.Random(f"{report.seed}:{method}:{gen.tag}:{w}")
                tasks.append(asyncio.create_task(worker(method, rng, sent)))
        try:
            await asyncio.gather(*tasks)
        finally:
            sync.close()


# --------------------------------------------------------------------------- the server


@contextlib.contextmanager
def server_process(url: str, root: Path, corpus: Corpus) -> Iterator[tuple[str, Path]]:
    """``onestop serve`` in its own process over ``url`` with the corpus's tables and
    registry; yields (target, log path) once SERVING; SIGTERM at the end."""
    pol, reg = corpus.write_server_inputs(root)
    log = root / "server.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def popen(port: int) -> subprocess.Popen:
        cmd = [
            sys.executable, "-m", "adapters.grpc.commands", "serve", "--db", url,
            "--port", str(port), "--policies", str(pol), "--registry", str(reg), "--grace", "2",
        ]  # fmt: skip
        with log.open("ab") as out:
            return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)

    proc, port = start_server(popen, log)
    try:
        target = f"127.0.0.1:{port}"
        with Client(target, timeout=10) as c:
            try:
                c.wait_serving(180)
            except TimeoutError:
                raise RuntimeError(f"server not SERVING: {log.read_text()[-3000:]}") from None
        yield target, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# --------------------------------------------------------------------------- the store


class StoreView:
    """Reads the store the server writes (its own connections; never writes)."""

    def __init__(self, url: str):
        from adapters.store.sql import SqlStore

        self.store = SqlStore(url, migrate=False)

    def close(self) -> None:
        self.store.dispose()

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: the store's whole content."""
        from adapters.store.schema import metadata

        out = {}
        with self.store.engine.connect() as conn:
            for t in metadata.sorted_tables:
                rows = conn.execute(sa.select(t)).fetchall()
                out[t.name] = sorted((tuple(map(_hashable, r)) for r in rows), key=repr)
        return out

    def records(self) -> list[Any]:
        with self.store.uow() as u:
            ids = [r[0] for r in u.run("SELECT settlement_id FROM settlements").fetchall()]
            return [u.settlements.by_id(i) for i in ids]

    def registry(self) -> dict[str, Any]:
        from engine.bill import Person

        with self.store.uow() as u:
            ids = [r[0] for r in u.run("SELECT person_id FROM persons").fetchall()]
            return {i: u.registry.get(i) for i in ids if isinstance(u.registry.get(i), Person)}

    def policies(self) -> Any:
        from engine.policy.policyset import PolicySet
        from engine.service.versions import effective

        with self.store.uow() as u:
            versions = effective(u.policies.all())
        return PolicySet.of([(f"version {v.version}", v.table) for v in versions])

    def accounts(self) -> tuple[dict[tuple[str, int], Any], dict[tuple[str, int], Any]]:
        with self.store.uow() as u:
            pk = u.run("SELECT person_id, year FROM person_years").fetchall()
            pk += u.run("SELECT person_id, year FROM person_year_layers").fetchall()
            hk = u.run("SELECT household_id, year FROM household_years").fetchall()
            hk += u.run("SELECT household_id, year FROM household_year_layers").fetchall()
            p = {(a, int(y)): u.accounts.person_year(a, int(y)) for a, y in set(pk)}
            h = {(a, int(y)): u.accounts.household_year(a, int(y)) for a, y in set(hk)}
        return p, h


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v


SETTLEMENT_TABLES = {"settlements", "settlement_moves", "settlement_layers"}
ACCOUNT_TABLES = {"person_years", "person_year_layers", "household_years", "household_year_layers"}
REGISTRY_TABLES = {"persons", "person_tags"}
POLICY_TABLES = {"policy_versions"}


def diff_tables(before: dict[str, Any], after: dict[str, Any], tables: set[str]) -> list[str]:
    out = []
    for t in sorted(tables):
        b, a = set(before.get(t, [])), set(after.get(t, []))
        if a != b:
            added, removed = sorted(a - b, key=repr), sorted(b - a, key=repr)
            out.append(
                f"table {t}: {len(added)} rows added, {len(removed)} removed, e.g. "
                f"{[repr(r)[:200] for r in (added or removed)[:2]]}"
            )
    return out


def _yearacc(a: Any) -> Any:
    return a.normalized() if a is not None else None


def _difference(a: Any, b: Any) -> str:
    """The first fields where two settlements differ (stored vs replay)."""
    out = []
    for name in ("window_pay", "net_selfpay", "funds_total", "admission_no", "buckets"):
        if getattr(a, name) != getattr(b, name):
            out.append(f"{name} {getattr(a, name)} vs {getattr(b, name)}")
    for x, y in zip(a.layers, b.layers, strict=False):
        if x != y:
            fields = [f for f in x.__dataclass_fields__ if getattr(x, f) != getattr(y, f)]
            out.append(
                f"layer {x.layer_id}: "
                + ", ".join(f"{f} {getattr(x, f)} vs {getattr(y, f)}" for f in fields[:4])
            )
    return "; ".join(out)[:600] or "(other fields)"


def check_settlements(view: StoreView, acks: Acks, before_ids: set[str], report: Report) -> int:
    """The settlements written since ``before_ids`` are exactly the acknowledged ones (plus
    the documented prefix of a refused SETTLE stream message, and unknown outcomes); reversals
    likewise; every settlement equals a serial replay through the reference in commit order,
    and the stored accounts equal the replay's. Returns the number of settlements replayed."""
    from engine.accounts import YearAccounts
    from engine.bill import parse_bill_request
    from engine.settle import settle_one, undo

    records = view.records()
    by_id = {r.settlement_id: r for r in records}
    by_rid = {r.request_id: r for r in records}
    acked_sids = {sid for sid, _, _ in acks.settled}
    acked_rids = {rid for _, rid, _ in acks.settled}
    for sid, rid, _ in acks.settled:
        if sid not in by_id:
            report.problem(f"acknowledged settlement {sid} (request {rid!r}) is not stored")
    # writes of refused SETTLE stream messages: only bills before the bad one
    allowed = set(acks.unknown_rids)
    for rids, bad in acks.refused_streams:
        # first occurrences only: a request id repeated in the message is a replay of it
        first = [i for i, r in enumerate(rids) if r not in rids[:i]]
        stored = [i for i in first if rids[i] in by_rid and rids[i] not in acked_rids
                  and by_rid[rids[i]].settlement_id not in before_ids]  # fmt: skip
        if stored and stored != first[: len(stored)]:
            report.problem(f"refused stream message {rids}: stored positions {stored} not a prefix")
            stored = []
        if bad is not None and any(i >= bad for i in stored):
            report.problem(
                f"refused stream message {rids}: bill {bad} was bad, yet {stored} stored"
            )
        allowed.update(rids[i] for i in stored)
    for r in records:
        if r.settlement_id in before_ids or r.settlement_id in acked_sids:
            continue
        if r.request_id not in allowed:
            report.problem(
                f"settlement {r.settlement_id} (request {r.request_id!r}, bill "
                f"{r.bill.get('id')!r}) was stored but never acknowledged"
            )
    for r in records:
        if (
            r.status == "reversed"
            and r.settlement_id not in acks.reversed
            and r.settlement_id not in acks.unknown_sids
            and "reverse-by:" + r.request_id not in acks.unknown_rids
        ):
            report.problem(f"settlement {r.settlement_id} reversed but never acknowledged")
    for sid in acks.reversed:
        if sid in by_id and by_id[sid].status != "reversed":
            report.problem(f"acknowledged reversal of {sid} is not stored")

    # serial replay through the reference, in commit order
    persons = view.registry()
    policies = view.policies()
    events = [(r.created_at, 0, r) for r in records]
    events += [(r.reversed_at, 1, r) for r in records if r.status == "reversed"]
    events.sort(key=lambda e: (e[0], e[1]))
    pacc: dict[tuple[str, int], Any] = {}
    hacc: dict[tuple[str, int], Any] = {}
    moves: dict[str, Any] = {}
    ref: dict[str, Any] = {}
    for _, kind, r in events:
        s = r.settlement
        pk, hk = (s.person_id, s.year), (s.household, s.year)
        if kind == 1:
            if r.settlement_id in moves:
                pm, hm = moves[r.settlement_id]
                pacc[pk] = undo(pacc.get(pk, YearAccounts()), pm, 1)
                hacc[hk] = undo(hacc.get(hk, YearAccounts()), hm, 0)
            continue
        try:
            bill = parse_bill_request(r.bill).with_person(persons[s.person_id])
            out = settle_one(
                bill, policies, pacc.get(pk, YearAccounts()), hacc.get(hk, YearAccounts()),
                engine="reference",
            )  # fmt: skip
        except Exception as exc:
            report.problem(f"settlement {r.settlement_id}: the reference refuses it: {exc!r:.300}")
            continue
        if out.settlement != s:
            report.problem(
                f"settlement {r.settlement_id} (bill {s.bill_id!r}, person {s.person_id!r}, "
                f"admission {s.admission_no}) differs from the serial replay: "
                + _difference(s, out.settlement)
            )
        pacc[pk], hacc[hk] = out.person_after, out.household_after
        moves[r.settlement_id] = (out.person_moves, out.household_moves)
        ref[r.settlement_id] = out.settlement
    # what the server answered equals what it stored (and the replay)
    for sid, _, res in acks.settled + [(sid, "", res) for sid, res in acks.replays]:
        if res is not None and sid in ref and cv.settlement_from_pb(res) != ref[sid]:
            report.problem(f"settlement {sid}: the answer differs from the serial replay")
    for sid, total, window, funds in acks.packed:
        s = ref.get(sid)
        if s is not None and (s.buckets.total, s.window_pay, s.funds_total) != (
            total,
            window,
            funds,
        ):
            report.problem(f"settlement {sid}: the packed answer differs from the serial replay")
    sp, sh = view.accounts()
    for key in set(sp) | set(pacc):
        if _yearacc(sp.get(key, YearAccounts())) != _yearacc(pacc.get(key, YearAccounts())):
            report.problem(f"person accounts {key}: stored {sp.get(key)} != replay {pacc.get(key)}")
    for key in set(sh) | set(hacc):
        a, b = sh.get(key, YearAccounts()), hacc.get(key, YearAccounts())
        if _yearacc(YearAccounts(a.layers)) != _yearacc(YearAccounts(b.layers)):
            report.problem(f"household accounts {key}: stored {a} != replay {b}")
    return len(ref)


def check_admin(view: StoreView, before: dict[str, Any], acks: Acks, report: Report) -> None:
    """Policy versions: exactly the earlier ones plus one per acknowledged PutPolicy;
    persons: the earlier ones or an acknowledged import of them; nothing else changed."""
    after = view.snapshot()
    # PutPolicy serializes on a household_years row "policy:<region>" (year 0): expected for
    # the regions of acknowledged versions, a write of a refused request otherwise
    old = {r[0] for r in before["policy_versions"]}
    locks = {f"policy:{r[1]}" for r in after["policy_versions"] if r[0] not in old}
    had = set(before["household_years"])
    after_h = dict(
        after,
        household_years=[r for r in after["household_years"] if r in had or r[0] not in locks],
    )
    for p in diff_tables(before, after_h, SETTLEMENT_TABLES | ACCOUNT_TABLES):
        report.problem(f"admin phase: {p}")
    if acks.unknown_admin:
        return
    old = {r[0] for r in before["policy_versions"]}
    new = {r[0]: r for r in after["policy_versions"] if r[0] not in old}
    if set(new) != set(acks.policies):
        report.problem(
            f"policy versions written {sorted(new)[:20]} != acknowledged {sorted(acks.policies)[:20]}"
        )
    for v, (text, source) in acks.policies.items():
        row = new.get(v)
        if row is not None and (text not in row or source not in row):
            report.problem(f"policy version {v}: stored text or source differs from the request")
    persons = view.registry()
    was = {r[0] for r in before["persons"]}
    acked: dict[str, list[Any]] = {}
    for m in acks.persons:
        acked.setdefault(m.id, []).append(m)
    for pid in persons:
        if pid not in was and pid not in acked:
            report.problem(f"person {pid!r} was stored but never acknowledged")
    for pid in acked:
        if pid not in persons:
            report.problem(f"acknowledged person {pid!r} is not stored")
    changed = diff_tables(
        {"persons": [r for r in before["persons"] if r[0] not in acked]},
        {"persons": [r for r in after["persons"] if r[0] not in acked]},
        {"persons"},
    )
    for p in changed:
        report.problem(f"a person not acknowledged changed: {p}")


def probe(target: str, report: Report, what: str) -> None:
    """Health SERVING, and a normal PreSettle answered quickly."""
    with Client(target, timeout=DEADLINE_S) as c:
        try:
            status = c.status()
        except grpc.RpcError as err:
            status = f"{err.code().name}"
        if status != "SERVING":
            report.problem(f"{what}: health says {status}")
        t0 = time.monotonic()
        try:
            c.pre_settle(YUBEI_BILL)
        except grpc.RpcError as err:
            report.problem(f"{what}: the probe PreSettle failed: {err.code().name} {err.details()}")
        dt = time.monotonic() - t0
        if dt > 2.0:
            report.problem(f"{what}: the probe PreSettle took {dt:.1f} s")
    holder: list[str] = []

    async def interactive() -> None:
        holder.append(await interactive_trial(target))

    run_in_thread(interactive())
    if holder and holder[0]:
        report.problem(f"{what}: {holder[0]}")


def run_in_thread(coro: Any) -> None:
    """asyncio.run in a fresh thread (pytest may already have a loop in this one)."""
    err: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(coro)
        except BaseException as e:
            err.append(e)

    t = threading.Thread(target=main)
    t.start()
    t.join()
    if err:
        raise err[0]
