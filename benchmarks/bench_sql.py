"""SQL export speed against the database's own fastest export, side by side in one run.

    .venv/bin/python benchmarks/bench_sql.py [--rows 1000000] [--rounds 3]

For PostgreSQL and MariaDB: a table of the web-events shape (timestamp, bigint, 5 short texts, float,
int), then in alternating rounds: the floor (``psql -c "COPY (query) TO STDOUT"`` / ``mysql --quick
--batch -e query``, to /dev/null), the Arrow reader's fetch alone (ADBC; on MariaDB the mysqlclient
Arrow reader's batches, mysqlclient's ``fetch_row`` tuples of raw bytes with nothing done to them, and
connectorx's batches for comparison), and ``SlsWebTrackingOperator(sql=...)
.execute()`` with ``sql_reader="dbapi"``, ``"auto"`` and ``"arrow"`` (both ADBC on PostgreSQL and the
mysqlclient Arrow reader, ``sources/mysql_arrow.py``, on MariaDB) to a local byte-counting sink
(``benchmarks/sink.py``), and the same operator given the same rows already in memory (a pyarrow Table,
``dataframe=``): what encoding and sending cost with no reader at all, the ceiling of any reader.
Prints medians (rows/s) and each one's ratio to the floor of the same run (on a loaded machine only
the ratios mean something), and the CPU seconds of each run: the client's (this process's threads, or
the ``psql``/``mysql`` child's) and the database server's (from ``/proc``: ``mariadbd``'s threads, the
postmaster's reaped backends), since on two cores their sum bounds the wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _measure as m  # noqa: E402

SELECT = """{ts} AS ts, x AS id, CONCAT('page_', x % 13) AS page, CONCAT('u', x % 977) AS user_name,
  CONCAT('ref', x % 7) AS referrer, CONCAT('Mozilla/', x % 5) AS agent, CONCAT('cn-', x % 3) AS region,
  (x % 100000) / 100.0E0 AS revenue, x % 17 AS status"""
PG = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
MARIA = {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": "test"}


def maria() -> Any:
    """A mysqlclient connection to the benchmark's MariaDB database."""
    import MySQLdb

    return MySQLdb.connect(host="127.0.0.1", user="root", database="test", charset="utf8mb4")


class MariaHook:
    """What the mysqlclient Arrow reader needs of a ``MySqlHook``."""

    def get_conn(self) -> object:
        return maria()


def make_tables(rows: int, table: str) -> None:
    import MySQLdb
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres")
    with conn, conn.cursor() as cur:
        select = SELECT.format(ts="timestamp '2024-05-01' + (x % 2592000) * interval '1 second'")
        select = select.replace("CONCAT('", "CONCAT(text '").replace("100.0E0", "100.0::float8")
        cur.execute(f"CREATE UNLOGGED TABLE {table} AS SELECT {select} FROM generate_series(1, {rows}) x")
    conn.close()
    db = MySQLdb.connect(host="127.0.0.1", user="root", db="test")
    cur = db.cursor()
    select = SELECT.format(ts="TIMESTAMP(20240501) + INTERVAL x % 2592000 SECOND")
    cur.execute(f"CREATE TABLE {table} AS SELECT {select} FROM (SELECT seq AS x FROM seq_1_to_{rows}) s")
    db.commit()
    db.close()


def drop_tables(table: str) -> None:
    import MySQLdb
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres")
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    conn.close()
    db = MySQLdb.connect(host="127.0.0.1", user="root", db="test")
    db.cursor().execute(f"DROP TABLE IF EXISTS {table}")
    db.close()


def server_cpu(kind: str) -> float | None:
    """CPU seconds the database server has used so far, from ``/proc``; ``None`` where unreadable.

    MariaDB: the ``mariadbd``/``mysqld`` process (every connection is a thread of it). PostgreSQL: the
    postmaster's own and its reaped children's (each connection is a backend process that exits, and
    is reaped, when the connection closes)."""
    names = ("mariadbd", "mysqld") if kind == "mysql" else ("postgres",)
    ticks = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or (proc / "comm").read_text().strip() not in names:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if kind == "postgres" and fields[1] != "1":  # ppid: only the postmaster
            continue
        return sum(int(x) for x in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    return None


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def floor(kind: str, sql: str) -> float:
    if kind == "postgres":
        command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c", f"COPY ({sql}) TO STDOUT"]
    else:
        command = ["mysql", "-h", "127.0.0.1", "-u", "root", "test", "--quick", "--batch", "-e", sql]
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def fetch_alone(kind: str, sql: str) -> float:
    started = time.perf_counter()
    if kind in ("postgres", "mysql"):
        for _ in arrow_batches(kind, sql):
            pass
    elif kind == "first_row":
        # Until the server sends the first row (for ORDER BY on a column without an index, after its
        # sort): every reader waits that long, and so does the floor.
        conn = maria()
        conn.query(sql.encode())
        conn.close()  # without reading the rows: the server stops at the closed socket
    elif kind == "fetch_row":
        # mysqlclient making its row tuples of raw bytes, and nothing else: what any reader built on
        # it pays before converting a value.
        from MySQLdb import _mysql

        conn = maria()
        conn.query(sql.encode())
        result = _mysql.result(conn, 1, {code: [(128, bytes)] for code in range(256)})
        while result.fetch_row(16_384, 0):
            pass
        conn.close()
    else:
        import connectorx

        for _ in connectorx.read_sql(
            "mysql://root:@127.0.0.1:3306/test", sql, return_type="arrow_stream", batch_size=10_000
        ):
            pass
    return time.perf_counter() - started


def arrow_batches(kind: str, sql: str) -> Iterator[Any]:
    """The query's record batches from the Arrow reader ``auto`` uses: ADBC, or mysqlclient's."""
    if kind == "postgres":
        import adbc_driver_postgresql.dbapi as adbc

        with adbc.connect("postgresql://postgres@127.0.0.1:5432/test") as conn, conn.cursor() as cur:
            cur.execute(sql)
            yield from cur.fetch_record_batch()
        return
    from sls_provider.sources.mysql_arrow import MySqlClientArrowReader

    reader = MySqlClientArrowReader(MariaHook(), sql)
    try:
        yield from reader.open()
    finally:
        reader.close()


def in_memory(kind: str, sql: str) -> Any:
    """The query's rows as one pyarrow Table (read once with the Arrow reader, outside the timing)."""
    import pyarrow as pa

    return pa.Table.from_batches(list(arrow_batches(kind, sql)))


#: The reader each operator run used, as its "Reading the query with the ... reader" line said.
READERS: dict[tuple[str, str], set[str]] = {}


class _ReaderLine(logging.Handler):
    """Keeps the reader named by the operator's "Reading the query with the X reader: why" line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reader: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith("Reading the query with the "):
            self.reader = text[len("Reading the query with the ") :].split(" reader:", 1)[0]


_reader_line = _ReaderLine()
_op_log = logging.getLogger("bench_sql.operator")
_op_log.addHandler(_reader_line)
_op_log.setLevel(logging.INFO)
_op_log.propagate = False


def documented_install() -> list[str]:
    """The Arrow drivers ``pip install ./airflow-provider-sls`` (docs/index.md, no extra) brings: the
    provider's runtime requirements without an extra marker."""
    from importlib.metadata import requires

    wanted = ("adbc-driver-postgresql", "adbc-driver-manager", "connectorx")
    names = [
        r.split(";")[0].split(">")[0].split("=")[0].strip() for r in requires("airflow-provider-sls") or []
    ]
    plain = [r for r in requires("airflow-provider-sls") or [] if "extra ==" not in r]
    return [n for n in wanted if any(p.startswith(n) for p in plain) and n in names]


def operator(kind: str, sql: str, reader: str, port: int, table: Any = None, name: str = "") -> float:
    from sls_provider.operators.web_tracking import SlsWebTrackingOperator

    class Operator(SlsWebTrackingOperator):
        @property
        def log(self) -> logging.Logger:  # type: ignore[override]
            return _op_log  # a stdlib logger, so the reader line can be read here

    os.environ["AIRFLOW_CONN_BENCH_SQL"] = json.dumps(PG if kind == "postgres" else MARIA)
    if table is not None:
        op = Operator(task_id="bench_sql", dataframe=table, resume=False)
    else:
        op = Operator(task_id="bench_sql", sql=sql, sql_conn_id="bench_sql", sql_reader=reader, resume=False)
    ti = SimpleNamespace(
        dag_id="bench_sql", task_id="bench_sql", run_id="bench", map_index=-1, xcom_push=lambda **kw: None
    )
    _reader_line.reader = None
    started = time.perf_counter()
    op.execute({"ti": ti})  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    READERS.setdefault((kind, name), set()).add(_reader_line.reader or "(no query)")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not shutil.which("psql") or not shutil.which("mysql"):
        print("bench_sql: needs the psql and mysql clients; skipped")
        return 0
    logging.basicConfig(level=logging.WARNING)
    # What the getting-started install gives sql_reader="auto" (the fast path needs no extra).
    drivers = documented_install()
    print(f"documented install (docs/index.md, no extra) brings: {', '.join(drivers) or 'no Arrow driver'}")
    table = f"sls_bench_{uuid.uuid4().hex[:8]}"
    make_tables(args.rows, table)
    sql = f"SELECT * FROM {table} ORDER BY id"
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
    try:
        tables = {kind: in_memory(kind, sql) for kind in ("postgres", "mysql")}
        with m.Sink() as sink:
            m.sink_connection(sink.port)
            for _ in range(args.rounds):
                for kind in ("postgres", "mysql"):
                    runs = [
                        ("floor", lambda k=kind: floor(k, sql)),
                        ("driver fetch alone", lambda k=kind: fetch_alone(k, sql)),
                        *(
                            [
                                ("query until its first row", lambda: fetch_alone("first_row", sql)),
                                ("mysqlclient fetch_row alone", lambda: fetch_alone("fetch_row", sql)),
                                ("connectorx fetch alone", lambda: fetch_alone("connectorx", sql)),
                            ]
                            if kind == "mysql"
                            else []
                        ),
                        (
                            "operator, dbapi reader",
                            lambda k=kind: operator(
                                k, sql, "dbapi", sink.port, name="operator, dbapi reader"
                            ),
                        ),
                        (
                            "operator, auto",
                            lambda k=kind: operator(k, sql, "auto", sink.port, name="operator, auto"),
                        ),
                        (
                            "operator, arrow reader",
                            lambda k=kind: operator(
                                k, sql, "arrow", sink.port, name="operator, arrow reader"
                            ),
                        ),
                        (
                            "operator, same rows from memory",
                            lambda k=kind: operator(k, sql, "auto", sink.port, tables[k]),
                        ),
                    ]
                    for name, run in runs:
                        client, server = m.cpu_seconds() + child_cpu(), server_cpu(kind)
                        times.setdefault((kind, name), []).append(run())
                        after = server_cpu(kind)
                        cpu.setdefault((kind, name), []).append(
                            (
                                m.cpu_seconds() + child_cpu() - client,
                                None if server is None or after is None else after - server,
                            )
                        )
    finally:
        drop_tables(table)
    rows = []
    for kind in ("postgres", "mysql"):
        base = m.median(times[(kind, "floor")])
        for (k, name), seconds in times.items():
            if k == kind:
                t = m.median(seconds)
                client = m.median([c for c, _ in cpu[(k, name)]])
                servers = [s for _, s in cpu[(k, name)] if s is not None]
                server = f"{m.median(servers):.1f}" if servers else "-"
                rate, ratio = f"{args.rows / t:,.0f}", f"{base / t:.2f}"
                ran = ", ".join(sorted(READERS.get((k, name), set()))) or "-"
                rows.append([kind, name, ran, rate, ratio, f"{t:.2f}", f"{client:.1f}", server])
    print(f"{args.rows:,} rows, medians of {args.rounds} alternating rounds; CPU in seconds")
    header = [
        "database",
        "what",
        "reader that ran",
        "rows/s",
        "x floor",
        "wall s",
        "client CPU",
        "server CPU",
    ]
    print(m.table(header, rows))
    m.write_json(
        "bench_sql.json",
        {
            "rows": args.rows,
            "rounds": args.rounds,
            "seconds": {f"{k}/{n}": v for (k, n), v in times.items()},
            "cpu_seconds": {f"{k}/{n}": v for (k, n), v in cpu.items()},
            "readers": {f"{k}/{n}": sorted(v) for (k, n), v in READERS.items()},
            "documented_install": drivers,
            "machine": m.machine(),
        },
        default_run=m.is_default(parser, args),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
