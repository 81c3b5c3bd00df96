"""The FastAPI app of the NHSA gateway, built from the same ``adapters.bootstrap.App`` as the
gRPC server: every transaction calls the same use cases through ``ScopedService``.

POST ``/nhsa`` takes any envelope (the platform posts every transaction to one URL);
POST ``/nhsa/2304`` etc. (one documented path per transaction, ``adapters.http.schemas``) is the
same with the code checked against the envelope's ``infno``.
Bodies are read raw and parsed with ``adapters.http.money.loads`` (no float).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline

from adapters.auth.access import ScopedService
from adapters.auth.principals import LOCAL, PermissionDenied, Principal
from adapters.bootstrap import App
from adapters.http import files, nhsa, schemas
from adapters.http.errors import to_nhsa
from adapters.http.money import dumps, loads
from engine.errors import NO_VALUE, Conflict, FailedPrecondition, InputError, NotFound

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_BODY = 16 * 1024 * 1024

#: Which roles may send which transaction (like adapters.grpc.auth.METHOD_ROLES).
TX_ROLES: dict[str, frozenset[str]] = {
    "2301": frozenset({"cashier"}),
    "2303": frozenset({"cashier"}),
    "2304": frozenset({"cashier"}),
    "2305": frozenset({"cashier"}),
    "2601": frozenset({"cashier"}),
    "3201": frozenset({"cashier", "bureau", "auditor"}),
    "3202": frozenset({"cashier", "bureau", "auditor"}),
    "9101": frozenset({"cashier", "bureau", "auditor"}),
    "9102": frozenset({"cashier", "bureau", "auditor"}),
}

#: The principal of a request: LOCAL on a plaintext loopback server; with TLS, the one of the
#: peer certificate (adapters.http.serve sets it).
Identify = Callable[[Request], Principal]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_ZIP = {k: {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
        for k in schemas.FILE_ANSWERS}  # fmt: skip


def _tx_openapi(infno: str) -> dict[str, Any]:
    """The request and answer of one transaction (models in ``adapters.http.schemas``)."""
    ref = "#/components/schemas/"
    return {"requestBody": {"required": True, "content": _json({"$ref": f"{ref}Request{infno}"})},
            "responses": {"200": {"description": (
                                      "the file (application/zip)" if infno in _ZIP
                                      else f"the {infno} answer envelope (infcode 0)")
                                  + ", or a refusal (infcode -1, output {reason})",
                                  "content": {**_json({"$ref": f"{ref}Answer{infno}"}),
                                              **_ZIP.get(infno, {})}}}}  # fmt: skip


_ANY_OPENAPI = {
    "requestBody": {"required": True, "content": _json(schemas.any_request_schema())},
    "responses": {"200": {"description": "the answer envelope of the envelope's infno",
                          "content": _json(schemas.any_answer_schema())}},
}  # fmt: skip


def _stamp(t: datetime) -> str:
    return t.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S%f")[:17]


class Gateway:
    def __init__(self, app: App, identify: Identify | None = None):
        self.app = app
        self.identify = identify or (lambda request: LOCAL)
        self.files = files.FileStore()

    def scoped(self, p: Principal, infno: str, what: str = "") -> ScopedService:
        """The service as ``p`` sees it, when its role may run ``infno``; ``what`` names the
        call in the refusal when it is not the transaction itself (the slip, read as 3201)."""
        if not p.unrestricted and not p.has(TX_ROLES[infno]):
            raise PermissionDenied(f"{what or f'transaction {infno}'} is not allowed to a {p.role}")
        return ScopedService(self.app.service, p)

    def run(self, p: Principal, env: dict[str, Any]) -> dict[str, Any] | FileAnswer:
        infno = nhsa.text(env, "infno", "")
        if infno not in TX_ROLES:
            raise InputError.one("infno", infno, f"is not a transaction of this gateway "
                                 f"({', '.join(sorted(TX_ROLES))})")  # fmt: skip
        s = self.scoped(p, infno)
        schemas.check_request(infno, env)
        msgid = nhsa.text(env, "msgid", "")
        inp = nhsa.obj("input", env.get("input"))
        if infno == "2301":
            region = env.get("insuplc_admdvs") or (inp.get("data") or {}).get("insuplc_admdvs")
            day = nhsa.fee_day(inp)
            try:
                table = self.app.service.policies().table_for(region or None, day)
            except InputError as err:
                raise InputError([type(q)("feedetail[0].fee_ocur_time", q.value, q.rule)
                                  for q in err.problems]) from None  # fmt: skip
            return {"result": nhsa.split_lines(inp, table.b_selfpay_ratio)}
        if infno == "2303":
            req = nhsa.bill_request(env, inp)
            with nhsa.renamed(nhsa.nhsa_name):
                settlement = s.pre_settle(req)
            info, detail = nhsa.setlinfo(settlement)
            return {"setlinfo": {"mdtrt_id": req.id, **info}, "setldetail": detail}
        if infno == "2304":
            req = nhsa.bill_request(env, inp)
            self._msgid_not_a_reversal(msgid)
            with nhsa.renamed(nhsa.nhsa_name):
                rec, _replay = s.settle(msgid, req)
            info, detail = nhsa.setlinfo(rec.settlement)
            return {
                "setlinfo": {
                    "mdtrt_id": req.id,
                    "setl_id": rec.settlement_id,
                    **info,
                    "setl_time": _time(rec.created_at),
                    "medins_setl_id": rec.request_id,
                },
                "setldetail": detail,
            }
        if infno == "2305":
            data = nhsa.obj("input.data", inp.get("data"))
            setl_id = nhsa.text(data, "setl_id", "data.")
            self._msgid_not_a_settlement(msgid)
            psn = nhsa.text(data, "psn_no", "data.", required=False)
            if psn and psn != s.get(settlement_id=setl_id).settlement.person_id:
                raise InputError.one(  # asked before anything is cancelled
                    "data.psn_no", psn, f"is not the person of settlement {setl_id}"
                )
            rec, _replay = s.reverse(settlement_id=setl_id, reversal_request_id=msgid)
            info, detail = nhsa.setlinfo(rec.settlement, sign=-1)
            info.pop("psn_no")
            return {"setlinfo": {"mdtrt_id": rec.settlement.bill_id, "setl_id": rec.settlement_id,
                                 **info, "setl_time": _time(rec.reversed_at or rec.created_at),
                                 "medins_setl_id": rec.reversal_request_id or msgid},
                    "setldetail": detail}  # fmt: skip
        if infno == "2601":
            return self._reversal(s, msgid, nhsa.obj("input.data", inp.get("data")))
        if infno == "9101":
            return self._upload(p, env, nhsa.obj("input.fsUploadIn", inp.get("fsUploadIn")))
        if infno == "9102":
            d = nhsa.obj("input.fsDownloadIn", inp.get("fsDownloadIn"))
            qno = nhsa.text(d, "file_qury_no", "fsDownloadIn.")
            f = self.files.get(p.name, qno, "fsDownloadIn.file_qury_no")
            return FileAnswer(f.data, f.filename)
        return self._reconcile(p, s, infno, env, nhsa.obj("input.data", inp.get("data")))

    def _upload(self, p: Principal, env: dict[str, Any], u: dict[str, Any]) -> dict[str, Any]:
        """9101: keep the uploaded zip; answer its query number (``adapters.http.files``)."""
        data = files.upload_bytes(u.get("in"), "fsUploadIn.in")
        if len(data) > MAX_BODY:
            raise InputError.one("fsUploadIn.in", NO_VALUE, f"is larger than {MAX_BODY} bytes")
        filename = nhsa.text(u, "filename", "fsUploadIn.")
        code = nhsa.text(u, "fixmedins_code", "fsUploadIn.", required=False) or nhsa.text(
            env, "fixmedins_code", "", required=False
        )
        f = self.files.put(p.name, filename, code, data)
        return {"file_qury_no": f.file_qury_no, "filename": f.filename,
                "fixmedins_code": f.fixmedins_code, "dld_endtime": _time(f.expires)}  # fmt: skip

    def _reconcile(self, p: Principal, s: ScopedService, infno: str, env: dict[str, Any],
                   data: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        """3201 totals; 3202 totals and the settlement list (the 9101 file named by
        ``data.file_qury_no``, or inline ``data.setl_list``), the result file for 9102."""
        hospital = nhsa.text(data, "fixmedins_code", "data.", required=False) or nhsa.text(
            env, "fixmedins_code", ""
        )
        start = nhsa.day(data, "stmt_begndate")
        end = nhsa.day(data, "stmt_enddate")
        cash = "acct_pay" if infno == "3201" else "cash_payamt"
        theirs = nhsa.totals_in(data, cash)
        if infno == "3201" and theirs.psn_cash_pay is not None:
            # 3201 sends acct_pay (personal account); the engine pays none: compare it as 0
            if theirs.psn_cash_pay != 0:
                raise InputError.one(
                    "data.acct_pay",
                    str(data.get("acct_pay")),
                    "is not 0; this engine settles no personal-account payments",
                )
            theirs = replace(theirs, psn_cash_pay=None)
        file_lines: list[files.FileLine] = []
        lines = None
        if infno == "3202":
            qno = nhsa.text(data, "file_qury_no", "data.", required=False)
            if qno and data.get("setl_list") is not None:
                raise InputError.one("data.file_qury_no", qno, "is given with data.setl_list; "
                                     "send the list once (a 9101 file or inline)")  # fmt: skip
            if qno:
                f = self.files.get(p.name, qno, "data.file_qury_no")
                if f.fixmedins_code and f.fixmedins_code != hospital:
                    raise InputError.one("data.file_qury_no", qno,
                                         f"is a file of {f.fixmedins_code}, not of {hospital}")  # fmt: skip
                where = f"file {qno}"
                file_lines = files.parse_lines(files.unzip_text(f.data, where), where)
                lines = [fl.line for fl in file_lines]
            else:
                lines = nhsa.lines_in(data)
        try:
            r = s.reconcile(hospital, start, end, theirs, lines)
        except InputError as err:
            ren = {"from_date": "data.stmt_begndate", "to_date": "data.stmt_enddate",
                   "hospital": "fixmedins_code"}  # fmt: skip
            raise InputError([type(q)(ren.get(q.field, q.field), q.value, q.rule)
                              for q in err.problems]) from None  # fmt: skip
        setl_optins = str(data.get("setl_optins", ""))
        if infno == "3201":
            return {"stmtinfo": nhsa.stmt(r, setl_optins)}

        def ids(settlement_id: str, reversal: bool) -> tuple[str, str, str]:
            try:
                rec = s.get(settlement_id=settlement_id)
            except (NotFound, PermissionDenied):
                return "", "", ""
            msgid = (rec.reversal_request_id or "") if reversal else rec.request_id
            return rec.settlement.person_id, rec.settlement.bill_id, msgid

        result = self.files.put(p.name, "result.zip", hospital,
                                files.result_zip(r, file_lines, ids))  # fmt: skip
        return {"fileinfo": {"file_qury_no": result.file_qury_no, "filename": result.filename,
                             "dld_endtime": _time(result.expires)},
                "stmtinfo": nhsa.stmt(r, setl_optins)}  # fmt: skip

    def _reversal(self, s: ScopedService, msgid: str, data: dict[str, Any]) -> dict[str, Any]:
        """2601: reverse what the original 2304 ``omsgid`` settled, by the same use case as
        2305 (``reverse`` by request id; its own msgid the reversal request id, so the same
        2601 again answers the same). Nothing settled under ``omsgid`` (or nothing this caller
        may see): a no-op answer. A settlement already cancelled under another msgid is refused
        (as the platform refuses a reversal of a refunded settlement). Output empty (NHSA)."""
        omsgid = nhsa.text(data, "omsgid", "data.")
        oinfno = nhsa.text(data, "oinfno", "data.")
        if oinfno != "2304":
            raise InputError.one("data.oinfno", oinfno, "is not 2304; this gateway reverses "
                                 "settlements (2304) only (a 2305 cancel is final)")  # fmt: skip
        if omsgid == msgid:
            raise InputError.one(
                "msgid", msgid, "is the omsgid; send the reversal with its own msgid"
            )
        self._msgid_not_a_settlement(msgid)
        try:
            rec = s.get(request_id=omsgid)
        except (NotFound, PermissionDenied):
            self._reversal_id_unused(msgid)
            return {}
        psn = nhsa.text(data, "psn_no", "data.", required=False)
        if psn and psn != rec.settlement.person_id:
            raise InputError.one("data.psn_no", psn, f"is not the person of msgid {omsgid}")
        if rec.status == "reversed" and rec.reversal_request_id != msgid:
            self._reversal_id_unused(msgid)
            raise FailedPrecondition(f"the settlement of msgid {omsgid!r} was already cancelled "
                                     f"(by msgid {rec.reversal_request_id!r}); nothing to reverse")  # fmt: skip
        s.reverse(request_id=omsgid, reversal_request_id=msgid)
        return {}

    def _reversal_id_unused(self, msgid: str) -> None:
        """Conflict if ``msgid`` reversed a settlement (not the one at hand: callers ask when
        that one was not reversed with it)."""
        if self.app.service.reversed_by(msgid):
            raise Conflict(f"msgid {msgid!r} was already used to reverse another "
                           "settlement; send a new reversal with a new msgid")  # fmt: skip

    def _msgid_not_a_settlement(self, msgid: str) -> None:
        """A 2305 msgid that settled a bill (a 2304's msgid) is refused: every NHSA message has
        its own msgid. (Says nothing of that settlement.) A 2305 msgid used by another 2305 is
        refused by the service (a reversal request id names one reversal)."""
        try:
            self.app.service.get(request_id=msgid)
        except (NotFound, InputError):
            return
        raise Conflict(f"msgid {msgid!r} was used for a settlement (2304); "
                       "send the cancel with a new msgid")  # fmt: skip

    def _msgid_not_a_reversal(self, msgid: str) -> None:
        """A 2304 msgid that cancelled a settlement (a 2305's msgid) is refused."""
        if self.app.service.reversed_by(msgid):
            raise Conflict(f"msgid {msgid!r} was used for a cancel (2305); "
                           "send the settlement with a new msgid")  # fmt: skip

    def slip(self, p: Principal, setl_id: str, fmt: str) -> bytes:
        """The printed slip of a stored settlement (a reversal slip once reversed), for the
        roles that may read settlements (cashier, bureau, auditor), within their scope."""
        from adapters.slip.render import render_slip_html, render_slip_pdf

        rec = self.scoped(p, "3201", "the slip (GET /slip)").get(settlement_id=setl_id)
        table = self.app.service.table_of(rec)  # the table it was settled with
        if fmt == "pdf":
            return render_slip_pdf(rec, table=table)
        return render_slip_html(rec, table=table).encode("utf-8")


@dataclass(frozen=True)
class FileAnswer:
    """A 9102 answer: the file itself (``application/zip``), not an envelope."""

    data: bytes
    filename: str


def _time(t: datetime) -> str:
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def create_app(app: App, identify: Identify | None = None) -> FastAPI:
    """The HTTP app over ``app`` (the bootstrap App the gRPC server also serves)."""
    gw = Gateway(app, identify)
    # /docs and /redoc from files in the package (fastapi-offline), not a CDN: a hospital's
    # network often reaches no internet, and FastAPI's own pages would then be blank
    api = FastAPIOffline(title="onestop NHSA gateway", version="1.0",
                         description="NHSA-shaped HTTP/JSON transactions 2301, 2303, 2304, 2305, "
                                     "2601, 3201, 3202, 9101, 9102 over the onestop settlement "
                                     "service.")  # fmt: skip

    async def handle(request: Request, path_infno: str | None) -> Response:
        received = datetime.now(UTC)
        env: Any = None
        try:
            p = gw.identify(request)
            body = await request.body()
            if len(body) > MAX_BODY:
                raise InputError.one("body", NO_VALUE, f"is larger than {MAX_BODY} bytes")
            try:
                env = loads(body)
            except ValueError as err:
                raise InputError.one("body", NO_VALUE, f"is not JSON: {err}") from None
            env = nhsa.obj("body", env)
            if path_infno is not None and str(env.get("infno", "")) != path_infno:
                raise InputError.one("infno", env.get("infno", NO_VALUE),
                                     f"is not {path_infno}, the transaction of this path")  # fmt: skip
            output = await asyncio.to_thread(gw.run, p, env)
            if isinstance(output, FileAnswer):
                safe = "".join(ch for ch in output.filename if (ch.isascii() and ch.isalnum())
                               or ch in "._-") or "file.zip"  # fmt: skip
                return Response(output.data, media_type="application/zip",
                                headers={"content-disposition": f'attachment; filename="{safe}"'})  # fmt: skip
            status, answer = 200, {"infcode": 0, "err_msg": "", "output": output}
        except Exception as err:  # every refusal is an NHSA answer
            status, reason, msg = to_nhsa(err)
            answer = {"infcode": -1, "err_msg": msg, "output": {"reason": reason}}
        now = datetime.now(UTC)
        answer["inf_refmsgid"] = (env.get("msgid") if isinstance(env, dict) else "") or ""
        answer["refmsg_time"], answer["respond_time"] = _stamp(received), _stamp(now)
        return Response(dumps(answer), status_code=status, media_type="application/json")

    @api.post("/nhsa", openapi_extra=_ANY_OPENAPI, operation_id="nhsa",
              summary="Any NHSA transaction (the envelope's infno picks it)")  # fmt: skip
    async def any_tx(request: Request) -> Response:
        return await handle(request, None)

    def one(infno: str, summary: str) -> None:
        async def tx(request: Request) -> Response:
            return await handle(request, infno)

        api.post(f"/nhsa/{infno}", openapi_extra=_tx_openapi(infno), summary=f"{infno} {summary}",
                 operation_id=f"nhsa_{infno}", name=f"nhsa_{infno}")(tx)  # fmt: skip

    for infno, (summary, _inp, _out) in schemas.TRANSACTIONS.items():
        one(infno, summary)

    @api.post("/nhsa/{infno}", include_in_schema=False)
    async def other_tx(infno: str, request: Request) -> Response:  # refused as NHSA answers
        return await handle(request, infno)

    @api.get(
        "/slip/{setl_id}",
        summary="The printed slip (结算单) of a settlement",
        responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
    )
    async def slip(setl_id: str, request: Request, format: str = "html") -> Response:
        try:
            p = gw.identify(request)
            if format not in ("html", "pdf"):
                raise InputError.one("format", format, "is not html or pdf")
            body = await asyncio.to_thread(gw.slip, p, setl_id, format)
            media = "application/pdf" if format == "pdf" else "text/html; charset=utf-8"
            return Response(body, media_type=media)
        except Exception as err:
            status, reason, msg = to_nhsa(err)
            answer = {"infcode": -1, "err_msg": msg, "output": {"reason": reason}}
            return Response(dumps(answer), status_code=status, media_type="application/json")

    from adapters.fhir.routes import add_fhir

    add_fhir(api, gw)
    api.state.gateway = gw

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            doc = get_openapi(title=api.title, version=api.version, description=api.description,
                              routes=api.routes)  # fmt: skip
            doc.setdefault("components", {}).setdefault("schemas", {}).update(schemas.components())
            api.openapi_schema = doc
        return api.openapi_schema

    # FastAPI's documented way to extend the schema: mypy refuses any assignment to a method
    api.openapi = openapi  # type: ignore[method-assign]
    return api
