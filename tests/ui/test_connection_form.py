"""The ``sls`` connection in Airflow's own UI, in a real browser: Airflow's API server with this
provider, Debian's Chromium driven by Playwright (never a downloaded browser).

An ``sls`` connection is added through the form and tested with the connection list's Test icon,
which goes through Airflow's ``POST /api/v2/connections/test`` (Airflow 3.3.2 sends ``port: 0`` there
for an empty port field, and its API then refuses the test: the form keeps the port field for that).
Screenshots of a failed test go to ``tests/ui/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sls_provider.emulator import SlsEmulator

CHROMIUM = "/usr/bin/chromium"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOTS = Path(__file__).parent / "screenshots"
PROJECT, LOGSTORE = "my-project", "web-events"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def emulator() -> Iterator[SlsEmulator]:
    with SlsEmulator() as emu:
        emu.create_logstore(PROJECT, LOGSTORE, web_tracking=True)
        yield emu


@pytest.fixture
def page(request: pytest.FixtureRequest, api_server: str) -> Iterator[object]:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                SHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
            browser.close()


def _add_connection(page, base: str, conn_id: str, endpoint: str, port: int, logstore: str) -> None:
    page.goto(f"{base}/connections", wait_until="networkidle")
    page.get_by_role("button", name="Add Connection").click()
    page.locator("input[name=connection_id]").fill(conn_id)
    page.get_by_role("combobox").fill("SLS")
    page.keyboard.press("Enter")
    page.locator("input[name=host]").fill(endpoint)
    page.locator("input[name=port]").fill(str(port))
    page.get_by_role("button", name="Extra Fields", exact=True).click()
    page.locator("#element_project").fill(PROJECT)
    page.locator("#element_logstore").fill(logstore)
    page.get_by_role("button", name="Save").click()
    page.get_by_role("row").filter(has_text=conn_id).wait_for()


def _press_test(page, conn_id: str) -> str:
    row = page.get_by_role("row").filter(has_text=conn_id)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
        row.get_by_role("button", name="Test Connection").click()
    return answer.value.text()


def _stored(base: str, conn_id: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/v2/connections/{conn_id}", timeout=10) as answer:
        return json.load(answer)


def test_form_fields(api_server: str) -> None:
    """Required fields are required, no defaults are pre-filled, and help text is there."""
    with urllib.request.urlopen(f"{api_server}/ui/connections/hook_meta", timeout=10) as answer:
        meta = next(m for m in json.load(answer) if m["connection_type"] == "sls")
    extra = meta["extra_fields"]
    assert extra["project"]["schema"]["type"] == "string"  # not nullable: required in the form
    assert extra["logstore"]["schema"]["type"] == "string"
    assert {name: field["value"] for name, field in extra.items()} == dict.fromkeys(extra)
    assert all(field["description"] for field in extra.values())
    assert meta["standard_fields"]["port"]["hidden"] is False

    # The Providers page links to this project's docs ([project.urls] Documentation).
    with urllib.request.urlopen(f"{api_server}/api/v2/providers", timeout=10) as answer:
        mine = [p for p in json.load(answer)["providers"] if p["package_name"] == "airflow-provider-sls"]
    # Not airflow.apache.org/docs/airflow-provider-sls/... (no such page): what pyproject.toml names.
    assert mine and "airflow.apache.org" not in mine[0]["documentation_url"]
    assert mine[0]["documentation_url"].startswith("https://www.alibabacloud.com/help/en/sls/")
    # The Port field asks for what the Test button needs (docs/connection.md#in-the-ui).
    port = meta["standard_fields"]["port"]
    assert "optional" not in port["title"].lower() and "Test button" in port["title"], port
    assert "Test button needs it" in port["placeholder"], port


def test_test_icon_succeeds_then_names_a_wrong_logstore(page, api_server: str, emulator: SlsEmulator) -> None:
    _add_connection(page, api_server, "sls_ui", emulator.endpoint, emulator.port, LOGSTORE)
    answer = json.loads(_press_test(page, "sls_ui"))
    assert answer["status"] is True, answer
    assert "exists and web tracking is on" in answer["message"]
    page.get_by_text("exists and web tracking is on").first.wait_for()

    extra = json.loads(_stored(api_server, "sls_ui")["extra"])
    # No hook default (compress_type, verify, timeout) is written into the connection.
    assert {k: v for k, v in extra.items() if v is not None} == {"project": PROJECT, "logstore": LOGSTORE}

    _add_connection(page, api_server, "sls_wrong", emulator.endpoint, emulator.port, "no-such-store")
    answer = json.loads(_press_test(page, "sls_wrong"))
    assert answer["status"] is False, answer
    assert "LogStoreNotExist" in answer["message"] and "no-such-store" in answer["message"]
    page.get_by_text("LogStoreNotExist").first.wait_for()
    assert emulator.count(PROJECT, LOGSTORE) == 0  # testing writes nothing


def test_the_getting_started_connection_passes_the_test_button(
    page, api_server: str, airflow_env: dict[str, str], emulator: SlsEmulator
) -> None:
    """docs/index.md step 4's ``airflow connections add sls_default`` command, as a user runs it
    (endpoint and port of the emulator here), then the Test button in the connection list."""
    text = (DOCS / "index.md").read_text()
    start = text.index("airflow connections add sls_default")
    command = text[start : text.index("```", start)].strip()
    command = command.replace("http://127.0.0.1:9090", emulator.endpoint)
    command = command.replace("--conn-port 9090", f"--conn-port {emulator.port}")
    env = {**airflow_env, "PATH": f"{Path(AIRFLOW).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command], env=env, check=True, capture_output=True, timeout=120
    )
    page.goto(f"{api_server}/connections", wait_until="networkidle")
    answer = json.loads(_press_test(page, "sls_default"))
    assert answer["status"] is True, answer  # not "Bad Request": the port is there
    page.get_by_text("exists and web tracking is on").first.wait_for()
