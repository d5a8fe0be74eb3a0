"""Which reader runs a query, and the thread that reads ahead of the encoder.

``sql_reader="auto"`` takes the Arrow reader where one exists for the connection, its driver is
installed and its memory is bounded: PostgreSQL's ADBC (:mod:`sls_provider.sources.arrow`, the
``arrow`` extra) and, for MySQL/MariaDB through mysqlclient (the mysql hook's default client), the
hook's own connection read as raw text into Arrow (:mod:`sls_provider.sources.mysql_arrow`; no extra
needed), and SQLite's rows built into Arrow columns (:mod:`sls_provider.sources.sqlite_arrow`).
connectorx, which reads ahead without a memory bound (:data:`CONNECTORX_UNBOUNDED`), is used only
with ``sql_reader="arrow"`` on a MySQL connection of another client. The DB-API reader
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
from collections.abc import Iterator, Mapping, Sequence
from importlib.util import find_spec
from typing import Any

from sls_provider.core.errors import SlsConfigError, SlsError, SlsSourceError
from sls_provider.core.stop import POLL, StopSignal
from sls_provider.sources.arrow import MySqlArrowReader, PostgresArrowReader, Unfaithful, rechunk
from sls_provider.sources.mysql_arrow import BATCH_ROWS, MySqlClientArrowReader
from sls_provider.sources.sql import check_read_only, stream_query
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


#: Why ``auto`` does not take connectorx (which reads only a MySQL connection whose client is not
#: mysqlclient: mysqlclient's has :class:`~sls_provider.sources.mysql_arrow.MySqlClientArrowReader`):
#: its ``arrow_stream`` reads ahead without a bound when the export is slower than the query (as it is
#: when sending is throttled), so memory grows with the result: +250 MB from 300,000 to 3,000,000 rows
#: in ``benchmarks/bench_memory.py``, against +30 MB for the DB-API reader. ``sql_reader="arrow"``
#: still uses it, for a result that fits in memory.
CONNECTORX_UNBOUNDED = (
    "connectorx reads ahead without a memory bound when the export is slower than the query; "
    "sql_reader='arrow' uses it anyway"
)


def _arrow_reader(hook: Any, parameters: Any, sql_reader: str) -> tuple[Any, str]:
    """The Arrow reader class for ``hook``, or ``None`` and why not."""
    conn_type = str(getattr(hook, "conn_type", "") or "")
    reader: Any
    package: str | None
    if conn_type == "sqlite":
        reader, package = SqliteArrowReader, None  # the standard library's sqlite3
    elif conn_type == "postgres":
        reader, package = PostgresArrowReader, "adbc_driver_postgresql"
    elif conn_type == "mysql":
        if _mysql_client(hook) == "mysqlclient":
            reader, package = MySqlClientArrowReader, "MySQLdb"
        elif sql_reader == "auto":
            return None, CONNECTORX_UNBOUNDED
        else:
            reader, package = MySqlArrowReader, "connectorx"
    else:
        return None, f"no Arrow reader for {conn_type or type(hook).__name__} connections"
    if package is not None and find_spec(package) is None:
        return None, f"{package} is not installed (pip install 'airflow-provider-sls[arrow]')"
    if parameters is not None:
        return None, "the query has parameters, which the DB-API driver binds in its own paramstyle"
    if reader is SqliteArrowReader:
        return reader, "sqlite3's rows go straight to Arrow columns, without a pandas frame"
    if reader is MySqlClientArrowReader:
        return reader, (
            f"{reader.name} streams the hook's mysqlclient connection (use_result, raw text into Arrow, "
            f"batches of up to {BATCH_ROWS:,} rows)"
        )
    return reader, f"{reader.name} reads {conn_type} natively"


def _mysql_client(hook: Any) -> str:
    """The MySQL hook's client library: ``mysqlclient`` (its default) or ``mysql-connector-python``."""
    try:
        conn = hook.get_connection(getattr(hook, hook.conn_name_attr))
        return str(conn.extra_dejson.get("client") or "mysqlclient")
    except Exception:  # noqa: BLE001 - not a MySqlHook as we know it: the reader checks the connection
        return "mysqlclient"


def read_query(
    hook: Any,
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    chunksize: int,
    sql_reader: str = "auto",
    logger: logging.Logger | Any = log,
    stop: StopSignal | None = None,
) -> Iterator[Any]:
    """Chunks of ``chunksize`` rows of ``sql``'s result (Arrow tables or pandas frames), read on their
    own thread by the reader ``sql_reader`` asks for (see the module doc); ``stop``: the export's
    stop signal, which ends a wait for the next chunk."""
    check_sql_reader(sql_reader)
    # Both readers refuse the same statements, before any connection is opened.
    check_read_only(sql)
    reader_class, why = (
        (None, "sql_reader='dbapi'") if sql_reader == "dbapi" else _arrow_reader(hook, parameters, sql_reader)
    )
    if reader_class is None and sql_reader == "arrow":
        raise SlsConfigError(f"sql_reader='arrow' cannot be used: {why}")
    source: Iterator[Any] | None = None
    name = "dbapi"
    if reader_class is not None:
        try:
            arrow = reader_class(hook, sql, batch_rows=chunksize)
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
            raise _source_error(err, sql, reader_class.name) from err
        else:
            name = arrow.name
            source = _arrow_chunks(arrow, batches, chunksize)
    if source is None:
        source = stream_query(hook, sql, parameters, chunksize)
    logger.info("Reading the query with the %s reader: %s", name, why)
    # Named on the reader's thread: only the reader's own errors become SlsSourceError.
    return prefetch(_named_errors(source, sql, name), PREFETCH, stop)


def _arrow_chunks(reader: Any, batches: Any, chunksize: int) -> Iterator[Any]:
    try:
        yield from rechunk(_arrow_fixed(reader, batches), chunksize)
    finally:
        reader.close()


def _arrow_fixed(reader: Any, batches: Any) -> Iterator[Any]:
    for batch in batches:
        yield reader.fix(batch)


def _named_errors(chunks: Iterator[Any], sql: str, reader: str) -> Iterator[Any]:
    """Runs on the reader's thread (inside :func:`prefetch`), where no signal's exception lands."""
    try:
        yield from chunks
    except SlsError:
        raise
    except Exception as err:
        raise _source_error(err, sql, reader) from err
    except BaseException as err:
        # connectorx's Rust panics (pyo3's PanicException) are BaseExceptions; no other is wrapped.
        if type(err).__name__ != "PanicException":
            raise
        raise _source_error(err, sql, reader) from err


def _source_error(err: BaseException, sql: str, reader: str) -> SlsSourceError:
    query = " ".join(sql.split())
    query = query if len(query) <= 200 else query[:197] + "..."
    detail = " ".join(str(err).split())
    return SlsSourceError(
        f"Reading the query failed ({reader} reader): {type(err).__name__}: {detail}. Query: {query}"
    )


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
