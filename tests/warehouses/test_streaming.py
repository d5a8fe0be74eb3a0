"""The source layer streams: the first chunk of a huge result arrives at once, and stopping early does
not read the rest (against the real PostgreSQL and MariaDB servers, through the providers' hooks)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sls_provider.core.errors import SlsInputError
from sls_provider.sources.sql import open_cursor, stream_query
from tests.warehouses.conftest import Server

# Far more rows than a client-side cursor could fetch in the time allowed (tens of seconds, GBs).
HUGE = 50_000_000


def hook_for(server: Server, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> Any:
    from airflow.sdk import BaseHook

    monkeypatch.setenv("AIRFLOW_CONN_STREAM_SRC", server.airflow_conn(**extra))
    return BaseHook.get_connection("stream_src").get_hook()


def first_chunk_then_stop(hook: Any, sql: str) -> tuple[int, float]:
    started = time.monotonic()
    chunks = stream_query(hook, sql, None, 1000)
    first = next(chunks)
    chunks.close()  # the consumer stops (a failed export does the same)
    return len(first), time.monotonic() - started


def test_postgres_hook_gets_a_server_side_cursor(postgres: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = hook_for(postgres, monkeypatch)
    conn = hook.get_conn()
    try:
        cursor = open_cursor(conn)
        assert type(cursor).__name__ == "ServerCursor" and cursor.name.startswith("sls_export_")
    finally:
        conn.close()
    # generate_series in the select list streams; in FROM the server would materialise it first.
    sql = f"SELECT g, 'x' || g FROM (SELECT generate_series(1, {HUGE}) AS g) AS s"
    rows, seconds = first_chunk_then_stop(hook, sql)
    assert rows == 1000 and seconds < 20  # a hang bound under load: draining takes minutes


def test_postgres_autocommit_connection_streams_with_hold(postgres: Server) -> None:
    import psycopg

    class Hook:
        def get_conn(self) -> Any:
            return postgres.connect()  # autocommit=True

        def run(self) -> None:  # pragma: no cover
            raise NotImplementedError

    rows, seconds = first_chunk_then_stop(Hook(), "SELECT g FROM generate_series(1, 100000) g")
    assert rows == 1000 and seconds < 20  # a hang bound under load: draining takes minutes
    assert psycopg  # the driver the hook uses


def test_mysql_hook_gets_an_unbuffered_cursor_and_stops_without_draining(
    mariadb: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_for(mariadb, monkeypatch, charset="utf8mb4")
    conn = hook.get_conn()
    try:
        assert type(open_cursor(conn)).__name__ == "SSCursor"
        cursor = conn.cursor()
        cursor.execute("SELECT @@SESSION.net_write_timeout")
        assert cursor.fetchone()[0] == 3600
    finally:
        conn.close()
    # seq_1_to_N is MariaDB's sequence engine; draining 50M rows would take minutes.
    rows, seconds = first_chunk_then_stop(hook, f"SELECT seq, CONCAT('x', seq) FROM seq_1_to_{HUGE}")
    assert rows == 1000 and seconds < 20  # a hang bound under load: draining takes minutes


def test_statement_without_result_set_is_refused(postgres: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = hook_for(postgres, monkeypatch)
    with pytest.raises(Exception) as info:
        next(stream_query(hook, "CREATE TEMP TABLE nothing (x int)", None, 10))
    # A server-side cursor refuses anything but a query at DECLARE; the message says so.
    assert "syntax" in str(info.value).lower() or isinstance(info.value, SlsInputError)


def test_sqlite_plain_cursor_streams(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from airflow.sdk import BaseHook

    path = tmp_path / "w.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER)")
        db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2500)])
    db.close()
    monkeypatch.setenv("AIRFLOW_CONN_LITE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    hook = BaseHook.get_connection("lite").get_hook()
    sizes = [len(f) for f in stream_query(hook, "SELECT id FROM t ORDER BY id", None, 1000)]
    assert sizes == [1000, 1000, 500]


def test_pymysql_stops_without_draining_or_noise(mariadb: Server, recwarn: pytest.WarningsRecorder) -> None:
    import gc

    import pymysql

    class Hook:
        def get_conn(self) -> Any:
            return pymysql.connect(
                host=mariadb.host,
                port=mariadb.port,
                user=mariadb.user,
                password=mariadb.password,
                database=mariadb.database,
            )

        def run(self) -> None:  # pragma: no cover
            raise NotImplementedError

    rows, seconds = first_chunk_then_stop(Hook(), f"SELECT seq FROM seq_1_to_{HUGE}")
    gc.collect()  # the cursor and its result are collected: they must not read the closed socket
    assert rows == 1000 and seconds < 20  # a hang bound under load: draining takes minutes
    assert not [w for w in recwarn if "nraisable" in type(w.message).__name__]
