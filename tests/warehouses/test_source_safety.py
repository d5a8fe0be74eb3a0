"""The SQL source never changes the source database, and sends what the database holds.

Against the real PostgreSQL, MariaDB and SQLite: statements with side effects are refused before they
run (the table is unchanged afterwards), the read-only session stops what the parse check cannot see,
``jsonb`` numbers keep every digit, and MariaDB's zero dates arrive as their text.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sls_provider.core.errors import SlsInputError
from sls_provider.sources import sql as sql_source
from sls_provider.sources.sql import check_read_only, read_only_session
from tests.warehouses.conftest import MARIADB, POSTGRES, Server, require, table_name
from tests.warehouses.rawdb import RawHook, psycopg2_connect, pymysql_connect, stream_logs


def _export_connection(server: Server) -> Any:
    """A connection as the hooks hand it out: autocommit off."""
    conn = server.connect()
    if server.kind == "postgres":
        conn.autocommit = False
    else:
        conn.autocommit(False)
    return conn


class _Db:
    """One database with a three-row table ``t`` (and ``u`` a name that does not exist yet)."""

    def __init__(self, kind: str, tmp_path: Path, scratch: list[tuple[Server, str]]) -> None:
        self.kind = kind
        self.t = table_name("sls_safe")
        self.u = table_name("sls_safe_new")
        if kind == "sqlite":
            path = tmp_path / "source.db"
            self.hook = RawHook(lambda: sqlite3.connect(path))
            self._run(f"CREATE TABLE {self.t} (id integer PRIMARY KEY, v text)")
            self._run(f"INSERT INTO {self.t} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
            return
        server = require(POSTGRES if kind == "postgres" else MARIADB)
        self.server = server
        scratch.extend([(server, self.t), (server, self.u)])
        server.execute(
            f"CREATE TABLE {self.t} (id integer PRIMARY KEY, v text)",
            f"INSERT INTO {self.t} VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        )
        self.hook = RawHook(lambda: _export_connection(server))

    def _run(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self.hook.get_conn() if self.kind == "sqlite" else self.server.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            rows = list(cursor.fetchall()) if cursor.description else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def rows(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._run(f"SELECT id, v FROM {self.t} ORDER BY id")]

    def has_table(self, name: str) -> bool:
        if self.kind == "sqlite":
            return bool(self._run(f"SELECT name FROM sqlite_master WHERE name = '{name}'"))
        if self.kind == "postgres":
            return bool(self._run(f"SELECT 1 FROM pg_tables WHERE tablename = '{name}'"))
        return bool(self._run(f"SHOW TABLES LIKE '{name}'"))


@pytest.fixture(params=["postgres", "mariadb", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path, scratch_tables: list[tuple[Server, str]]) -> _Db:
    return _Db(request.param, tmp_path, scratch_tables)


WRITES = {
    "TRUNCATE": "TRUNCATE TABLE {t}",
    "DELETE": "DELETE FROM {t}",
    "CREATE": "CREATE TABLE {u} AS SELECT * FROM {t}",
    "INSERT": "INSERT INTO {t} VALUES (4, 'd')",
    "2 statements": "SELECT * FROM {t}; DELETE FROM {t}",
    "WITH statement holding DELETE": "WITH x AS (DELETE FROM {t} RETURNING *) SELECT * FROM x",
}


@pytest.mark.parametrize("kind", list(WRITES))
def test_a_statement_with_side_effects_is_refused_before_it_runs(db: _Db, kind: str) -> None:
    sql = WRITES[kind].format(t=db.t, u=db.u)
    if db.kind == "sqlite" and kind == "TRUNCATE":
        sql = f"DELETE FROM {db.t}"  # SQLite has no TRUNCATE: its DELETE is the same test
    with pytest.raises(SlsInputError, match="nothing was run") as caught:
        stream_logs(db.hook, sql)
    assert (kind if db.kind != "sqlite" or kind != "TRUNCATE" else "DELETE") in str(caught.value)
    assert db.rows() == [(1, "a"), (2, "b"), (3, "c")]
    assert not db.has_table(db.u)


def test_reads_still_run(db: _Db) -> None:
    sql = f"-- rows\nWITH x AS (SELECT id, v FROM {db.t} WHERE v <> 'DELETE;') SELECT * FROM x ORDER BY id;"
    assert stream_logs(db.hook, sql) == [{"id": "1", "v": "a"}, {"id": "2", "v": "b"}, {"id": "3", "v": "c"}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * INTO t2 FROM t",
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t LOCK IN SHARE MODE",
        "SELECT 1 /*! ; DELETE FROM t */",
        "EXPLAIN ANALYZE DELETE FROM t",
        "CALL purge()",
        "SET SESSION TRANSACTION READ WRITE",
        "-- only a comment",
    ],
)
def test_the_check_refuses_what_writes_or_locks(sql: str) -> None:
    with pytest.raises(SlsInputError, match="The sql is refused"):
        check_read_only(sql)


def test_the_read_only_session_stops_what_the_check_cannot_see(
    postgres: Server, mariadb: Server, scratch_tables: list[tuple[Server, str]]
) -> None:
    """``SELECT nextval(...)`` is a read to a parser; the read-only session refuses it and the
    sequence does not move."""
    for server in (postgres, mariadb):
        seq = table_name("sls_safe_seq")
        server.execute(f"CREATE SEQUENCE {seq}")
        try:
            nextval = f"nextval('{seq}')" if server.kind == "postgres" else f"NEXTVAL({seq})"
            with pytest.raises(Exception, match="read-only transaction|READ ONLY transaction"):
                stream_logs(RawHook(lambda s=server: _export_connection(s)), f"SELECT {nextval} AS n")
            conn = server.connect()
            cursor = conn.cursor()
            cursor.execute(f"SELECT {nextval}")
            assert cursor.fetchone()[0] == 1  # never taken by the export
            conn.close()
        finally:
            server.execute(f"DROP SEQUENCE IF EXISTS {seq}")


def test_the_read_only_session_of_sqlite(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "ro.db")
    conn.execute("CREATE TABLE t (a integer)")
    conn.commit()
    assert read_only_session(conn) is True
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()


# -- what the database holds, as it holds it -----------------------------------------------------

JSON_SQL = (
    "SELECT '{\"n\": 12345678901234567890.123456789}'::jsonb AS jb, "
    '\'{"n":  1.10, "m": 1e400}\'::json AS j, NULL::jsonb AS none'
)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_postgres_json_is_sent_as_the_database_text(postgres: Server, driver: str) -> None:
    connect = (lambda: _export_connection(postgres)) if driver == "psycopg" else psycopg2_connect
    assert stream_logs(RawHook(connect), JSON_SQL) == [
        {"jb": '{"n": 12345678901234567890.123456789}', "j": '{"n":  1.10, "m": 1e400}'}
    ]


def test_json_loaders_stay_on_the_export_cursor(postgres: Server) -> None:
    """Other cursors of the same process (and of the same connection) still parse JSON."""
    stream_logs(RawHook(lambda: _export_connection(postgres)), JSON_SQL)
    stream_logs(RawHook(psycopg2_connect), JSON_SQL)
    for conn in (postgres.connect(), psycopg2_connect()):
        cursor = conn.cursor()
        cursor.execute("SELECT '{\"n\": 1}'::jsonb")
        assert cursor.fetchone()[0] == {"n": 1}
        conn.close()


@pytest.mark.parametrize("driver", ["MySQLdb", "pymysql"])
def test_mariadb_zero_dates_are_sent_as_their_text(
    mariadb: Server, driver: str, scratch_tables: list[tuple[Server, str]]
) -> None:
    t = table_name("sls_zero_dates")
    scratch_tables.append((mariadb, t))
    mariadb.execute(
        "SET SESSION sql_mode = ''",  # MariaDB's default mode refuses zero dates on insert
        f"CREATE TABLE {t} (id int, dtm datetime, day date, ts timestamp NULL, part date)",
        f"INSERT INTO {t} VALUES (1, '0000-00-00 00:00:00', '0000-00-00', '0000-00-00 00:00:00',"
        " '2026-00-01'), (2, '2026-03-01 12:34:56', '2026-03-01', '2026-03-01 12:34:56', NULL)",
    )
    connect = (lambda: _export_connection(mariadb)) if driver == "MySQLdb" else pymysql_connect
    assert stream_logs(RawHook(connect), f"SELECT * FROM {t} ORDER BY id") == [
        {
            "id": "1",
            "dtm": "0000-00-00 00:00:00",
            "day": "0000-00-00",
            "ts": "0000-00-00 00:00:00",
            "part": "2026-00-01",
        },
        {"id": "2", "dtm": "2026-03-01T12:34:56", "day": "2026-03-01", "ts": "2026-03-01T12:34:56"},
    ]


def test_the_arrow_readers_are_guarded_too(
    postgres: Server,
    mariadb: Server,
    monkeypatch: pytest.MonkeyPatch,
    scratch_tables: list[tuple[Server, str]],
) -> None:
    """The Arrow readers (ADBC, connectorx) refuse what the DB-API reader refuses, before anything
    runs, and ADBC's session is read-only: ``nextval`` is refused and the sequence does not move."""
    from sls_provider.sources.readers import read_query
    from tests.warehouses.test_reader_parity import hook_for

    for server in (postgres, mariadb):
        table = table_name("sls_safe_arrow")
        scratch_tables.append((server, table))
        server.execute(f"CREATE TABLE {table} (a integer)", f"INSERT INTO {table} VALUES (1), (2)")
        hook = hook_for(server, monkeypatch)
        with pytest.raises(SlsInputError, match="TRUNCATE"):
            read_query(hook, f"TRUNCATE TABLE {table}", None, 2, "arrow")
        conn = server.connect()
        cursor = conn.cursor()
        cursor.execute(f"SELECT count(*) FROM {table}")
        assert cursor.fetchone()[0] == 2
        conn.close()

    seq = table_name("sls_safe_seq")
    postgres.execute(f"CREATE SEQUENCE {seq}")
    try:
        hook = hook_for(postgres, monkeypatch)
        with pytest.raises(Exception, match="read-only transaction"):
            list(read_query(hook, f"SELECT nextval('{seq}') AS n", None, 2, "arrow"))
        conn = postgres.connect()
        cursor = conn.cursor()
        cursor.execute(f"SELECT nextval('{seq}')")
        assert cursor.fetchone()[0] == 1  # never taken by the export
        conn.close()
    finally:
        postgres.execute(f"DROP SEQUENCE IF EXISTS {seq}")


def test_a_backslash_read_as_postgresql_reads_it(
    postgres: Server, scratch_tables: list[tuple[Server, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlparse reads ``\\'`` as an escaped quote: to it this is one ``SELECT`` of one string. PostgreSQL
    reads ``'a\\'`` as the string, then four more commands; psycopg2's server-side cursor (simple
    query protocol) runs them all, and its ``BEGIN READ WRITE`` lifts the read-only session: the check
    refuses it now. psycopg 3's cursor (a prepared statement: one command) and ADBC's ``COPY (...)``
    refuse it on their own, and the rollback at the end undoes what a ``COMMIT`` does not precede."""
    t = table_name("sls_safe")
    scratch_tables.append((postgres, t))
    postgres.execute(f"CREATE TABLE {t} (id integer)", f"INSERT INTO {t} VALUES (1), (2)")
    sql = f"SELECT 'a\\'; COMMIT; BEGIN READ WRITE; DELETE FROM {t}; COMMIT; -- '"

    def count() -> int:
        conn = postgres.connect()
        try:
            return int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
        finally:
            conn.close()

    with pytest.raises(SlsInputError, match="statements .* backslashes as ordinary characters"):
        check_read_only(sql)
    for connect in (lambda: _export_connection(postgres), psycopg2_connect):
        with pytest.raises(SlsInputError, match="nothing was run"):
            stream_logs(RawHook(connect), sql)
    assert count() == 2
    # Without the check, psycopg 3 (the DB-API reader's other PostgreSQL driver) refuses it itself.
    monkeypatch.setattr(sql_source, "check_read_only", lambda sql: None)
    with pytest.raises(Exception, match="cannot insert multiple commands into a prepared statement"):
        stream_logs(RawHook(lambda: _export_connection(postgres)), sql)
    assert count() == 2
    # A backslash-escaped quote that reads the same both ways still passes.
    check_read_only("SELECT 'It\\'s' AS quote, 'C:\\temp' AS path")
