"""``dags/example_sls_partitioned.py`` with ``dag.test()`` on a SQLite warehouse: one mapped export per
key range, every row stored exactly once, with the partition's tags."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from sls_provider.emulator import SlsEmulator
from tests.conftest import LOGSTORE, PROJECT
from tests.warehouses.web_events import EVENT_TYPES, build

pytestmark = pytest.mark.usefixtures("airflow_db")

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "example_sls_partitioned.py"


def load_dag() -> object:
    spec = importlib.util.spec_from_file_location("example_sls_partitioned", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def test_partitioned_dag_exports_every_row_once(
    sls_conn: SlsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from tests.dagrun import START, run

    ids = build(tmp_path / "warehouse.db", 20_000)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")})
    )
    dag = load_dag()
    assert run(dag) == "success"

    logs = sls_conn.get_logs(PROJECT, LOGSTORE)
    stored = Counter(int(log["id"]) for log in logs)
    assert sorted(stored) == ids and set(stored.values()) == {1}  # every row exactly once
    assert {log["__topic__"] for log in logs} == set(EVENT_TYPES)
    # Four partitions (the default), each tagged with its map index, in key order.
    by_partition: dict[str, list[int]] = {}
    for log in logs:
        by_partition.setdefault(log["__tag__:partition"], []).append(int(log["id"]))
    assert sorted(by_partition) == ["0", "1", "2", "3"]
    spans = [(min(v), max(v)) for _, v in sorted(by_partition.items())]
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert all(abs(len(v) - len(ids) / 4) < len(ids) * 0.01 for v in by_partition.values())
    with create_session() as session:
        mapped = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == dag.dag_id, TaskInstance.task_id == "export_partition")
            .filter(TaskInstance.logical_date == START)
            .all()
        )
    assert sorted(ti.map_index for ti in mapped) == [0, 1, 2, 3]
    assert {ti.state for ti in mapped} == {"success"}
