"""The "SLS logs" extra link in Airflow's own UI, in Chromium: it shows on the task, and it leads to
the emulator's page on this export's logs.

A DAG exporting to an emulator runs (``dag.test()``, in a subprocess sharing the API server's metadata
DB); Chromium opens the task in Airflow's UI, finds the "SLS logs" button, follows it, and checks the
emulator's page there shows this export's rows and no other's. Screenshots of both pages are saved
to ``tests/ui/screenshots/`` (``logs_link_airflow.png``, ``logs_link_emulator.png``; git-ignored).
"""

from __future__ import annotations

import json
import os
import textwrap
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sls_provider.emulator import SlsEmulator
from sls_provider.testing import connection_json
from tests.dagrun import run_script
from tests.ui.conftest import AirflowUi, chromium_page

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parent / "screenshots"
ROOT = Path(__file__).resolve().parents[2]
PROJECT, LOGSTORE = "link-project", "link-events"
DAG_ID, TASK_ID = "ui_link_dag", "export_events"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
playwright_api = pytest.importorskip("playwright.sync_api")

DAG_FILE = f"""
import pandas as pd
from airflow.sdk import DAG
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.dagrun import START, run

with DAG({DAG_ID!r}, schedule=None, start_date=START) as dag:
    SlsWebTrackingOperator(
        task_id={TASK_ID!r},
        dataframe=pd.DataFrame({{"user": ["ann", "bob", "cy"], "kind": ["view", "buy", "view"]}}),
        topic_column="kind",
    )

assert run(dag) == "success"
"""


@pytest.fixture
def emulator() -> Iterator[SlsEmulator]:
    with SlsEmulator(logstores=[(PROJECT, LOGSTORE)]) as emu:
        yield emu


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def test_the_link_shows_on_the_task_and_opens_the_export(
    airflow_ui: AirflowUi, emulator: SlsEmulator, tmp_path: Path
) -> None:
    # Another export's log in the same logstore: the link's page must leave it out.
    requests.post(
        f"{emulator.endpoint}/logstores/{LOGSTORE}/track",
        json={
            "__topic__": "view",
            "__logs__": [{"user": "not-this-export"}],
            "__tags__": {"sls_export": "x"},
        },
        headers={"Host": f"{PROJECT}.127.0.0.1:{emulator.port}", "x-log-apiversion": "0.6.0"},
        timeout=10,
    )
    (tmp_path / "link_dag.py").write_text(textwrap.dedent(DAG_FILE))
    env = {
        **airflow_ui.env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "AIRFLOW_CONN_SLS_DEFAULT": connection_json(emulator.endpoint, project=PROJECT, logstore=LOGSTORE),
    }
    run_script(tmp_path / "link_dag.py", env=env)

    base = airflow_ui.base
    [dag_run] = _get(f"{base}/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]  # type: ignore[index]
    run_id = dag_run["dag_run_id"]
    links = _get(
        f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{TASK_ID}/links"
    )
    url = links["extra_links"]["SLS logs"]  # type: ignore[index]
    assert url.startswith(f"{emulator.endpoint}/?project={PROJECT}&logstore={LOGSTORE}&q=")

    with chromium_page(width=1400, height=1000, timeout_ms=30_000) as page:
        SHOTS.mkdir(exist_ok=True)
        task_page = f"{base}/dags/{DAG_ID}/runs/{urllib.parse.quote(run_id)}/tasks/{TASK_ID}"
        # The task instance's Details tab lists its extra links, as buttons opening their URL.
        page.goto(f"{task_page}/details", wait_until="networkidle")
        button = page.get_by_role("link", name="SLS logs")
        button.wait_for()
        page.screenshot(path=str(SHOTS / "logs_link_airflow.png"), full_page=True)
        assert button.get_attribute("href") == url

        with page.context.expect_page() as opened:  # Airflow opens extra links in a new tab
            button.click()
        target = opened.value
        target.wait_for_load_state("load")
        assert target.url == url
        target.screenshot(path=str(SHOTS / "logs_link_emulator.png"), full_page=True)
        cells = target.locator("table#logs tbody tr td").all_text_contents()
        assert {"ann", "bob", "cy"} <= set(cells) and "not-this-export" not in cells
        assert target.locator("table#logs tbody tr").count() == 3
        bars = target.locator("svg#chart rect.bar").evaluate_all(
            "bars => bars.map(b => [b.dataset.topic, b.dataset.count])"
        )
        assert sorted(bars) == [["buy", "1"], ["view", "2"]]
