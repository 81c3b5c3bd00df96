"""The one table mapping domain errors to gRPC status codes, with field-level details.

| domain error (engine.errors)        | gRPC code         | details                            |
|-------------------------------------|-------------------|------------------------------------|
| InputError (bill, person, request)  | INVALID_ARGUMENT  | BadRequest: field = path,          |
|                                     |                   | description = value + rule         |
| PolicyError (table refused)         | INVALID_ARGUMENT  | BadRequest: field = path in table, |
|                                     |                   | description = file:line: reason    |
| NotFound                            | NOT_FOUND         | ErrorInfo                          |
| Conflict                            | ALREADY_EXISTS    | ErrorInfo                          |
| anything else                       | INTERNAL          | none; no stack trace is sent       |

Every status also carries a ``google.rpc.ErrorInfo`` (domain "onestop", reason the error class
in upper snake case: INPUT_ERROR, POLICY_ERROR, NOT_FOUND, CONFLICT, INTERNAL).

Conflict -> ALREADY_EXISTS (not FAILED_PRECONDITION): every Conflict the use cases raise means
"what you are creating already exists in another form": a request_id already used for a
different bill, or a bill id already settled under another request_id. The client must not
retry the same request; it either uses a new request_id or reverses the earlier settlement.
ALREADY_EXISTS says exactly that and lets a HIS tell it apart from other refusals.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from engine.errors import NO_VALUE, Conflict, InputError, NotFound, PolicyError, show

log = logging.getLogger("onestop.grpc")

DOMAIN = "onestop"

#: domain error class -> (gRPC code, ErrorInfo reason). Checked in order (first isinstance wins).
TABLE: tuple[tuple[type[BaseException], grpc.StatusCode, str], ...] = (
    (InputError, grpc.StatusCode.INVALID_ARGUMENT, "INPUT_ERROR"),
    (PolicyError, grpc.StatusCode.INVALID_ARGUMENT, "POLICY_ERROR"),
    (NotFound, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    (Conflict, grpc.StatusCode.ALREADY_EXISTS, "CONFLICT"),
)


def violations(exc: BaseException) -> list[tuple[str, str]]:
    """(field, description) pairs for BadRequest."""
    if isinstance(exc, InputError):
        out = []
        for p in exc.problems:
            desc = p.rule if p.value is NO_VALUE else f"{show(p.value)} {p.rule}"
            out.append((p.field, desc))
        return out
    if isinstance(exc, PolicyError):
        out = []
        for p in exc.problems:
            where = p.file if p.line is None else f"{p.file}:{p.line}"
            out.append((p.path or "(table)", f"{where}: {p.reason}"))
        return out
    return []


def _pack(msg: Any) -> any_pb2.Any:
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def to_status(exc: BaseException) -> status_pb2.Status:
    """The rich status for a domain error; INTERNAL (with an incident id only) otherwise."""
    for cls, code, reason in TABLE:
        if isinstance(exc, cls):
            details = []
            v = violations(exc)
            if v:
                details.append(
                    _pack(
                        error_details_pb2.BadRequest(
                            field_violations=[
                                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                                for f, d in v
                            ]
                        )
                    )
                )
            details.append(_pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)))
            return status_pb2.Status(code=code.value[0], message=str(exc), details=details)
    incident = uuid.uuid4().hex[:12]
    log.error("internal error, incident %s", incident, exc_info=exc)
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error (incident {incident}); the server log has the details",
        details=[_pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=DOMAIN))],
    )


def grpc_status(exc: BaseException) -> grpc.Status:
    return rpc_status.to_status(to_status(exc))


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    """End the call with the status for ``exc`` (raises, as ``context.abort`` does)."""
    await context.abort_with_status(grpc_status(exc))


def bad_request(err: grpc.RpcError) -> list[tuple[str, str]]:
    """Client side: the (field, description) pairs of an error's BadRequest detail."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    out: list[tuple[str, str]] = []
    if status is None:
        return out
    for d in status.details:
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            d.Unpack(br)
            out += [(v.field, v.description) for v in br.field_violations]
    return out
