"""Partition lists for exporting one table as many mapped tasks (``.partial(...).expand(...)``).

Each helper returns a list of small JSON-serialisable dicts, one per partition, ready to be returned
by a task and expanded:

- :func:`key_ranges` -> ``[{"lo": 1, "hi": 250001}, ...]``: half-open ranges ``lo <= key < hi`` of an
  integer key that together cover every row, for ``parameters=`` (``.expand(parameters=...)``) with
  a query written in the driver's paramstyle.
- :func:`range_queries` -> ``[{"sql": "SELECT ... WHERE id >= 1 AND id < 250001 ORDER BY id"}, ...]``:
  the same ranges as ready-made queries that run on any database (``.expand_kwargs(...)``).
- :func:`date_partitions` -> ``[{"start": "2026-03-01", "end": "2026-03-02"}, ...]``: half-open
  date or time windows, for ``parameters=`` or for building queries.

Example (``dags/example_sls_partitioned.py`` is the whole DAG)::

    @task
    def partitions() -> list[dict]:
        ranges = key_ranges(conn_id="warehouse", table="web_events", key="id", parts=8)
        return range_queries(select="SELECT * FROM web_events", key="id", ranges=ranges)

    SlsWebTrackingOperator.partial(task_id="export", sql_conn_id="warehouse").expand_kwargs(partitions())

Every row falls in exactly one partition as long as the key does not change while the DAG runs.
Table, key and column names are identifiers written into SQL, so they are checked against a strict
pattern: they come from the DAG's author, never from user input. This module imports Airflow only
when :func:`key_ranges` is given a connection id.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sls_provider.core.errors import SlsConfigError, SlsInputError

__all__ = ["date_partitions", "key_ranges", "range_queries", "split_range"]

# A plain or dotted identifier (schema.table), or one quoted with "..." or `...`.
_IDENTIFIER = re.compile(
    r'^(?:[A-Za-z_][A-Za-z0-9_$]*|"[^"]+"|`[^`]+`)(?:\.(?:[A-Za-z_][A-Za-z0-9_$]*|"[^"]+"|`[^`]+`))*$'
)
_STEP = re.compile(r"^\s*(\d+)\s*(d|h|m|min|s)\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "min": "minutes", "s": "seconds"}


def _identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise SlsConfigError(
            f"{what} must be a plain SQL identifier (letters, digits, _ or a quoted name), got {name!r}"
        )
    return name


def split_range(*, lo: int, hi: int, parts: int) -> list[dict[str, int]]:
    """Split the integers ``lo <= k < hi`` into at most ``parts`` contiguous half-open ranges of
    (nearly) equal width: ``[{"lo": lo, "hi": ...}, ..., {"lo": ..., "hi": hi}]``. Empty if ``hi <= lo``."""
    if not isinstance(parts, int) or parts < 1:
        raise SlsConfigError(f"parts must be a positive integer, got {parts!r}")
    lo, hi = int(lo), int(hi)
    if hi <= lo:
        return []
    parts = min(parts, hi - lo)
    width, extra = divmod(hi - lo, parts)
    ranges, start = [], lo
    for i in range(parts):
        end = start + width + (1 if i < extra else 0)
        ranges.append({"lo": start, "hi": end})
        start = end
    return ranges


def key_ranges(
    *,
    table: str,
    key: str,
    parts: int,
    conn_id: str | None = None,
    hook: Any = None,
    where: str | None = None,
    balanced: bool = False,
) -> list[dict[str, int]]:
    """Half-open ranges ``{"lo": a, "hi": b}`` (``a <= key < b``) of an integer ``key`` column that
    cover every row of ``table`` in at most ``parts`` pieces. An empty table gives ``[]`` (a mapped
    task over an empty list is skipped).

    :param table: table (or ``schema.table``) to split.
    :param key: an integer column, ideally indexed (each partition's query filters on it).
    :param parts: how many partitions at most (the number of mapped task instances).
    :param conn_id: a common.sql connection to read the bounds from; or pass ``hook``.
    :param hook: a common.sql ``DbApiHook`` (anything with ``get_first(sql)``).
    :param where: an optional SQL condition restricting the rows considered (written by the DAG's
        author; it is pasted into the query as is). Give the same condition to the export queries.
    :param balanced: ``False`` (default): equal-width ranges between ``MIN(key)`` and ``MAX(key)``,
        one cheap query using the key's index; partitions are even when keys are dense. ``True``:
        ranges holding about the same number of rows, from ``NTILE`` over the sorted keys (one full
        scan and sort of the key column), for skewed or sparse keys.
    """
    table, key = _identifier(table, "table"), _identifier(key, "key")
    if not isinstance(parts, int) or parts < 1:
        raise SlsConfigError(f"parts must be a positive integer, got {parts!r}")
    if hook is None:
        if conn_id is None:
            raise SlsConfigError("key_ranges needs conn_id= or hook=")
        from airflow.sdk import BaseHook

        hook = BaseHook.get_connection(conn_id).get_hook()
    condition = f" WHERE {where}" if where else ""
    if not balanced:
        first = hook.get_first(f"SELECT MIN({key}), MAX({key}) FROM {table}{condition}")
        if not first or first[0] is None:
            return []
        return split_range(lo=_int(first[0], key), hi=_int(first[1], key) + 1, parts=parts)
    rows = hook.get_records(
        f"SELECT MIN({key}) FROM (SELECT {key}, NTILE({parts}) OVER (ORDER BY {key}) AS sls_part "
        f"FROM {table}{condition}) sls_parts GROUP BY sls_part ORDER BY 1"
    )
    starts = sorted({_int(row[0], key) for row in rows if row[0] is not None})
    if not starts:
        return []
    last = hook.get_first(f"SELECT MAX({key}) FROM {table}{condition}")
    bounds = [*starts, _int(last[0], key) + 1]
    return [{"lo": a, "hi": b} for a, b in zip(bounds, bounds[1:], strict=False)]


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            as_int = None
        if as_int is None or as_int != value:
            raise SlsInputError(f"key_ranges needs an integer key column; {key} holds {value!r}")
        return as_int
    return value


def range_queries(
    *,
    select: str,
    key: str,
    ranges: list[dict[str, int]],
    where: str | None = None,
    order_by: bool = True,
) -> list[dict[str, str]]:
    """Ready-made queries for :func:`key_ranges`' ranges, one ``{"sql": ...}`` per range, for
    ``.expand_kwargs(...)``. The bounds are integers written into the SQL, so these run on any
    database whatever its paramstyle.

    :param select: the query without a ``WHERE`` clause, e.g. ``"SELECT * FROM web_events"``.
    :param key: the key column the ranges are of.
    :param ranges: from :func:`key_ranges` or :func:`split_range`.
    :param where: an extra condition ANDed to the range (the same as given to :func:`key_ranges`).
    :param order_by: append ``ORDER BY key``: a stable row order, which a retried task needs to
        resume where it stopped (see docs/large-tables.md).
    """
    key = _identifier(key, "key")
    queries = []
    for r in ranges:
        lo, hi = int(r["lo"]), int(r["hi"])
        condition = f"{key} >= {lo} AND {key} < {hi}" + (f" AND ({where})" if where else "")
        sql = f"{select.rstrip().rstrip(';')} WHERE {condition}"
        queries.append({"sql": sql + (f" ORDER BY {key}" if order_by else "")})
    return queries


def _step(step: dt.timedelta | str | int) -> dt.timedelta:
    if isinstance(step, dt.timedelta):
        delta = step
    elif isinstance(step, int) and not isinstance(step, bool):
        delta = dt.timedelta(days=step)
    elif isinstance(step, str) and (match := _STEP.match(step)):
        delta = dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    else:
        raise SlsConfigError(
            f"step must be a timedelta, a number of days, or like '1d', '6h', '15m': {step!r}"
        )
    if delta <= dt.timedelta(0):
        raise SlsConfigError(f"step must be positive, got {step!r}")
    return delta


def _moment(value: dt.date | dt.datetime | str, what: str) -> dt.date | dt.datetime:
    if isinstance(value, dt.date):  # datetime is a date too
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
        except ValueError:
            pass
    raise SlsConfigError(f"{what} must be a date, a datetime or an ISO 8601 string, got {value!r}")


def date_partitions(
    *,
    start: dt.date | dt.datetime | str,
    end: dt.date | dt.datetime | str,
    step: dt.timedelta | str | int = 1,
) -> list[dict[str, str]]:
    """Half-open windows ``[start, end)`` cut every ``step``: ``[{"start": ..., "end": ...}, ...]``,
    the last one ending at ``end`` exactly.

    Dates with a whole-day step give ``YYYY-MM-DD`` strings; anything else gives ISO 8601 datetimes
    (``isoformat()``, offset kept when aware). Use them as query parameters, e.g.
    ``WHERE event_time >= %(start)s AND event_time < %(end)s``.

    :param start: first moment included (date, datetime or ISO string).
    :param end: first moment excluded.
    :param step: a ``timedelta``, a number of days, or ``"1d"``, ``"6h"``, ``"15m"``, ``"30s"``.
    """
    first, last, delta = _moment(start, "start"), _moment(end, "end"), _step(step)
    dates_only = not isinstance(first, dt.datetime) and not isinstance(last, dt.datetime)
    if dates_only and delta % dt.timedelta(days=1):
        dates_only = False
    if not dates_only:
        first, last = _as_datetime(first), _as_datetime(last)
    if (
        isinstance(first, dt.datetime)
        and isinstance(last, dt.datetime)
        and ((first.tzinfo is None) != (last.tzinfo is None))
    ):
        raise SlsConfigError("start and end must both be naive or both be time-zone aware")
    windows: list[dict[str, str]] = []
    moment = first
    while moment < last:
        following = min(moment + delta, last)
        windows.append({"start": moment.isoformat(), "end": following.isoformat()})
        moment = following
    return windows


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day)
