"""MySQL/MariaDB's Arrow reader through connectorx (``return_type="arrow_stream"``), batches streamed,
for a connection whose client is not mysqlclient (mysqlclient's has
:class:`~sls_provider.sources.mysql_arrow.MySqlClientArrowReader`).

It accepts a query only if every column's type is one it reads *faithfully* (see
:mod:`sls_provider.sources.adbc_postgres`); MySQL's booleans are put into the DB-API spelling here.
It reads ahead without a memory bound (:data:`UNBOUNDED`), so only ``sql_reader="arrow"`` takes it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pyarrow as pa

from sls_provider.sources import mysql_types as field_type
from sls_provider.sources.arrow import mysql_bool_text
from sls_provider.sources.reader import ArrowReader, SourceHook, Unfaithful
from sls_provider.sources.sql import read_only_session

#: Why ``auto`` does not take connectorx: its ``arrow_stream`` reads ahead without a bound when the
#: export is slower than the query (as it is when sending is throttled), so memory grows with the
#: result (``benchmarks/bench_memory.py``; figures in docs/performance.md). ``sql_reader="arrow"``
#: still uses it, for a result that fits in memory.
UNBOUNDED = (
    "connectorx reads ahead without a memory bound when the export is slower than the query; "
    "sql_reader='arrow' uses it anyway"
)
#: The types it reads as the DB-API reader does (``TINY`` with its booleans put right).
_FAITHFUL = field_type.INTEGERS | field_type.DATES | field_type.TEXTS | {field_type.DOUBLE}


def mysql_uri(hook: Any) -> str:
    """A connectorx URI for a ``MySqlHook`` connection (host, port, login, password, schema)."""
    conn = hook.get_connection(getattr(hook, hook.conn_name_attr))
    unsupported = sorted(
        k
        for k, v in conn.extra_dejson.items()
        if v and k not in ("charset", "cursor", "client", "local_infile")
    )
    if unsupported:
        raise Unfaithful(f"connectorx does not take the connection extra(s) {unsupported}")
    charset = str(conn.extra_dejson.get("charset") or "utf8mb4").lower()
    if not charset.startswith("utf8"):
        raise Unfaithful(f"connectorx reads text as UTF-8, the connection's charset is {charset!r}")
    user = quote(conn.login or "", safe="")
    password = quote(conn.password or "", safe="")
    database = quote(getattr(hook, "schema", None) or conn.schema or "", safe="")
    return f"mysql://{user}:{password}@{conn.host or 'localhost'}:{conn.port or 3306}/{database}"


class MySqlArrowReader(ArrowReader):
    """Streams a query's result from MySQL/MariaDB through connectorx.

    connectorx's Arrow schema does not say which ``TINYINT`` is a ``BOOLEAN`` nor which text is ``TIME``,
    so the column types come from the driver first: the query as a derived table with ``LIMIT 0``.

    :param hook: a ``MySqlHook``.
    :param sql: the query.
    :param batch_rows: rows a batch at most (the export's ``chunksize``); at most 10,000.
    :param parameters: not used: connectorx binds none.
    """

    name = "arrow (connectorx)"
    #: connectorx binds no parameters: no incremental window on this reader
    paramstyle = None
    conn_types = ("mysql",)
    package = "connectorx"
    unbounded = UNBOUNDED

    @classmethod
    def can_read(cls, source: SourceHook) -> str | None:
        """A MySQL connection whose client is not mysqlclient (any other)."""
        if source.conn_type == "mysql" and source.client == "mysqlclient":
            return "mysqlclient's connections have their own reader"
        return super().can_read(source)

    def __init__(self, hook: Any, sql: str, *, batch_rows: int | None = None, parameters: Any = None) -> None:
        self.batch_rows = min(batch_rows or 10_000, 10_000)
        self.sql = sql
        self.hook = hook
        self.uri = mysql_uri(hook)
        self.fixes: dict[int, Any] = {}

    def _describe(self) -> list:
        conn = self.hook.get_conn()
        try:
            # connectorx runs the query on a connection of its own, which cannot be made read-only:
            # there, check_read_only is the guard, and this description (which the server parses as a
            # derived table, so only a query can pass) runs read-only.
            read_only_session(conn)
            cursor = conn.cursor()
            cursor.execute(f"SELECT * FROM ({self.sql.strip().rstrip(';')}) AS sls_describe LIMIT 0")
            return list(cursor.description)
        except Exception as err:  # noqa: BLE001 - not a derived table (a CALL, SHOW...): DB-API reads it
            raise Unfaithful(f"its columns could not be described ({type(err).__name__})") from err
        finally:
            conn.close()

    def open(self) -> pa.RecordBatchReader:
        """Check the column types, then run the query (see :meth:`ArrowReader.open`)."""
        import connectorx

        bad = []
        for i, column in enumerate(self._describe()):
            code, size = column[1], column[3]
            if code == field_type.TINY:
                if size == 1:
                    self.fixes[i] = mysql_bool_text
            # DECIMAL: connectorx 0.4 reads them at scale 10 and fails on other scales.
            elif code not in _FAITHFUL:
                bad.append(f"{column[0]} (type {code})")
        if bad:
            raise Unfaithful("column type(s) it does not read as the DB-API reader does: " + ", ".join(bad))
        return connectorx.read_sql(self.uri, self.sql, return_type="arrow_stream", batch_size=self.batch_rows)

    def fix(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self.fixes:
            return batch
        columns = [self.fixes[i](c) if i in self.fixes else c for i, c in enumerate(batch.columns)]
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)

    def close(self) -> None:
        pass
