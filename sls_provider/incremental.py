"""Incremental exports across runs: each run sends the rows whose cursor lies in a window
``[start, end)``, and the next run starts where the last successful one stopped.

- :class:`Incremental` is the configuration (``SlsWebTrackingOperator(incremental=...)``), a frozen
  dataclass validated once, when the DAG is parsed.
- :func:`decide_end` asks the source, on a run's first try, where the window ends: its largest
  cursor value (``end="max"``) or its clock (``end="clock"``), minus ``lag``. Never the worker's clock.
- :func:`window_query` bounds and orders the user's query as a subquery, with the driver's own
  parameters in its paramstyle (no value is ever written into the SQL text).
- :class:`IncrementalRun` keeps the window of a run in ``context["task_state_store"]`` (every try of
  the run reads the same rows in the same order, so resume stays sound) and the watermark in
  ``context["asset_state_store"]`` of the logstore's asset (moved to the window's end only after every
  request of the window was acknowledged).

The guarantees, and what a backfill, a cleared run or a reset does, are in ``docs/incremental.md``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sls_provider.core.errors import SlsConfigError, SlsInputError

log = logging.getLogger(__name__)

__all__ = [
    "WINDOW_KEY",
    "Incremental",
    "IncrementalRun",
    "Window",
    "decide_end",
    "logstore_outlet",
    "window_query",
]

#: Key of a run's window in ``context["task_state_store"]``.
WINDOW_KEY = "sls_incremental_window"
#: Prefix of the watermark keys in the asset state store: ``sls_watermark/{dag_id}/{task_id}[/{key}]``.
WATERMARK_PREFIX = "sls_watermark"
#: ``dag_run.conf`` key of an explicit window: ``{"sls_window": {"start": ..., "end": ...}}``.
CONF_KEY = "sls_window"
#: Names of the window's own parameters, when the user's parameters are a mapping.
START_PARAM, END_PARAM = "sls_window_start", "sls_window_end"
ENDS = ("max", "clock")
ON_NULL = ("fail", "skip")
ON_RERUN = ("fail", "resend")
#: The connection types whose SQL (quoting, clock) this module knows.
DIALECTS = ("postgres", "mysql", "sqlite")
_VALUE_TYPES = (int, float, Decimal, str, dt.date)  # datetime is a date
#: Task states in which a run holding a window will not send any more (its claim can be taken over).
_ENDED = ["failed", "upstream_failed", "skipped", "removed"]
_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


@dataclass(frozen=True)
class Incremental:
    """Export only what is new since the last successful run, by a cursor column.

    :param cursor_column: a column of the query's result that only grows for new rows (an id, a
        creation or update time). Its name as the result spells it.
    :param initial_value: where the first run starts (inclusive); ``None``: from the first row.
    :param end: where a run's window ends, decided on its first try: ``"max"`` (the source's largest
        cursor value; the rows holding it wait for the next run) or ``"clock"`` (the source's own
        clock, for time cursors).
    :param lag: subtracted from the end: a ``timedelta`` for time cursors, a number for numeric ones.
        Rows whose cursor lies within ``lag`` of the end are left for the next run, so rows committed
        late (up to ``lag`` after their cursor value) are not missed.
    :param order_by: columns that break ties between rows of equal cursor (a unique key): rows are
        read ordered by the cursor, then these, so a retry reads them in the same order.
    :param key: names this task's watermark among others on the logstore (default: the map index of
        a mapped task, nothing for an unmapped one). Give one per partition when partitions are
        mapped from a list whose order may change.
    :param on_null: rows whose cursor is NULL are in no window: ``"fail"`` the run naming how many
        there are (default), or ``"skip"`` them with a warning naming how many.
    :param on_rerun: a run cleared after it succeeded: ``"fail"`` with a message (default), or
        ``"resend"`` its window again (rows as they are now; the watermark does not move).
    """

    cursor_column: str
    initial_value: Any = None
    end: str = "max"
    lag: dt.timedelta | int | float | Decimal | None = None
    order_by: tuple[str, ...] = field(default=())
    key: str | None = None
    on_null: str = "fail"
    on_rerun: str = "fail"

    def __post_init__(self) -> None:
        if not isinstance(self.cursor_column, str) or not self.cursor_column.strip():
            raise SlsConfigError(
                f"Incremental: cursor_column must be a column name, got {self.cursor_column!r}"
            )
        order_by = (self.order_by,) if isinstance(self.order_by, str) else tuple(self.order_by)
        for name in order_by:
            if not isinstance(name, str) or not name.strip():
                raise SlsConfigError(f"Incremental: order_by holds column names, got {name!r}")
        object.__setattr__(self, "order_by", order_by)
        if self.initial_value is not None:
            if isinstance(self.initial_value, bool) or not isinstance(self.initial_value, _VALUE_TYPES):
                raise SlsConfigError(
                    "Incremental: initial_value must be a number, a string, a date or a datetime, "
                    f"got {type(self.initial_value).__name__}"
                )
        if self.end not in ENDS:
            raise SlsConfigError(f"Incremental: end must be one of {', '.join(ENDS)}, got {self.end!r}")
        lag = self.lag
        if lag is not None:
            if isinstance(lag, bool) or not isinstance(lag, (dt.timedelta, int, float, Decimal)):
                raise SlsConfigError(f"Incremental: lag must be a timedelta or a number, got {lag!r}")
            if (lag < dt.timedelta(0)) if isinstance(lag, dt.timedelta) else not lag >= 0:
                raise SlsConfigError(f"Incremental: lag must not be negative, got {lag!r}")
        if self.end == "clock" and lag is not None and not isinstance(lag, dt.timedelta):
            raise SlsConfigError("Incremental: with end='clock', lag must be a timedelta")
        if self.key is not None and not (isinstance(self.key, str) and _KEY.match(self.key)):
            raise SlsConfigError(
                f"Incremental: key must be 1 to 100 letters, digits, '_', '.' or '-', got {self.key!r}"
            )
        if self.on_null not in ON_NULL:
            raise SlsConfigError(
                f"Incremental: on_null must be one of {', '.join(ON_NULL)}, got {self.on_null!r}"
            )
        if self.on_rerun not in ON_RERUN:
            raise SlsConfigError(
                f"Incremental: on_rerun must be one of {', '.join(ON_RERUN)}, got {self.on_rerun!r}"
            )


# --- cursor values as JSON ----------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """A cursor value as JSON that :func:`decode_value` turns back into the same Python type (the
    driver's), so a retry or the next run binds what the source gave."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SlsInputError(f"A cursor value must not be a boolean, got {value!r}")
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, float):
        return {"float": value}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    raise SlsInputError(
        f"A cursor value of type {type(value).__name__} ({value!r}) cannot be kept as a watermark: "
        "use a number, string, date or timestamp column"
    )


def decode_value(data: Any) -> Any:
    if data is None:
        return None
    ((kind, text),) = data.items()
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "decimal":
        return Decimal(text)
    if kind == "str":
        return str(text)
    if kind == "datetime":
        return dt.datetime.fromisoformat(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    raise SlsInputError(f"Unknown watermark value {data!r}")


def show(value: Any) -> str:
    """A bound for log lines and messages."""
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


# --- SQL ------------------------------------------------------------------------------------------


def dialect_of(hook: Any) -> str:
    conn_type = str(getattr(hook, "conn_type", "") or "")
    if conn_type not in DIALECTS:
        raise SlsConfigError(
            f"incremental= supports PostgreSQL, MySQL/MariaDB and SQLite connections, not "
            f"{conn_type or type(hook).__name__!r}"
        )
    return conn_type


def quote(name: str, dialect: str) -> str:
    """An identifier quoted for ``dialect`` (the quote character doubled inside)."""
    q = "`" if dialect == "mysql" else '"'
    return q + name.replace(q, q + q) + q


def _inner(sql: str) -> str:
    inner = sql.strip()
    while inner.endswith(";"):
        inner = inner[:-1].rstrip()
    first = inner.split(None, 1)[0].upper() if inner else ""
    if first == "SHOW":
        raise SlsConfigError("incremental= needs a query that can be a subquery: SHOW cannot")
    return inner


def _escape_percent(sql: str, style: str, parameters: Any) -> str:
    """With the format paramstyles, ``%`` is literal only while no parameters are passed: once the
    window's are, a ``%`` the user wrote (``LIKE 'a%'``) must be doubled to mean the same."""
    return sql.replace("%", "%%") if style == "format" and parameters is None else sql


def subquery(sql: str, style: str, parameters: Any, alias: str = "sls_window") -> str:
    """``sql`` as a derived table (a newline before ``)``: the user's sql may end in a comment)."""
    return f"(\n{_escape_percent(_inner(sql), style, parameters)}\n) AS {alias}"


def window_query(
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    *,
    dialect: str,
    style: str,
    column: str,
    order_by: Sequence[str],
    start: Any,
    end: Any,
    pg_type: str | None = None,
) -> tuple[str, Any]:
    """The user's ``sql`` bounded to ``start <= column < end`` (``start`` ``None``: no lower bound) and
    ordered by the column then ``order_by``, with the driver's parameters.

    :param style: ``qmark`` (sqlite3), ``format`` (psycopg, psycopg2, MySQLdb, PyMySQL,
        mysql-connector: ``%s``, or ``%(name)s`` when ``parameters`` is a mapping), or ``settings``
        (ADBC's PostgreSQL driver: bound parameters make it read the whole result at once, so the
        bounds are set with ``set_config`` and read back with ``current_setting``, cast to ``pg_type``).
    :return: the query and its parameters (for ``settings``: a mapping of setting name to text).
    """
    col = quote(column, dialect)
    where: list[str] = []
    values: list[tuple[str, Any]] = []
    if start is not None:
        values.append((START_PARAM, start))
    values.append((END_PARAM, end))
    ops = {START_PARAM: ">=", END_PARAM: "<"}
    named = isinstance(parameters, Mapping)
    bound: Any
    if style == "settings":
        if parameters is not None:
            raise SlsConfigError("the Arrow reader of PostgreSQL takes no query parameters")
        if not pg_type:
            raise SlsConfigError("the PostgreSQL cursor type is unknown")
        bound = {}
        for name, value in values:
            setting = f"sls.{name}"
            text = f"current_setting('{setting}')"
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                # As PostgreSQL compares a bound timestamptz with any column: in the session's zone.
                text = f"CAST({text} AS timestamp with time zone)"
            where.append(f"{col} {ops[name]} CAST({text} AS {pg_type})")
            bound[setting] = show(value)
    elif style in ("qmark", "format"):
        bound = dict(parameters) if named else list(parameters or ())  # type: ignore[arg-type]
        for name, value in values:
            if named:
                where.append(f"{col} {ops[name]} " + (f":{name}" if style == "qmark" else f"%({name})s"))
                bound[name] = value
            else:
                where.append(f"{col} {ops[name]} " + ("?" if style == "qmark" else "%s"))
                bound.append(value)
    else:
        raise SlsConfigError(f"unknown paramstyle {style!r}")
    order = ", ".join(quote(c, dialect) for c in (column, *order_by))
    query = f"SELECT * FROM {subquery(sql, style, parameters)} WHERE {' AND '.join(where)} ORDER BY {order}"
    return query, bound


@dataclass(frozen=True)
class SourceFacts:
    """What the source said when a run's window was decided."""

    end: Any  # the window's end (lag applied), None: the source has no row with a cursor
    nulls: int  # rows whose cursor is NULL
    pg_type: str | None  # PostgreSQL: the cursor's type, for the Arrow reader's casts


def decide_end(hook: Any, sql: str, parameters: Any, config: Incremental) -> SourceFacts:
    """Ask the source (on the hook's DB-API connection, read-only) whether the cursor column is
    there, how many rows have no cursor, and where this run's window ends."""
    from sls_provider.sources.sql import check_read_only, read_only_session

    # The first query to the source: refuse a statement that is not a single read before it runs
    # (wrapped in a subquery, a refused statement would fail with the database's own syntax error,
    # which the task retries, or run where no read-only session guards it).
    check_read_only(sql)
    dialect = dialect_of(hook)
    column = config.cursor_column
    col = quote(column, dialect)
    given = parameters is not None

    def run(cursor: Any, query: str) -> Any:
        if given:
            cursor.execute(query, parameters)
        else:
            cursor.execute(query)
        return cursor

    # Without parameters passed, a format-style driver takes '%' literally: no escaping here.
    source = subquery(sql, "qmark", None, "sls_source")
    conn = hook.get_conn()
    try:
        read_only_session(conn)
        cursor = conn.cursor()
        names = [d[0] for d in run(cursor, f"SELECT * FROM {source} WHERE 1 = 0").description or ()]
        cursor.fetchall()
        missing = [c for c in (column, *config.order_by) if c not in names]
        if missing:
            raise SlsConfigError(
                f"incremental=: {', '.join(repr(c) for c in missing)} "
                f"{'is not a column' if len(missing) == 1 else 'are not columns'} of the query's result "
                f"(its columns: {', '.join(names)})"
            )
        # One pass over the query's result: its largest cursor and its rows without one (and, on
        # PostgreSQL, the cursor's type), not a pass for each.
        pg_type = None
        if dialect == "postgres":
            row = run(
                cursor,
                f"SELECT MAX({col}), COUNT(*) - COUNT({col}), pg_typeof(MAX({col}))::text FROM {source}",
            ).fetchone()
            pg_type = str(row[2])
        else:
            row = run(cursor, f"SELECT MAX({col}), COUNT(*) - COUNT({col}) FROM {source}").fetchone()
        observed, nulls = row[0], int(row[1])
        if config.end == "clock":
            clock = {
                "postgres": f"SELECT CAST(CURRENT_TIMESTAMP AS {pg_type})",
                "mysql": "SELECT NOW(6)",
                "sqlite": "SELECT datetime('now')",
            }[dialect]
            cursor.execute(clock)
            observed = cursor.fetchone()[0]
        cursor.close()
        conn.rollback()
    finally:
        conn.close()
    return SourceFacts(end=_minus_lag(observed, config.lag), nulls=nulls, pg_type=pg_type)


def _minus_lag(value: Any, lag: Any) -> Any:
    if value is None or lag is None or not lag:
        return value
    try:
        if isinstance(value, str):  # SQLite's clock: 'YYYY-MM-DD HH:MM:SS' text
            moved = dt.datetime.fromisoformat(value) - lag
            return moved.isoformat(sep=" ")
        if isinstance(value, Decimal) and isinstance(lag, float):
            return value - Decimal(str(lag))
        return value - lag
    except (TypeError, ValueError) as err:
        raise SlsConfigError(
            f"incremental=: lag {lag!r} cannot be subtracted from the cursor value {value!r} "
            f"({type(value).__name__}): a timedelta goes with time cursors, a number with numeric ones"
        ) from err


# --- across runs ----------------------------------------------------------------------------------


@dataclass
class Window:
    """The rows one run exports: ``start <= cursor < end``."""

    start: Any
    end: Any
    explicit: bool  # a backfill or a given period: the watermark is neither read nor moved
    watermark_key: str
    run_id: str
    pg_type: str | None = None
    why: str = ""

    @property
    def empty(self) -> bool:
        if self.end is None:
            return True
        if self.start is None:
            return False
        try:
            return not self.start < self.end
        except TypeError:
            return False

    def to_json(self) -> dict[str, Any]:
        return {
            "start": encode_value(self.start),
            "end": encode_value(self.end),
            "explicit": self.explicit,
            "watermark_key": self.watermark_key,
            "run_id": self.run_id,
            "pg_type": self.pg_type,
            "why": self.why,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Window:
        return cls(
            start=decode_value(data.get("start")),
            end=decode_value(data.get("end")),
            explicit=bool(data.get("explicit")),
            watermark_key=str(data["watermark_key"]),
            run_id=str(data.get("run_id", "")),
            pg_type=data.get("pg_type"),
            why=str(data.get("why", "")),
        )

    def extra(self) -> dict[str, Any]:
        """The window as the asset event's extra shows it."""
        return {
            "start": show(self.start) if self.start is not None else None,
            "end": show(self.end) if self.end is not None else None,
        }


def watermark_key(dag_id: str, task_id: str, map_index: int | None, key: str | None) -> str:
    parts = [WATERMARK_PREFIX, dag_id, task_id]
    if key is not None:
        parts.append(key)
    elif map_index is not None and map_index >= 0:
        parts.append(str(map_index))
    return "/".join(parts)


def _explicit_bounds(context: Any) -> tuple[Any, Any, str] | None:
    """``(start, end, why)`` of a run with an explicit window: ``dag_run.conf["sls_window"]``, else a
    backfill's data interval; ``None`` for an incremental run."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    given = conf.get(CONF_KEY) if isinstance(conf, Mapping) else None
    if given is not None:
        if not (isinstance(given, Mapping) and "start" in given and "end" in given):
            raise SlsConfigError(
                f'dag_run.conf["{CONF_KEY}"] must be {{"start": ..., "end": ...}}, got {given!r}'
            )
        return _conf_value(given["start"]), _conf_value(given["end"]), f'dag_run.conf["{CONF_KEY}"]'
    run_type = str(getattr(getattr(dag_run, "run_type", None), "value", getattr(dag_run, "run_type", "")))
    if run_type == "backfill":
        start = context.get("data_interval_start") or getattr(dag_run, "data_interval_start", None)
        end = context.get("data_interval_end") or getattr(dag_run, "data_interval_end", None)
        if start is None or end is None or not start < end:
            raise SlsConfigError(
                "incremental=: this backfill run has no data interval to export: give the window with "
                f'dag_run.conf["{CONF_KEY}"] = {{"start": ..., "end": ...}}'
            )
        return _plain(start), _plain(end), "the backfill run's data interval"
    return None


def _conf_value(value: Any) -> Any:
    """A bound from JSON conf: ISO timestamps become datetimes, numbers stay numbers."""
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _plain(value: Any) -> Any:
    """A pendulum datetime as a stdlib one (the drivers bind it alike)."""
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(value.isoformat())
    return value


def bound_for(value: Any, dialect: str) -> Any:
    """An explicit window's bound in the form the dialect compares with its columns: SQLite keeps
    timestamps as ``YYYY-MM-DD HH:MM:SS`` text in UTC, MySQL's DATETIME has no zone (UTC here)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None and dialect in ("sqlite", "mysql"):
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.datetime) and dialect == "sqlite":
        return value.isoformat(sep=" ")
    return value


class IncrementalRun:
    """One run of an incremental export: its window, and the watermark it moves when done.

    :param config: the :class:`Incremental` configuration.
    :param context: the task's Airflow context.
    :param asset: the logstore's asset, in the task's outlets.
    """

    def __init__(self, config: Incremental, context: Any, asset: Any, logger: Any = log) -> None:
        self.config = config
        self.context = context
        self.log = logger
        ti = context["ti"]
        self.ti = ti
        self.task_store = context.get("task_state_store")
        stores = context.get("asset_state_store")
        if self.task_store is None:
            raise SlsConfigError(
                "incremental= needs Airflow 3.3 or later (context['asset_state_store'] and "
                "context['task_state_store'] keep the watermark and the run's window); this Airflow has "
                "neither. Nothing was read or sent. Export with sql= and parameters= windows of your own."
            )
        try:
            if stores is None:
                raise KeyError(asset)
            self.asset_store = stores[asset]
        except KeyError as err:
            raise SlsConfigError(
                f"incremental=: the logstore's asset {asset!r}, which keeps the watermark, is not in this "
                "task's outlets as Airflow parsed them. A mapped task must name it in .partial(): "
                "outlets=[logstore_asset(endpoint=..., project=..., logstore=...)] (sls_provider.lineage). "
                "Nothing was read or sent."
            ) from err
        map_index = getattr(ti, "map_index", None)
        self.key = watermark_key(ti.dag_id, ti.task_id, map_index, config.key)
        self.window: Window | None = None

    # the watermark record in the asset state store: {"watermark": enc, "run_id": ..., "claim": {...}}
    def _record(self) -> dict[str, Any]:
        value = self.asset_store.get(self.key)
        return dict(value) if isinstance(value, Mapping) else {}

    def decide(self, hook: Any, sql: str, parameters: Any) -> Window:
        """This run's window: the one an earlier try decided, else a new one (see the module doc)."""
        run_id = str(self.ti.run_id)
        kept = self.task_store.get(WINDOW_KEY)
        if isinstance(kept, Mapping) and kept.get("watermark_key") == self.key:
            window = Window.from_json(kept)
            if kept.get("done"):
                return self._rerun(window, kept)
            if not window.explicit:
                record = self._record()
                claim = record.get("claim") or {}
                last = record.get("last") or {}
                # Its own claim, or none left because an earlier try of this run moved the watermark
                # and died before it could say so (the window is read again: resume sends nothing).
                if claim.get("run_id") != run_id and (claim or last.get("run_id") != run_id):
                    raise SlsConfigError(
                        f"incremental=: this run's window [{show(window.start)}, {show(window.end)}) of "
                        f"{self.key} was taken over by run {claim.get('run_id') or record.get('run_id')} "
                        "after this run failed: its rows are that run's to export. Nothing was sent."
                    )
            self.log.info(
                "Incremental export: retrying the window this run decided on its first try: %s <= %s < %s",
                show(window.start),
                self.config.cursor_column,
                show(window.end),
            )
            self.window = window
            return window
        explicit = _explicit_bounds(self.context)
        if explicit is None:
            # The task state of a run is gone once cleaned ([state_store] clear_on_success, retention);
            # the watermark still names the run that last moved it.
            last = self._record().get("last")
            if isinstance(last, Mapping) and last.get("run_id") == run_id:
                window = Window(
                    decode_value(last.get("start")), decode_value(last.get("end")), False, self.key, run_id
                )
                return self._rerun(window, last)
        dialect = dialect_of(hook)
        facts = decide_end(hook, sql, parameters, self.config)
        self._check_nulls(facts.nulls)
        if explicit is not None:
            start, end, why = explicit
            window = Window(
                bound_for(start, dialect), bound_for(end, dialect), True, self.key, run_id, facts.pg_type, why
            )
            self.log.info(
                "Incremental export of an explicit window (%s): %s <= %s < %s; the watermark of %s "
                "is neither read nor moved",
                why,
                show(window.start),
                self.config.cursor_column,
                show(window.end),
                self.key,
            )
        else:
            record = self._record()
            self._claim_check(record, run_id)
            if "watermark" in record:
                start, why = decode_value(record["watermark"]), "the watermark"
            else:
                start, why = self.config.initial_value, "initial_value (first run)"
            end = facts.end
            if end is not None and start is not None:
                try:
                    if end < start:
                        self.log.warning(
                            "Incremental export: the source's %s (%s) is below the watermark (%s): "
                            "nothing to export, and the watermark stays",
                            "largest cursor" if self.config.end == "max" else "clock minus lag",
                            show(end),
                            show(start),
                        )
                        end = start
                except TypeError as err:
                    raise SlsConfigError(
                        f"incremental=: the watermark {start!r} and the source's {end!r} cannot be "
                        "compared: did the cursor column's type change? Reset the watermark "
                        "(docs/incremental.md)."
                    ) from err
            window = Window(start, end, False, self.key, run_id, facts.pg_type, why)
            record["claim"] = {"run_id": run_id, "end": encode_value(end)}
            self.asset_store.set(self.key, record)
            self.log.info(
                "Incremental export of %s: %s <= %s < %s (start: %s; end: the source's %s%s)",
                self.key,
                show(window.start),
                self.config.cursor_column,
                show(window.end),
                why,
                "largest cursor value" if self.config.end == "max" else "clock",
                f" minus lag {self.config.lag}" if self.config.lag else "",
            )
        self.task_store.set(WINDOW_KEY, window.to_json())
        self.window = window
        return window

    def chunks(
        self, hook: Any, sql: str, parameters: Any, chunksize: int, sql_reader: str, stop: Any = None
    ) -> Any:
        """The window's rows, read by the reader ``sql_reader`` asks for; nothing is read when the
        window is empty. ``stop``: the export's stop signal (ends a wait for the next rows)."""
        from sls_provider.sources.readers import read_query

        window = self.window
        assert window is not None
        if window.empty:
            self.log.info("Incremental export: the window is empty, nothing to read")
            return iter(())
        dialect = dialect_of(hook)

        def bind(style: str) -> tuple[str, Any]:
            return window_query(
                sql,
                parameters,
                dialect=dialect,
                style=style,
                column=self.config.cursor_column,
                order_by=self.config.order_by,
                start=window.start,
                end=window.end,
                pg_type=window.pg_type,
            )

        return read_query(hook, sql, parameters, chunksize, sql_reader, self.log, bind=bind, stop=stop)

    def _check_nulls(self, nulls: int) -> None:
        if not nulls:
            return
        column = self.config.cursor_column
        if self.config.on_null == "fail":
            raise SlsInputError(
                f"incremental=: {nulls} row(s) of the query have a NULL {column!r}, so they are in no "
                "window and would never be exported. Nothing was sent. Filter them out in the query, "
                "give them a cursor value (COALESCE), or pass Incremental(on_null='skip')."
            )
        self.log.warning(
            "Incremental export: %d row(s) with a NULL %r are skipped (on_null='skip'): in no window",
            nulls,
            column,
        )

    def _claim_check(self, record: Mapping[str, Any], run_id: str) -> None:
        claim = record.get("claim")
        if not isinstance(claim, Mapping) or claim.get("run_id") in (None, run_id):
            return
        other = str(claim["run_id"])
        ended = 0
        try:
            ended = self.ti.get_ti_count(
                dag_id=self.ti.dag_id,
                task_ids=[self.ti.task_id],
                run_ids=[other],
                states=_ENDED,
                **({"map_index": self.ti.map_index} if getattr(self.ti, "map_index", -1) >= 0 else {}),
            )
        except Exception as err:  # noqa: BLE001 - not answerable here: treated as still running
            self.log.debug("Could not read the state of run %s: %s", other, err)
        if ended:
            self.log.warning(
                "Incremental export: run %s decided a window of %s and then failed without "
                "finishing it; this run takes its rows over, starting from the watermark",
                other,
                self.key,
            )
            return
        raise SlsConfigError(
            f"incremental=: run {other} is exporting a window of {self.key} and has not finished: "
            "two runs of one watermark would send the same rows. Run one at a time (max_active_runs=1 "
            "or depends_on_past=True); this try fails and its retry will look again. Nothing was sent."
        )

    def _rerun(self, window: Window, kept: Mapping[str, Any]) -> Window:
        what = (
            f"[{show(window.start)}, {show(window.end)}) of {self.key}, "
            f"{kept.get('rows', '?')} row(s), export {kept.get('export_id', '?')}"
        )
        if self.config.on_rerun == "fail":
            raise SlsConfigError(
                f"incremental=: this run already exported its window {what}, and was cleared. Nothing "
                "was sent again. To send that window again on purpose, pass "
                "Incremental(on_rerun='resend'), or trigger a run with "
                f'conf {{"{CONF_KEY}": {{"start": ..., "end": ...}}}}; to move on, mark this task success.'
            )
        self.log.warning(
            "Incremental export: this run already exported its window %s; on_rerun='resend' sends it "
            "again (its rows as they are now, under a new export id: earlier copies stay in the "
            "logstore). The watermark does not move.",
            what,
        )
        window.explicit = True
        window.why = "on_rerun='resend'"
        self.window = window
        self.task_store.set(WINDOW_KEY, window.to_json())
        return window

    def done(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        """Every request of the window was acknowledged: move the watermark (not for an explicit
        window), mark the run's window done, and return the asset event's extra."""
        window = self.window
        assert window is not None
        moved = False
        if not window.explicit:
            record = self._record()
            if not window.empty:
                record["watermark"] = encode_value(window.end)
                moved = True
            elif "watermark" not in record and window.start is not None:
                record["watermark"] = encode_value(window.start)
            record["run_id"] = window.run_id
            record["last"] = {
                "run_id": window.run_id,
                "start": encode_value(window.start),
                "end": encode_value(window.end),
                "rows": summary.get("rows"),
                "export_id": summary.get("export_id"),
            }
            record.pop("claim", None)
            self.asset_store.set(self.key, record)
        kept = window.to_json()
        kept.update(done=True, rows=summary.get("rows"), export_id=summary.get("export_id"))
        self.task_store.set(WINDOW_KEY, kept)
        if moved:
            self.log.info("Incremental export: the watermark of %s is now %s", self.key, show(window.end))
        return {
            "sls_incremental": {
                "key": self.key,
                "cursor_column": self.config.cursor_column,
                **window.extra(),
                "explicit": window.explicit,
                "watermark_moved": moved,
                "rows": summary.get("rows"),
                "export_id": summary.get("export_id"),
            }
        }


def logstore_outlet(outlets: Any, sls_conn_id: str, project: str | None, logstore: str | None) -> Any:
    """The logstore's asset that keeps the watermarks: the ``sls:`` asset already in ``outlets``
    (from :func:`sls_provider.lineage.logstore_asset`), else one built from the connection, when the
    DAG is parsed (the asset must be known then: Airflow keeps state only for assets it knows)."""
    from sls_provider.lineage import logstore_asset

    given = [
        a
        for a in (outlets if isinstance(outlets, (list, tuple)) else [outlets] if outlets else [])
        if str(getattr(a, "name", "")).startswith("sls:")
    ]
    if len(given) == 1:
        return given[0]
    if len(given) > 1:
        raise SlsConfigError(
            "incremental=: the outlets hold several sls: assets; keep only the one of the logstore "
            "this task writes to"
        )
    how = (
        "or put the logstore's asset in outlets= yourself: "
        "outlets=[logstore_asset(endpoint=..., project=..., logstore=...)] (sls_provider.lineage)"
    )
    if any(value and "{{" in value for value in (project, logstore)):
        raise SlsConfigError(
            f"incremental=: project/logstore are templated, so the asset is unknown when parsed: {how}"
        )
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(sls_conn_id)
        extra = conn.extra_dejson
        project = project or extra.get("project")
        logstore = logstore or extra.get("logstore")
        if not (conn.host and project and logstore):
            raise SlsConfigError(f"connection {sls_conn_id!r} has no endpoint, project or logstore")
        return logstore_asset(endpoint=conn.host, project=str(project), logstore=str(logstore))
    except Exception as err:  # noqa: BLE001 - any failure: the same advice
        raise SlsConfigError(
            f"incremental=: the logstore's asset (which keeps the watermark) could not be built from "
            f"connection {sls_conn_id!r} when the DAG was parsed ({type(err).__name__}: {err}); "
            f"give project= and logstore=, {how}"
        ) from err
