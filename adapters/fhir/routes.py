"""The FHIR endpoints on the gateway's app (``application/fhir+json``):

- ``POST /fhir/Claim/$predetermine``: a Claim -> PreSettle -> ClaimResponse use=predetermination
- ``POST /fhir/Claim/$submit``: a Claim -> Settle -> ClaimResponse use=claim. The Claim's
  ``id`` is the idempotency key (the request id): the same id answers the same settlement, the
  same id with another bill is refused (409).
- ``GET /fhir/metadata``: the CapabilityStatement (FHIR 4.0.1, the two operations), open to
  every connected client (it names no data).

Roles as the NHSA transactions they are (2303, 2304). Refusals are an ``OperationOutcome``
(issue.expression = the Claim paths at fault) with the status of the error table
(``adapters.http.errors``) made FHIR-like: 400 invalid, 401, 403, 404, 409, 500.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from adapters.fhir.claim import bill_request, fhir_path
from adapters.fhir.response import capability_statement, claim_response, operation_outcome
from adapters.http.errors import to_nhsa
from adapters.http.money import dumps, loads
from adapters.http.nhsa import renamed
from engine.allocation import allocate
from engine.errors import NO_VALUE, InputError

FHIR_JSON = "application/fhir+json"
_STATUS = {"INPUT_ERROR": (400, "invalid"), "POLICY_ERROR": (400, "invalid"),
           "LIMIT_EXCEEDED": (400, "too-costly"), "NOT_FOUND": (404, "not-found"),
           "FAILED_PRECONDITION": (409, "business-rule"), "CONFLICT": (409, "conflict"),
           "PERMISSION_DENIED": (403, "forbidden"), "UNAUTHENTICATED": (401, "login"),
           "INTERNAL": (500, "exception")}  # fmt: skip
_BODY = {"requestBody": {"required": True, "content": {FHIR_JSON: {"schema": {
    "type": "object", "description": "a FHIR R4 Claim (see adapters/fhir/claim.py)"}}}},
    "responses": {"200": {"description": "a FHIR R4 ClaimResponse",
                          "content": {FHIR_JSON: {"schema": {"type": "object"}}}}}}  # fmt: skip


def add_fhir(api: FastAPI, gw: Any) -> None:
    service = gw.app.service

    def answer(p: Any, claim: Any, use: str) -> dict[str, Any]:
        req = bill_request(claim)
        if use == "predetermination":
            with renamed(fhir_path):
                s = gw.scoped(p, "2303").pre_settle(req)
            sid, created = "", None
        else:
            rid = claim.get("id") if isinstance(claim, dict) else None
            if not rid:
                raise InputError.one("Claim.id", NO_VALUE,
                                     "is missing; $submit needs it as the idempotency key")  # fmt: skip
            with renamed(fhir_path):
                rec, _ = gw.scoped(p, "2304").settle(str(rid), req)
            s, sid, created = rec.settlement, rec.settlement_id, rec.created_at
        bill = req.with_person(service.person(req.person_id))
        if use == "predetermination":
            table = service.policies().table_for(s.region, s.discharge_date)
        else:  # a settlement (or its replay): the table it was settled with
            table = service.table_of(rec)
        alloc = allocate(bill, table, s)
        return claim_response(s, bill, table, alloc, use, sid, created)

    async def handle(request: Request, use: str) -> Response:
        try:
            p = gw.identify(request)
            try:
                claim = loads(await request.body())
            except ValueError as err:
                raise InputError.one("body", NO_VALUE, f"is not JSON: {err}") from None
            out = await asyncio.to_thread(answer, p, claim, use)
            return Response(dumps(out), media_type=FHIR_JSON)
        except Exception as err:
            _, reason, msg = to_nhsa(err)
            status, code = _STATUS[reason]
            fields = [q.field for q in err.problems] if isinstance(err, InputError) else []
            return Response(dumps(operation_outcome(code, msg, fields)), status_code=status,
                            media_type=FHIR_JSON)  # fmt: skip

    @api.post("/fhir/Claim/$predetermine", openapi_extra=_BODY, summary="FHIR PreSettle")
    async def predetermine(request: Request) -> Response:
        return await handle(request, "predetermination")

    statement = capability_statement()

    @api.get("/fhir/metadata", summary="FHIR CapabilityStatement (R4 4.0.1)",
             responses={200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}})  # fmt: skip
    async def metadata() -> Response:
        return Response(dumps(statement), media_type=FHIR_JSON)

    @api.post("/fhir/Claim/$submit", openapi_extra=_BODY, summary="FHIR Settle")
    async def submit(request: Request) -> Response:
        return await handle(request, "claim")
