"""The HTTP gateway with TLS and client certificates: the principals and roles of the gRPC
server (adapters/auth), per NHSA transaction."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from adapters.auth.certs import clients_for, make_all
from adapters.auth.principals import PrincipalsFile
from adapters.bootstrap import build
from adapters.grpc.auth import Tls
from adapters.grpc.testing import JIANG, YUBEI
from adapters.http.money import dumps
from adapters.http.serve import running
from engine.bill import Person
from tests.test_http_gateway import envelope, settle_input

H1, H2, R1 = "H500112001", "H500112002", "500112"
CLIENTS = clients_for([H1, H2], [R1], ["zhang"], ["610100"])


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("http_tls")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    d = tmp_path_factory.mktemp("http-pki")
    make_all(d, CLIENTS)
    app = build("memory://", policies=None, registry=None)
    app.service.put_policy(YUBEI, "yubei.yaml")
    app.service.import_registry([Person.model_validate(dict(JIANG, region=R1))])
    tls = Tls(d / "server.pem", d / "server.key", d / "ca.pem")
    try:
        with running(app, tls=tls, principals=PrincipalsFile(d / "principals.yaml")) as srv:
            yield d, srv.url
    finally:
        app.close()


def client(d: Path, url: str, identity: str | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    if identity:
        ctx.load_cert_chain(str(d / f"{identity}.pem"), str(d / f"{identity}.key"))
    return httpx.Client(base_url=url, verify=ctx, timeout=30)


def call(c: httpx.Client, env: dict) -> tuple[int, dict]:
    r = c.post("/nhsa", content=dumps(env))
    return r.status_code, r.json(parse_float=Decimal)


def test_cashier_settles_its_hospital(pki):
    d, url = pki
    with client(d, url, f"cashier-{H1}") as c:
        status, ans = call(c, envelope("2303", "t1", settle_input()))
        assert status == 200 and ans["infcode"] == 0, ans
        status, ans = call(c, envelope("3201", "t2", {"data": {
            "stmt_begndate": "2023-05-01", "stmt_enddate": "2023-05-31"}}))  # fmt: skip
        assert ans["infcode"] == 0, ans


def test_other_hospital_and_wrong_role_refused(pki):
    d, url = pki
    with client(d, url, f"cashier-{H2}") as c:  # a bill of H1
        status, ans = call(c, envelope("2303", "t3", settle_input()))
        assert status == 403 and ans["infcode"] == -1
        # the NHSA field, not the engine's (bill.hospital)
        assert ans["err_msg"].startswith(f"fixmedins_code: hospital '{H1}' is not yours"), ans
    with client(d, url, "fund-610100") as c:
        status, ans = call(c, envelope("2303", "t4", settle_input()))
        assert status == 403 and ans["infcode"] == -1 and "2303" in ans["err_msg"]
        r = c.get("/slip/0123456789abcdef0123456789abcdef")  # not a "transaction 3201"
        assert r.status_code == 403, r.text
        assert r.json()["err_msg"] == "the slip (GET /slip) is not allowed to a fund", r.text
    with client(d, url, f"bureau-{R1}") as c:
        status, ans = call(c, envelope("2304", "t5", settle_input()))
        assert status == 403 and "2304" in ans["err_msg"]
        status, ans = call(c, envelope("3201", "t6", {"data": {
            "stmt_begndate": "2023-05-01", "stmt_enddate": "2023-05-31"}}))  # fmt: skip
        assert ans["infcode"] == 0, ans  # a bureau reconciles


def test_no_client_certificate_refused(pki):
    d, url = pki
    with client(d, url, None) as c, pytest.raises(httpx.HTTPError):
        c.post("/nhsa", content=dumps(envelope("2303", "t7", settle_input())))
