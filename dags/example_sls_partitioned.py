"""Export a whole table to SLS as parallel mapped tasks, one key range each.

A first task reads the bounds of ``web_events.id`` and cuts them into ``parts`` ranges
(:func:`sls_provider.partitions.key_ranges`); ``SlsWebTrackingOperator.partial(...).expand_kwargs(...)``
then runs one export per range, each streaming its rows with ``ORDER BY id`` (so a retried partition
resumes where it stopped). The mapped task instances run wherever the executor puts them: in one
process with ``dag.test()``, on several Celery workers (``tests/celery/``), or as Kubernetes pods.

Connections: ``warehouse`` (any common.sql connection holding a ``web_events`` table with an integer
``id`` and an ``event_type`` column) and ``sls_default`` (``conn_type`` ``sls``). Trigger with
``{"parts": N}`` to choose the number of partitions (default 4); keep N x ``max_workers`` within the
logstore's write quota (see docs/large-tables.md).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task

from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from sls_provider.partitions import key_ranges, range_queries

with DAG(
    dag_id="example_sls_partitioned",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"parts": Param(4, type="integer", minimum=1, maximum=256)},
    default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=30)},
    tags=["sls", "example"],
) as dag:

    @task
    def partitions(params: dict | None = None) -> list[dict[str, str]]:
        """One ``{"sql": ...}`` per key range, read at run time (not when the DAG file is parsed)."""
        ranges = key_ranges(conn_id="warehouse", table="web_events", key="id", parts=int(params["parts"]))
        return range_queries(select="SELECT * FROM web_events", key="id", ranges=ranges)

    SlsWebTrackingOperator.partial(
        task_id="export_partition",
        sql_conn_id="warehouse",
        topic_column="event_type",
        tags={"dag_run": "{{ run_id }}", "partition": "{{ ti.map_index }}"},
        max_workers=2,
        # At most this many partitions export at once, whatever the executor's slots: the knob that
        # keeps the DAG within the logstore's shard write quota.
        max_active_tis_per_dag=4,
    ).expand_kwargs(partitions())
