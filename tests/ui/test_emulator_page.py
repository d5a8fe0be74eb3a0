"""The emulator's web page in Chromium: rows the provider sent show in the chart and the table.

Rows go through the hook (the provider's real path: encode, pack, compress, send) to an emulator;
Debian's Chromium, driven by Playwright, opens the page; the DOM is checked (one SVG bar group per
topic, table rows holding the sent values, a hostile value shown as text with no dialog raised), and
a screenshot is always saved to ``tests/ui/screenshots/emulator_page.png`` (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sls_provider.emulator import SlsEmulator
from sls_provider.testing import connection_json
from tests.ui.conftest import chromium_page

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parent / "screenshots"
PROJECT, LOGSTORE = "page-project", "page-events"
EVIL = "<script>alert('x')</script><img src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlsEmulator]:
    from sls_provider.hooks.web_tracking import SlsWebTrackingHook

    with SlsEmulator(logstores=[(PROJECT, LOGSTORE)]) as emu:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLS_PAGE", connection_json(emu.endpoint, project=PROJECT, logstore=LOGSTORE)
        )
        hook = SlsWebTrackingHook(sls_conn_id="sls_page")
        rows = [{"user": u, "page": p, "kind": k} for u, p, k in PAGE_ROWS]
        summary = hook.put_logs(rows, topic_column="kind", export_id="pagetest00000001")
        assert summary.rows == len(PAGE_ROWS)
        yield emu


PAGE_ROWS = [
    ("ann", "/home", "view"),
    ("bob", "/cart", "buy"),
    ("chloé", "/home", "view"),
    ("dan", "/pay", "buy"),
    ("eve", EVIL, "view"),
]


def test_chart_and_table_show_the_sent_rows(sent: SlsEmulator) -> None:
    dialogs: list[str] = []
    with chromium_page(width=1300, height=900, timeout_ms=20_000) as page:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{sent.endpoint}/?project={PROJECT}&logstore={LOGSTORE}", wait_until="load")
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "emulator_page.png"), full_page=True)

        bars = page.locator("svg#chart rect.bar")
        by_topic = {
            bars.nth(i).get_attribute("data-topic"): int(bars.nth(i).get_attribute("data-count") or 0)
            for i in range(bars.count())
        }
        assert by_topic == {"view": 3, "buy": 2}
        for bar in bars.all():  # drawn, not just present: a real height in the laid-out SVG
            assert bar.bounding_box()["height"] >= 1  # type: ignore[index]
        legend = page.locator("svg#chart g.legend").all_text_contents()
        assert sorted(legend) == ["buy: 2", "view: 3"]

        rows = page.locator("table#logs tbody tr")
        assert rows.count() == len(PAGE_ROWS)
        cells = [rows.nth(i).locator("td").all_text_contents() for i in range(rows.count())]
        header = page.locator("table#logs thead th").all_text_contents()
        user, where = header.index("user"), header.index("page")
        assert sorted((c[user], c[where]) for c in cells) == sorted((u, p) for u, p, _ in PAGE_ROWS)
        assert page.locator("table#logs img, table#logs script").count() == 0
        assert all("sls_export=pagetest00000001" in c[-1] for c in cells)

        # The search box runs a GetLogs query: the table and chart narrow to it.
        page.fill("input[name=q]", "__topic__: buy")
        page.click("button[type=submit]")
        page.wait_for_url("**q=__topic__*")
        assert page.locator("table#logs tbody tr").count() == 2
        assert page.locator("svg#chart rect.bar").evaluate_all("bars => bars.map(b => b.dataset.topic)") == [
            "buy"
        ]
    assert dialogs == []  # the hostile value never ran
