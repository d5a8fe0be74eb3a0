"""Export a day of web events from the warehouse to SLS, one topic per event type, plus daily totals.

Each run exports the day that has just ended: the run that starts at midnight UTC covers its data
interval, the 24 hours before (``CronDataIntervalTimetable``; ``schedule="@daily"`` would start the
same run with no interval, and ``{{ ds }}`` there is the day that has only just begun).

Connections: ``warehouse`` (any common.sql connection holding a ``web_events`` table) and
``sls_default`` (``conn_type`` ``sls``: endpoint, project, logstore). ``make demo`` runs this DAG
against a SQLite warehouse and the local SLS emulator.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from airflow.sdk import DAG, BaseHook, task
from airflow.timetables.interval import CronDataIntervalTimetable  # airflow.sdk has it from 3.2

from sls_provider.operators.web_tracking import SlsWebTrackingOperator

with DAG(
    dag_id="example_sls_export",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1)},
    tags=["sls", "example"],
) as dag:
    # Streams the run's day in chunks; each row goes to the topic named by its event_type.
    export_events = SlsWebTrackingOperator(
        task_id="export_events",
        sql_conn_id="warehouse",
        sql="SELECT * FROM web_events WHERE event_date = '{{ data_interval_start | ds }}' ORDER BY id",
        topic_column="event_type",
        tags={"dag_run": "{{ run_id }}"},
    )

    @task
    def daily_totals(data_interval_start: dt.datetime | None = None) -> pd.DataFrame:
        """One row per event type of the run's day: a DataFrame built upstream, handed over through XCom."""
        warehouse = BaseHook.get_connection("warehouse").get_hook()
        # Airflow's own datetime as YYYY-MM-DD, so formatting it into the query is safe.
        day = f"{data_interval_start:%Y-%m-%d}"
        return warehouse.get_df(
            "SELECT event_type, COUNT(*) AS events, SUM(revenue) AS revenue, "
            f"COUNT(DISTINCT user_id) AS users FROM web_events WHERE event_date = '{day}' "
            "GROUP BY event_type ORDER BY event_type",
            df_type="pandas",
        ).assign(day=day)

    export_totals = SlsWebTrackingOperator(
        task_id="export_totals", dataframe=daily_totals(), topic="daily_totals"
    )

    export_events >> export_totals
