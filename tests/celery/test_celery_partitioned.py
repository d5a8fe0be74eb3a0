"""``dags/example_sls_partitioned.py`` on Airflow's CeleryExecutor: a scheduler, the execution API
and two Celery workers over Redis, all started and stopped here. Every row must be stored exactly once
and both workers must have run partitions."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from sls_provider.emulator import SlsEmulator
from tests.cluster import REDIS_URL, ROOT, Cluster
from tests.conftest import LOGSTORE, PROJECT, sls_connection
from tests.warehouses.conftest import POSTGRES, heavy, require
from tests.warehouses.web_events import build

DAG_ID = "example_sls_partitioned"
PARTS = 6
ROWS = 60_000
# Every machine-filling test runs on one xdist worker (``--dist loadgroup`` in the Makefile), one after
# the other, while the other worker runs the rest: the same one-at-a-time as ``heavy``'s lock, without
# a worker idling while it waits for that lock.
pytestmark = pytest.mark.xdist_group("heavy")


def redis_unreachable() -> str | None:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
        return None
    except ImportError as err:
        raise RuntimeError(f"redis (comes with apache-airflow-providers-celery) is missing: {err}") from err
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"


def test_partitioned_dag_on_two_celery_workers(tmp_path: Path) -> None:
    import airflow.providers.celery  # noqa: F401 - a missing provider is a broken environment, not a skip

    pg = require(POSTGRES)
    if (reason := redis_unreachable()) is not None:
        print(f"SKIP: Redis at {REDIS_URL} is unreachable: {reason}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {reason}")

    ids = build(tmp_path / "warehouse.db", ROWS)
    with SlsEmulator() as emu:
        emu.create_logstore(PROJECT, LOGSTORE, web_tracking=True)
        warehouse = {"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")}
        env = {
            "AIRFLOW_CONN_WAREHOUSE": json.dumps(warehouse),
            "AIRFLOW_CONN_SLS_DEFAULT": sls_connection(emu.endpoint),
        }
        cluster_home, dag_file = tmp_path / "airflow", ROOT / "dags" / f"{DAG_ID}.py"
        with heavy("celery test"):
            started = time.monotonic()
            with Cluster(cluster_home, pg, env, [dag_file], executor="CeleryExecutor") as cluster:
                up = time.monotonic() - started
                conf = json.dumps({"parts": PARTS})
                cluster.cli("dags", "trigger", DAG_ID, "--run-id", "celery_run", "--conf", conf)
                deadline = time.monotonic() + 240
                state = None
                while time.monotonic() < deadline:
                    rows = cluster.query(
                        f"SELECT state FROM dag_run WHERE dag_id = '{DAG_ID}' AND run_id = 'celery_run'"
                    )
                    state = rows[0][0] if rows else None
                    if state in ("success", "failed"):
                        break
                    time.sleep(1)
                tis = cluster.query(
                    f"SELECT task_id, map_index, state, hostname, try_number FROM task_instance "
                    f"WHERE dag_id = '{DAG_ID}' AND run_id = 'celery_run' ORDER BY task_id, map_index"
                )
                ran = time.monotonic() - started - up
                assert state == "success", f"DAG run {state}; task instances {tis}\n{cluster.diagnostics()}"
        print(f"\ncluster up in {up:.1f} s, DAG run in {ran:.1f} s; task instances: {tis}")

        logs = emu.get_logs(PROJECT, LOGSTORE)
    stored = Counter(int(log["id"]) for log in logs)
    assert sorted(stored) == ids and set(stored.values()) == {1}  # every row exactly once
    exports = [ti for ti in tis if ti[0] == "export_partition"]
    assert sorted(ti[1] for ti in exports) == list(range(PARTS))
    assert {ti[2] for ti in exports} == {"success"}
    workers = Counter(ti[3] for ti in exports)
    assert set(workers) == {"w1", "w2"}, f"partitions per worker: {dict(workers)}"
    assert {log["__tag__:partition"] for log in logs} == {str(i) for i in range(PARTS)}
