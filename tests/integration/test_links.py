"""The operator's "SLS logs" extra link: the URL a real DAG run leaves, and where it leads.

The browser half (the emulator's page opened in Chromium at a link from a real run) is
``tests/ui/test_logs_link.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import requests
from airflow.sdk import DAG, task

from sls_provider.core.endpoint import resolve_target
from sls_provider.emulator import SlsEmulator
from sls_provider.links import CONSOLE, MARGIN_SECONDS, OPEN_ENDED_SECONDS, SlsLogsLink, logs_url
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import FAST_RETRY, LOGSTORE, PROJECT
from tests.dagrun import START, run

pytestmark = pytest.mark.usefixtures("airflow_db")
LINK_KEY = SlsLogsLink().xcom_key


def export_dag(dag_id: str, out: Path, **kwargs: object) -> DAG:
    """An export of 6 rows in two topics, then a task writing the link and summary it finds to ``out``
    (it runs whatever the export's outcome)."""
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        frame = pd.DataFrame({"user": ["ann", "bob", "cy", "dee", "eve", "fay"], "kind": ["view", "buy"] * 3})
        export = SlsWebTrackingOperator(task_id="export", dataframe=frame, topic_column="kind", **kwargs)

        @task(trigger_rule="all_done")
        def keep(ti=None) -> None:  # noqa: ANN001
            found = {
                "link": ti.xcom_pull(task_ids="export", key=LINK_KEY),
                "summary": ti.xcom_pull(task_ids="export"),
            }
            out.write_text(json.dumps(found))

        export >> keep()
    return dag


def test_link_of_a_run_opens_the_emulator_page_on_this_export(sls_conn: SlsEmulator, tmp_path: Path) -> None:
    out = tmp_path / "found.json"
    assert run(export_dag("link_dag", out)) == "success"
    found = json.loads(out.read_text())
    link, summary = found["link"], found["summary"]

    assert link.startswith(f"{sls_conn.endpoint}/?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert params["project"] == PROJECT and params["logstore"] == LOGSTORE
    assert params["q"] == f"__tag__:sls_export: {summary['export_id']}"
    assert int(params["from"]) < int(params["to"])

    # Another export's logs in the same logstore are not shown.
    sls_conn.create_logstore(PROJECT, LOGSTORE)
    requests.post(
        f"{sls_conn.endpoint}/logstores/{LOGSTORE}/track",
        json={"__logs__": [{"user": "someone-else"}], "__tags__": {"sls_export": "another"}},
        headers={"Host": f"{PROJECT}.127.0.0.1:{sls_conn.port}", "x-log-apiversion": "0.6.0"},
        timeout=10,
    )
    page = requests.get(link, timeout=10).text
    assert page.count("<tr>") == 1 + 6
    assert "someone-else" not in page and all(f"<td>{u}</td>" in page for u in ("ann", "fay"))
    assert 'data-topic="view" data-count="3"' in page and 'data-topic="buy" data-count="3"' in page


def test_a_failed_export_leaves_an_open_ended_link(sls_conn: SlsEmulator, tmp_path: Path) -> None:
    out = tmp_path / "found.json"
    dag = export_dag("link_failed_dag", out, logstore="no-such-store", retry=FAST_RETRY)
    run(dag)  # the run's state is its leaf's: the keeping task, which runs after the failure
    found = json.loads(out.read_text())
    assert found["summary"] is None  # the export failed (404 LogStoreNotExist)
    link = found["link"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert params["logstore"] == "no-such-store" and params["q"].startswith("__tag__:sls_export: ")
    assert "to" not in params  # the export never ended: whatever it sent is in range


def test_console_url_is_the_documented_search_page() -> None:
    target = resolve_target("cn-hangzhou.log.aliyuncs.com", "my-project", "web-events")
    url = logs_url(target, export_id="0a1b2c3d4e5f6789", since=1_767_225_600.4, until=1_767_225_700.2)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == CONSOLE
    assert parts.path == "/lognext/project/my-project/logsearch/web-events"
    assert parse_qs(parts.query) == {
        "queryString": ["__tag__:sls_export: 0a1b2c3d4e5f6789"],
        "queryTimeType": ["99"],  # an absolute range: startTime and endTime
        "startTime": [str(1_767_225_600 - MARGIN_SECONDS)],
        "endTime": [str(1_767_225_701 + MARGIN_SECONDS)],
    }
    # No trace tags: nothing to filter on but the time; still running: open-ended (a day).
    url = logs_url(target, export_id=None, since=1_767_225_600, until=None)
    query = parse_qs(urlsplit(url).query)
    assert query["queryString"] == ["*"]
    assert int(query["endTime"][0]) - int(query["startTime"][0]) == OPEN_ENDED_SECONDS


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9090", "http://localhost:9090", "http://[::1]:9090", "http://127.0.0.2:80"]
)
def test_loopback_endpoints_link_to_the_emulator_page(endpoint: str) -> None:
    url = logs_url(resolve_target(endpoint, "proj", "store"), export_id="x" * 16, since=100, until=200)
    assert url.startswith(f"{endpoint}/?project=proj&logstore=store&q=")


def test_the_link_is_declared_for_airflow() -> None:
    from airflow.providers_manager import ProvidersManager

    import sls_provider

    assert sls_provider.get_provider_info()["extra-links"] == ["sls_provider.links.SlsLogsLink"]
    assert "sls_provider.links.SlsLogsLink" in ProvidersManager().extra_links_class_names
    op = SlsWebTrackingOperator(task_id="t", dataframe=pd.DataFrame({"a": [1]}))
    assert [link.name for link in op.operator_extra_links] == ["SLS logs"]
