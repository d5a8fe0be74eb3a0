"""Bounded memory: a 1,000,000-row table exports with a peak RSS within 40 MiB of a 100,000-row one.

(``SLS_TEST_MEMORY_ROWS=300000,3000000`` runs the sizes of the figures in docs/large-tables.md, with
the same bound: readers that hold memory bounded grew 1-13 MiB there; one that reads ahead without a
bound grows by about 90 MB a million rows, and a client-side cursor by far more.)

Each export runs ``SlsWebTrackingOperator.execute``, with the Arrow reader and with the DB-API one, in
a process of its own (``export_rss.py``), which reports its peak resident set (``VmHWM``); both run at
once against a counting sink. The tables are
generated server-side (``generate_series``; MariaDB's sequence engine). The figures printed here are
the ones quoted in docs/large-tables.md (``pytest tests/warehouses/test_memory.py -s``); the test
asserts only the bound and that every row arrived.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import sls_connection
from tests.warehouses.conftest import MARIADB, POSTGRES, Server, heavy, require, table_name
from tests.warehouses.sink import CountingSink

SMALL, LARGE = (int(n) for n in os.environ.get("SLS_TEST_MEMORY_ROWS", "100000,1000000").split(","))
BOUND = 40 * 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
# Every machine-filling test runs on one xdist worker (``--dist loadgroup`` in the Makefile), one after
# the other, while the other worker runs the rest: the same one-at-a-time as ``heavy``'s lock, without
# a worker idling while it waits for that lock.
pytestmark = pytest.mark.xdist_group("heavy")

# Five columns of the usual kinds: ~95 bytes of JSON per row.
PG_TABLE = """CREATE UNLOGGED TABLE {t} AS SELECT g::bigint AS id, 'user_' || (g % 1000) AS name,
    (g % 9700) / 100.0 AS score, timestamp '2026-01-01' + g * interval '1 second' AS ts, g % 2 = 0 AS flag
    FROM generate_series(1, {n}) AS g"""
PG_KEY = "ALTER TABLE {t} ADD PRIMARY KEY (id)"
MARIA_TABLE = """CREATE TABLE {t} (id bigint PRIMARY KEY, name varchar(20), score double, ts datetime,
    flag boolean) ENGINE=MyISAM"""
MARIA_FILL = """INSERT INTO {t} SELECT seq, CONCAT('user_', seq % 1000), (seq % 9700) / 100,
    TIMESTAMPADD(SECOND, seq, '2026-01-01'), seq % 2 = 0 FROM seq_1_to_{n}"""


def export_both(connection: str, table: str, reader: str) -> tuple[dict, dict, CountingSink]:
    """Export the first SMALL rows and all LARGE rows of ``table`` in two processes at once, read by
    ``reader`` (``sql_reader``), from ``connection`` (``AIRFLOW_CONN_*`` JSON)."""
    with heavy(f"memory test on {json.loads(connection)['conn_type']}"), CountingSink() as sink:
        env = dict(
            os.environ,
            AIRFLOW_CONN_MEM_SRC=connection,
            AIRFLOW_CONN_SLS_DEFAULT=sls_connection(sink.endpoint),
        )
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.warehouses.export_rss",
                    "mem_src",
                    f"SELECT * FROM {table} WHERE id <= {n} ORDER BY id",
                    "--sql-reader",
                    reader,
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in (SMALL, LARGE)
        ]
        results = []
        try:
            for proc in procs:
                out, err = proc.communicate(timeout=240)
                assert proc.returncode == 0, err[-3000:]
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return results[0], results[1], sink


def check(name: str, small: dict, large: dict, sink: CountingSink) -> None:
    mb = 1024 * 1024
    print(
        f"\n{name}: {SMALL:,} rows peak RSS {small['peak_rss'] / mb:.0f} MiB "
        f"(baseline {small['baseline_rss'] / mb:.0f}); "
        f"{LARGE:,} rows peak RSS {large['peak_rss'] / mb:.0f} MiB "
        f"(baseline {large['baseline_rss'] / mb:.0f}) in {large['export_seconds']:.1f} s = "
        f"{LARGE / large['export_seconds']:,.0f} rows/s while the small export ran alongside; "
        f"chunksize {large['chunksize']:,}, max_workers {large['max_workers']}, "
        f"sql_reader {large['sql_reader']}"
    )
    assert small["rows"] == SMALL and large["rows"] == LARGE
    assert sink.logs == SMALL + LARGE  # every row arrived (counted by the sink, not the client)
    assert sink.requests == small["requests"] + large["requests"]
    growth = large["peak_rss"] - small["peak_rss"]
    assert growth < BOUND, f"peak RSS grew by {growth / mb:.0f} MiB from {SMALL:,} to {LARGE:,} rows"


READERS = {
    "postgres": {"arrow": "ADBC", "dbapi": "psycopg 3, server-side cursor"},
    "mysql": {"arrow": "mysqlclient, use_result into Arrow", "dbapi": "mysqlclient, SSCursor"},
    "sqlite": {"arrow": "sqlite3 rows to Arrow columns", "dbapi": "sqlite3 cursor"},
}
SQLITE_TABLE = """CREATE TABLE {t} AS WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g
    WHERE x < {n}) SELECT x AS id, 'user_' || (x % 1000) AS name, (x % 9700) / 100.0 AS score,
    datetime('2026-01-01', '+' || x || ' seconds') AS ts, x % 2 = 0 AS flag FROM g"""


def large_table(server: Server, *statements: str) -> Iterator[tuple[Server, str]]:
    """A table of LARGE rows made by ``statements`` (``{t}``: its name, ``{n}``: LARGE) for both readers'
    tests (made once per module: it takes seconds); dropped after them."""
    require(server)
    table = table_name("sls_mem")
    started = time.monotonic()
    try:
        server.execute(*(statement.format(t=table, n=LARGE) for statement in statements))
        print(f"\ntable of {LARGE:,} rows built in {time.monotonic() - started:.1f} s")
        yield server, table
    finally:
        server.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture(scope="module")
def pg_table() -> Iterator[tuple[Server, str]]:
    yield from large_table(POSTGRES, PG_TABLE, PG_KEY, "ANALYZE {t}")


@pytest.fixture(scope="module")
def maria_table() -> Iterator[tuple[Server, str]]:
    yield from large_table(MARIADB, MARIA_TABLE, MARIA_FILL)


@pytest.mark.parametrize("reader", ["arrow", "dbapi"])
def test_postgres_memory_bounded(pg_table: tuple[Server, str], reader: str) -> None:
    server, table = pg_table
    small, large, sink = export_both(server.airflow_conn(), table, reader)
    check(f"PostgreSQL ({READERS['postgres'][reader]})", small, large, sink)


@pytest.mark.parametrize("reader", ["arrow", "dbapi"])
def test_mariadb_memory_bounded(maria_table: tuple[Server, str], reader: str) -> None:
    server, table = maria_table
    small, large, sink = export_both(server.airflow_conn(charset="utf8mb4"), table, reader)
    check(f"MariaDB ({READERS['mysql'][reader]})", small, large, sink)


@pytest.fixture(scope="module")
def sqlite_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file of LARGE rows for both readers' tests (made once: it takes seconds)."""
    import sqlite3

    path = tmp_path_factory.mktemp("memory") / "memory.db"
    with sqlite3.connect(path) as db:
        db.execute(SQLITE_TABLE.format(t="sls_mem", n=LARGE))
        db.execute("CREATE UNIQUE INDEX sls_mem_id ON sls_mem (id)")
    db.close()
    return path


@pytest.mark.parametrize("reader", ["arrow", "dbapi"])
def test_sqlite_memory_bounded(sqlite_table: Path, reader: str) -> None:
    connection = json.dumps({"conn_type": "sqlite", "host": str(sqlite_table)})
    small, large, sink = export_both(connection, "sls_mem", reader)
    check(f"SQLite ({READERS['sqlite'][reader]})", small, large, sink)


def test_postgres_arrow_batches_are_about_a_chunk(
    postgres: Server, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADBC's default batch (16 MiB of COPY data, ~250,000 short rows) held by the read-ahead made the
    peak grow with the table (+84 MiB from 300,000 to 3,000,000 rows); batches of ~1 MiB keep it flat."""
    from airflow.sdk import BaseHook

    from sls_provider.sources.adbc_postgres import POSTGRES_BATCH_BYTES, PostgresArrowReader

    monkeypatch.setenv("AIRFLOW_CONN_MEM_BATCH", postgres.airflow_conn())
    hook = BaseHook.get_connection("mem_batch").get_hook()
    rows = 300_000  # its own size, whatever the memory tests' (ADBC's default would be one batch)
    reader = PostgresArrowReader(hook, PG_TABLE.split(" AS ", 1)[1].format(n=rows))
    try:
        sizes = [batch.num_rows for batch in reader.open()]
    finally:
        reader.close()
    assert sum(sizes) == rows
    # ~40 bytes a row of binary COPY: ~26,000 rows a batch, a little over the default chunk.
    assert max(sizes) <= 2 * POSTGRES_BATCH_BYTES // 40, sizes
    assert len(sizes) >= 8, sizes
