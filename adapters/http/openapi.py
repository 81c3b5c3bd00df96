"""Print the gateway's OpenAPI document (committed as adapters/http/openapi.json):
``python -m adapters.http.openapi > adapters/http/openapi.json``."""

from __future__ import annotations

import json

from adapters.bootstrap import build
from adapters.http.app import create_app


def document() -> str:
    app = build("memory://", policies=None, registry=None)
    try:
        return json.dumps(create_app(app).openapi(), indent=2, ensure_ascii=False) + "\n"
    finally:
        app.close()


if __name__ == "__main__":
    print(document(), end="")
