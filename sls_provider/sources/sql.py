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

The export never changes the source. Before anything runs, :func:`check_read_only` refuses any sql
that is not a single read statement (an early, clear error); then :func:`read_only_session` makes the
session read-only where the database can enforce it (PostgreSQL, MySQL/MariaDB, SQLite), which also
stops what a parser cannot see (a ``SELECT`` calling ``nextval()``); and whatever the statement did
is rolled back when the export ends. Both are plain functions so that any reader can apply them.

On failure or early stop the connection is closed without draining the cursor (:func:`abort`): an
unbuffered MySQL cursor would otherwise read every remaining row before closing.

Values that the drivers hand over in forms the value table would spell badly are put right per
column by :class:`sls_provider.sources.types.ColumnFixer` (``memoryview``, ranges, MySQL booleans,
``TIME``, ``JSON``).
"""

from __future__ import annotations

import difflib
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import sqlparse
from sqlparse import tokens as T

from sls_provider.core.errors import SlsInputError
from sls_provider.sources.frames import frames_from_rows
from sls_provider.sources.types import (
    MYSQL_DRIVERS,
    POSTGRES_DRIVERS,
    ColumnFixer,
    keep_date_text,
    keep_json_text,
)

log = logging.getLogger(__name__)

#: ``net_write_timeout`` (seconds) set on MySQL sessions that stream: how long the server waits for the
#: client to take the next rows before it gives up on the query (the server's default is 60).
MYSQL_NET_WRITE_TIMEOUT = 3600


#: The statements an export may run: the first keyword of the sql (after comments and parentheses).
READ_STATEMENTS = ("SELECT", "WITH", "VALUES", "TABLE", "SHOW")
#: Keywords that follow ``FOR`` in a locking read (``FOR UPDATE``, ``FOR NO KEY UPDATE``, ``FOR SHARE``).
_LOCKING = ("UPDATE", "NO", "SHARE", "KEY")
#: MySQL option of ``mysql_set_server_option``: one statement per query (MySQLdb allows several).
_MYSQL_OPTION_MULTI_STATEMENTS_OFF = 1


def check_read_only(sql: str) -> None:
    """Refuse ``sql`` unless it is a single read statement, before anything is run.

    Allowed: one ``SELECT``, ``WITH ... SELECT``, ``VALUES``, ``TABLE`` or ``SHOW`` statement (a
    trailing ``;`` is fine). Refused, with an :class:`SlsInputError` naming the statement kind: any
    other statement (``TRUNCATE``, ``CREATE``, ``INSERT``, ``CALL``, ``SET``, ``EXPLAIN``...), more than
    one statement, a data-changing statement inside a ``WITH`` (``WITH x AS (DELETE ... RETURNING *)``),
    ``SELECT ... INTO``, locking reads (``FOR UPDATE``/``FOR SHARE``, ``LOCK IN SHARE MODE``), and
    MySQL executable comments (``/*! ... */``, which MySQL runs as code). Comments and string
    literals are skipped (``sqlparse`` tokens), so ``SELECT 'DELETE'`` passes.

    This is the early, clear error; the real guard is the read-only session
    (:func:`read_only_session`), which also covers what a parser cannot see.

    A backslash is read both ways: as an escape (sqlparse's reading, MySQL's default) and as an
    ordinary character (standard SQL, PostgreSQL's ``'...'`` strings). Either reading must be a
    single read: ``SELECT 'a\\'; COMMIT; BEGIN READ WRITE; DELETE FROM t; COMMIT; -- '`` is one string
    to sqlparse but five commands to PostgreSQL, and psycopg2's server-side cursor (sent in the simple
    query protocol) runs them all, its ``BEGIN READ WRITE`` lifting the read-only session.

    :param sql: the statement to check.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise SlsInputError("sql is empty")
    _check_one_reading(sql)
    if "\\" in sql:
        try:
            _check_one_reading(sql.replace("\\", " "))
        except SlsInputError as err:
            raise SlsInputError(
                f"{err} (Reading its backslashes as ordinary characters, as PostgreSQL does in "
                "'...' strings.)"
            ) from None


def _check_one_reading(sql: str) -> None:
    statements = [s for s in sqlparse.parse(sql) if s.token_first(skip_cm=True, skip_ws=True) is not None]
    if not statements:
        raise SlsInputError("The sql is refused, nothing was run: it holds only comments, no statement")
    if len(statements) > 1:
        kinds = ", ".join(_first_keyword(s) or "?" for s in statements)
        raise SlsInputError(
            f"The sql is refused, nothing was run: it holds {len(statements)} statements ({kinds}). "
            "An export runs only a single read statement."
        )
    words = [t for t in statements[0].flatten() if not t.is_whitespace]
    kind = _first_keyword(statements[0])
    if kind is None:
        raise _not_understood(statements[0])
    if kind not in READ_STATEMENTS:
        raise _not_a_read(f"{_a(kind)} {kind} statement")
    for i, token in enumerate(words):
        value = token.normalized.upper()
        if token.ttype in T.Comment and token.value.lstrip().upper().startswith(("/*!", "/*M!")):
            raise _not_a_read("a MySQL executable comment (/*! ... */), which MySQL runs as code")
        if token.ttype in T.Keyword.DDL:
            raise _not_a_read(f"{_a(kind)} {kind} statement holding {value}")
        if token.ttype in T.Keyword.DML and value != "SELECT":
            before = words[i - 1].normalized.upper() if i else ""
            if before == "FOR" and value == "UPDATE":
                raise _not_a_read(f"a locking read ({kind} ... FOR UPDATE)")
            raise _not_a_read(f"{_a(kind)} {kind} statement holding {value}")
        if token.ttype in T.Keyword and value == "INTO":
            raise _not_a_read(f"a {kind} ... INTO statement, which writes its result")
        if token.ttype in T.Keyword and value in ("FOR", "LOCK") and i + 1 < len(words):
            after = words[i + 1].normalized.upper()
            if (value == "FOR" and after in _LOCKING) or (value == "LOCK" and after == "IN"):
                clause = "LOCK IN SHARE MODE" if value == "LOCK" else f"FOR {after}"
                raise _not_a_read(f"a locking read ({kind} ... {clause})")


def _first_keyword(statement: Any) -> str | None:
    for token in statement.flatten():
        if token.is_whitespace or token.ttype in T.Comment or token.ttype in T.Punctuation:
            continue
        return token.normalized.upper() if token.is_keyword else None
    return None


def _not_understood(statement: Any) -> SlsInputError:
    """``SELEC * FROM t``: name the word that is not a statement's first keyword, and what it may be."""
    word = next(
        t.value
        for t in statement.flatten()
        if not (t.is_whitespace or t.ttype in T.Comment or t.ttype in T.Punctuation)
    )
    close = difflib.get_close_matches(word.upper(), READ_STATEMENTS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return SlsInputError(
        f"The sql is refused, nothing was run: it starts with {word!r}, which is not an SQL statement "
        f"keyword{hint}. An export runs only a single read statement ({', '.join(READ_STATEMENTS)})."
    )


def _a(word: str) -> str:
    return "an" if word[:1] in "AEIOU" else "a"


def _not_a_read(what: str) -> SlsInputError:
    allowed = ", ".join(READ_STATEMENTS)
    return SlsInputError(
        f"The sql is refused, nothing was run: it is {what}. An export runs only a single read "
        f"statement ({allowed}), so that it cannot change the source."
    )


def read_only_session(conn: Any, driver: str | None = None) -> bool:
    """Make ``conn``'s session read-only, where the database can enforce it, before the export's
    statement runs; ``True`` if it did.

    - **PostgreSQL** (psycopg2, psycopg): ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``,
      committed so that it holds for the transaction the query runs in (and in autocommit mode).
    - **MySQL/MariaDB** (MySQLdb, PyMySQL, mysql-connector): ``SET SESSION TRANSACTION READ ONLY`` and
      ``START TRANSACTION READ ONLY`` (this also refuses DDL, ``TRUNCATE`` and locking reads); MySQLdb
      is also switched to one statement per query.
    - **SQLite**: ``PRAGMA query_only = ON``.
    - anything else: nothing (:func:`check_read_only` and the final rollback still apply).

    A server that refuses the setting is logged as a warning and the export goes on.

    :param conn: a DB-API connection the export owns (the settings last until it is closed).
    :param driver: its driver name, if known (see :func:`driver_name`).
    """
    driver = driver or driver_name(conn)
    if driver in POSTGRES_DRIVERS:
        statements = ["SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"]
    elif driver in MYSQL_DRIVERS:
        statements = ["SET SESSION TRANSACTION READ ONLY", "START TRANSACTION READ ONLY"]
        if driver == "MySQLdb":
            conn.set_server_option(_MYSQL_OPTION_MULTI_STATEMENTS_OFF)
    elif driver == "sqlite3":
        statements = ["PRAGMA query_only = ON"]
    else:
        return False
    cursor = conn.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
            if driver in POSTGRES_DRIVERS:
                conn.commit()  # SET is transactional: ended with a commit, it holds for what follows
    except Exception as err:  # noqa: BLE001 - e.g. a MySQL-protocol server without read-only transactions
        log.warning("Could not make the %s session read-only (%s): the sql is only checked", driver, err)
        return False
    finally:
        cursor.close()
    return True


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
        set_net_write_timeout(conn)
        return conn.cursor(cursors.SSCursor)
    if driver == "mysql":
        set_net_write_timeout(conn)
        return conn.cursor(buffered=False)
    return conn.cursor()


def set_net_write_timeout(conn: Any) -> None:
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
) -> Iterator[pd.DataFrame]:
    """Run ``sql`` on ``hook`` (a common.sql ``DbApiHook``) and yield its rows ``chunksize`` at a time
    as frames of object columns (:func:`~sls_provider.sources.frames.frames_from_rows`), driver
    values put right per column. ``sql`` is refused first unless it is a single read statement
    (:func:`check_read_only`)."""
    check_read_only(sql)
    yield from stream_checked(hook, sql, parameters, chunksize)


def stream_checked(
    hook: Any,
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    chunksize: int,
) -> Iterator[pd.DataFrame]:
    """:func:`stream_query` for ``sql`` its caller has checked already (``read_query`` checks once,
    before it chooses any reader)."""
    if not hasattr(hook, "get_conn") or not hasattr(hook, "run"):
        raise SlsInputError(
            f"The sql connection's hook is a {type(hook).__name__}, not a common.sql DbApiHook"
        )
    conn = hook.get_conn()
    try:
        yield from _stream(conn, sql, parameters, chunksize)
    except BaseException:
        # Failure or early stop (GeneratorExit): close without reading the rows still pending.
        abort(conn)
        raise
    conn.rollback()  # the statement only read; whatever else it did is undone
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
) -> Iterator[pd.DataFrame]:
    driver = driver_name(conn)
    read_only_session(conn, driver)
    keep_date_text(conn, driver)
    cursor = open_cursor(conn, driver)
    keep_json_text(cursor, driver)
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
            yield fixer(frames_from_rows(rows, names))
            rows = cursor.fetchmany(chunksize)
    except BaseException:
        # Before ``cursor`` is released with this frame: collecting an unbuffered cursor drains it.
        abort(conn)
        raise
    cursor.close()  # every row was read, so this is cheap
