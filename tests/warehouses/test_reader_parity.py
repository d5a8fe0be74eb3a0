"""The Arrow reader and the DB-API reader give byte-identical logs, column type by column type, on
the real PostgreSQL and MariaDB servers; a type the Arrow reader cannot spell faithfully makes the
query fall back to the DB-API reader (and says so), never a different spelling."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from sls_provider.core.encode import encode_arrow, encode_frame
from sls_provider.core.errors import SlsConfigError, SlsSourceError
from sls_provider.sources.readers import read_query
from tests.warehouses.conftest import MARIADB, POSTGRES, Server, require, table_name
from tests.warehouses.test_type_fidelity import MARIA_DDL, MARIA_ROWS, PG_DDL, PG_OPTIONS, PG_ROWS

pytestmark = pytest.mark.usefixtures("airflow_db")

# Types the fidelity table lacks, with the edge values where spellings part: a numeric's exponent
# below 1e-6 (str(Decimal) writes 0E-10), NaN, a timestamptz in a zone with DST, float4, enum, bit,
# json/jsonb with digits a float would lose, escapes, duplicate keys (json keeps them, jsonb not).
PG_EXTRA_DDL = """CREATE TABLE {t} (id integer PRIMARY KEY, wide numeric(38,10), free numeric,
    stamp timestamptz, clock time(6), f4 real, mood {t}_mood, bits bit(3), small smallint, name varchar(9),
    padded char(4), raw bytea, uid uuid, big bigint, yes boolean, day date, ts timestamp(3),
    j json, jb jsonb)"""
PG_EXTRA_ROWS = [
    """(1, 0, 'NaN', '1900-01-01 00:00:00+00', '23:59:59.999999', 0.1, 'ok', B'101', -32768, 'é', 'ab',
        '\\x', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', -9223372036854775808, true, '0001-01-01',
        '2026-07-01 01:02:03.004', '{"n": 12345678901234567890.123456789,  "a": 1, "a": 2}',
        '{"n": 12345678901234567890.123456789, "esc": "\\u00e9\\n\\"", "a": 1, "a": 2}')""",
    """(2, 0.0000001, 0.00000010, '2026-07-01 12:00:00+00', '00:00:00', 1e-7, 'ok', B'000', 0, '', '',
        '\\x00', NULL, 9223372036854775807, false, '9999-12-31', '2026-07-01 01:02:03', 'null', 'null')""",
    """(3, 1234567890123456789012345678.1234567890, 123.4500, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    """(4, -0.0000100000, 1e-20, '2026-03-29 01:30:00+00', '12:00:00.5', 'Infinity', 'ok', B'111', 7, 'x',
        'abcd', '\\xffff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 1, true, '2026-03-29', NULL,
        '  [1e400, -0.0, "中"]  ', '[1e400, -0.0, "中"]')""",
]
MARIA_EXTRA_DDL = """CREATE TABLE {t} (id int PRIMARY KEY, wide decimal(38,10), cents decimal(10,2),
    tiny tinyint(1), small smallint, uns bigint unsigned, f float, e enum('a','b'), vb varbinary(8),
    y year, dt datetime, d date, txt varchar(20)) DEFAULT CHARSET=utf8mb4"""
MARIA_EXTRA_ROWS = [
    "(1, 0, 0.10, 2, -32768, 18446744073709551615, 0.1, 'a', x'00ff', 2026, '2026-03-01 10:00:00', "
    "'2026-03-01', 'café')",
    "(2, 0.0000001, -5.00, 0, 0, 0, 1e-7, 'b', x'', 1901, '2026-03-01 10:00:00.5', '1000-01-01', '')",
    "(3" + ", NULL" * 12 + ")",
    "(4, -1234567890123456789012345678.1234567890, 99999999.99, 1, 1, 1, -1, NULL, NULL, NULL, NULL, "
    "NULL, '中')",
]

# What the mysqlclient Arrow reader spells value by value or through a cast that could part from the
# DB-API reader's Python values: TIME (negative, past 24 h, fractions), BIT(1)/BIT(8), MySQL's JSON
# function results, zero dates next to valid ones (sql_mode=''), unsigned and decimal extremes, 4-byte
# UTF-8, binary with NUL and 0xff, a _bin collation (binary flag, but text), NULLs everywhere.
MARIA_EDGE_DDL = """CREATE TABLE {t} (id int PRIMARY KEY, clock time(6), bit1 bit(1), bit8 bit(8),
    day date, dt datetime(3), ts timestamp NULL, uns bigint unsigned, sig bigint, wide decimal(38,10),
    tinyd decimal(20,12), emoji varchar(20), bytes blob, coll varchar(10) COLLATE utf8mb4_bin,
    dbl double, f float, med mediumint unsigned, yes boolean) DEFAULT CHARSET=utf8mb4"""
MARIA_EDGE_ROWS = [
    "(1, '-838:59:59', b'1', b'11111111', '2026-03-01', '2026-03-01 10:00:00.125', '2026-03-01 10:00:00', "
    "18446744073709551615, -9223372036854775808, 9999999999999999999999999999.9999999999, "
    "0.000000000001, '😀 café', x'00ff00', 'Ab', 1e308, 3.4e38, 16777215, 1)",
    "(2, '100:00:00.5', b'0', b'00000000', '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', "
    "0, 9223372036854775807, -0.0000000001, 0.000000100000, '', x'', '', -0.0, 1e-7, 0, 0)",
    "(3" + ", NULL" * 17 + ")",
    "(4, '-00:00:01', b'1', b'10000000', '2024-02-00', '2024-00-01 00:00:00', NULL, 1, 0, 0, 0, "
    "'中文', x'ff', 'z', 0.1, 0.1, 1, 2)",
    "(5, '24:00:00', NULL, b'00000001', '1000-01-01', '9999-12-31 23:59:59.999', '1970-01-01 00:00:01', "
    "NULL, NULL, 123.4500000000, 1.000000000000, NULL, NULL, NULL, 5e-324, -1, NULL, NULL)",
    # The year 0: Arrow reads it, Python's dates do not (the DB-API reader sends the text).
    "(6, NULL, NULL, NULL, '0000-01-01', '0000-01-01 00:00:00.5', NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL)",
]
MARIA_EDGE_QUERIES = {"clock": "clock", "js": "JSON_OBJECT('n', 12345678901234567890.5, 'e', 'é')"}


def hook_for(server: Server, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> Any:
    from airflow.sdk import BaseHook

    monkeypatch.setenv("AIRFLOW_CONN_PARITY_SRC", server.airflow_conn(**extra))
    return BaseHook.get_connection("parity_src").get_hook()


class Lines:
    """A logger keeping its lines (Airflow's own logging setup bypasses pytest's capture)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)


def encoded_chunks(hook: Any, sql: str, reader: str, chunksize: int) -> list[bytes]:
    """Every chunk's encoded rows, ``chunksize`` rows a chunk."""
    out = []
    for chunk in read_query(hook, sql, None, chunksize, reader, Lines()):
        keys = list(chunk.columns) if isinstance(chunk, pd.DataFrame) else chunk.column_names
        rows = encode_frame(chunk, keys) if isinstance(chunk, pd.DataFrame) else encode_arrow(chunk, keys)
        out.append(bytes(rows.data))
    return out


def encoded(hook: Any, sql: str, reader: str, caplog: Any = None) -> tuple[list[bytes], str]:
    """Every chunk's encoded rows (what requests are cut from), and the reader's log line."""
    logger = Lines()
    chunks = list(read_query(hook, sql, None, 2, reader, logger))
    out = []
    for chunk in chunks:
        keys = list(chunk.columns) if isinstance(chunk, pd.DataFrame) else chunk.column_names
        rows = encode_frame(chunk, keys) if isinstance(chunk, pd.DataFrame) else encode_arrow(chunk, keys)
        out.append(bytes(rows.data))
    [line] = logger.lines
    return out, line


def columns_of(server: Server, table: str) -> list[str]:
    with server.connect() as conn:
        cursor = conn.cursor()
        cursor.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        return [c[0] for c in cursor.description if c[0] != "id"]


def check_parity(
    server: Server,
    hook: Any,
    tables: list[str],
    caplog: Any,
    *,
    queries: dict[str, str],
    reader: str = "auto",
) -> set:
    """Each column alone, then the whole table: the two readers' bytes are equal. Returns the columns
    the Arrow reader read itself."""
    arrow_columns = set()
    for table in tables:
        selects = {
            c: f"SELECT id, {queries.get(c, c)} AS {c} FROM {table} ORDER BY id"
            for c in columns_of(server, table)
        }
        selects["*"] = f"SELECT * FROM {table} ORDER BY id"
        for column, sql in selects.items():
            dbapi, dbapi_line = encoded(hook, sql, "dbapi", caplog)
            try:
                auto, auto_line = encoded(hook, sql, reader, caplog)
            except SlsConfigError as err:  # sql_reader="arrow" refuses instead of falling back
                auto, auto_line = dbapi, f"the Arrow reader cannot: {err}"
            assert "dbapi reader" in dbapi_line
            assert auto == dbapi, (column, auto_line)
            if "arrow (" in auto_line:
                arrow_columns.add(column)
            else:
                assert "the Arrow reader cannot" in auto_line
                assert column == "*" or f"{column} (" in auto_line
    return arrow_columns


def test_postgres_readers_give_the_same_bytes(
    scratch_tables: list, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    require(POSTGRES)
    base, extra = table_name("sls_parity"), table_name("sls_parity_x")
    POSTGRES.execute(f"CREATE TYPE {extra}_mood AS ENUM ('ok', 'sad')")
    scratch_tables += [(POSTGRES, base), (POSTGRES, extra)]
    try:
        POSTGRES.execute(PG_DDL.format(t=base), f"INSERT INTO {base} VALUES " + ", ".join(PG_ROWS))
        POSTGRES.execute(
            PG_EXTRA_DDL.format(t=extra), f"INSERT INTO {extra} VALUES " + ", ".join(PG_EXTRA_ROWS)
        )
        # The session's zone is not UTC: timestamptz must come out in it, as psycopg hands it over.
        hook = hook_for(POSTGRES, monkeypatch, options="-c TimeZone=Europe/Berlin")
        read = check_parity(POSTGRES, hook, [base, extra], caplog, queries={})
    finally:
        POSTGRES.execute(f"DROP TABLE IF EXISTS {extra}", f"DROP TYPE IF EXISTS {extra}_mood")
    assert read >= {
        "amount",
        "big",
        "ts",
        "tstz",
        "day",
        "tm",
        "flag",
        "bin",
        "note",
        "dbl",
        "uid",
        "wide",
        "free",
        "stamp",
        "clock",
        "small",
        "name",
        "padded",
        "raw",
        "yes",
        "doc",
        "docb",
        "j",
        "jb",
    }
    assert not read & {"iv", "ints", "texts", "rng", "f4", "mood", "bits", "*"}
    assert PG_OPTIONS  # the fidelity DAG's own zone is covered by its test


@pytest.mark.parametrize("batch_rows", [None, 1, "over 2 GiB"])
def test_mariadb_readers_give_the_same_bytes(
    scratch_tables: list,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    batch_rows: int | str | None,
) -> None:
    """Batches of one row: a column's batches then differ in type (a zero date's batch is spelled
    value by value, the others cast), which the chunks must join without a different spelling.
    "over 2 GiB": ``pa.array`` splits a batch's flat array when its values pass 2 GiB (as a
    ChunkedArray), and the reader then builds each column on its own; made to happen on every batch."""
    require(MARIADB)
    if isinstance(batch_rows, int):
        monkeypatch.setattr("sls_provider.sources.mysql_arrow.BATCH_ROWS", batch_rows)
    elif batch_rows:
        import pyarrow as pa

        whole = pa.array

        def split(*args: Any, **options: Any) -> Any:
            made = whole(*args, **options)
            return pa.chunked_array([made]) if "size" in options else made  # the flat array's call

        monkeypatch.setattr("sls_provider.sources.mysql_arrow.pa.array", split)
    base, extra, edge = table_name("sls_parity"), table_name("sls_parity_x"), table_name("sls_parity_e")
    scratch_tables += [(MARIADB, base), (MARIADB, extra), (MARIADB, edge)]
    MARIADB.execute(MARIA_DDL.format(t=base), f"INSERT INTO {base} VALUES " + ", ".join(MARIA_ROWS))
    MARIADB.execute(
        MARIA_EXTRA_DDL.format(t=extra), f"INSERT INTO {extra} VALUES " + ", ".join(MARIA_EXTRA_ROWS)
    )
    MARIADB.execute(
        "SET SESSION sql_mode = ''",  # zero dates
        MARIA_EDGE_DDL.format(t=edge),
        f"INSERT INTO {edge} VALUES " + ", ".join(MARIA_EDGE_ROWS),
        f"ALTER TABLE {edge} ADD COLUMN js json",
        f"UPDATE {edge} SET js = {MARIA_EDGE_QUERIES['js']} WHERE id < 3",
    )
    hook = hook_for(MARIADB, monkeypatch, charset="utf8mb4")
    read = check_parity(
        MARIADB, hook, [base, extra, edge], caplog, queries={"doc": "JSON_COMPACT(doc)"}, reader="auto"
    )
    # mysqlclient's reader reads every column (value by value where a cast would part).
    assert read == set(columns_of(MARIADB, base) + columns_of(MARIADB, extra) + columns_of(MARIADB, edge)) | {
        "*"
    }


def test_mariadb_connectorx_reads_what_it_can(
    scratch_tables: list, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """connectorx, still used with sql_reader="arrow" for a MySQL connection whose client is not
    mysqlclient, against the DB-API reader of the same (mysql-connector-python) connection."""
    require(MARIADB)
    base, extra = table_name("sls_parity"), table_name("sls_parity_x")
    scratch_tables += [(MARIADB, base), (MARIADB, extra)]
    MARIADB.execute(MARIA_DDL.format(t=base), f"INSERT INTO {base} VALUES " + ", ".join(MARIA_ROWS))
    MARIADB.execute(
        MARIA_EXTRA_DDL.format(t=extra), f"INSERT INTO {extra} VALUES " + ", ".join(MARIA_EXTRA_ROWS)
    )
    hook = hook_for(MARIADB, monkeypatch, charset="utf8mb4", client="mysql-connector-python")
    read = check_parity(
        MARIADB, hook, [base, extra], caplog, queries={"doc": "JSON_COMPACT(doc)"}, reader="arrow"
    )
    assert read >= {"big", "ts", "stamp", "day", "doc", "bin", "note", "dbl", "small", "uns", "e", "vb"}
    assert not read & {"tm", "bits", "f", "wide", "cents", "amount", "*"}


def test_mariadb_arrow_reader_streams(mariadb: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A result far larger than memory: batches of BATCH_ROWS arrive as they are read, and stopping
    early closes at once rather than reading the rest."""
    import time

    from sls_provider.sources.mysql_arrow import BATCH_ROWS, MySqlClientArrowReader

    hook = hook_for(mariadb, monkeypatch, charset="utf8mb4")
    reader = MySqlClientArrowReader(hook, "SELECT seq, CONCAT('row ', seq) AS s FROM seq_1_to_200000")
    try:
        sizes = [batch.num_rows for batch in reader.open()]
    finally:
        reader.close()
    assert sum(sizes) == 200_000 and max(sizes) == BATCH_ROWS, sizes
    reader = MySqlClientArrowReader(hook, "SELECT seq, REPEAT('x', 100) AS s FROM seq_1_to_100000000")
    started = time.monotonic()
    batches = reader.open()
    first = next(iter(batches))
    reader.close()
    assert first.num_rows == BATCH_ROWS and time.monotonic() - started < 30  # a hang bound


def test_forced_arrow_reader_refuses_rather_than_falls_back(
    postgres: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_for(postgres, monkeypatch)
    with pytest.raises(SlsConfigError, match=r"cannot read this query: .*iv \(interval\)"):
        read_query(hook, "SELECT 1 AS n, interval '1 day' AS iv", None, 10, "arrow")
    with pytest.raises(SlsConfigError, match="parameters"):
        read_query(hook, "SELECT %s AS n", [1], 10, "arrow")


@pytest.mark.parametrize("reader", ["arrow", "dbapi"])
def test_errors_name_the_query_and_the_reader(
    postgres: Server, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    hook = hook_for(postgres, monkeypatch)
    with pytest.raises(SlsSourceError, match=rf"\({reader}.*reader\).*Query: SELECT nope FROM") as info:
        list(read_query(hook, "SELECT nope FROM\n  sls_no_such_table", None, 10, reader))
    assert "sls_no_such_table" in str(info.value)


def test_mariadb_reader_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto reads mysqlclient connections with the mysqlclient Arrow reader; connectorx, which reads
    ahead without a bound when the export is slower than the query (memory grew by 250 MB from 300k
    to 3M rows in benchmarks/bench_memory.py), only with sql_reader="arrow" on another client."""
    hook = hook_for(require(MARIADB), monkeypatch)
    for reader in ("auto", "arrow"):
        _, line = encoded(hook, "SELECT 1 AS one", reader)
        assert "arrow (mysqlclient) reader" in line and "use_result" in line
    hook = hook_for(MARIADB, monkeypatch, client="mysql-connector-python")
    _, line = encoded(hook, "SELECT 1 AS one", "auto")
    assert "dbapi reader" in line and "without a memory bound" in line
    _, line = encoded(hook, "SELECT 1 AS one", "arrow")
    assert "arrow (connectorx) reader" in line


# SQLite columns take any type in any row: every mix, and the edges of each type, across the batch
# and chunk boundaries (2-row chunks here, 10,000-row batches in the reader).
SQLITE_MIXED_DDL = """CREATE TABLE m (id INTEGER PRIMARY KEY, mixed, ints INTEGER, reals REAL, texts TEXT,
    blobs BLOB, nulls, late)"""
SQLITE_MIXED_ROWS = [
    (1, 1, 2**63 - 1, 0.1 + 0.2, "", b"", None, None),
    (2, 2.5, -(2**63), -0.0, 'é\n"\\', b"\x00\xff", None, None),
    (3, "three", 0, 1e16, "😀", b"\xfe", None, None),
    (4, b"\x04", None, 1e-7, None, None, None, 4),
    (5, None, 5, 1.5e300, "5", b"5", None, "five"),
    (6, 6, 6, None, "x" * 1000, None, None, 6.0),
]


def sqlite_hook(path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    import json

    from airflow.sdk import BaseHook

    monkeypatch.setenv("AIRFLOW_CONN_PARITY_LITE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return BaseHook.get_connection("parity_lite").get_hook()


def test_sqlite_readers_give_the_same_bytes(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from tests.warehouses.test_type_fidelity import SQLITE_DDL, SQLITE_QUERY, SQLITE_ROWS

    path = tmp_path / "parity.db"
    with sqlite3.connect(path) as db:
        db.execute(SQLITE_DDL)
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", SQLITE_ROWS)
        db.execute(SQLITE_MIXED_DDL)
        db.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?, ?, ?, ?)", SQLITE_MIXED_ROWS)
    db.close()
    hook = sqlite_hook(path, monkeypatch)
    queries = [SQLITE_QUERY, "SELECT * FROM t ORDER BY id", "SELECT * FROM m ORDER BY id"]
    queries += [
        f"SELECT id, {c} FROM m ORDER BY id"
        for c in ("mixed", "ints", "reals", "texts", "blobs", "nulls", "late")
    ]
    for sql in queries:
        dbapi, dbapi_line = encoded(hook, sql, "dbapi")
        for reader in ("auto", "arrow"):
            arrow, line = encoded(hook, sql, reader)
            assert "arrow (sqlite3) reader" in line and "dbapi reader" in dbapi_line
            assert arrow == dbapi, (sql, reader)
    # Parameters are bound by the DB-API driver, so such a query is read by it (and says why).
    chunks = list(read_query(hook, "SELECT * FROM m WHERE id > ?", [4], 2, "auto", logger := Lines()))
    assert sum(len(c) for c in chunks) == 2 and "dbapi reader: the query has parameters" in logger.lines[0]


def test_sqlite_arrow_reader_errors_name_the_query(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = sqlite_hook(tmp_path / "empty.db", monkeypatch)
    with pytest.raises(
        SlsSourceError, match=r"arrow \(sqlite3\) reader.*no such table: nowhere.*Query: SELECT"
    ):
        list(read_query(hook, "SELECT * FROM nowhere", None, 2, "arrow"))


def test_sqlite_column_changing_type_in_a_later_batch(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's warehouse: ``revenue`` is REAL for the first batches, then one row holds text.
    Chunks straddling the two batches must still give the DB-API reader's bytes."""
    import sqlite3

    from sls_provider.sources.sqlite_arrow import BATCH_ROWS

    path = tmp_path / "drift.db"
    n = 2 * BATCH_ROWS + 500
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, revenue REAL, note)")
        rows = [(i, i / 4, i) for i in range(n)]
        rows[BATCH_ROWS + 7] = (BATCH_ROWS + 7, "n/a", b"\x01")  # text in a REAL column, a blob
        db.executemany("INSERT INTO d VALUES (?, ?, ?)", rows)
    db.close()
    hook = sqlite_hook(path, monkeypatch)
    sql = "SELECT * FROM d ORDER BY id"
    for chunksize in (3_000, 20_000):
        dbapi = [bytes(c) for c in encoded_chunks(hook, sql, "dbapi", chunksize)]
        assert [bytes(c) for c in encoded_chunks(hook, sql, "arrow", chunksize)] == dbapi


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_sqlite_arrow_reader_closes_on_its_own_thread(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopping early closes the sqlite3 connection on the thread that opened it (sqlite3 refuses
    any other: the error surfaced as 'Exception ignored' when the generator was collected)."""
    import gc
    import sqlite3

    path = tmp_path / "stop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE s (id INTEGER PRIMARY KEY)")
        db.executemany("INSERT INTO s VALUES (?)", [(i,) for i in range(50_000)])
    db.close()
    hook = sqlite_hook(path, monkeypatch)
    chunks = read_query(hook, "SELECT * FROM s ORDER BY id", None, 1_000, "arrow")
    assert len(next(chunks)) == 1_000
    chunks.close()  # type: ignore[attr-defined]
    del chunks
    gc.collect()
    with sqlite3.connect(path) as db:  # not locked by a connection left open
        db.execute("BEGIN EXCLUSIVE")
        db.rollback()
    db.close()


def test_mariadb_arrow_reader_error_mid_stream(mariadb: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection killed while rows are pending: the export fails, naming the reader and the
    query, instead of ending as if the result were complete."""
    import time

    hook = hook_for(mariadb, monkeypatch)
    sql = "SELECT CONNECTION_ID() AS cid, seq FROM seq_1_to_100000000"
    chunks = read_query(hook, sql, None, 1000, "auto")
    first = next(chunks)
    mariadb.execute(f"KILL {first.column('cid')[0].as_py()}")
    started = time.monotonic()
    with pytest.raises(SlsSourceError, match=r"\(arrow \(mysqlclient\) reader\).*seq_1_to_100000000"):
        for _ in chunks:
            assert time.monotonic() - started < 60
    chunks.close()


@pytest.mark.parametrize("kind", ["mariadb", "sqlite"])
def test_a_small_chunksize_makes_the_arrow_readers_batches_that_small(
    kind: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wide rows call for a small ``chunksize`` (what a chunk holds bounds the export's memory): the
    Arrow readers must then not read their 16,384 (10,000) rows a batch all the same."""
    from sls_provider.sources.mysql_arrow import MySqlClientArrowReader
    from sls_provider.sources.sqlite_arrow import SqliteArrowReader

    if kind == "mariadb":
        require(MARIADB)
        cls: Any = MySqlClientArrowReader
        hook = hook_for(MARIADB, monkeypatch, charset="utf8mb4")
        sql = "SELECT seq AS id, REPEAT('x', 1000) AS wide FROM seq_1_to_1000"
    else:
        import sqlite3

        cls = SqliteArrowReader
        with sqlite3.connect(tmp_path / "wide.db") as db:
            db.execute("CREATE TABLE w (id integer, wide text)")
            db.executemany("INSERT INTO w VALUES (?, ?)", [(i, "x" * 1000) for i in range(1000)])
        db.close()
        hook = sqlite_hook(tmp_path / "wide.db", monkeypatch)
        sql = "SELECT * FROM w ORDER BY id"
    sizes: list[int] = []
    batches = cls._batches

    def spied(self: Any, *args: Any) -> Any:
        for batch in batches(self, *args):
            sizes.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(cls, "_batches", spied)
    chunks = list(read_query(hook, sql, None, 64, "arrow"))
    assert sum(len(c) for c in chunks) == 1000 and max(len(c) for c in chunks) == 64
    assert sum(sizes) == 1000 and max(sizes) == 64, sizes
