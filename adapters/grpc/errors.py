"""The one table mapping domain errors to gRPC status codes, with field-level details.

| domain error (engine.errors)        | gRPC code         | details                            |
|-------------------------------------|-------------------|------------------------------------|
| InputError (bill, person, request)  | INVALID_ARGUMENT  | BadRequest: field = path,          |
|                                     |                   | description = value + rule         |
| PolicyError (table refused)         | INVALID_ARGUMENT  | BadRequest: field = path in table, |
|                                     |                   | description = file:line: reason    |
| Undecodable (bytes not the message) | INVALID_ARGUMENT  | ErrorInfo (UNDECODABLE)            |
| LimitExceeded (items, persons, ...) | RESOURCE_EXHAUSTED| ErrorInfo, metadata limit, maximum |
| NotFound                            | NOT_FOUND         | ErrorInfo                          |
| FailedPrecondition (a Conflict)     | FAILED_PRECONDITION | ErrorInfo                        |
| Conflict                            | ALREADY_EXISTS    | ErrorInfo                          |
| PermissionDenied (adapters.auth)    | PERMISSION_DENIED | ErrorInfo; never says what exists  |
| Unauthenticated (adapters.auth)     | UNAUTHENTICATED   | ErrorInfo                          |
| anything else                       | INTERNAL          | none; no stack trace is sent       |

Every status also carries a ``google.rpc.ErrorInfo`` (domain "onestop", reason the error class
in upper snake case: INPUT_ERROR, POLICY_ERROR, NOT_FOUND, CONFLICT, PERMISSION_DENIED,
UNAUTHENTICATED, INTERNAL).

PERMISSION_DENIED is also the answer for something a scoped caller cannot see, whether or not
it exists (a settlement of another hospital and an unknown settlement id look the same).

FailedPrecondition -> FAILED_PRECONDITION: the state of what the request names does not allow
it (a claim asked for a step its status does not have: paying a filed claim, deciding a paid
one; reversing a settlement with a paid claim). Nothing exists in another form; the request
may succeed once the state changes (approve, then pay). Checked before Conflict, its base.

Conflict -> ALREADY_EXISTS (not FAILED_PRECONDITION): every other Conflict the use cases raise means
"what you are creating already exists in another form": a request_id already used for a
different bill, or a bill id already settled under another request_id. The client must not
retry the same request; it either uses a new request_id or reverses the earlier settlement.
ALREADY_EXISTS says exactly that and lets a HIS tell it apart from other refusals.

Size: every echoed value is clipped (``engine.errors.show``), at most MAX_PROBLEMS violations
are listed in the details (three in the message, then "and N more problems"), and the
trailers are kept under MAX_TRAILER_BYTES: C-core clients refuse trailers above 8 KiB (they
would see RESOURCE_EXHAUSTED instead of the real refusal).

INTERNAL: the log gets an incident id, the exception classes and, for a failed SQL statement,
its first words; never its parameters or any exception message (a driver's message can quote
a row). The client gets the incident id only.
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from adapters.auth.principals import PermissionDenied, Unauthenticated
from engine.errors import (
    MAX_PROBLEMS,
    NO_VALUE,
    Conflict,
    FailedPrecondition,
    InputError,
    LimitExceeded,
    NotFound,
    PolicyError,
    clip,
    show,
)

log = logging.getLogger("onestop.grpc")

DOMAIN = "onestop"
#: The trailers of an error (the message, percent-encoded, and the google.rpc.Status with its
#: details, base64) stay under this: clients cap all trailers at 8 KiB.
MAX_TRAILER_BYTES = 6 * 1024
MAX_MESSAGE = 600  # characters of the status message


class Undecodable(Exception):
    """The bytes of a request are not a message of the method's type (a client built from
    another proto, or garbage). Raised by the servicers for what the deserializer marked."""

    def __init__(self, type_name: str):
        self.type_name = type_name
        super().__init__(
            f"the request is not a valid {type_name} message; check the client's proto version"
        )


#: domain error class -> (gRPC code, ErrorInfo reason). Checked in order (first isinstance wins).
TABLE: tuple[tuple[type[BaseException], grpc.StatusCode, str], ...] = (
    (InputError, grpc.StatusCode.INVALID_ARGUMENT, "INPUT_ERROR"),
    (Undecodable, grpc.StatusCode.INVALID_ARGUMENT, "UNDECODABLE"),
    (LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_EXCEEDED"),
    (PolicyError, grpc.StatusCode.INVALID_ARGUMENT, "POLICY_ERROR"),
    (NotFound, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION"),
    (Conflict, grpc.StatusCode.ALREADY_EXISTS, "CONFLICT"),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
)


def violations(exc: BaseException, limit: int = MAX_PROBLEMS) -> list[tuple[str, str]]:
    """(field, description) pairs for BadRequest: at most ``limit``, then one that says how
    many more there are; every value clipped."""
    out: list[tuple[str, str]] = []
    n = 0
    if isinstance(exc, InputError):
        n = len(exc.problems)
        for p in exc.problems[:limit]:
            rule = clip(p.rule, 300)
            desc = rule if p.value is NO_VALUE else f"{show(p.value)} {rule}"
            out.append((clip(p.field, 120), desc))
    elif isinstance(exc, PolicyError):
        n = len(exc.problems)
        for q in exc.problems[:limit]:
            where = clip(q.file) if q.line is None else f"{clip(q.file)}:{q.line}"
            out.append((clip(q.path, 120) or "(table)", f"{where}: {clip(q.reason, 300)}"))
    elif isinstance(exc, LimitExceeded):
        out.append((exc.field, f"{exc.given} exceed the limit {exc.limit} = {exc.maximum}"))
    if n > limit:
        more = n - limit
        out.append(("(more)", f"and {more} more problem{'s' if more > 1 else ''}"))
    return out


def _pack(msg: Any) -> any_pb2.Any:
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def _message(exc: BaseException, shown: int) -> str:
    """The status message: for a list of problems, the first ``shown`` of them and how many
    more (the BadRequest detail lists up to MAX_PROBLEMS); clipped."""
    problems = exc.problems if isinstance(exc, InputError | PolicyError) else None
    if problems is None or len(problems) <= shown:
        return clip(str(exc), MAX_MESSAGE)
    sep = "; " if isinstance(exc, InputError) else "\n"
    head = sep.join(str(p) for p in problems[:shown])
    more = len(problems) - shown
    text = f"{head}{sep}and {more} more problem{'s' if more > 1 else ''}"
    return clip(text, MAX_MESSAGE)


def wire_size(st: status_pb2.Status) -> int:
    """Bytes of the trailers carrying ``st``: grpc-status-details-bin (base64) and
    grpc-message (percent-encoded: 3 bytes for each byte outside printable ASCII)."""
    details = (st.ByteSize() + 2) // 3 * 4
    msg = sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in st.message.encode())
    return details + msg + 64  # header names, grpc-status


def _status(code: grpc.StatusCode, reason: str, exc: BaseException) -> status_pb2.Status:
    limit, shown = MAX_PROBLEMS, 3
    meta = {}
    if isinstance(exc, LimitExceeded):
        meta = {"limit": exc.limit, "maximum": str(exc.maximum), "field": exc.field}
    info = _pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=meta))
    while True:
        details = []
        v = violations(exc, limit)
        if v:
            fvs = [
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in v
            ]
            details.append(_pack(error_details_pb2.BadRequest(field_violations=fvs)))
        message = _message(exc, shown)
        st = status_pb2.Status(code=code.value[0], message=message, details=[*details, info])
        if wire_size(st) <= MAX_TRAILER_BYTES or limit == 0:
            return st
        # long paths and reasons (or non-ASCII text): list fewer, saying how many are left out
        limit //= 2
        shown = min(shown, limit, 1)


#: the incident id of the call being served, if it had one (for its access log line)
last_incident: ContextVar[str | None] = ContextVar("onestop_incident", default=None)


def log_incident(exc: BaseException, what: str = "internal error") -> str:
    """Log ``exc`` under a new incident id, without any value: the chain of exception classes,
    the first words of a failed SQL statement, and where it happened (file, line, function).
    Never the exception's text: a driver's message may quote a row (PostgreSQL's "Failing row
    contains (...)"), a statement's parameters hold person data. Returns the incident id."""
    import traceback

    incident = uuid.uuid4().hex[:12]
    last_incident.set(incident)
    chain: list[str] = []
    seen: set[int] = set()
    e: BaseException | None = exc
    statement = None
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(type(e).__module__ + "." + type(e).__qualname__)
        statement = statement or getattr(e, "statement", None)
        e = e.__cause__ or e.__context__
    sql = f"; statement {' '.join(str(statement).split()[:4])} ..." if statement else ""
    frames = traceback.extract_tb(exc.__traceback__)
    where = " <- ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[::-1][:8]
    )
    log.error("%s, incident %s: %s%s; at %s", what, incident, " from ".join(chain), sql, where)
    return incident


def to_status(exc: BaseException) -> status_pb2.Status:
    """The rich status for a domain error; INTERNAL (with an incident id only) otherwise."""
    for cls, code, reason in TABLE:
        if isinstance(exc, cls):
            return _status(code, reason, exc)
    incident = log_incident(exc)
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
    status = rpc_status.from_call(err)
    out: list[tuple[str, str]] = []
    if status is None:
        return out
    for d in status.details:
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            d.Unpack(br)
            out += [(v.field, v.description) for v in br.field_violations]
    return out
