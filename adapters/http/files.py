"""NHSA file transactions of the 3202 detail reconciliation (nhsa-interface.md section 2.6):

1. 9101 uploads a zip (``fsUploadIn.in``: base64 text, as NT sends it; a JSON array of bytes,
   as the spec's 字节数组 reads, is accepted too) holding one text file, one line per settlement:
   ``setl_id, mdtrt_id, psn_no, medfee_sumamt, fund_pay_sumamt, acct_pay, refd_setl_flag``,
   tab-separated (a line without a tab is split on blanks). Answer: ``file_qury_no``.
2. 3202 names it in ``data.file_qury_no``; its answer's ``fileinfo`` names the result file.
3. 9102 (``fsDownloadIn.file_qury_no``) downloads the result: a zip holding ``result.txt``,
   tab-separated ``psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo,
   medfee_sumamt, fund_pay_sumamt, acct_pay`` (NT ``ReadToFile``), one line per settlement or
   reversal of either side, ``stmt_rslt`` 0 when both agree, 1 otherwise (``memo`` says why).

Files live in the gateway process (``FileStore``: bounded, each until its ``dld_endtime``), not
in the settlement store: upload and 3202 go to the same gateway process. A file is seen only
by the principal that uploaded (or caused) it; another's query number is "not found".
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.http.money import fen_to_yuan, yuan_to_fen
from engine.errors import NO_VALUE, InputError, LimitExceeded, NotFound
from engine.reconcile import HospitalLine, Reconciliation

KEEP = timedelta(hours=24)  # a file can be downloaded this long (dld_endtime)
MAX_FILES = 256  # files kept at once (the oldest go first)
MAX_TOTAL = 256 * 1024 * 1024  # bytes kept at once
MAX_TEXT = 64 * 1024 * 1024  # the unzipped settlement list
COLUMNS = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay",
           "refd_setl_flag")  # fmt: skip
RESULT_COLUMNS = ("psn_no", "mdtrt_id", "setl_id", "msgid", "stmt_rslt", "refd_setl_flag",
                  "memo", "medfee_sumamt", "fund_pay_sumamt", "acct_pay")  # fmt: skip


@dataclass(frozen=True)
class StoredFile:
    file_qury_no: str
    filename: str
    fixmedins_code: str
    owner: str  # the principal's name
    data: bytes
    expires: datetime


class FileStore:
    """Uploaded and result files by query number, in memory, bounded."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._clock = clock
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()

    def put(self, owner: str, filename: str, fixmedins_code: str, data: bytes) -> StoredFile:
        now = self._clock()
        f = StoredFile("F" + uuid.uuid4().hex[:29], filename, fixmedins_code, owner, data,
                       now + KEEP)  # fmt: skip
        with self._lock:
            for k in [k for k, v in self._files.items() if v.expires <= now]:
                del self._files[k]
            while self._files and (
                len(self._files) >= MAX_FILES
                or sum(len(v.data) for v in self._files.values()) + len(data) > MAX_TOTAL
            ):
                del self._files[next(iter(self._files))]  # the oldest
            self._files[f.file_qury_no] = f
        return f

    def get(self, owner: str, file_qury_no: str, field: str) -> StoredFile:
        with self._lock:
            f = self._files.get(file_qury_no)
        if f is None or f.owner != owner or f.expires <= self._clock():
            raise NotFound(f"file ({field})", file_qury_no, "upload it with 9101 first")
        return f


def upload_bytes(value: Any, field: str) -> bytes:
    """``fsUploadIn.in``: base64 text, or a JSON array of byte values."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InputError.one(
                field, NO_VALUE, "is not base64 (send the zip base64-encoded)"
            ) from None
    if isinstance(value, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
    ):
        return bytes(value)
    raise InputError.one(field, NO_VALUE, "is not the zip as base64 text or an array of bytes")


def unzip_text(data: bytes, where: str) -> str:
    """The one text file of a zip (at most MAX_TEXT bytes unzipped)."""
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in z.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise InputError.one(where, len(members), "files are in the zip; send exactly one")
        with z.open(members[0]) as fh:
            raw = fh.read(MAX_TEXT + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError):
        raise InputError.one(where, NO_VALUE, "is not a zip file") from None
    if len(raw) > MAX_TEXT:
        raise LimitExceeded(f"{where} (unzipped)", "MAX_TEXT", MAX_TEXT, len(raw))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")  # the other encoding Chinese HIS write
        except UnicodeDecodeError:
            raise InputError.one(where, NO_VALUE, "is neither UTF-8 nor GB18030 text") from None


@dataclass(frozen=True)
class FileLine:
    line: HospitalLine
    mdtrt_id: str
    psn_no: str


def parse_lines(text: str, where: str) -> list[FileLine]:
    """The settlement list of a 3202 file; errors name ``where`` line n and the column."""
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        cells = [c.strip() for c in (raw.split("\t") if "\t" in raw else raw.split())]
        w = f"{where} line {n}"
        if len(cells) != len(COLUMNS):
            raise InputError.one(w, len(cells), f"columns; a line has {len(COLUMNS)}: "
                                 f"{', '.join(COLUMNS)} (tab-separated)")  # fmt: skip
        row = dict(zip(COLUMNS, cells, strict=True))
        if not row["setl_id"]:
            raise InputError.one(f"{w}.setl_id", NO_VALUE, "is empty")
        amt = {k: yuan_to_fen(f"{w}.{k}", row[k], negative=True)
               for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")}  # fmt: skip
        if amt["acct_pay"] != 0:
            raise InputError.one(f"{w}.acct_pay", row["acct_pay"],
                                 "is not 0; this engine settles no personal-account payments")  # fmt: skip
        if row["refd_setl_flag"] not in ("0", "1"):
            raise InputError.one(f"{w}.refd_setl_flag", row["refd_setl_flag"], "is not 0 or 1")
        out.append(FileLine(HospitalLine(settlement_id=row["setl_id"],
                                         reversal=row["refd_setl_flag"] == "1",
                                         medfee_sumamt=amt["medfee_sumamt"],
                                         fund_pay_sumamt=amt["fund_pay_sumamt"]),
                            row["mdtrt_id"], row["psn_no"]))  # fmt: skip
    return out


def result_zip(
    r: Reconciliation,
    theirs: Sequence[FileLine],
    ids: Callable[[str, bool], tuple[str, str, str]],
) -> bytes:
    """The 9102 result: a zip of ``result.txt`` (RESULT_COLUMNS, tab-separated, UTF-8).
    ``ids(settlement_id, reversal)``: (psn_no, mdtrt_id, msgid) of a stored settlement."""
    diffs = {(d.settlement_id, d.reversal): d for d in r.line_differences}
    listed = {fl.line.key: fl for fl in theirs}
    rows: list[tuple[object, ...]] = []
    for e in r.entries:
        d = diffs.pop(e.key, None)
        psn, mdtrt, msgid = ids(e.settlement_id, e.reversal)
        rows.append((psn, mdtrt, e.settlement_id, msgid, "1" if d else "0",
                     "1" if e.reversal else "0", str(d.problem) if d else "",
                     fen_to_yuan(e.medfee_sumamt), fen_to_yuan(e.fund_pay_sumamt),
                     fen_to_yuan(0)))  # fmt: skip
    for key, d in diffs.items():  # theirs only
        fl = listed.get(key)
        ln = d.theirs
        rows.append((fl.psn_no if fl else "", fl.mdtrt_id if fl else "", d.settlement_id, "",
                     "1", "1" if d.reversal else "0", str(d.problem),
                     fen_to_yuan(ln.medfee_sumamt or 0) if ln else "",
                     fen_to_yuan(ln.fund_pay_sumamt or 0) if ln else "", fen_to_yuan(0)))  # fmt: skip
    text = "".join("\t".join(str(c).replace("\t", " ") for c in row) + "\n" for row in rows)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("result.txt", text.encode("utf-8"))
    return buf.getvalue()


def settlement_file(lines: Sequence[Sequence[Any]]) -> bytes:
    """A 3202 settlement list as a HIS writes it (tab-separated ``COLUMNS``), zipped: for
    tests and examples."""
    text = "".join("\t".join(str(c) for c in ln) + "\n" for ln in lines)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("setl.txt", text.encode("utf-8"))
    return buf.getvalue()
