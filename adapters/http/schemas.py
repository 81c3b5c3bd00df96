"""The NHSA transactions as pydantic models: field names, types and lengths of
``nhsa-interface.md`` (``C n`` -> ``maxLength n``; ``N 16,2`` yuan; ``D`` / ``DT`` dates).

They serve two purposes: the OpenAPI document (one path per transaction, ``POST /nhsa/{infno}``,
and ``POST /nhsa`` as a ``oneOf`` of the request envelopes discriminated by ``infno``), and a
first check of every request (``check_request``: types and lengths, errors naming the NHSA
path). The gateway still parses the raw body itself (``adapters.http.nhsa``): amounts are read
as ``Decimal`` from their JSON text and converted exactly to fen, never through float.

Request models allow extra fields (sites add local ones); answer models forbid them, so the
tests that validate every answer against the committed document catch an undocumented field.
``required`` says what this gateway requires; the NHSA "Req Y" of a field the gateway does not
read is in its description.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.functional_validators import BeforeValidator
from pydantic.json_schema import WithJsonSchema

from engine.errors import NO_VALUE, InputError, Problem

_YUAN_TEXT = r"^-?[0-9]+(\.[0-9]{1,2})?$"


def _no_float(v: Any) -> Any:
    if isinstance(v, float):  # never reached from the gateway's parser (parse_float=Decimal)
        raise ValueError("is a float; send yuan as a JSON number or string")
    return v


#: A request amount in yuan: a JSON number or a numeric string, at most 2 decimals.
YuanIn = Annotated[
    Decimal | int | str,
    BeforeValidator(_no_float),
    WithJsonSchema({
        "description": "yuan (N 16,2): a JSON number or a numeric string, at most 2 decimals; "
                       "read exactly (never as a float)",
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": _YUAN_TEXT}],
    }),
]  # fmt: skip
#: A request decimal with ``places`` decimals (quantity N 16,4, price N 16,6, ratio N 5,4).
NumIn = Annotated[
    Decimal | int | str,
    BeforeValidator(_no_float),
    WithJsonSchema({"anyOf": [{"type": "number"},
                              {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}]}),
]  # fmt: skip
#: An answer amount in yuan: a JSON number with two decimals (``12.30``), negative in cancels.
YuanOut = Annotated[
    Decimal,
    WithJsonSchema({"type": "number", "description": "yuan (N 16,2), written with two decimals"}),
]
RatioOut = Annotated[Decimal, WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1})]
CountIn = Annotated[
    int | str,
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0},
                              {"type": "string", "pattern": "^[0-9]+$"}]}),
]  # fmt: skip

DT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
D = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
D_OR_DT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2})?$"


def C(n: int, doc: str = "", **kw: Any) -> Any:
    """An NHSA ``C n`` field (a string of at most n characters)."""
    return Field(max_length=n, description=doc or None, **kw)


def Opt(n: int, doc: str = "") -> Any:
    return Field(None, max_length=n, description=doc or None)


class _In(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the envelope ------------------------------------------------------------------------------
class _Envelope(_In):
    msgid: str = C(30, "sender message id: fixmedins_code(12) + yyyyMMddHHmmss + 4 digits; "
                   "the idempotency key of 2304, 2305, 2601")  # fmt: skip
    mdtrtarea_admvs: str | None = Opt(6, "admin division of the place of treatment")
    insuplc_admdvs: str | None = Opt(6, "admin division where insured: the policy region")
    recer_sys_code: str | None = Opt(10)
    dev_no: str | None = Opt(100)
    dev_safe_info: str | None = Opt(2000)
    cainfo: str | None = Opt(1024)
    signtype: str | None = Opt(10)
    infver: str | None = Opt(6)
    opter_type: str | None = Opt(3)
    opter: str | None = Opt(30)
    opter_name: str | None = Opt(50)
    inf_time: str | None = Field(None, pattern=DT, description="yyyy-MM-dd HH:mm:ss")
    fixmedins_code: str | None = Opt(30, "designated institution code (the hospital)")
    fixmedins_name: str | None = Opt(200)
    sign_no: str | None = Opt(30)


# --- 2301 -------------------------------------------------------------------------------------
class FeeLine(_In):
    """One fee line (2301 ``feedetail[]``; the same lines are sent with 2303/2304)."""

    feedetl_sn: str | None = Opt(30, "fee-line serial, unique within one visit (echoed)")
    init_feedetl_sn: str | None = Opt(30)
    mdtrt_id: str | None = Opt(30)
    drord_no: str | None = Opt(30)
    psn_no: str | None = Opt(30)
    med_type: str | None = Opt(6)
    fee_ocur_time: str | None = Field(
        None, pattern=DT, description="yyyy-MM-dd HH:mm:ss; 2301: the first line's picks the "
        "policy table")  # fmt: skip
    med_list_codg: str | None = Opt(50, "national catalogue code")
    medins_list_codg: str | None = Opt(150)
    medins_list_name: str | None = Opt(200, "local: the line's name (shown on the slip)")
    det_item_fee_sumamt: YuanIn
    cnt: NumIn | None = Field(None, description="quantity (N 16,4), to 0.0001")
    pric: NumIn | None = Field(None, description="unit price (N 16,6); this gateway prices to "
                               "the fen: at most 2 decimals")  # fmt: skip
    chrgitm_lv: str = C(3, "local input (an NHSA 2301 output): charge-item class 01 A, 02 B, "
                        "03 C (A, B, C accepted)")  # fmt: skip
    pric_uplmt_amt: NumIn | None = Field(None, description="price ceiling, yuan; 999999: none")
    selfpay_prop: NumIn | None = Field(None, description="self-pay ratio 0..1 (category 02)")
    bilg_dept_codg: str | None = Opt(30)
    bilg_dept_name: str | None = Opt(100)
    bilg_dr_codg: str | None = Opt(30)
    bilg_dr_name: str | None = Opt(50)
    memo: str | None = Opt(500)


class Input2301(_In):
    feedetail: list[FeeLine] = Field(min_length=1)


class Result2301(_Out):
    feedetl_sn: str = C(30)
    det_item_fee_sumamt: YuanOut
    chrgitm_lv: str = C(3, "01 A, 02 B, 03 C")
    selfpay_prop: RatioOut
    fulamt_ownpay_amt: YuanOut
    overlmt_amt: YuanOut
    preselfpay_amt: YuanOut
    inscp_scp_amt: YuanOut


class Output2301(_Out):
    result: list[Result2301]


# --- 2303 / 2304 ------------------------------------------------------------------------------
class SettleData(_In):
    psn_no: str = C(30, "person number")
    mdtrt_cert_type: str | None = Opt(3, "NHSA Req Y; not read")
    mdtrt_cert_no: str | None = Opt(50, "NHSA Req Y; not read")
    medfee_sumamt: YuanIn = Field(description="total fees: must equal the feedetail lines' sum")
    psn_setlway: str | None = Opt(6, "NHSA Req Y; not read")
    mdtrt_id: str = C(30, "visit id: the bill id")
    insutype: str | None = Opt(6, "NHSA Req Y; not read (the policy table decides)")
    acct_used_flag: str | None = Opt(1, "NHSA Req Y; not read (no personal accounts)")
    invono: str | None = Opt(20)
    mid_setl_flag: str | None = Opt(3, "NHSA Req Y; not read")
    fulamt_ownpay_amt: YuanIn | None = None
    overlmt_selfpay: YuanIn | None = None
    preselfpay_amt: YuanIn | None = None
    inscp_scp_amt: YuanIn | None = None
    hosp_lv: str = C(32, "local: hospital level of the policy table (e.g. county, level2)")
    begntime: str = Field(pattern=D_OR_DT, description="local: admission date (or time)")
    endtime: str = Field(pattern=D_OR_DT, description="local: discharge date (or time)")
    insuplc_admdvs: str | None = Opt(6, "local: the policy region (else the envelope's)")


class InputSettle(_In):
    data: SettleData
    feedetail: list[FeeLine] = Field(
        description="the visit's 2301 lines (the gateway keeps no fee-line store)"
    )


class SetlDetail(_Out):
    fund_pay_type: str = C(6, "fund payment type code (nhsa-interface.md section 3)")
    inscp_scp_amt: YuanOut
    crt_payb_lmt_amt: YuanOut | None
    fund_payamt: YuanOut
    fund_pay_type_name: str = C(200)
    setl_proc_info: str = C(4000, "the policy layer id")


class _Amounts(_Out):
    medfee_sumamt: YuanOut
    fulamt_ownpay_amt: YuanOut
    overlmt_selfpay: YuanOut
    preselfpay_amt: YuanOut
    inscp_scp_amt: YuanOut
    hifp_pay: YuanOut
    cvlserv_pay: YuanOut
    hifes_pay: YuanOut
    hifmi_pay: YuanOut
    hifob_pay: YuanOut
    maf_pay: YuanOut
    hifdm_pay: YuanOut
    oth_pay: YuanOut
    fund_pay_sumamt: YuanOut
    psn_part_amt: YuanOut
    acct_pay: YuanOut
    psn_cash_pay: YuanOut
    hosp_part_amt: YuanOut
    acct_mulaid_pay: YuanOut


class SetlInfo2303(_Amounts):
    mdtrt_id: str = C(30)
    psn_no: str = C(30)


#: NHSA types setl_id C 30; this engine's settlement id is a 32-character hex uuid (the same id
#: on gRPC): documented as it is, a known deviation (an HIS column of 30 would cut it)
SETL_ID_LEN = 32


class SetlInfo2304(SetlInfo2303):
    setl_id: str = C(SETL_ID_LEN, "settlement id: 32 hex characters (NHSA: C 30)")
    setl_time: str = Field(pattern=DT)
    medins_setl_id: str = C(30, "the request msgid")


class SetlInfo2305(_Amounts):
    """Negative amounts (a cancel)."""

    mdtrt_id: str = C(30)
    setl_id: str = C(SETL_ID_LEN, "the cancelled settlement's id")
    setl_time: str = Field(pattern=DT, description="the cancel's time")
    medins_setl_id: str = C(30, "the cancel's msgid")


class Output2303(_Out):
    setlinfo: SetlInfo2303
    setldetail: list[SetlDetail]


class Output2304(_Out):
    setlinfo: SetlInfo2304
    setldetail: list[SetlDetail]


# --- 2305 -------------------------------------------------------------------------------------
class CancelData(_In):
    mdtrt_id: str | None = Opt(30, "NHSA Req Y; not read")
    setl_id: str = C(SETL_ID_LEN, "the settlement to cancel")
    psn_no: str | None = Opt(30, "if given, must be the settlement's person")


class Input2305(_In):
    data: CancelData


class Output2305(_Out):
    setlinfo: SetlInfo2305
    setldetail: list[SetlDetail]


# --- 2601 -------------------------------------------------------------------------------------
class ReversalData(_In):
    psn_no: str | None = Opt(30, "NHSA Req Y; if given, must be the settlement's person")
    omsgid: str = C(30, "the msgid of the original 2304")
    oinfno: Literal["2304"] = Field(description="the original transaction: 2304 (C 4)")


class Input2601(_In):
    data: ReversalData


class Output2601(_Out):
    """Empty (NHSA): also when nothing was settled under omsgid (a no-op)."""


# --- 3201 / 3202 ------------------------------------------------------------------------------
class _StmtData(_In):
    setl_optins: str | None = Opt(6, "settlement agency (echoed)")
    stmt_begndate: str = Field(pattern=D_OR_DT, description="statement start, yyyy-MM-dd")
    stmt_enddate: str = Field(pattern=D_OR_DT, description="statement end, yyyy-MM-dd")
    medfee_sumamt: YuanIn | None = None
    fund_pay_sumamt: YuanIn | None = None
    fixmedins_setl_cnt: CountIn | None = Field(None, description="N 10: settlement count")
    clr_type: str | None = Opt(6)
    fixmedins_code: str | None = Opt(30, "local: the hospital (else the envelope's)")


class Data3201(_StmtData):
    insutype: str | None = Opt(6, "NHSA Req Y; not read")
    acct_pay: YuanIn | None = Field(None, description="personal-account total: must be 0 here")
    refd_setl_flag: str | None = Opt(3)


class SetlLine(_In):
    setl_id: str = C(SETL_ID_LEN)
    refd_setl_flag: str | None = Opt(3, "1: a reversal (cancel) line")
    medfee_sumamt: YuanIn | None = None
    fund_pay_sumamt: YuanIn | None = None
    cash_payamt: YuanIn | None = None


class Data3202(_StmtData):
    cash_payamt: YuanIn | None = Field(None, description="cash total")
    file_qury_no: str | None = Opt(30, "the 9101 upload's file query number (or setl_list)")
    setl_list: list[SetlLine] | None = Field(
        None, description="local convenience: the settlement lines inline instead of a file"
    )


class Input3201(_In):
    data: Data3201


class Input3202(_In):
    data: Data3202


class StmtDetail(_Out):
    setl_id: str = C(SETL_ID_LEN)
    refd_setl_flag: str = C(3)
    memo: str = C(500)


class StmtInfo(_Out):
    setl_optins: str = C(6)
    stmt_rslt: str = C(6, "0 balanced, 1 not")
    stmt_rslt_dscr: str = C(2000)
    fixmedins_setl_cnt: int
    medfee_sumamt: YuanOut
    fund_pay_sumamt: YuanOut
    psn_cash_pay: YuanOut
    detail: list[StmtDetail] | None = None


class Output3201(_Out):
    stmtinfo: StmtInfo


class FileInfo(_Out):
    """The result file: download it with 9102 (a zip of result.txt)."""

    file_qury_no: str = C(30)
    filename: str = C(200)
    dld_endtime: str = Field(pattern=DT)


class Output3202(_Out):
    fileinfo: FileInfo
    stmtinfo: StmtInfo


# --- 9101 / 9102 ------------------------------------------------------------------------------
class FsUploadIn(_In):
    in_: str | list[int] = Field(
        alias="in", description="the zip: base64 text (as NT sends it) or an array of bytes; "
        "one text file, a line per settlement: setl_id, mdtrt_id, psn_no, medfee_sumamt, "
        "fund_pay_sumamt, acct_pay, refd_setl_flag (tab-separated)")  # fmt: skip
    filename: str = C(200)
    fixmedins_code: str | None = Opt(30, "the hospital (else the envelope's)")


class Input9101(_In):
    fsUploadIn: FsUploadIn


class Output9101(_Out):
    file_qury_no: str = C(30, "name it in 3202 data.file_qury_no")
    filename: str = C(200)
    fixmedins_code: str = C(30)
    dld_endtime: str = Field(pattern=DT, description="kept until then (in this gateway process)")


class FsDownloadIn(_In):
    file_qury_no: str = C(30, "the 3202 answer's fileinfo.file_qury_no")
    filename: str | None = Opt(200)
    fixmedins_code: str | None = Opt(30)


class Input9102(_In):
    fsDownloadIn: FsDownloadIn


class Refusal(_Out):
    reason: str = Field(description="the error class: INPUT_ERROR, CONFLICT, NOT_FOUND, ...")


# --- the transactions -------------------------------------------------------------------------
#: infno -> (summary, input model, output model; None: the answer is a file, see FILE_ANSWERS)
TRANSACTIONS: dict[str, tuple[str, type[BaseModel], type[BaseModel] | None]] = {
    "2301": ("住院费用明细上传: split fee lines into buckets", Input2301, Output2301),
    "2303": ("住院预结算: trial settlement (nothing paid)", InputSettle, Output2303),
    "2304": ("住院结算: settle (idempotent by msgid)", InputSettle, Output2304),
    "2305": ("住院结算撤销: cancel a settlement by setl_id", Input2305, Output2305),
    "2601": (
        "冲正交易: reverse what a 2304 msgid settled (idempotent by msgid)",
        Input2601,
        Output2601,
    ),
    "3201": ("对总账: totals reconciliation", Input3201, Output3201),
    "3202": (
        "对明细账: detail reconciliation (a 9101 file, or inline setl_list)",
        Input3202,
        Output3202,
    ),
    "9101": ("文件上传: upload the 3202 settlement list (zip, base64)", Input9101, Output9101),
    "9102": ("文件下载: download a 3202 result (application/zip)", Input9102, None),
}
#: the transactions answered by a file (application/zip) on success, an envelope on refusal
FILE_ANSWERS = frozenset(k for k, v in TRANSACTIONS.items() if v[2] is None)


def _envelope(infno: str, inp: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "infno": (Literal[infno], Field(description="transaction code")),
        "input": (inp, ...),
    }
    if infno in ("2303", "2304"):
        fields["fixmedins_code"] = (str, C(30, "designated institution code: the hospital"))
    from pydantic import create_model

    return create_model(f"Request{infno}", __base__=_Envelope, **fields)


def _answer(infno: str, out: type[BaseModel] | None) -> type[BaseModel]:
    from pydantic import create_model

    output: Any = Refusal if out is None else out | Refusal  # a type or a union of two
    return create_model(
        f"Answer{infno}",
        __base__=_Out,
        infcode=(Literal[0, -1], Field(description="0 success, -1 refusal")),
        inf_refmsgid=(str, C(30, "the request msgid (echoed)")),
        refmsg_time=(str, Field(pattern="^[0-9]{17}$", description="yyyyMMddHHmmssSSS")),
        respond_time=(str, Field(pattern="^[0-9]{17}$", description="yyyyMMddHHmmssSSS")),
        err_msg=(str, C(600, "empty on success; the refusal naming field and value")),
        output=(
            output,
            Field(description="the transaction's output; on a refusal {reason}"),
        ),
    )


REQUESTS = {k: _envelope(k, v[1]) for k, v in TRANSACTIONS.items()}
ANSWERS = {k: _answer(k, v[2]) for k, v in TRANSACTIONS.items()}


def components() -> dict[str, Any]:
    """The JSON schemas of every request and answer model, for ``components.schemas``."""
    from pydantic.json_schema import models_json_schema

    models = [*REQUESTS.values(), *ANSWERS.values()]
    _, doc = models_json_schema([(m, "validation") for m in models],
                                ref_template="#/components/schemas/{model}")  # fmt: skip
    return dict(doc["$defs"])


def any_request_schema() -> dict[str, Any]:
    refs = {k: f"#/components/schemas/Request{k}" for k in REQUESTS}
    return {"oneOf": [{"$ref": r} for r in refs.values()],
            "discriminator": {"propertyName": "infno", "mapping": refs}}  # fmt: skip


def any_answer_schema() -> dict[str, Any]:
    return {"anyOf": [{"$ref": f"#/components/schemas/Answer{k}"} for k in ANSWERS]}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    # the names the rest of the gateway uses: data.x, feedetail[0].x (not input.data.x)
    return out[len("input.") :] if out.startswith("input.") else out


def check_request(infno: str, env: dict[str, Any]) -> None:
    """InputError naming every NHSA path whose type or length breaks the documented schema."""
    model = REQUESTS.get(infno)
    if model is None:
        return
    try:
        _ADAPTERS[infno].validate_python(env)
    except ValidationError as err:
        found: dict[str, Problem] = {}
        for e in err.errors():
            loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and (
                p in _UNION_TAGS or "[" in p)))  # fmt: skip
            path = _path(loc)
            v = e.get("input", NO_VALUE)
            shown = (
                v if isinstance(v, str | int | Decimal) and not isinstance(v, bool) else NO_VALUE
            )
            if e["type"] == "missing":
                found[path] = Problem(path, NO_VALUE, "is missing; it is required")
            elif path in found:  # every member of a union refused it
                found[path] = Problem(path, shown, "has the wrong type (see the OpenAPI schema)")
            else:
                found[path] = Problem(path, shown, e["msg"][:1].lower() + e["msg"][1:])
        raise InputError(list(found.values())) from None


_UNION_TAGS = {"decimal", "int", "str"}
_ADAPTERS = {k: TypeAdapter(m) for k, m in REQUESTS.items()}
