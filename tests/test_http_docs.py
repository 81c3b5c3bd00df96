"""The gateway's API pages (/docs, /redoc) work on a network without internet: every script,
style and icon they load comes from the gateway itself (fastapi-offline), none from a CDN. A
hospital's intranet usually reaches no internet, and FastAPI's own pages, which load Swagger UI
from cdn.jsdelivr.net, were blank there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.bootstrap import build
from adapters.http.serve import running
from tests.browser import chromium

# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("http_docs")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = build("memory://", policies=None, registry=None)
    try:
        with running(app) as http:
            yield http.url
    finally:
        app.close()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_nothing_from_outside(url: str, page: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.get(page)
        assert r.status_code == 200, r.text
        refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
        assert refs, r.text
        for ref in refs:
            assert ref.startswith("/"), f"{page} loads {ref} from outside the gateway"
            asset = c.get(ref)
            assert asset.status_code == 200 and asset.content, ref
        assert "/openapi.json" in r.text


def test_swagger_ui_renders_the_transactions_offline(url: str) -> None:
    """In headless Chromium with every request outside the gateway refused, /docs shows the
    NHSA transactions of the served OpenAPI document."""
    outside: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with chromium() as b:
        page = b.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", route)
        page.goto(f"{url}/docs")
        page.get_by_text("/nhsa/2304", exact=True).first.wait_for(timeout=30_000)
        text = page.inner_text("body")
    assert outside == [] and errors == [], (outside, errors)
    for infno in ("2301", "2303", "2304", "2305", "2601", "3201", "3202", "9101", "9102"):
        assert f"/nhsa/{infno}" in text, infno
