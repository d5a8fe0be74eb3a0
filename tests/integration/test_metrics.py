"""The export's metrics reach a real StatsD listener through Airflow's own ``Stats``.

Airflow sets up its metrics backend once per process from ``[metrics]``, so the DAG runs in a
subprocess configured for StatsD (InfluxDB-style tags on, so the tags travel in the line) at a UDP
socket this test holds; every datagram is read back once the run is over (loopback UDP does not drop
datagrams a socket has room for).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import textwrap
from pathlib import Path

import pytest

from sls_provider.emulator import SlsEmulator
from sls_provider.metrics import METRICS
from tests.conftest import LOGSTORE, sls_connection
from tests.dagrun import run_script

pytestmark = [
    pytest.mark.usefixtures("airflow_db"),
    pytest.mark.skipif(
        importlib.util.find_spec("statsd") is None, reason="needs the statsd package (make venv installs it)"
    ),
]
ROOT = Path(__file__).resolve().parents[2]

DAG_FILE = """
import json, sys
import pandas as pd
from airflow.sdk import DAG, task
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.dagrun import START, run

with DAG("metrics_dag", schedule=None, start_date=START) as dag:
    export = SlsWebTrackingOperator(
        task_id="export_rows",
        dataframe=pd.DataFrame({"n": range(7), "kind": ["a", "b", "a", "b", "a", "b", "a"]}),
        topic_column="kind",
    )

    @task
    def keep(summary: dict) -> None:
        open(sys.argv[1], "w").write(json.dumps(summary))

    keep(export.output)

assert run(dag) == "success"
"""


def _datagrams(sock: socket.socket) -> list[str]:
    lines: list[str] = []
    sock.setblocking(False)
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return lines
        lines.extend(data.decode().splitlines())


def test_metrics_reach_statsd_with_tags(emulator: SlsEmulator, tmp_path: Path) -> None:
    (tmp_path / "metrics_dag.py").write_text(textwrap.dedent(DAG_FILE))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind(("127.0.0.1", 0))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "AIRFLOW_CONN_SLS_DEFAULT": sls_connection(emulator.endpoint),
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(sock.getsockname()[1]),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
        }
        out = tmp_path / "summary.json"
        run_script(tmp_path / "metrics_dag.py", str(out), env=env)
        lines = _datagrams(sock)

    summary = json.loads(out.read_text())
    tags = f",dag_id=metrics_dag,task_id=export_rows,logstore={LOGSTORE}"
    mine = {}
    for line in lines:  # airflow.sls.export.rows,dag_id=...:7|c
        name, _, rest = line.partition(":")
        if name.startswith("airflow.sls.export."):
            assert name.endswith(tags), line
            value, _, kind = rest.partition("|")
            mine[name[len("airflow.") : -len(tags)]] = (float(value), kind)
    assert set(mine) == {m.name for m in METRICS}  # each emitted once, all of them
    counters = {name: value for name, (value, kind) in mine.items() if kind == "c"}
    assert counters == {
        "sls.export.rows": 7,
        "sls.export.requests": 2,  # one per topic
        "sls.export.raw_bytes": summary["raw_bytes"],
        "sls.export.sent_bytes": summary["sent_bytes"],
        "sls.export.retries": 0,
        "sls.export.throttled": 0,
        "sls.export.possible_duplicates": 0,
        "sls.export.skipped_rows": 0,
        "sls.export.dead_letter_rows": 0,
    }
    assert mine["sls.export.duration"] == (pytest.approx(summary["seconds"] * 1000, abs=1), "ms")
    assert mine["sls.export.throttled_seconds"] == (0, "ms")
    assert emulator.count("proj", LOGSTORE) == 7
