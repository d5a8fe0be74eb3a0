"""Which reader runs a query, and the thread that reads ahead of the encoder.

``sql_reader="auto"`` takes the first Arrow reader of :data:`READERS` (each an
:class:`~sls_provider.sources.reader.ArrowReader`) that reads the connection, whose driver is installed
and whose memory is bounded: PostgreSQL's ADBC (:mod:`sls_provider.sources.adbc_postgres`, a runtime
dependency: without it, as after ``pip install --no-deps``, a warning says what that costs) and,
for MySQL/MariaDB through mysqlclient (the mysql hook's default client), the hook's own connection
read as raw text into Arrow (:mod:`sls_provider.sources.mysql_arrow`; no extra
needed), and SQLite's rows built into Arrow columns (:mod:`sls_provider.sources.sqlite_arrow`).
connectorx (:mod:`sls_provider.sources.connectorx_mysql`), which reads ahead without a memory bound,
is used only with ``sql_reader="arrow"`` on a MySQL connection of another client. The DB-API reader
(:mod:`sls_provider.sources.sql`) runs otherwise, and for a query whose columns include a type the
Arrow reader does not spell as the DB-API reader does. ``"arrow"`` fails instead of falling back;
``"dbapi"`` always reads through the hook's DB-API connection. Either way one log line says which
reader runs and why.

Reading runs on its own thread, at most :data:`PREFETCH` chunks ahead of the encoder (a bounded
queue), so the driver's work overlaps encoding and sending. The thread is a daemon and is never
waited for without a bound: a driver blocked on a silent server cannot hold the task once Airflow
stops it (the export's stop signal, or any exception in the consumer); errors of the reader are
named (:class:`SlsSourceError`) on the reader's thread, so an exception raised in the consumer
(``AirflowTaskTimeout``) is never relabelled as a source error.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.util import find_spec
from typing import Any

from sls_provider.core.errors import SlsConfigError, SlsError, SlsSourceError
from sls_provider.core.reasons import one_line
from sls_provider.core.stop import POLL, StopSignal
from sls_provider.sources.adbc_postgres import PostgresArrowReader
from sls_provider.sources.arrow import rechunk
from sls_provider.sources.connectorx_mysql import MySqlArrowReader
from sls_provider.sources.mysql_arrow import MySqlClientArrowReader
from sls_provider.sources.reader import ArrowReader, SourceHook, Unfaithful
from sls_provider.sources.sql import check_read_only, stream_checked
from sls_provider.sources.sqlite_arrow import SqliteArrowReader

log = logging.getLogger(__name__)

SQL_READERS = ("auto", "arrow", "dbapi")
#: Chunks read ahead of the encoder: with the exporter's own encoders this bounds the rows in memory
#: to about (PREFETCH + 1 + ENCODERS + 1) chunks.
PREFETCH = 2
#: Seconds a consumer that stops early waits for the reader's thread to end (it usually does at
#: once; one blocked in the driver is left behind, a daemon thread).
READER_JOIN = 1.0


def check_sql_reader(sql_reader: str) -> str:
    if sql_reader not in SQL_READERS:
        raise SlsConfigError(f"sql_reader must be one of {', '.join(SQL_READERS)}; got {sql_reader!r}")
    return sql_reader


#: The Arrow readers, in order of preference: the first that reads the connection, whose package is
#: installed and (for ``auto``) whose memory is bounded, runs the query. A new reader is one module
#: (an :class:`~sls_provider.sources.reader.ArrowReader`) and its line here.
READERS: tuple[type[ArrowReader], ...] = (
    SqliteArrowReader,
    PostgresArrowReader,
    MySqlClientArrowReader,
    MySqlArrowReader,
)


#: What a missing driver costs, said when ``auto`` falls back for want of it (a warning: the install
#: is not what the provider declares). The figures stay in docs/performance.md, where
#: benchmarks/bench_sql.py's runs keep them current; the warning points there.
MISSING = {
    "adbc_driver_postgresql": (
        "adbc-driver-postgresql is not installed (the provider depends on it: an install with --no-deps "
        "or a removed package?); the DB-API reader is several times slower (docs/performance.md, "
        '"SQL exports against the database\'s own export"). pip install adbc-driver-postgresql '
        "adbc-driver-manager"
    ),
}


#: ``bind(paramstyle)`` -> ``(sql, parameters)``: an incremental export's windowed query, written for the
#: reader that runs it (:func:`sls_provider.incremental.window_query`).
Bind = Callable[[str], tuple[str, Any]]


def _arrow_reader(hook: Any, parameters: Any, sql_reader: str, windowed: bool = False) -> tuple[Any, str]:
    """The Arrow reader class for ``hook`` (the first of :data:`READERS` that ``sql_reader`` may take),
    or ``None`` and why not."""
    source = SourceHook(hook)
    reader: type[ArrowReader] | None = None
    why_not = None
    for candidate in READERS:
        if candidate.can_read(source) is not None:
            continue
        if candidate.unbounded is not None and sql_reader == "auto":
            why_not = why_not or candidate.unbounded
        elif candidate.package is not None and find_spec(candidate.package) is None:
            why_not = why_not or MISSING.get(
                candidate.package,
                f"{candidate.package} is not installed (pip install 'airflow-provider-sls[arrow]')",
            )
        else:
            reader = candidate
            break
    if reader is None:
        return None, why_not or f"no Arrow reader for {source.conn_type or type(hook).__name__} connections"
    if parameters is not None:
        return None, "the query has parameters, which the DB-API driver binds in its own paramstyle"
    if windowed and reader.paramstyle is None:
        return None, f"{reader.name} cannot bind the incremental window's bounds"
    return reader, reader.why(source)


def read_query(
    hook: Any,
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    chunksize: int,
    sql_reader: str = "auto",
    logger: logging.Logger | Any = log,
    bind: Bind | None = None,
    stop: StopSignal | None = None,
) -> Iterator[Any]:
    """Chunks of ``chunksize`` rows of ``sql``'s result (Arrow tables or pandas frames), read on their
    own thread by the reader ``sql_reader`` asks for (see the module doc).

    :param bind: an incremental export's window: called with the chosen reader's paramstyle, it
        gives the query that reader runs and its parameters (``sql`` and ``parameters`` then only
        choose the reader).
    :param stop: the export's stop signal, which ends a wait for the next chunk.
    """
    check_sql_reader(sql_reader)
    # Both readers refuse the same statements, before any connection is opened.
    check_read_only(sql)
    reader_class, why = (
        (None, "sql_reader='dbapi'")
        if sql_reader == "dbapi"
        else _arrow_reader(hook, parameters, sql_reader, bind is not None)
    )
    if reader_class is None and sql_reader == "arrow":
        raise SlsConfigError(f"sql_reader='arrow' cannot be used: {why}")
    source: Iterator[Any] | None = None
    name = "dbapi"
    if reader_class is not None:
        try:
            if bind is None:
                arrow = reader_class(hook, sql, batch_rows=chunksize)
            else:
                bound_sql, bound = bind(reader_class.paramstyle)
                arrow = reader_class(hook, bound_sql, batch_rows=chunksize, parameters=bound)
            try:
                batches = arrow.open()
            except BaseException:
                arrow.close()
                raise
        except SlsError:
            raise
        except Unfaithful as err:
            if sql_reader == "arrow":
                raise SlsConfigError(f"sql_reader='arrow' cannot read this query: {err}") from err
            why = f"the Arrow reader cannot: {err}"
        except Exception as err:
            raise _source_error(err, sql, reader_class.name, _conn_id(hook)) from err
        else:
            name = arrow.name
            source = _arrow_chunks(arrow, batches, chunksize)
    if source is None:
        if bind is not None:
            sql, parameters = bind("qmark" if str(getattr(hook, "conn_type", "")) == "sqlite" else "format")
        source = stream_checked(hook, sql, parameters, chunksize)
    # A warning when a declared dependency is missing: the install is not the one the docs give.
    log_at = logger.warning if why in MISSING.values() else logger.info
    log_at("Reading the query with the %s reader: %s", name, why)
    # Named on the reader's thread: only the reader's own errors become SlsSourceError.
    return prefetch(_named_errors(source, sql, name, _conn_id(hook)), PREFETCH, stop)


def _arrow_chunks(reader: Any, batches: Any, chunksize: int) -> Iterator[Any]:
    try:
        yield from rechunk(_arrow_fixed(reader, batches), chunksize)
    finally:
        reader.close()


def _arrow_fixed(reader: Any, batches: Any) -> Iterator[Any]:
    for batch in batches:
        yield reader.fix(batch)


def _named_errors(chunks: Iterator[Any], sql: str, reader: str, conn_id: str | None) -> Iterator[Any]:
    """Runs on the reader's thread (inside :func:`prefetch`), where no signal's exception lands."""
    try:
        yield from chunks
    except SlsError:
        raise
    except Exception as err:
        raise _source_error(err, sql, reader, conn_id) from err
    except BaseException as err:
        # connectorx's Rust panics (pyo3's PanicException) are BaseExceptions; no other is wrapped.
        if type(err).__name__ != "PanicException":
            raise
        raise _source_error(err, sql, reader, conn_id) from err


def _source_error(err: BaseException, sql: str, reader: str, conn_id: str | None) -> SlsSourceError:
    query = one_line(sql, 200)
    detail = one_line(str(err))
    # Said first: the export's own lines ("Exporting to SLS ...") come before it and point at SLS.
    on = f" on connection {conn_id!r}" if conn_id else ""
    return SlsSourceError(
        f"The warehouse query failed ({reader} reader){on}, not SLS: {type(err).__name__}: {detail}. "
        f"Query: {query}",
        transient=not statement_error(err),
    )


#: DB-API exception classes (PEP 249) of a statement the database refuses as written: the same
#: query fails the same way on a retry. ``OperationalError`` and ``InterfaceError`` (a dropped
#: connection, a server going down) may heal, except where the text says otherwise below.
_STATEMENT_ERRORS = frozenset({"ProgrammingError", "DataError", "IntegrityError", "NotSupportedError"})
#: SQLSTATE classes of the same (psycopg's ``pgcode``/``sqlstate``): 22 data exception, 23 integrity,
#: 42 syntax error or access rule violation, 0A feature not supported; and 25006, a write refused by
#: the read-only session.
_STATEMENT_SQLSTATES = ("22", "23", "42", "0A", "25006")
#: sqlite3 raises OperationalError for these, though they are the statement's fault.
_SQLITE_STATEMENT_TEXTS = ("syntax error", "no such table", "no such column", "no such function", "readonly")
#: MySQL error numbers the drivers raise as OperationalError although the statement is at fault:
#: unknown column, denied on a table, a write in the read-only transaction.
_MYSQL_STATEMENT_ERRNOS = frozenset({1054, 1142, 1143, 1792})


def statement_error(err: BaseException) -> bool:
    """Whether ``err`` says the statement itself is wrong (a retry of the task cannot help).

    :param err: what the driver raised.
    """
    sqlstate = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate.startswith(_STATEMENT_SQLSTATES)
    if any(cls.__name__ in _STATEMENT_ERRORS for cls in type(err).__mro__):
        return True
    driver = type(err).__module__.split(".")[0]
    if driver in ("MySQLdb", "pymysql", "mysql"):
        return bool(err.args) and err.args[0] in _MYSQL_STATEMENT_ERRNOS
    return driver == "sqlite3" and any(t in str(err) for t in _SQLITE_STATEMENT_TEXTS)


def _conn_id(hook: Any) -> str | None:
    """The connection id of a common.sql hook (``postgres_conn_id``, ``sqlite_conn_id``...)."""
    try:
        return str(getattr(hook, hook.conn_name_attr))
    except (AttributeError, TypeError):
        return None


_DONE = object()


def prefetch(chunks: Iterator[Any], depth: int, stop: StopSignal | None = None) -> Iterator[Any]:
    """``chunks``, produced on a thread of their own at most ``depth`` ahead of the consumer. An error
    of the producer is raised in the consumer; a consumer that stops early stops the producer, which
    closes ``chunks`` on its own thread (a generator runs on one thread only). A set ``stop`` ends the
    consumer's wait for a chunk (raising the stop's error); a producer still blocked (in a driver's
    socket read) :data:`READER_JOIN` seconds after the consumer stopped is left behind."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = threading.Event()

    def put(item: Any) -> bool:
        while not done.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    break
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            put((_DONE, err))
            return
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        put((_DONE, None))

    thread = threading.Thread(target=produce, name="sls-read", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = slots.get(timeout=POLL)
            except queue.Empty:
                if stop is not None and stop.is_set():
                    raise stop.error(" while waiting for the query's rows") from None
                continue
            if type(item) is tuple and len(item) == 2 and item[0] is _DONE:
                if item[1] is not None:
                    raise item[1]
                return
            yield item
            del item  # not held while the consumer works on the next one
    finally:
        done.set()
        deadline = time.monotonic() + READER_JOIN
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                slots.get(timeout=0.05)  # let a blocked producer see the stop
            except queue.Empty:
                pass
        if thread.is_alive():
            log.warning(
                "The query's reader is still blocked in the database driver %.0f s after the export "
                "stopped: left behind (its connection closes with the process).",
                READER_JOIN,
            )
