"""Incremental exports across ``dag.test()`` runs on PostgreSQL and MariaDB, with both readers (the Arrow
reader binds the window its own way: ADBC through session settings, mysqlclient through its own
escaping): every row exported exactly once, counted in the emulator by export and request tags."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from airflow.sdk import DAG

from sls_provider import Incremental
from sls_provider.emulator import SlsEmulator
from sls_provider.incremental import decode_value
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import FAST_RETRY
from tests.incremental_runs import (
    DAY0,
    exactly_once,
    explicit_exports,
    exports,
    fresh_emulator,
    run_day,
    watermarks,
)
from tests.integration.test_incremental import export_dag as incremental_dag
from tests.warehouses.conftest import MARIADB, POSTGRES, Server, require, table_name

pytestmark = pytest.mark.usefixtures("airflow_db")

SERVERS = {"postgres": POSTGRES, "mariadb": MARIADB}
COLUMNS = {
    "postgres": "id INTEGER PRIMARY KEY, n BIGINT, region TEXT, at TIMESTAMPTZ",
    "mariadb": "id INTEGER PRIMARY KEY, n BIGINT, region VARCHAR(8), at DATETIME(6)",
}


@pytest.fixture
def sls_conn(sls_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> SlsEmulator:
    return fresh_emulator(sls_emulator_factory, monkeypatch)


@pytest.fixture(params=["postgres", "mariadb"])
def warehouse(request: Any, monkeypatch: pytest.MonkeyPatch, scratch_tables: list) -> tuple[Server, str, str]:
    server = require(SERVERS[request.param])
    table = table_name("incr")
    server.execute(f"CREATE TABLE {table} ({COLUMNS[request.param]})")
    scratch_tables.append((server, table))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", server.airflow_conn())
    return server, table, request.param


def insert(server: Server, table: str, rows: list[tuple[int, int, str]]) -> None:
    conn = server.connect()
    try:
        cursor = conn.cursor()
        cursor.executemany(f"INSERT INTO {table} (id, n, region) VALUES (%s, %s, %s)", rows)
    finally:
        conn.close()


def export_dag(table: str, incremental: Incremental, **kwargs: Any) -> DAG:
    sql = f"SELECT id, n, region FROM {table} WHERE region LIKE 'e%' OR region = 'us'"
    return incremental_dag(f"incr_{uuid.uuid4().hex[:8]}", incremental, sql, **{"max_logs": 2, **kwargs})


@pytest.mark.parametrize("reader", ["arrow", "dbapi"])
def test_runs_backfill_and_late_rows_each_row_once(
    sls_conn: SlsEmulator, warehouse: tuple[Server, str, str], reader: str
) -> None:
    server, table, _ = warehouse
    dag = export_dag(table, Incremental("n", order_by="id"), sql_reader=reader)
    key = f"sls_watermark/{dag.dag_id}/export"
    insert(server, table, [(1, 10, "eu"), (2, 20, "eu"), (3, 20, "us"), (4, 30, "eu"), (5, 30, "us")])
    assert run_day(dag, 0) == "success"  # [-, 30): ids 1-3; n=30 waits
    assert watermarks(dag.dag_id)[key]["watermark"] == {"int": 30}
    insert(server, table, [(6, 30, "eu"), (7, 40, "us"), (8, 50, "eu")])  # 6: equal to the last end
    assert run_day(dag, 1) == "success"  # [30, 50): ids 4-7
    # A backfill between scheduled runs: its own window, no watermark read or moved.
    assert run_day(dag, 2, conf={"sls_window": {"start": 20, "end": 40}}, backfill=True) == "success"
    insert(server, table, [(9, 60, "eu")])
    assert run_day(dag, 3) == "success"  # [50, 60): id 8
    assert run_day(dag, 4) == "success"  # nothing new: an empty window
    assert watermarks(dag.dag_id)[key]["watermark"] == {"int": 60}
    by_export = exports(sls_conn)
    assert sorted(by_export.values()) == [
        ["1", "2", "3"],
        ["2", "3", "4", "5", "6"],
        ["4", "5", "6", "7"],
        ["8"],
    ]
    backfill = explicit_exports(dag.dag_id)
    assert [by_export[e] for e in backfill] == [["2", "3", "4", "5", "6"]]
    exactly_once(sls_conn, {str(i) for i in range(1, 9)}, skip=backfill.__contains__)


def test_clock_end_minus_lag_on_timestamps(sls_conn: SlsEmulator, warehouse: tuple[Server, str, str]) -> None:
    """end='clock' on a timestamptz (PostgreSQL) or DATETIME (MariaDB) column: the window ends at the
    server's clock minus lag, whatever the worker's clock says."""
    server, table, kind = warehouse
    ago = {1: 3600, 2: 600, 3: 30, 4: 1}  # seconds before the server's clock
    conn = server.connect()
    try:
        cursor = conn.cursor()
        for i, seconds in ago.items():
            if kind == "postgres":
                cursor.execute(
                    f"INSERT INTO {table} (id, at) VALUES (%s, now() - make_interval(secs => %s))",
                    (i, seconds),
                )
            else:
                cursor.execute(
                    f"INSERT INTO {table} (id, at) VALUES (%s, NOW(6) - INTERVAL %s SECOND)", (i, seconds)
                )
    finally:
        conn.close()
    with DAG(f"incr_{uuid.uuid4().hex[:8]}", schedule=None, start_date=DAY0) as dag:
        SlsWebTrackingOperator(
            task_id="export",
            sql=f"SELECT id, at FROM {table}",
            sql_conn_id="warehouse",
            incremental=Incremental("at", end="clock", lag=dt.timedelta(minutes=2), order_by="id"),
            retry=FAST_RETRY,
        )
    assert run_day(dag, 0) == "success"
    end = decode_value(watermarks(dag.dag_id)[f"sls_watermark/{dag.dag_id}/export"]["watermark"])
    assert isinstance(end, dt.datetime) and (end.tzinfo is not None) == (kind == "postgres")
    exactly_once(sls_conn, {"1", "2"})  # 3 and 4 are within the lag: the next run's


@pytest.mark.parametrize("reader", ["arrow", "dbapi"])
def test_postgres_naive_timestamps_against_an_aware_window_in_the_session_zone(
    sls_conn: SlsEmulator, monkeypatch: pytest.MonkeyPatch, scratch_tables: list, reader: str
) -> None:
    """A ``timestamp`` column and a window given in UTC: both readers compare in the session's zone
    (here UTC+8), as PostgreSQL compares a bound timestamptz with a timestamp column."""
    server = require(POSTGRES)
    table = table_name("incr_tz")
    server.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, at TIMESTAMP)",
        f"INSERT INTO {table} VALUES (1, '2026-01-02 07:00'), (2, '2026-01-02 09:00'), "
        "(3, '2026-01-03 09:00')",
    )
    scratch_tables.append((server, table))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", server.airflow_conn(options="-c TimeZone=Asia/Shanghai"))
    dag = incremental_dag(
        f"incr_{uuid.uuid4().hex[:8]}",
        Incremental("at"),
        f"SELECT * FROM {table}",
        sql_reader=reader,
        max_logs=4096,
    )
    window = {"start": "2026-01-02T00:00:00+00:00", "end": "2026-01-03T00:00:00+00:00"}
    assert run_day(dag, 0, conf={"sls_window": window}) == "success"
    assert list(exports(sls_conn).values()) == [["2"]]  # 07:00 at UTC+8 is the day before in UTC
