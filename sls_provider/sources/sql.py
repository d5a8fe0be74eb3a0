"""Query results streamed from a common.sql hook in chunks, without holding the whole result.

A DB-API cursor's ``fetchmany`` only bounds memory when the cursor itself streams: the default
cursors of psycopg2 and of the MySQL drivers fetch the whole result on ``execute``. For those we open
a server-side cursor (a named cursor for psycopg2, ``SSCursor`` for MySQLdb/PyMySQL); every other
driver gets its plain cursor.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from typing import Any

import pandas as pd

from sls_provider.core.errors import SlsInputError


def _cursor(conn: Any) -> Any:
    module = type(conn).__module__.split(".")[0]
    if module == "psycopg2":
        # A named cursor is a server-side cursor; itersize is irrelevant since we use fetchmany.
        return conn.cursor(name=f"sls_export_{uuid.uuid4().hex[:12]}")
    if module in ("MySQLdb", "pymysql"):
        cursors = __import__(f"{module}.cursors", fromlist=["SSCursor"])
        return conn.cursor(cursors.SSCursor)
    return conn.cursor()


def stream_query(
    hook: Any,
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    chunksize: int,
    to_frame: Callable[[list, list[str]], pd.DataFrame],
) -> Iterator[pd.DataFrame]:
    """Run ``sql`` on ``hook`` (a common.sql ``DbApiHook``) and yield its rows ``chunksize`` at a time
    as frames built by ``to_frame(rows, column_names)``."""
    if not hasattr(hook, "get_conn") or not hasattr(hook, "run"):
        raise SlsInputError(
            f"The sql connection's hook is a {type(hook).__name__}, not a common.sql DbApiHook"
        )
    if not isinstance(sql, str) or not sql.strip():
        raise SlsInputError("sql is empty")
    with closing(hook.get_conn()) as conn, closing(_cursor(conn)) as cursor:
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        if cursor.description is None:
            raise SlsInputError("The sql returned no result set (is it a SELECT?)")
        names = [column[0] for column in cursor.description]
        while rows := cursor.fetchmany(chunksize):
            yield to_frame(rows, names)
