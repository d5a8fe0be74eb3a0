"""SQLite query results as Arrow record batches, built from the standard library driver's rows.

No native SQLite reader fits: ``adbc-driver-sqlite`` fixes a column's type from its first rows and
fails on a later value of another type (SQLite's columns take any type in any row), and connectorx
reads through its own connection, which ``PRAGMA query_only`` cannot reach. ``sqlite3`` itself is
fast; what costs the DB-API reader is the pandas frame of object columns around its rows. Here each
batch's columns go straight to Arrow arrays: a column whose values are all of one of SQLite's types
(``INTEGER``, ``REAL``, ``TEXT``; NULLs anywhere) becomes an ``int64``, ``float64`` or ``string``
array; any other column (``BLOB``, several types in one column, values of a connection's own
converters) is spelled value by value by the same code as the DB-API reader's object columns. So every
value is spelled as the DB-API reader spells it, by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from sls_provider.core.errors import SlsInputError
from sls_provider.sources.arrow import text_array
from sls_provider.sources.reader import ArrowReader, SourceHook
from sls_provider.sources.sql import driver_name, read_only_session

#: Rows a batch, at most: about a chunk's worth, so that what the read-ahead holds stays a few chunks
#: (a smaller ``chunksize`` makes the batches that small too).
BATCH_ROWS = 10_000

_NATIVE = {int: pa.int64(), float: pa.float64(), str: pa.string()}


def rows_to_batch(rows: list[tuple], names: list[str]) -> pa.RecordBatch:
    """One batch of ``sqlite3`` rows as Arrow columns (see the module doc)."""
    arrays = []
    for name, values in zip(names, zip(*rows, strict=True), strict=True):
        kinds = set(map(type, values))
        kinds.discard(type(None))
        kind = _NATIVE.get(kinds.pop()) if len(kinds) == 1 else (pa.string() if not kinds else None)
        if kind is not None:
            arrays.append(pa.array(values, type=kind))
        else:
            arrays.append(text_array(values, name))
    return pa.RecordBatch.from_arrays(arrays, names=names)


class SqliteArrowReader(ArrowReader):
    """Streams a query's result from SQLite (the hook's own ``sqlite3`` connection, read-only).

    ``sqlite3`` objects belong to the thread that made them, and rows are read on the read-ahead
    thread, so the connection is opened there, by the first batch asked for, and closed there.

    :param hook: a ``SqliteHook`` (any common.sql hook whose connection is ``sqlite3``'s).
    :param sql: the query.
    :param batch_rows: rows a batch at most (the export's ``chunksize``); at most :data:`BATCH_ROWS`.
    """

    name = "arrow (sqlite3)"
    #: how the window of an incremental export is bound (:func:`sls_provider.incremental.window_query`)
    paramstyle = "qmark"
    conn_types = ("sqlite",)  # the standard library's sqlite3: no package to check

    @classmethod
    def why(cls, source: SourceHook) -> str:
        return "sqlite3's rows go straight to Arrow columns, without a pandas frame"

    def __init__(self, hook: Any, sql: str, *, batch_rows: int | None = None, parameters: Any = None) -> None:
        self.sql = sql
        self.parameters = parameters
        self.hook = hook
        self.batch_rows = min(batch_rows or BATCH_ROWS, BATCH_ROWS)
        self._reading: Iterator[pa.RecordBatch] | None = None

    def open(self) -> Iterator[pa.RecordBatch]:
        self._reading = self._batches()
        return self._reading

    def _batches(self) -> Iterator[pa.RecordBatch]:
        conn = self.hook.get_conn()
        try:
            if driver_name(conn) != "sqlite3":
                raise SlsInputError(f"The sqlite connection's driver is {driver_name(conn)}, not sqlite3")
            read_only_session(conn, "sqlite3")
            cursor = conn.cursor()
            if self.parameters is None:
                cursor.execute(self.sql)
            else:
                cursor.execute(self.sql, self.parameters)
            if cursor.description is None:
                raise SlsInputError("The sql returned no result set (is it a SELECT?)")
            names = [column[0] for column in cursor.description]
            while rows := cursor.fetchmany(self.batch_rows):
                yield rows_to_batch(rows, names)
            conn.rollback()  # the statement only read; whatever else it did is undone
        finally:
            conn.close()

    def close(self) -> None:
        # Called on the reading thread when it stops (readers._arrow_chunks): closing the generator
        # there closes the connection there, not wherever the generator would be collected.
        if self._reading is not None:
            self._reading.close()  # type: ignore[attr-defined]
