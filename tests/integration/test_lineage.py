"""OpenLineage facets of an export: the query's tables in, the logstore out."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from sls_provider.emulator import SlsEmulator
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import LOGSTORE, PROJECT

pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider is a dev dependency")


def names(datasets) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def test_sql_export_reports_tables_in_and_logstore_out(
    sls_conn: SlsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "w.db"
    sqlite3.connect(db).executescript("CREATE TABLE events (id INT); CREATE TABLE users (id INT);").close()
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    op = SlsWebTrackingOperator(
        task_id="t", sql_conn_id="warehouse", sql="SELECT e.id FROM events e JOIN users u ON e.id = u.id"
    )
    lineage = op.get_openlineage_facets_on_complete(None)
    host = sls_conn.endpoint.removeprefix("http://")
    assert names(lineage.outputs) == [(f"sls://{PROJECT}.{host}", LOGSTORE)]
    assert names(lineage.inputs) == [(f"sqlite://{db}", "events"), (f"sqlite://{db}", "users")]
    assert lineage.job_facets["sql"].query.startswith("SELECT e.id")


def test_postgres_tables_are_named_like_common_sql_names_them(
    sls_conn: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
    monkeypatch.setenv("AIRFLOW_CONN_PG", json.dumps(conn))
    op = SlsWebTrackingOperator(task_id="t", sql_conn_id="pg", sql="SELECT * FROM public.orders")
    lineage = op.get_openlineage_facets_on_complete(None)
    assert names(lineage.inputs) == [("postgres://127.0.0.1:5432", "test.public.orders")]


def test_dataframe_export_reports_the_logstore_only(sls_conn: SlsEmulator) -> None:
    op = SlsWebTrackingOperator(task_id="t", dataframe=pd.DataFrame({"a": [1]}), logstore="other")
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == [] and [d.name for d in lineage.outputs] == ["other"]
