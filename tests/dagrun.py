"""Running a DAG defined inside a test with ``dag.test()``."""

from __future__ import annotations

import datetime as dt
import os

from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.sdk import DAG

try:  # Airflow >= 3.2
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
except ImportError:  # Airflow 3.1
    from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[no-redef]

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def run(dag: DAG) -> str:
    """Run ``dag`` with ``dag.test()`` and return the run's state (``"success"``/``"failed"``).

    ``dag.test()`` only runs DAGs it finds serialized in the metadata DB; DAGs defined inside a
    test are in no bundle's files, so they are written there first, as the DAG processor would.
    """
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return str(dag.test(logical_date=START).state)
