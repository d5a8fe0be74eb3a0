"""An export's numbers as Airflow metrics, for dashboards: emitted by the operator from the
:class:`~sls_provider.core.options.ExportSummary`, once the export is done.

They go through Airflow's own ``Stats`` (StatsD, Datadog or OpenTelemetry, as ``[metrics]``
configures it; nothing when metrics are off), so the core (``sls_provider/core``) stays free of
Airflow. Each carries the tags ``dag_id``, ``task_id`` and ``logstore`` where the backend takes
tags (Datadog, OpenTelemetry, StatsD with ``statsd_influxdb_enabled``); plain StatsD has no tags.

Counters are emitted once per export, by the try that finishes it: a failed try emits nothing, and
the try that finishes counts what earlier tries delivered (``ExportSummary.rows`` does), so a
counter summed over time counts every row once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sls_provider.core.options import ExportSummary

__all__ = ["METRICS", "Metric", "emit_export_metrics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    """One metric: its name, its kind (``counter`` or ``timer``), the summary value it reports and what
    that value counts (the table in docs/metrics.md says the same, checked by its tests)."""

    name: str
    kind: str
    value: Callable[[ExportSummary], float]
    meaning: str


#: Every metric an export emits, in the order of the table in docs/metrics.md (tests compare them).
METRICS: tuple[Metric, ...] = (
    Metric("sls.export.rows", "counter", lambda s: s.rows, "rows the service acknowledged"),
    Metric("sls.export.requests", "counter", lambda s: s.requests, "requests the service acknowledged"),
    Metric(
        "sls.export.raw_bytes",
        "counter",
        lambda s: s.raw_bytes,
        "uncompressed bytes of those requests (what a write quota counts)",
    ),
    Metric(
        "sls.export.sent_bytes",
        "counter",
        lambda s: s.sent_bytes,
        "compressed bytes sent (what crossed the wire)",
    ),
    Metric(
        "sls.export.retries", "counter", lambda s: s.retries, "requests sent again after a transient failure"
    ),
    Metric(
        "sls.export.throttled",
        "counter",
        lambda s: s.throttled,
        "answers refusing a request for the write quota",
    ),
    Metric(
        "sls.export.possible_duplicates",
        "counter",
        lambda s: s.possible_duplicates,
        "retries after a failure the service may have stored anyway",
    ),
    Metric(
        "sls.export.skipped_rows",
        "counter",
        lambda s: s.skipped_rows,
        "rows left out by choice",
    ),
    Metric(
        "sls.export.dead_letter_rows",
        "counter",
        lambda s: s.dead_letter_rows,
        "rows written to the dead-letter destination",
    ),
    Metric(
        "sls.export.throttled_seconds",
        "timer",
        lambda s: s.throttled_seconds,
        "time during which some request waited to be retried after a quota refusal",
    ),
    Metric(
        "sls.export.duration",
        "timer",
        lambda s: s.seconds,
        "the export, from its first row read to its last answer",
    ),
)


def _stats() -> Any:
    """Airflow's ``Stats``: the Task SDK's since 3.2, the core's before."""
    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # Airflow 3.1
        from airflow.stats import Stats  # type: ignore[no-redef]
    return Stats


def emit_export_metrics(summary: ExportSummary, *, dag_id: str, task_id: str, logstore: str) -> None:
    """Emit :data:`METRICS` for ``summary``; never fails the task (a metrics outage is logged).

    :param summary: what the export did.
    :param dag_id: tag ``dag_id``.
    :param task_id: tag ``task_id``.
    :param logstore: tag ``logstore``.
    """
    tags = {"dag_id": dag_id, "task_id": task_id, "logstore": logstore}
    try:
        stats = _stats()
        for metric in METRICS:
            value = metric.value(summary)
            if metric.kind == "timer":
                # A timedelta: each backend turns it into its own unit (StatsD and OTel: ms).
                stats.timing(metric.name, dt.timedelta(seconds=value), tags=tags)
            else:
                stats.incr(metric.name, count=int(value), tags=tags)
    except Exception:  # metrics are for dashboards: never worth failing a finished export
        log.warning("Could not emit the SLS export metrics", exc_info=True)
