"""Peak memory of the operator exporting a SQL table: 300,000 rows against 3,000,000 rows.

    .venv/bin/python benchmarks/bench_memory.py [--small 300000] [--large 3000000] [--no-postgres]
        [--no-mariadb] [--no-sqlite] [--sql-reader auto|arrow|dbapi ...]

Each source table (SQLite in a temporary file, PostgreSQL at 127.0.0.1:5432, database ``test``,
user ``postgres`` or ``root``, and MariaDB at 127.0.0.1:3306, user ``root``, database ``test``, when
reachable) holds rows of mixed types with some NULLs (about 240
bytes a row as JSON). Every export runs ``SlsWebTrackingOperator(sql=..., sql_conn_id=...)
.execute(context)`` with a minimal context (a task instance with ids; no ``task_state_store``, so
``resume=False``) in its own fresh subprocess, sending to an ``SlsEmulator`` (SQLite store on disk)
served by this process, once per ``--sql-reader`` (the operator's ``sql_reader``). The rows go
through the operator's own path: ``read_query`` (the Arrow reader, or the DB-API reader's
server-side cursor) -> the hook's export.

Peak RSS is the subprocess's ``VmHWM`` (``/proc/self/status``) at the end: its whole life, imports
included. The target: the peak grows by less than 100 MB from the small table to the large one.
Prints a markdown table, writes ``benchmarks/results/memory.json``; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m  # noqa: E402

PROJECT, LOGSTORE, TOPIC = "proj", "store", "bench"
GROWTH_TARGET = 100e6
PG_USERS = ("postgres", "root")

# One expression per column, from the row number x; shared by both databases.
_SQLITE_SELECT = """
SELECT x,
  strftime('%Y-%m-%dT%H:%M:%S', 1714521600 + (x * 7919) % 2592000, 'unixepoch'),
  1000000 + (x * 2654435761) % 9000000,
  100000000000 + x * 7,
  CASE x % 7 WHEN 5 THEN 404 WHEN 6 THEN 500 ELSE 200 END,
  ((x * 7919) % 100000) / 100.0,
  ((x * 104729) % 1000000) / 1000.0,
  substr('CNSGDEUSJPBRINFR', (x % 8) * 2 + 1, 2),
  CASE x % 3 WHEN 0 THEN 'mobile' WHEN 1 THEN 'desktop' ELSE 'tablet' END,
  CASE x % 5 WHEN 0 THEN 'view' WHEN 1 THEN 'click' WHEN 2 THEN 'add_to_cart' WHEN 3 THEN 'checkout'
    ELSE 'purchase' END,
  '/product/' || ((x * 31) % 99991),
  CASE WHEN x % 10 = 0 THEN NULL ELSE 'C' || (x % 1000) END
"""
_COLUMNS = (
    "id {int} PRIMARY KEY, event_time {ts}, user_id {int}, order_id {int}, status {int}, amount {float}, "
    "latency_ms {float}, country TEXT, device TEXT, action TEXT, page TEXT, coupon TEXT"
)


def make_sqlite(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (" + _COLUMNS.format(int="INTEGER", ts="TEXT", float="REAL") + ")")
        db.execute(
            f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {int(rows)}) "
            f"INSERT INTO events {_SQLITE_SELECT} FROM c"
        )
    sqlite3.connect(path).close()


def postgres_user() -> str | None:
    try:
        import psycopg2
    except ImportError:
        return None
    for user in PG_USERS:
        try:
            psycopg2.connect(host="127.0.0.1", port=5432, dbname="test", user=user, connect_timeout=3).close()
            return user
        except psycopg2.Error:
            continue
    return None


def make_postgres(user: str, table: str, rows: int) -> None:
    import psycopg2

    select = _SQLITE_SELECT.replace(
        "strftime('%Y-%m-%dT%H:%M:%S', 1714521600 + (x * 7919) % 2592000, 'unixepoch')",
        "timestamp '2024-05-01' + ((x * 7919) % 2592000) * interval '1 second'",
    )
    for real in ("((x * 7919) % 100000) / 100.0", "((x * 104729) % 1000000) / 1000.0"):
        select = select.replace(real, f"({real})::float8")
    select = select.replace("(x % 8) * 2 + 1", "((x % 8) * 2 + 1)::int")
    conn = psycopg2.connect(host="127.0.0.1", port=5432, dbname="test", user=user)
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(
            f"CREATE UNLOGGED TABLE {table} ("
            + _COLUMNS.format(int="BIGINT", ts="TIMESTAMP", float="DOUBLE PRECISION")
            + ")"
        )
        cur.execute(f"INSERT INTO {table} {select} FROM generate_series(1::bigint, {int(rows)}) AS g(x)")
    conn.close()


def mariadb_ok() -> bool:
    try:
        import MySQLdb

        MySQLdb.connect(host="127.0.0.1", port=3306, user="root", db="test", connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - not reachable, or no driver: skipped
        return False


def make_mariadb(table: str, rows: int) -> None:
    import MySQLdb

    select = _SQLITE_SELECT.replace(
        "strftime('%Y-%m-%dT%H:%M:%S', 1714521600 + (x * 7919) % 2592000, 'unixepoch')",
        "TIMESTAMP(20240501) + INTERVAL (x * 7919) % 2592000 SECOND",
    ).replace("'/product/' || ((x * 31) % 99991)", "CONCAT('/product/', (x * 31) % 99991)")
    select = select.replace("'C' || (x % 1000)", "CONCAT('C', x % 1000)")
    db = MySQLdb.connect(host="127.0.0.1", user="root", db="test", charset="utf8mb4")
    cur = db.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    columns = _COLUMNS.format(int="BIGINT", ts="DATETIME", float="DOUBLE").replace("TEXT", "VARCHAR(32)")
    cur.execute(f"CREATE TABLE {table} ({columns}) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4")
    cur.execute(f"INSERT INTO {table} {select} FROM (SELECT seq AS x FROM seq_1_to_{int(rows)}) s")
    db.commit()
    db.close()


def drop_mariadb(tables: list[str]) -> None:
    import MySQLdb

    db = MySQLdb.connect(host="127.0.0.1", user="root", db="test")
    for table in tables:
        db.cursor().execute(f"DROP TABLE IF EXISTS {table}")
    db.close()


def drop_postgres(user: str, tables: list[str]) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, dbname="test", user=user)
    with conn, conn.cursor() as cur:
        for table in tables:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    conn.close()


# -- one export, in a child process -------------------------------------------------------------------


def child(sql_conn: str, table: str, port: int, chunksize: int | None, reader: str) -> dict[str, Any]:
    import logging

    logging.basicConfig(level=logging.WARNING)
    os.environ["AIRFLOW_CONN_SLS_DEFAULT"] = json.dumps(
        {
            "conn_type": "sls",
            "host": f"http://127.0.0.1:{port}",
            "extra": {"project": PROJECT, "logstore": LOGSTORE, "compress_type": "lz4"},
        }
    )
    os.environ["AIRFLOW_CONN_BENCH_SQL"] = sql_conn
    from sls_provider.operators.web_tracking import SlsWebTrackingOperator

    operator = SlsWebTrackingOperator(
        task_id=f"export_{table}",
        sql=f"SELECT * FROM {table} ORDER BY id",
        sql_conn_id="bench_sql",
        topic=TOPIC,
        source="bench-host",
        resume=False,
        sql_reader=reader,
        **({"chunksize": chunksize} if chunksize else {}),
    )
    ti = SimpleNamespace(
        dag_id="bench_memory",
        task_id=operator.task_id,
        run_id="bench",
        map_index=-1,
        xcom_push=lambda **kw: None,
    )
    context = {"ti": ti}
    gc.collect()
    base = m.rss()
    started = time.perf_counter()
    summary = operator.execute(context)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return {
        "rows": summary["rows"],
        "requests": summary["requests"],
        "raw_bytes": summary["raw_bytes"],
        "seconds": seconds,
        "rows_per_s": summary["rows"] / seconds,
        "rss_before_export": base,
        "rss_peak": m.peak_rss(),
    }


def run_child(
    sql_conn: dict[str, Any], table: str, port: int, chunksize: int | None, reader: str
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        json.dumps(sql_conn),
        "--table",
        table,
        "--port",
        str(port),
        "--sql-reader",
        reader,
    ]
    if chunksize:
        command += ["--chunksize", str(chunksize)]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(
            f"export of {table} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=300_000)
    parser.add_argument("--large", type=int, default=3_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-mariadb", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--sql-reader", nargs="+", default=["auto"], choices=("auto", "arrow", "dbapi"), help="readers to run"
    )
    parser.add_argument("--chunksize", type=int, help="the operator's chunksize (default: its own default)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args.table, args.port, args.chunksize, args.sql_reader[0])
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    from sls_provider.emulator import SlsEmulator

    sizes = {"small": args.small, "large": args.large}
    results: dict[str, dict[str, Any]] = {}
    pg_user = None if args.no_postgres else postgres_user()
    pg_tables = [f"sls_bench_events_{n}" for n in sizes.values()]
    maria = not args.no_mariadb and mariadb_ok()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sls-bench-") as tmp:
        sources = [] if args.no_sqlite else ["SQLite"]
        for n in sizes.values() if sources else ():
            t0 = time.perf_counter()
            make_sqlite(Path(tmp) / f"w{n}.db", n)
            print(f"  SQLite table of {n:,} rows built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        if pg_user:
            sources.append("PostgreSQL")
            for n, table in zip(sizes.values(), pg_tables, strict=True):
                t0 = time.perf_counter()
                make_postgres(pg_user, table, n)
                took = time.perf_counter() - t0
                print(f"  PostgreSQL table of {n:,} rows built in {took:.1f} s", file=sys.stderr)
        else:
            print("  PostgreSQL not reachable at 127.0.0.1:5432 (db test): skipped", file=sys.stderr)
        if maria:
            sources.append("MariaDB")
            for n, table in zip(sizes.values(), pg_tables, strict=True):
                t0 = time.perf_counter()
                make_mariadb(table, n)
                took = time.perf_counter() - t0
                print(f"  MariaDB table of {n:,} rows built in {took:.1f} s", file=sys.stderr)
        else:
            print("  MariaDB not reachable at 127.0.0.1:3306 (db test): skipped", file=sys.stderr)
        try:
            with SlsEmulator(db_path=str(Path(tmp) / "emulator.db")) as emu:
                emu.create_logstore(PROJECT, LOGSTORE)
                for source, reader, (label, n) in (
                    (s, r, size)
                    for s in sources
                    for r in args.sql_reader
                    for size in sizes.items()
                    if not (s == "SQLite" and r == "arrow")  # SQLite has no Arrow reader
                ):
                    if source == "SQLite":
                        conn = {"conn_type": "sqlite", "host": str(Path(tmp) / f"w{n}.db")}
                        table = "events"
                    elif source == "MariaDB":
                        conn = {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root"}
                        conn |= {"schema": "test", "extra": {"charset": "utf8mb4"}}
                        table = f"sls_bench_events_{n}"
                    else:
                        conn = {
                            "conn_type": "postgres",
                            "host": "127.0.0.1",
                            "port": 5432,
                            "login": pg_user,
                            "schema": "test",
                        }
                        table = f"sls_bench_events_{n}"
                    emu.clear()
                    res = run_child(conn, table, emu.port, args.chunksize, reader)
                    res["stored"] = emu.count(PROJECT, LOGSTORE)
                    res["source"], res["size"], res["table_rows"] = f"{source} ({reader})", label, n
                    results[f"{source} ({reader})/{label}"] = res
                    print(
                        f"  {source} ({reader}) {n:>10,} rows: peak RSS {res['rss_peak'] / 1e6:,.0f} MB, "
                        f"{res['rows_per_s']:,.0f} rows/s",
                        file=sys.stderr,
                    )
                emu.clear()
        finally:
            if pg_user:
                drop_postgres(pg_user, pg_tables)
            if maria:
                drop_mariadb(pg_tables)
    wall = time.perf_counter() - started

    rows, growth, targets = [], {}, {}
    for source in dict.fromkeys(r["source"] for r in results.values()):
        small, large = results[f"{source}/small"], results[f"{source}/large"]
        growth[source] = large["rss_peak"] - small["rss_peak"]
        targets[f"{source}: peak RSS grows < 100 MB from {args.small:,} to {args.large:,} rows"] = (
            growth[source] < GROWTH_TARGET
        )
        targets[f"{source}: every row stored"] = all(
            r["stored"] == r["table_rows"] == r["rows"] for r in (small, large)
        )
        for r in (small, large):
            rows.append(
                [
                    source,
                    f"{r['table_rows']:,}",
                    f"{r['requests']:,}",
                    f"{r['seconds']:,.1f}",
                    f"{r['rows_per_s']:,.0f}",
                    f"{r['rss_before_export'] / 1e6:,.0f}",
                    f"{r['rss_peak'] / 1e6:,.0f}",
                    f"{growth[source] / 1e6:+,.0f}" if r is large else "",
                ]
            )
    print()
    print(
        m.table(
            [
                "source",
                "rows",
                "requests",
                "seconds",
                "rows/s",
                "RSS before export MB",
                "peak RSS MB",
                "growth small -> large MB",
            ],
            rows,
        )
    )
    print()
    print(m.table(["target", "result"], [[t, "PASS" if ok else "FAIL"] for t, ok in targets.items()]))
    print(f"\nwall time {wall:,.0f} s")
    path = m.write_json(
        "memory.json",
        {
            "benchmark": "bench_memory",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": m.machine(),
            "path": "SlsWebTrackingOperator(sql=..., sql_conn_id=...).execute(minimal context), resume=False",
            "chunksize": args.chunksize,
            "rss_method": "VmHWM of the export's own subprocess over its whole life (imports included)",
            "results": results,
            "growth_bytes": growth,
            "targets": targets,
        },
        default_run=m.is_default(parser, args),
    )
    print(f"results: {path}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
