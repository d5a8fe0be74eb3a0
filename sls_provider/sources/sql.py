"""Query results streamed from a common.sql hook in chunks, without holding the whole result.

A DB-API cursor's ``fetchmany`` only bounds memory when the cursor itself streams. The default cursors
of the PostgreSQL drivers (psycopg2, and psycopg 3, which the postgres provider uses with SQLAlchemy 2)
and of the MySQL drivers (MySQLdb, PyMySQL) fetch the whole result on ``execute``. So:

- **psycopg2 / psycopg**: a named cursor, i.e. a server-side cursor (``DECLARE ... CURSOR``); each
  ``fetchmany(n)`` is a ``FETCH FORWARD n``. It lives in a transaction that is rolled back when the
  connection closes (the query only reads). The query must be a ``SELECT``/``VALUES``/``TABLE``.
- **MySQLdb / PyMySQL**: ``SSCursor`` (``mysql_use_result``: rows are read off the socket as they are
  fetched). While rows are pending the server waits on the client; ``net_write_timeout`` is raised
  for the session so a slow sink (retries, a rate limit) does not make the server drop the query.
- **mysql-connector-python**: its unbuffered cursor (``buffered=False``).
- **anything else** (sqlite3, and the drivers of most other common.sql providers, which stream by
  default): the plain cursor, with ``arraysize`` set to the chunk size.

On failure or early stop the connection is closed without draining the cursor (:func:`abort`): an
unbuffered MySQL cursor would otherwise read every remaining row before closing.

Values that the drivers hand over in forms the value table would spell badly are put right per
column by :class:`sls_provider.sources.types.ColumnFixer` (``memoryview``, ranges, MySQL booleans,
``TIME``, ``JSON``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from sls_provider.core.errors import SlsInputError
from sls_provider.sources.types import MYSQL_DRIVERS, POSTGRES_DRIVERS, ColumnFixer

#: ``net_write_timeout`` (seconds) set on MySQL sessions that stream: how long the server waits for the
#: client to take the next rows before it gives up on the query (the server's default is 60).
MYSQL_NET_WRITE_TIMEOUT = 3600


def driver_name(conn: Any) -> str:
    """The top-level module of a DB-API connection's class: ``psycopg2``, ``psycopg``, ``MySQLdb``..."""
    return type(conn).__module__.split(".")[0]


def open_cursor(conn: Any, driver: str | None = None) -> Any:
    """A cursor that streams the result of the next ``execute`` on ``conn`` (see the module doc)."""
    driver = driver or driver_name(conn)
    if driver in POSTGRES_DRIVERS:
        name = f"sls_export_{uuid.uuid4().hex[:12]}"
        # Outside a transaction (autocommit) a server-side cursor must be WITH HOLD to outlive DECLARE.
        if getattr(conn, "autocommit", False):
            return conn.cursor(name=name, withhold=True)
        return conn.cursor(name=name)
    if driver in ("MySQLdb", "pymysql"):
        cursors = __import__(f"{driver}.cursors", fromlist=["SSCursor"])
        _set_net_write_timeout(conn)
        return conn.cursor(cursors.SSCursor)
    if driver == "mysql":
        _set_net_write_timeout(conn)
        return conn.cursor(buffered=False)
    return conn.cursor()


def _set_net_write_timeout(conn: Any) -> None:
    cursor = conn.cursor()
    try:
        cursor.execute(f"SET SESSION net_write_timeout = {MYSQL_NET_WRITE_TIMEOUT}")
    except Exception:  # noqa: BLE001 - a server that refuses it streams with its default
        pass
    finally:
        cursor.close()


def stream_query(
    hook: Any,
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    chunksize: int,
    to_frame: Callable[[list, list[str]], pd.DataFrame],
) -> Iterator[pd.DataFrame]:
    """Run ``sql`` on ``hook`` (a common.sql ``DbApiHook``) and yield its rows ``chunksize`` at a time
    as frames built by ``to_frame(rows, column_names)``, driver values put right per column."""
    if not hasattr(hook, "get_conn") or not hasattr(hook, "run"):
        raise SlsInputError(
            f"The sql connection's hook is a {type(hook).__name__}, not a common.sql DbApiHook"
        )
    if not isinstance(sql, str) or not sql.strip():
        raise SlsInputError("sql is empty")
    conn = hook.get_conn()
    try:
        yield from _stream(conn, sql, parameters, chunksize, to_frame)
    except BaseException:
        # Failure or early stop (GeneratorExit): close without reading the rows still pending.
        abort(conn)
        raise
    conn.close()


def abort(conn: Any) -> None:
    """Close ``conn`` at once, whatever its cursor still has to read.

    Closing an unbuffered MySQL cursor (or letting it be garbage collected) reads every remaining row
    of its result first; closing the connection drops them instead, which the server takes as the
    client going away. PyMySQL's cursor and result would still try to read from the closed socket when
    collected, so they are told first that nothing is pending.
    """
    if driver_name(conn) == "pymysql":
        result = getattr(conn, "_result", None)
        if result is not None:
            result.unbuffered_active = False
        conn._result = None
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - already failing or stopping; the original error matters
        pass


def _stream(
    conn: Any,
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    chunksize: int,
    to_frame: Callable[[list, list[str]], pd.DataFrame],
) -> Iterator[pd.DataFrame]:
    driver = driver_name(conn)
    cursor = open_cursor(conn, driver)
    if driver not in POSTGRES_DRIVERS and driver not in MYSQL_DRIVERS:
        try:
            cursor.arraysize = chunksize
        except (AttributeError, TypeError):
            pass
    if parameters is None:
        cursor.execute(sql)
    else:
        cursor.execute(sql, parameters)
    rows = None
    if cursor.description is None and driver == "psycopg2":
        rows = cursor.fetchmany(chunksize)  # a psycopg2 named cursor describes its result at the first FETCH
    if cursor.description is None:
        raise SlsInputError("The sql returned no result set (is it a SELECT?)")
    names = [column[0] for column in cursor.description]
    fixer = ColumnFixer(driver, cursor.description)
    if rows is None:
        rows = cursor.fetchmany(chunksize)
    try:
        while rows:
            yield fixer(to_frame(rows, names))
            rows = cursor.fetchmany(chunksize)
    except BaseException:
        # Before ``cursor`` is released with this frame: collecting an unbuffered cursor drains it.
        abort(conn)
        raise
    cursor.close()  # every row was read, so this is cheap
