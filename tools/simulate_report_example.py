"""The screenshot of the bureau's report shown in the README: the first screen of the report
of tests/fixtures/simulate-figures.json, in the system's Chromium (playwright, no download).

    PYTHONPATH=. .venv/bin/python tools/simulate_report_example.py
    # -> adapters/simulate/example/report-example.png
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from adapters.simulate.report import write_report

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "simulate-figures.json"
PNG = ROOT / "adapters" / "simulate" / "example" / "report-example.png"


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: no chromium on PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_report(json.loads(FIXTURE.read_text(encoding="utf-8")), out)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--no-sandbox"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto((out / "report.html").as_uri(), wait_until="load")
            PNG.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(PNG))
            browser.close()
    print(PNG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
