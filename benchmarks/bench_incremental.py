"""Incremental exports against the plain query's export, side by side in one run.

    .venv/bin/python benchmarks/bench_incremental.py [--rows 1000000] [--rounds 3]

For PostgreSQL and MariaDB: the web-events table of ``bench_sql.py`` (its ``make_tables``) with an
index on ``id`` (PostgreSQL) or ``id`` as the primary key (MariaDB), then in alternating rounds:
``SlsWebTrackingOperator(sql="SELECT * FROM t ORDER BY id")`` (the plain export, as ``bench_sql``
runs it) and ``SlsWebTrackingOperator(sql="SELECT * FROM t", incremental=Incremental("id"))`` on a
first run (the window is every row below the largest id: the whole table but one row), both with
``sql_reader="auto"`` (ADBC on PostgreSQL, the mysqlclient Arrow reader on MariaDB) to a local
byte-counting sink; then a second incremental run with nothing new (an empty window).

Targets (the exit status is 1 if one is missed): the incremental run that reads every row is at
least 0.9x the plain export's speed (medians), and a run with nothing new takes under 2 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _measure as m  # noqa: E402
from benchmarks.bench_sql import MARIA, PG, drop_tables, make_tables, maria  # noqa: E402

SPEED_TARGET = 0.9
NOTHING_NEW_SECONDS = 2.0


class Store(dict):
    """A state store in memory: what the operator uses of Airflow's task and asset state stores."""

    def set(self, key: str, value: Any) -> None:
        self[key] = json.loads(json.dumps(value))  # JSON, as Airflow keeps it

    def delete(self, key: str) -> None:
        self.pop(key, None)


def index(table: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres")
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE INDEX ON {table} (id)")
        cur.execute(f"ANALYZE {table}")
    conn.close()
    db = maria()
    db.cursor().execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
    db.close()


def run(kind: str, table: str, incremental: bool, assets: dict, run_id: str) -> tuple[float, dict]:
    """One export (``execute`` with the context Airflow would give); seconds and the summary."""
    from sls_provider import Incremental
    from sls_provider.operators.web_tracking import SlsWebTrackingOperator

    os.environ["AIRFLOW_CONN_BENCH_SQL"] = json.dumps(PG if kind == "postgres" else MARIA)
    if incremental:
        op = SlsWebTrackingOperator(
            task_id="bench",
            sql=f"SELECT * FROM {table}",
            sql_conn_id="bench_sql",
            incremental=Incremental("id"),
        )
    else:
        op = SlsWebTrackingOperator(
            task_id="bench", sql=f"SELECT * FROM {table} ORDER BY id", sql_conn_id="bench_sql"
        )
    ti = SimpleNamespace(
        dag_id=f"bench_{kind}", task_id="bench", run_id=run_id, map_index=-1, xcom_push=lambda **kw: None
    )
    context = {
        "ti": ti,
        "dag_run": SimpleNamespace(conf={}, run_type="scheduled"),
        "task_state_store": Store(),
        "asset_state_store": assets,
        "outlet_events": defaultdict(lambda: SimpleNamespace(extra={})),
    }
    started = time.perf_counter()
    summary = op.execute(context)  # type: ignore[arg-type]
    return time.perf_counter() - started, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    table = f"sls_bench_{uuid.uuid4().hex[:8]}"
    make_tables(args.rows, table)
    index(table)
    times: dict[tuple[str, str], list[float]] = {}
    try:
        with m.Sink() as sink:
            m.sink_connection(sink.port)
            for r in range(args.rounds):
                for kind in ("postgres", "mysql"):
                    seconds, summary = run(kind, table, False, {}, f"plain_{r}")
                    assert summary["rows"] == args.rows, summary
                    times.setdefault((kind, "plain query"), []).append(seconds)
                    assets: dict = defaultdict(Store)  # a new watermark: a first run, every row
                    seconds, summary = run(kind, table, True, assets, f"first_{r}")
                    assert summary["rows"] == args.rows - 1, summary  # the largest id waits
                    times.setdefault((kind, "incremental, every row"), []).append(seconds)
                    seconds, summary = run(kind, table, True, assets, f"next_{r}")
                    assert summary["rows"] == 0, summary
                    times.setdefault((kind, "incremental, nothing new"), []).append(seconds)
    finally:
        drop_tables(table)
    rows, missed = [], []
    for kind in ("postgres", "mysql"):
        plain = m.median(times[(kind, "plain query")])
        for (k, name), seconds in times.items():
            if k != kind:
                continue
            t = m.median(seconds)
            n = args.rows if name == "plain query" else args.rows - 1 if "every" in name else 0
            ratio = f"{plain / t * n / args.rows:.2f}" if n else "-"
            rows.append([kind, name, f"{n / t:,.0f}" if n else "-", ratio, f"{t:.2f}"])
        ratio = (args.rows - 1) / m.median(times[(kind, "incremental, every row")]) / (args.rows / plain)
        if ratio < SPEED_TARGET:
            missed.append(f"{kind}: an incremental run reading every row is {ratio:.2f}x the plain export")
        idle = m.median(times[(kind, "incremental, nothing new")])
        if idle >= NOTHING_NEW_SECONDS:
            missed.append(f"{kind}: a run with nothing new took {idle:.2f} s")
    print(f"{args.rows:,} rows, medians of {args.rounds} alternating rounds")
    print(m.table(["database", "what", "rows/s", "x plain", "wall s"], rows))
    m.write_json(
        "bench_incremental.json",
        {
            "rows": args.rows,
            "rounds": args.rounds,
            "seconds": {f"{k}/{n}": v for (k, n), v in times.items()},
            "missed": missed,
            "machine": m.machine(),
        },
        default_run=m.is_default(parser, args),
    )
    for line in missed:
        print(f"TARGET MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
