"""One SQL export through ``SlsWebTrackingOperator.execute`` in a process of its own, printing its peak RSS.

    python -m tests.warehouses.export_rss CONN_ID "SELECT ... ORDER BY id" [--chunksize N]
        [--max-workers N] [--sql-reader auto|arrow|dbapi]

The ``sls_default`` and ``CONN_ID`` connections come from the environment (``AIRFLOW_CONN_*``). Prints
one JSON line: the export summary's ``rows``, ``requests``, ``seconds``, plus ``peak_rss`` (bytes,
``VmHWM`` from /proc/self/status) and ``baseline_rss`` (the resident set after importing Airflow, the
operator and the drivers, before the export). Used by ``test_memory.py`` and quoted in
docs/large-tables.md.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from types import SimpleNamespace


def _status(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("conn_id")
    parser.add_argument("sql")
    parser.add_argument("--chunksize", type=int, default=None)
    parser.add_argument("--max-workers", type=int, default=4)
    parser.add_argument("--sql-reader", default="auto", choices=("auto", "arrow", "dbapi"))
    args = parser.parse_args()

    from airflow.sdk import BaseHook

    from sls_provider.operators.web_tracking import SlsWebTrackingOperator

    BaseHook.get_connection(args.conn_id).get_hook()  # import the driver before the baseline
    extra = {"chunksize": args.chunksize} if args.chunksize else {}
    op = SlsWebTrackingOperator(
        task_id="export",
        sql=args.sql,
        sql_conn_id=args.conn_id,
        resume=False,
        max_workers=args.max_workers,
        sql_reader=args.sql_reader,
        **extra,
    )
    ti = SimpleNamespace(
        dag_id="memory", task_id="export", run_id="manual__memory", map_index=-1, xcom_push=lambda **kw: None
    )
    baseline = _status("VmRSS")
    started = time.monotonic()
    summary = op.execute({"ti": ti})  # type: ignore[arg-type]
    print(
        json.dumps(
            {
                "rows": summary["rows"],
                "requests": summary["requests"],
                "raw_bytes": summary["raw_bytes"],
                "seconds": round(time.monotonic() - started, 2),
                "export_seconds": summary["seconds"],
                "peak_rss": _status("VmHWM"),
                "baseline_rss": baseline,
                "chunksize": op.chunksize,
                "max_workers": args.max_workers,
                "sql_reader": args.sql_reader,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
