"""The strings SLS stores for every common column type, from PostgreSQL, MariaDB, SQLite and a DataFrame.

One table per database holds the same three logical rows (a full one, an all-NULL one, one of edge
values). A DAG run (``dag.test()``) exports each table through ``SlsWebTrackingOperator`` to the
emulator, under one topic per source; the tests then check the exact strings stored, and that the same
logical row gave the same log from every source wherever the database's types can hold the value.

Where they cannot (documented in docs/large-tables.md): SQLite has no boolean, decimal or timestamp
types; MariaDB has no time-zone-aware timestamp, interval, array or range, and its JSON is text (the
query uses ``JSON_COMPACT``).

The other drivers (psycopg2, PyMySQL, mysql-connector-python) go through the same source layer without
a DAG: their frames are encoded with the exporter's encoder and compared with the DAG's logs.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from sls_provider.emulator import SlsEmulator
from tests.conftest import LOGSTORE, PROJECT, content, sls_connection
from tests.warehouses.conftest import MARIADB, POSTGRES, Server, table_name, unreachable
from tests.warehouses.rawdb import RawHook, psycopg2_connect, pymysql_connect, stream_logs

pytestmark = pytest.mark.usefixtures("airflow_db")

SHANGHAI = ZoneInfo("Asia/Shanghai")
PG_OPTIONS = {"options": "-c TimeZone=Asia/Shanghai"}  # timestamptz arrives in the session's zone
UID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

# -- the three logical rows, as each database takes them ------------------------------------------

PG_DDL = """CREATE TABLE {t} (
    id integer PRIMARY KEY, amount numeric(12,4), big bigint, ts timestamp(6), tstz timestamptz,
    day date, tm time(6), iv interval, flag boolean, doc json, docb jsonb, ints integer[], texts text[],
    bin bytea, note text, dbl double precision, rng int4range, uid uuid)"""
PG_ROWS = [
    f"""(1, 1234.5000, 9007199254740993, '2026-03-01 12:34:56.789012', '2026-03-01 12:34:56.5+08',
        '2026-03-01', '12:34:56', '1 day 02:03:04.5', true, '{{"b": [1, "é"], "a": null}}',
        '{{"a": "中文", "bb": [true, 1.5]}}', '{{1,2,NULL}}', '{{"x","中"}}', '\\x00fffe',
        'café 😀 中文', 0.1, '[1,5)', '{UID}')""",
    "(2" + ", NULL" * 17 + ")",
    """(3, -0.0001, 0, '2026-12-31 23:59:59', '2026-12-31 23:59:59+00', '2026-12-31', '00:00:00.25',
        '0', false, '[]', '{}', '{}', '{}', '', '', -1.5, 'empty', NULL)""",
]

MARIA_DDL = """CREATE TABLE {t} (
    id int PRIMARY KEY, amount decimal(12,4), big bigint, ts datetime(6), stamp timestamp(6) NULL,
    day date, tm time(6), flag boolean, doc json, bin blob, note text, dbl double, bits bit(1),
    small tinyint) DEFAULT CHARSET=utf8mb4"""
MARIA_ROWS = [
    """(1, 1234.5000, 9007199254740993, '2026-03-01 12:34:56.789012', '2026-03-01 12:34:56.789012',
        '2026-03-01', '12:34:56', true, '{"b": [1, "é"], "a": null}', x'00fffe', 'café 😀 中文', 0.1,
        b'1', 5)""",
    "(2" + ", NULL" * 13 + ")",
    """(3, -0.0001, 0, '2026-12-31 23:59:59', '2026-12-31 23:59:59', '2026-12-31', '00:00:00.25',
        false, '[]', '', '', -1.5, b'0', -128)""",
]
MARIA_QUERY = (
    "SELECT id, amount, big, ts, stamp, day, tm, flag, doc, JSON_COMPACT(doc) AS doc_compact, bin, "
    "note, dbl, bits, small FROM {t} ORDER BY id"
)

SQLITE_DDL = """CREATE TABLE t (id INTEGER PRIMARY KEY, amount NUMERIC, big INTEGER, ts TEXT, day TEXT,
    flag BOOLEAN, doc TEXT, bin BLOB, note TEXT, dbl REAL)"""
SQLITE_ROWS = [
    (
        1,
        "1234.5000",
        9007199254740993,
        "2026-03-01T12:34:56.789012",
        "2026-03-01",
        True,
        '{"b": [1, "é"], "a": null}',
        b"\x00\xff\xfe",
        "café 😀 中文",
        0.1,
    ),
    (2, None, None, None, None, None, None, None, None, None),
    (3, "-0.0001", 0, "2026-12-31T23:59:59", "2026-12-31", False, "[]", b"", "", -1.5),
]
SQLITE_QUERY = "SELECT id, amount, big, ts, day, flag, json(doc) AS doc, bin, note, dbl FROM t ORDER BY id"


def dataframe() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.array([1, 2, 3], dtype="Int64"),
            "amount": [Decimal("1234.5000"), None, Decimal("-0.0001")],
            "big": pd.array([9007199254740993, None, 0], dtype="Int64"),
            "ts": pd.to_datetime(
                ["2026-03-01 12:34:56.789012", None, "2026-12-31 23:59:59"], format="ISO8601"
            ),
            "tstz": pd.to_datetime(
                ["2026-03-01 04:34:56.5+00:00", None, "2026-12-31 23:59:59+00:00"], format="ISO8601"
            ).tz_convert(SHANGHAI),
            "day": [dt.date(2026, 3, 1), None, dt.date(2026, 12, 31)],
            "tm": [dt.time(12, 34, 56), None, dt.time(0, 0, 0, 250000)],
            "iv": pd.to_timedelta(["1 days 02:03:04.5", None, "0s"]),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "doc": [{"b": [1, "é"], "a": None}, None, []],
            "docb": [{"a": "中文", "bb": [True, 1.5]}, None, {}],
            "ints": [[1, 2, None], None, []],
            "texts": [["x", "中"], None, []],
            "bin": [b"\x00\xff\xfe", None, b""],
            "note": ["café 😀 中文", None, ""],
            "dbl": [0.1, None, -1.5],
            "uid": [uuid.UUID(UID), None, None],
        }
    )


# -- what SLS must hold ---------------------------------------------------------------------------

PG_EXPECTED = [
    {
        "id": "1",
        "amount": "1234.5000",
        "big": "9007199254740993",
        "ts": "2026-03-01T12:34:56.789012",
        "tstz": "2026-03-01T12:34:56.500000+08:00",
        "day": "2026-03-01",
        "tm": "12:34:56",
        "iv": "P1DT2H3M4.5S",
        "flag": "true",
        "doc": '{"b": [1, "é"], "a": null}',  # json and jsonb: the database's own text
        "docb": '{"a": "中文", "bb": [true, 1.5]}',
        "ints": "[1,2,null]",
        "texts": '["x","中"]',
        "bin": "AP/+",
        "note": "café 😀 中文",
        "dbl": "0.1",
        "rng": "[1,5)",
        "uid": UID,
    },
    {"id": "2"},  # NULL -> the key is left out
    {
        "id": "3",
        "amount": "-0.0001",
        "big": "0",
        "ts": "2026-12-31T23:59:59",
        "tstz": "2027-01-01T07:59:59+08:00",
        "day": "2026-12-31",
        "tm": "00:00:00.250000",
        "iv": "P0DT0H0M0S",
        "flag": "false",
        "doc": "[]",
        "docb": "{}",
        "ints": "[]",
        "texts": "[]",
        "bin": "",
        "note": "",
        "dbl": "-1.5",
        "rng": "empty",
    },
]
MARIA_EXPECTED = [
    {
        "id": "1",
        "amount": "1234.5000",
        "big": "9007199254740993",
        "ts": "2026-03-01T12:34:56.789012",
        "stamp": "2026-03-01T12:34:56.789012",
        "day": "2026-03-01",
        "tm": "12:34:56",
        "flag": "true",
        "doc": '{"b": [1, "é"], "a": null}',  # MariaDB's JSON is LONGTEXT: sent as stored
        "doc_compact": '{"b":[1,"é"],"a":null}',
        "bin": "AP/+",
        "note": "café 😀 中文",
        "dbl": "0.1",
        "bits": "true",
        "small": "5",
    },
    {"id": "2"},
    {
        "id": "3",
        "amount": "-0.0001",
        "big": "0",
        "ts": "2026-12-31T23:59:59",
        "stamp": "2026-12-31T23:59:59",
        "day": "2026-12-31",
        "tm": "00:00:00.250000",
        "flag": "false",
        "doc": "[]",
        "doc_compact": "[]",
        "bin": "",
        "note": "",
        "dbl": "-1.5",
        "bits": "false",
        "small": "-128",
    },
]
SQLITE_EXPECTED = [
    {
        "id": "1",
        "amount": "1234.5",  # NUMERIC affinity: a REAL, the scale is gone
        "big": "9007199254740993",
        "ts": "2026-03-01T12:34:56.789012",
        "day": "2026-03-01",
        "flag": "1",  # no boolean type: an INTEGER
        "doc": '{"b":[1,"é"],"a":null}',
        "bin": "AP/+",
        "note": "café 😀 中文",
        "dbl": "0.1",
    },
    {"id": "2"},
    {
        "id": "3",
        "amount": "-0.0001",
        "big": "0",
        "ts": "2026-12-31T23:59:59",
        "day": "2026-12-31",
        "flag": "0",
        "doc": "[]",
        "bin": "",
        "note": "",
        "dbl": "-1.5",
    },
]
DF_EXPECTED = [
    {k: v for k, v in row.items() if k != "rng"}
    for row in PG_EXPECTED  # a DataFrame holds no Range
]
DF_EXPECTED[0].update(doc='{"b":[1,"é"],"a":null}', docb='{"a":"中文","bb":[true,1.5]}')  # dicts: compact

# Columns each source can hold with the same meaning as PostgreSQL (source column -> PG column).
SAME_AS_POSTGRES = {
    # JSON: PostgreSQL sends its own text, a DataFrame's dicts and SQLite's json() are compact.
    "dataframe": {k: k for k in DF_EXPECTED[0] if k not in ("doc", "docb")},
    "mariadb": {
        k: k for k in ("id", "amount", "big", "ts", "day", "tm", "flag", "doc", "bin", "note", "dbl")
    },
    "sqlite": {k: k for k in ("id", "big", "ts", "day", "bin", "note", "dbl")},
}


# -- one DAG run exporting every reachable source -------------------------------------------------


@pytest.fixture(scope="module")
def exported(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Create the tables, run one DAG exporting each source under its own topic; yield the logs per
    topic (``None`` for an unreachable server) and the table names."""
    from airflow.sdk import DAG

    from sls_provider.operators.web_tracking import SlsWebTrackingOperator
    from tests.dagrun import START, run

    tables: dict[str, tuple[Server, str]] = {}
    sqlite_path = tmp_path_factory.mktemp("types") / "types.db"
    with sqlite3.connect(sqlite_path) as db:
        db.execute(SQLITE_DDL)
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", SQLITE_ROWS)
    db.close()
    try:
        if unreachable(POSTGRES) is None:
            tables["postgres"] = (POSTGRES, table_name("sls_types"))
            t = tables["postgres"][1]
            POSTGRES.execute(PG_DDL.format(t=t), f"INSERT INTO {t} VALUES " + ", ".join(PG_ROWS))
        if unreachable(MARIADB) is None:
            tables["mariadb"] = (MARIADB, table_name("sls_types"))
            t = tables["mariadb"][1]
            MARIADB.execute(MARIA_DDL.format(t=t), f"INSERT INTO {t} VALUES " + ", ".join(MARIA_ROWS))

        with SlsEmulator() as emu, pytest.MonkeyPatch.context() as mp:
            emu.create_logstore(PROJECT, LOGSTORE, web_tracking=True)
            mp.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emu.endpoint))
            mp.setenv("AIRFLOW_CONN_PG_TYPES", POSTGRES.airflow_conn(**PG_OPTIONS))
            mp.setenv("AIRFLOW_CONN_MARIA_TYPES", MARIADB.airflow_conn(charset="utf8mb4"))
            sqlite_conn = {"conn_type": "sqlite", "host": str(sqlite_path)}
            mp.setenv("AIRFLOW_CONN_SQLITE_TYPES", json.dumps(sqlite_conn))
            with DAG("type_fidelity", schedule=None, start_date=START) as dag:
                SlsWebTrackingOperator(
                    task_id="dataframe", dataframe=dataframe(), topic="dataframe", chunksize=2
                )
                SlsWebTrackingOperator(
                    task_id="sqlite",
                    sql=SQLITE_QUERY,
                    sql_conn_id="sqlite_types",
                    topic="sqlite",
                    chunksize=2,
                )
                if "postgres" in tables:
                    SlsWebTrackingOperator(
                        task_id="postgres",
                        sql=f"SELECT * FROM {tables['postgres'][1]} ORDER BY id",
                        sql_conn_id="pg_types",
                        topic="postgres",
                        chunksize=2,  # 2 chunks: all-NULL first
                    )
                if "mariadb" in tables:
                    SlsWebTrackingOperator(
                        task_id="mariadb",
                        sql=MARIA_QUERY.format(t=tables["mariadb"][1]),
                        sql_conn_id="maria_types",
                        topic="mariadb",
                        chunksize=2,
                    )
            state = run(dag)
            logs = {
                topic: [content(log) for log in emu.get_logs(PROJECT, LOGSTORE, topic=topic)]
                for topic in ("dataframe", "sqlite", "postgres", "mariadb")
            }
        yield {"state": state, "logs": logs, "tables": {k: v[1] for k, v in tables.items()}}
    finally:
        for server, t in tables.values():
            server.execute(f"DROP TABLE IF EXISTS {t}")


def logs_of(exported: dict[str, Any], source: str, server: Server | None = None) -> list[dict[str, str]]:
    if server is not None:
        from tests.warehouses.conftest import require

        require(server)
    assert exported["state"] == "success"
    return exported["logs"][source]


def test_postgres_strings(exported: dict[str, Any]) -> None:
    assert logs_of(exported, "postgres", POSTGRES) == PG_EXPECTED


def test_mariadb_strings(exported: dict[str, Any]) -> None:
    assert logs_of(exported, "mariadb", MARIADB) == MARIA_EXPECTED


def test_sqlite_strings(exported: dict[str, Any]) -> None:
    assert logs_of(exported, "sqlite") == SQLITE_EXPECTED


def test_dataframe_strings(exported: dict[str, Any]) -> None:
    assert logs_of(exported, "dataframe") == DF_EXPECTED


@pytest.mark.parametrize("source", ["dataframe", "mariadb", "sqlite"])
def test_same_logical_row_same_log_as_postgres(exported: dict[str, Any], source: str) -> None:
    """Every column the source can hold with PostgreSQL's meaning is spelled as PostgreSQL's is."""
    pg = logs_of(exported, "postgres", POSTGRES)
    other = logs_of(exported, source, MARIADB if source == "mariadb" else None)
    columns = SAME_AS_POSTGRES[source]
    for theirs, ours in zip(other, pg, strict=True):
        assert {c: theirs.get(c) for c in columns} == {c: ours.get(pg_c) for c, pg_c in columns.items()}


# -- the other drivers, through the same source layer ---------------------------------------------


@pytest.fixture
def pg_table(exported: dict[str, Any]) -> str:
    logs_of(exported, "postgres", POSTGRES)
    return exported["tables"]["postgres"]


@pytest.fixture
def maria_table(exported: dict[str, Any]) -> str:
    logs_of(exported, "mariadb", MARIADB)
    return exported["tables"]["mariadb"]


def test_psycopg2_gives_the_same_strings_as_psycopg(pg_table: str) -> None:
    """psycopg2 hands bytea over as memoryview and ranges as its own Range classes."""
    hook = RawHook(lambda: psycopg2_connect(**PG_OPTIONS))
    assert stream_logs(hook, f"SELECT * FROM {pg_table} ORDER BY id") == PG_EXPECTED


def test_pymysql_gives_the_same_strings_as_mysqlclient(maria_table: str) -> None:
    assert stream_logs(RawHook(pymysql_connect), MARIA_QUERY.format(t=maria_table)) == MARIA_EXPECTED


def test_mysql_connector_through_the_mysql_hook(maria_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mysql provider's other client: the same strings, but for what its cursor description
    cannot tell (no display width: TINYINT(1) and BIT(1) stay integers)."""
    from airflow.sdk import BaseHook

    monkeypatch.setenv("AIRFLOW_CONN_MARIA_CONNECTOR", MARIADB.airflow_conn(client="mysql-connector-python"))
    hook = BaseHook.get_connection("maria_connector").get_hook()
    expected = [dict(row) for row in MARIA_EXPECTED]
    expected[0].update(flag="1", bits="1")
    expected[2].update(flag="0", bits="0")
    assert stream_logs(hook, MARIA_QUERY.format(t=maria_table)) == expected
