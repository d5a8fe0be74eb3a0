"""Messages that say whose failure it is: the warehouse's (said first, with reader and connection)
or the statement's (the word not understood named)."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from airflow.sdk import DAG

from sls_provider.core.errors import SlsInputError
from sls_provider.emulator import SlsEmulator
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from sls_provider.sources.sql import check_read_only
from tests.dagrun import START, run

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id INTEGER, big INTEGER)")
        # The last row overflows abs(): the query fails mid-stream, after the export has started.
        db.executemany("INSERT INTO events VALUES (?, ?)", [(i, i) for i in range(5)])
        db.execute("INSERT INTO events VALUES (5, -9223372036854775808)")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))


@pytest.mark.parametrize(
    "sql, word",
    [("SELEC * FROM t", "'SELEC'"), ("  /* hi */ (sleect 1)", "'sleect'"), ("foo bar", "'foo'")],
)
def test_a_statement_not_understood_names_its_first_word(sql: str, word: str) -> None:
    with pytest.raises(SlsInputError) as caught:
        check_read_only(sql)
    text = str(caught.value)
    assert f"starts with {word}, which is not an SQL statement keyword" in text
    assert "without a keyword" not in text
    assert ("did you mean SELECT?" in text) == (word != "'foo'")


@pytest.mark.parametrize("reader", ["dbapi", "arrow"])
def test_a_warehouse_failure_says_so_first_with_reader_and_connection(
    sls_conn: SlsEmulator,
    warehouse: None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    reader: str,
) -> None:
    caplog.set_level(logging.INFO, logger="sls_provider")
    with DAG(f"warehouse_fails_{reader}", schedule=None, start_date=START) as dag:
        SlsWebTrackingOperator(
            task_id="export",
            sql="SELECT id, abs(big) AS a FROM events ORDER BY id",
            sql_conn_id="warehouse",
            sql_reader=reader,
            chunksize=1,
        )
    assert run(dag) == "failed"
    task_log = capsys.readouterr().out  # dag.test() prints the task's log
    named = "The warehouse query failed (" + ("dbapi" if reader == "dbapi" else "arrow (sqlite3)")
    assert (
        f"{named} reader) on connection 'warehouse', not SLS: OperationalError: integer overflow" in task_log
    )
    # The export's own last line says whose failure it was, not "SLS export stopped".
    export_lines = [r.getMessage() for r in caplog.records if r.name == "sls_provider.core.export"]
    assert export_lines and export_lines[-1].startswith(
        "The warehouse query failed, not SLS: the export stopped"
    )
    assert not any(line.startswith("SLS export stopped") for line in export_lines)
