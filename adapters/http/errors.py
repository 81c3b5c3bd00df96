"""The one table mapping domain errors to NHSA answers (like ``adapters.grpc.errors``).

Every refusal is ``infcode -1`` with ``err_msg`` (NHSA has one failure code); the HTTP status
tells a client's transport layer the class of refusal and ``output.reason`` names it:

| domain error (engine.errors)   | HTTP | reason            | err_msg                         |
|--------------------------------|------|-------------------|---------------------------------|
| InputError                     | 200  | INPUT_ERROR       | field: value rule; ...          |
| PolicyError                    | 200  | POLICY_ERROR      | file:line: path: reason         |
| LimitExceeded                  | 200  | LIMIT_EXCEEDED    | field: given exceed the limit   |
| NotFound                       | 200  | NOT_FOUND         | what 'key' not found            |
| FailedPrecondition (Conflict)  | 200  | FAILED_PRECONDITION | the state forbids it          |
| Conflict                       | 200  | CONFLICT          | e.g. msgid used for another bill|
| PermissionDenied               | 403  | PERMISSION_DENIED | outside your role or scope      |
| Unauthenticated                | 401  | UNAUTHENTICATED   | a client certificate is required|
| anything else                  | 500  | INTERNAL          | incident id only                |

NHSA clients read ``infcode``, not the HTTP status, for business refusals (200 like the
platform); authentication and internal failures also carry a non-200 status.
"""

from __future__ import annotations

import logging
import uuid

from adapters.auth.principals import PermissionDenied, Unauthenticated
from engine.errors import (
    Conflict,
    FailedPrecondition,
    InputError,
    LimitExceeded,
    NotFound,
    PolicyError,
    clip,
)

log = logging.getLogger("onestop.http")

MAX_ERR_MSG = 600

#: (error class, HTTP status, reason); the first match wins (subclasses first).
TABLE: tuple[tuple[type[BaseException], int, str], ...] = (
    (InputError, 200, "INPUT_ERROR"),
    (PolicyError, 200, "POLICY_ERROR"),
    (LimitExceeded, 200, "LIMIT_EXCEEDED"),
    (NotFound, 200, "NOT_FOUND"),
    (FailedPrecondition, 200, "FAILED_PRECONDITION"),
    (Conflict, 200, "CONFLICT"),
    (PermissionDenied, 403, "PERMISSION_DENIED"),
    (Unauthenticated, 401, "UNAUTHENTICATED"),
)


def to_nhsa(err: BaseException) -> tuple[int, str, str]:
    """(HTTP status, reason, err_msg) of an error."""
    for cls, status, reason in TABLE:
        if isinstance(err, cls):
            return status, reason, clip(str(err), MAX_ERR_MSG)
    incident = uuid.uuid4().hex[:12]
    # like adapters/grpc/errors.py: the exception classes only, never a message (a driver's
    # message can quote a row)
    chain: list[str] = []
    e: BaseException | None = err
    while e is not None and len(chain) < 5:
        chain.append(type(e).__name__)
        e = e.__cause__ or e.__context__
    log.error("internal error %s: %s", incident, " <- ".join(chain))
    return 500, "INTERNAL", f"internal error; incident {incident}"
