"""Who is calling, and may it call this method: the server's one authentication point.

- Identity: read here and nowhere else, by ``AuthInterceptor`` from the TLS peer
  (``context.auth_context()``: the certificate's SANs, then its subject CN; the certificate
  itself was verified against ``--client-ca`` by the TLS handshake). Each name is looked up in
  the principals file; exactly one principal must match, else UNAUTHENTICATED. A plaintext
  server (loopback only) has one principal, ``local``, with every role.
- Role: ``METHOD_ROLES`` below, the one table of which roles may call which method; a method
  not in it is refused to everyone but ``local`` (PERMISSION_DENIED), so a new rpc is closed
  until it is given a row. Health and reflection are open (``OPEN``).
- Scope (which hospital, region or fund): ``adapters.auth.access.ScopedService``, the thin
  layer over the use cases that the servicers call with ``current()``.

With ``require_client_auth`` a caller with no certificate, or one not signed by the client CA,
is refused in the TLS handshake: it never reaches gRPC, and the client sees UNAVAILABLE
("Socket closed"; the server logs the handshake failure). UNAUTHENTICATED is what a caller
whose verified certificate names no principal gets. Health needs a certificate of the client
CA too (any identity, listed or not): the handshake comes before any method.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _jstr
from pathlib import Path
from typing import Any

import grpc

from adapters.auth.loopback import is_loopback  # noqa: F401 (auth.is_loopback: server.py)
from adapters.auth.principals import (
    LOCAL,
    ROLES,
    PermissionDenied,
    Principal,
    PrincipalsFile,
    Unauthenticated,
)
from adapters.grpc.errors import abort, last_incident

log = logging.getLogger("onestop.auth")

_S = "/onestop.settlement.v1.SettlementService/"
_A = "/onestop.settlement.v1.PolicyAdminService/"
_R = "/onestop.settlement.v1.ReconciliationService/"
_F = "/onestop.settlement.v1.FundsService/"
_READ = frozenset({"cashier", "bureau", "auditor", "fund"})
#: who reads claims (each its own scope: adapters.auth.access.ScopedFunds)
_CLAIM_READ = frozenset({"fund", "bureau", "auditor", "cashier", "cadre", "person"})

#: method -> roles that may call it (scope is checked by adapters.auth.access.ScopedService)
METHOD_ROLES: dict[str, frozenset[str]] = {
    _S + "PreSettle": frozenset({"cashier"}),
    _S + "Settle": frozenset({"cashier"}),
    _S + "Reverse": frozenset({"cashier"}),
    _S + "SettleStream": frozenset({"cashier"}),
    _S + "GetSettlement": _READ,
    _S + "ListSettlements": _READ,
    _S + "GetAccounts": frozenset({"cashier", "bureau", "auditor"}),
    _A + "PutPolicy": frozenset({"bureau"}),
    _A + "ImportRegistry": frozenset({"bureau"}),
    _A + "ListPolicies": frozenset({"bureau", "auditor"}),
    _A + "GetPolicy": frozenset({"bureau", "auditor"}),
    _R + "Reconcile": frozenset({"cashier", "bureau", "auditor"}),
    _R + "DailyTotals": frozenset({"cashier", "bureau", "auditor"}),
    _F + "PutFunds": frozenset({"fund", "bureau"}),
    _F + "RecordMoneyIn": frozenset({"fund"}),
    _F + "FileClaim": frozenset({"cashier", "cadre", "person"}),
    _F + "GetClaim": _CLAIM_READ,
    _F + "ListClaims": _CLAIM_READ,
    _F + "ApproveClaim": frozenset({"fund"}),
    _F + "RejectClaim": frozenset({"fund"}),
    _F + "PayClaim": frozenset({"fund"}),
    _F + "FundStatement": frozenset({"fund", "bureau", "auditor"}),
    _F + "PersonCover": frozenset({"person", "cadre", "bureau", "auditor"}),
    _F + "CoverList": frozenset({"cadre", "bureau", "auditor"}),
    _F + "PublicFigures": frozenset(ROLES),  # aggregates only: every authenticated role
}

#: methods anyone who completed the TLS handshake may call (no principal needed)
OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_current: ContextVar[Principal | None] = ContextVar("onestop_principal", default=None)


def current() -> Principal:
    """The caller of the rpc being served (set by ``AuthInterceptor``); Unauthenticated when
    none was set, so a servicer reached without the interceptor fails closed."""
    p = _current.get()
    if p is None:
        raise Unauthenticated("no caller identity")
    return p


def names(auth: dict[str, list[bytes]]) -> list[str]:
    """The names a TLS peer's certificate gives: its SANs, then its subject CN."""
    out: list[str] = []
    for key in ("x509_subject_alternative_name", "x509_common_name"):
        for v in auth.get(key, []):
            s = v.decode("utf-8", "replace")
            if s not in out:
                out.append(s)
    return out


access_log = logging.getLogger("onestop.access")
_CODES = {c.value[0]: c for c in grpc.StatusCode}  # the raw int of a status -> its code


def _js(v: str | None) -> str:
    """``v`` as ``json.dumps`` writes it (its own C string encoder; None: null)."""
    return "null" if v is None else _jstr(v)


def log_call(
    principal: Principal | None,
    method: str,
    context: grpc.aio.ServicerContext,
    t0: float,
    failed: BaseException | None = None,
) -> None:
    """One structured line per call: principal, role, method, status, duration, incident id.
    Never a request field (no person data). Nothing is built when the ``onestop.access``
    logger is off (level above INFO)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    code = context.code() if hasattr(context, "code") else None
    if code is None:
        code = grpc.StatusCode.OK if failed is None else grpc.StatusCode.UNKNOWN
    if isinstance(code, int):  # the aio context may give the raw int
        code = _CODES.get(code, grpc.StatusCode.UNKNOWN)
    # the line json.dumps(..., separators=(",", ":")) gives for the dict of these six keys,
    # written directly (no dict, no encoder per call; tests/test_auth.py compares the two)
    who, role = (principal.name, principal.role) if principal else (None, None)
    ms = round((time.perf_counter() - t0) * 1000, 3)
    access_log.info(
        f'{{"principal":{_js(who)},"role":{_js(role)},"method":{_jstr(method)},'
        f'"status":"{code.name}","ms":{ms!r},"incident":{_js(last_incident.get())}}}'
    )


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Identity -> principal, then the role table, for every call but the open ones.
    ``principals`` None: a plaintext loopback server, every caller is ``LOCAL``."""

    def __init__(self, principals: PrincipalsFile | None):
        self.principals = principals
        #: method -> (the servicer's handler, the wrapped one): built once per method, not
        #: per call (the servers' handlers never change once started)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def identify(self, context: grpc.aio.ServicerContext) -> Principal:
        if self.principals is None:
            return LOCAL
        auth = context.auth_context()
        if auth.get("transport_security_type") != [b"ssl"]:
            raise Unauthenticated("a client certificate is required")
        found = {p for n in names(auth) if (p := self.principals.get(n)) is not None}
        if len(found) != 1:
            log.warning(
                "unauthenticated: certificate names %s match %d principals",
                names(auth)[:4],
                len(found),
            )
            raise Unauthenticated(
                "the client certificate names no principal of this server"
                if not found
                else "the client certificate names more than one principal"
            )
        return found.pop()

    def admit(self, method: str, context: grpc.aio.ServicerContext) -> Principal:
        p = self.identify(context)
        roles = METHOD_ROLES.get(method)
        if p.unrestricted:
            return p
        if roles is None or not p.has(roles):
            log.warning("permission denied: %s (%s) called %s", p.name, p.role, method)
            raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} is not allowed to a {p.role}")
        return p

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(OPEN):
            return handler
        got = self._wrapped.get(method)
        if got is not None and got[0] is handler:
            return got[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` with the identity and role check and the access line around it."""
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                t0, p = time.perf_counter(), None
                failed: BaseException | None = None
                try:
                    try:
                        p = self.admit(method, context)
                    except (PermissionDenied, Unauthenticated) as exc:
                        await abort(context, exc)
                    _current.set(p)  # this call's task only
                    return await inner(request, context)
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    log_call(p, method, context, t0, failed)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            inner_s = handler.stream_stream

            async def stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator:
                t0, p = time.perf_counter(), None
                failed: BaseException | None = None
                try:
                    try:
                        p = self.admit(method, context)
                    except (PermissionDenied, Unauthenticated) as exc:
                        await abort(context, exc)
                    _current.set(p)
                    async for r in inner_s(requests, context):
                        yield r
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    log_call(p, method, context, t0, failed)

            return grpc.stream_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await abort(context, PermissionDenied("this method is not served"))

        return grpc.unary_unary_rpc_method_handler(refuse)


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Tls:
    """The server's certificate and key, and the CA its clients' certificates must chain to."""

    cert: Path
    key: Path
    client_ca: Path

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.client_ca.read_bytes(),
            require_client_auth=True,
        )


def channel_credentials(
    ca: str | Path | None, cert: str | Path | None, key: str | Path | None
) -> grpc.ChannelCredentials:
    """Client side: trust ``ca`` (the server's CA) and present ``cert``/``key``."""
    if (cert is None) != (key is None):
        raise ValueError("give both --cert and --key (or neither)")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes() if ca else None,
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )
