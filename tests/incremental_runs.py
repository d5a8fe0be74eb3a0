"""Incremental exports across DAG runs (``dag.test()``), shared by the SQLite, PostgreSQL and MariaDB
tests: the runs, the watermarks in the metadata DB, and the rows counted in the emulator by export
(``__tag__:sls_export``) and request (``__tag__:sls_seq``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.sdk import DAG

from tests.conftest import PROJECT, sls_connection

try:  # Airflow >= 3.2
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
except ImportError:  # Airflow 3.1
    from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[no-redef]

DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def sync(dag: DAG) -> None:
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def run_day(dag: DAG, day: int, conf: dict | None = None, backfill: bool = False) -> str:
    """One run of ``dag`` (synced first) on ``DAY0 + day``; ``backfill``: as a backfill run."""
    sync(dag)
    with as_backfill(backfill):
        return str(dag.test(logical_date=DAY0 + dt.timedelta(days=day), run_conf=conf).state)


@contextmanager
def as_backfill(on: bool) -> Iterator[None]:
    """``dag.test()`` creates manual runs; this makes the run it creates a backfill run."""
    if not on:
        yield
        return
    import airflow.models.dagrun as dagrun
    from airflow.utils.types import DagRunType

    original = dagrun.get_or_create_dagrun

    def create(*args: Any, session: Any, **kwargs: Any) -> Any:
        dr = original(*args, session=session, **kwargs)
        dr.run_type = DagRunType.BACKFILL_JOB
        # A backfill of a daily schedule: the day from the logical date (dag.test() gives a manual
        # run's interval, which is empty).
        dr.data_interval_start = dr.logical_date
        dr.data_interval_end = dr.logical_date + dt.timedelta(days=1)
        session.merge(dr)
        session.commit()
        return dr

    dagrun.get_or_create_dagrun = create
    try:
        yield
    finally:
        dagrun.get_or_create_dagrun = original


def rerun(dag: DAG, run_id: str) -> str:
    """Clear every task of the run ``run_id`` and run them again in that same run (as the UI's
    Clear does; ``dag.test()`` alone would replace the run with a new one)."""
    import airflow.models.dagrun as dagrun
    from airflow.models.taskinstance import clear_task_instances
    from airflow.utils.state import DagRunState

    sync(dag)
    original = dagrun.get_or_create_dagrun

    def same(*args: Any, session: Any, **kwargs: Any) -> Any:
        dr = session.scalar(dagrun.select(dagrun.DagRun).where(dagrun.DagRun.run_id == run_id))
        clear_task_instances(dr.get_task_instances(session=session), session)
        dr.state = DagRunState.RUNNING
        session.merge(dr)
        session.commit()
        dr.dag = kwargs["dag"]
        return dr

    dagrun.get_or_create_dagrun = same
    try:
        return str(dag.test(logical_date=DAY0).state)
    finally:
        dagrun.get_or_create_dagrun = original


def run_ids(dag_id: str) -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return [dr.run_id for dr in DagRun.find(dag_id=dag_id, session=session)]


def watermarks(dag_id: str) -> dict[str, Any]:
    """The watermark records of ``dag_id``'s tasks, by key, as kept in the asset state store."""
    from airflow.models.asset_state_store import AssetStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetStateStoreModel.key, AssetStateStoreModel.value).where(
                AssetStateStoreModel.key.like(f"sls_watermark/{dag_id}/%")
            )
        ).all()
    return {key: json.loads(value) for key, value in rows}


def explicit_exports(dag_id: str) -> set[str]:
    """Export ids of ``dag_id``'s runs with an explicit window (backfills, re-exports), from the
    window their asset events carry."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_dag_id == dag_id)).all()
        windows = [e.extra.get("sls_incremental") or {} for e in events]
    return {w["export_id"] for w in windows if w.get("explicit")}


def fresh_emulator(factory: Callable[..., Any], monkeypatch: Any) -> Any:
    """An emulator and ``sls_default`` on a logstore of its own: the logstore's asset (which keeps
    the watermarks) is then new too (Airflow deactivates an asset whose name another URI holds)."""
    logstore = f"incr-{uuid.uuid4().hex[:8]}"
    emulator = factory(logstores=[(PROJECT, logstore)])
    emulator.logstore = logstore
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, logstore=logstore))
    return emulator


def exports(emulator: Any, column: str = "id") -> dict[str, list[str]]:
    """``{export id: [values of column, in request and row order]}`` of the logs stored."""
    by_export: dict[str, list[tuple[int, int, str]]] = {}
    for i, log in enumerate(emulator.get_logs(PROJECT, emulator.logstore)):
        by_export.setdefault(log["__tag__:sls_export"], []).append(
            (int(log["__tag__:sls_seq"]), i, log[column])
        )
    return {k: [v for _, _, v in sorted(rows)] for k, rows in by_export.items()}


def exactly_once(emulator: Any, expected: set[str], skip: Callable[[str], bool] = lambda e: False) -> Counter:
    """Every value in ``expected`` is stored exactly once over the exports not skipped, nothing else."""
    seen: Counter = Counter()
    for export_id, values in exports(emulator).items():
        if not skip(export_id):
            seen.update(values)
    assert set(seen) == expected, (sorted(set(seen) - expected), sorted(expected - set(seen)))
    assert all(n == 1 for n in seen.values()), {k: n for k, n in seen.items() if n > 1}
    return seen
