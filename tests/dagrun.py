"""Running a DAG defined inside a test with ``dag.test()``."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.sdk import DAG

try:  # Airflow >= 3.2
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
except ImportError:  # Airflow 3.1
    from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[no-redef]

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def run(dag: DAG, logical_date: dt.datetime = START) -> str:
    """Run ``dag`` with ``dag.test()`` and return the run's state (``"success"``/``"failed"``).

    ``logical_date`` is also when the run starts: a data-interval timetable gives it the period that
    ended then (see :func:`covering`).

    ``dag.test()`` only runs DAGs it finds serialized in the metadata DB; DAGs defined inside a
    test are in no bundle's files, so they are written there first, as the DAG processor would.
    """
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return str(dag.test(logical_date=logical_date).state)


def covering(dag: DAG, day: dt.datetime = START) -> dt.datetime:
    """When ``dag``'s run for ``day`` starts, as the scheduler starts it: at ``day`` itself for a
    timetable whose runs have no period (``schedule="@daily"``, ``schedule=None``: ``{{ ds }}`` is
    ``day``), one period later for a data-interval timetable (the run at midnight after ``day``
    covers ``day``, ``{{ data_interval_start | ds }}``)."""
    from airflow.serialization.encoders import coerce_to_core_timetable

    interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(run_after=day)
    return day + (interval.end - interval.start)


def run_script(path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a DAG file as a script in an interpreter of its own (its own Airflow settings, metrics
    and metadata DB, from ``env``), from the repository's root; fail with its stderr's end."""
    done = subprocess.run(
        [sys.executable, str(path), *args],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,  # a bound for a hang, not a speed target
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def retrying_dag(dag_id: str, retries: int, **default_args: object) -> DAG:
    """A DAG (use it as a context manager) whose tasks get ``retries`` retries, each at once."""
    args = {"retries": retries, "retry_delay": dt.timedelta(seconds=0), **default_args}
    return DAG(dag_id, schedule=None, start_date=START, default_args=args)
