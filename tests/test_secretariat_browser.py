"""A real Chromium works the secretariat's pages on a running `gateway serve`.

An officer logs in, filters the queue, opens an application and asks the applicant for more
information; the applicant sees the question at their next `gateway chat`. Every page passes
axe-core with no serious or critical violation, on a laptop and on a tablet.

axe-core comes from the npm registry: tests/run.sh installs it under .cache/axe-core, and this
module does the same when it is missing (npm is on every machine that runs the suite).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import missing_service
from tests.filings import ENGLISH_FILING
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _free_port, _require_chromium
from tests.test_browser import _wait_until_healthy as wait_until_healthy
from tests.test_cli import chat
from tests.test_cli import gateway as run_gateway

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
AXE_DIR = ROOT / ".cache" / "axe-core"
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery"
REFERENCE = re.compile(r"MCM-\d{4}-[0-9A-Z]+")


@pytest.fixture(scope="module")
def axe_script() -> Path:
    """axe.min.js from the npm package axe-core, installed under .cache/ when missing."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            missing_service("npm is missing, so axe-core cannot be installed")
        subprocess.run([npm or "npm", "install", "--prefix", str(AXE_DIR), "--no-audit",
                        "--no-fund", "--silent", "axe-core@4"], check=False, timeout=300,
                       capture_output=True)
    if not AXE.exists():
        missing_service("axe-core could not be installed from the npm registry")
    return AXE


@pytest.fixture(scope="module")
def secretariat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`gateway serve` with one filed application and an officer who can log in."""
    _require_chromium()
    data_dir = tmp_path_factory.mktemp("secretariat")
    messages = chat(data_dir, ENGLISH_FILING, sender="jane")
    reference = next(m["reference"] for m in messages if m.get("reference"))
    added = run_gateway(data_dir, "users", "add", "olivia", "--role", "officer",
                        "--password-stdin", stdin=(PASSWORD + "\n").encode())
    assert added.returncode == 0, added.stderr.decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"GATEWAY_DATA_DIR": str(data_dir), "GATEWAY_HTTP_PORT": str(_free_port()),
            "GATEWAY_HTTP_HOST": "127.0.0.1"}
    log = (data_dir / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
    url = f"http://127.0.0.1:{env['GATEWAY_HTTP_PORT']}"
    try:
        wait_until_healthy(url, server, data_dir / "serve.log")
        yield {"url": url, "data_dir": data_dir, "reference": reference}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(secretariat: dict[str, Any]) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser: Browser, secretariat: dict[str, Any], **options: Any) -> Page:
    # axe is injected as a script, which the pages' Content-Security-Policy would refuse.
    context = browser.new_context(base_url=secretariat["url"], bypass_csp=True, **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def no_serious_violations(page: Page, axe: Path) -> None:
    """axe-core finds nothing serious or critical on the page as it is now."""
    page.add_script_tag(path=str(axe))
    result = page.evaluate("""async () => {
        const outcome = await axe.run(document, {resultTypes: ["violations"]});
        return outcome.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                             nodes: v.nodes.map(n => n.target.join(" "))}));
    }""")
    serious = [v for v in result if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{page.url}: {serious}"


def log_in(page: Page) -> None:
    page.goto("/secretariat")
    expect(page).to_have_url(re.compile(r"/secretariat/login\?next="))
    page.get_by_label("User name").fill("olivia")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Applications", exact=True)).to_be_visible()


def test_officer_filters_opens_and_asks_for_more_information(
        browser: Browser, secretariat: dict[str, Any], axe_script: Path) -> None:
    page = new_page(browser, secretariat, viewport={"width": 1366, "height": 900})
    page.goto("/secretariat/login")
    no_serious_violations(page, axe_script)
    log_in(page)
    reference = secretariat["reference"]
    no_serious_violations(page, axe_script)

    page.get_by_label("Mineral").select_option("tin")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("No application matches these filters.")).to_be_visible()
    page.get_by_label("Mineral").select_option("cobalt")
    page.get_by_label("Status").select_option("submitted")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"mineral=cobalt"))
    expect(page.get_by_role("table")).to_contain_text("1 application (filtered)")

    page.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", name=f"Application {reference}")).to_be_visible()
    no_serious_violations(page, axe_script)
    page.get_by_label("Ask for more information").check()
    page.get_by_label("Message to the applicant").fill(
        "Please send a photo of the discharge pipe.")
    page.get_by_label("Internal note", exact=True).fill("Site visit planned for May.")
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("Done: Ask for more information")
    expect(page.locator(".facts")).to_contain_text("Supplement requested")
    expect(page.locator("#history")).to_contain_text("Site visit planned for May.")
    no_serious_violations(page, axe_script)

    page.get_by_role("link", name="Statistics").click()
    expect(page.get_by_role("heading", name="Statistics")).to_be_visible()
    no_serious_violations(page, axe_script)

    shown = chat(secretariat["data_dir"], [], sender="jane")
    assert "Please send a photo of the discharge pipe." in shown[0]["text"]
    assert "Site visit" not in str(shown)
    page.context.close()


def test_pages_fit_a_tablet(browser: Browser, secretariat: dict[str, Any],
                            axe_script: Path) -> None:
    page = new_page(browser, secretariat, viewport={"width": 768, "height": 1024},
                    has_touch=True)
    log_in(page)
    for path in ("/secretariat", f"/secretariat/applications/{secretariat['reference']}",
                 "/secretariat/statistics"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 768, path
        no_serious_violations(page, axe_script)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.context.close()
