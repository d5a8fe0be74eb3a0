"""Arrow readers: query results as Arrow record batches, read by native drivers, without a Python
object per value.

- **PostgreSQL**: ADBC (``adbc-driver-postgresql``, libpq and ``COPY ... TO STDOUT (FORMAT binary)``
  underneath), batches streamed as they arrive.
- **MySQL / MariaDB**: connectorx (``return_type="arrow_stream"``), batches streamed.

Each reader accepts a query only if every column's type is one it reads *faithfully*: each value
spelled exactly as the DB-API reader (:mod:`sls_provider.sources.sql`) spells it (``docs/values.md``).
:meth:`check` returns why not otherwise, and the caller uses the DB-API reader for that query. The few
columns that need it are put into the DB-API spelling here, as Arrow columns (numeric text,
``timestamptz`` in the session's zone, MySQL booleans).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from sls_provider.core.encode import arrow_column_text, values_text
from sls_provider.core.values import to_text
from sls_provider.sources.sql import read_only_session

#: PostgreSQL types (``typname``) whose ADBC Arrow values spell as psycopg's Python values do.
#: json/jsonb: both readers send the database's own text (ADBC's ``arrow.json`` extension holds it:
#: json as stored, jsonb as ``jsonb_out`` writes it, the binary COPY's version byte dropped).
#: Not here, so read with the DB-API reader: interval (psycopg counts 30-day months), float4 (psycopg
#: parses the text, Arrow widens the float32), arrays (ADBC 1.13 flattens a 2-D array into one list and
#: fails mid-stream on a lower bound other than 1, and the type does not say which an array is), bit,
#: ranges, enums, money, inet and other types ADBC hands over as opaque bytes.
POSTGRES_TYPES = frozenset(
    "int2 int4 int8 oid float8 bool text varchar bpchar name timestamp timestamptz date time bytea "
    "numeric uuid json jsonb".split()
)
#: Types whose ADBC column is an extension array of text: its storage is the DB-API reader's text.
_POSTGRES_TEXT_STORAGE = frozenset(("json", "jsonb"))
#: ADBC's PostgreSQL batch size, in bytes of COPY data (its default, 16 MiB, is ~250,000 short rows): a
#: batch about a chunk's size, so that what the read-ahead holds stays a few chunks, not a few batches
#: of 16 MiB each (measured: peak RSS +90 MiB from 300,000 to 3,000,000 rows with the default, flat
#: with 1 MiB; docs/large-tables.md).
POSTGRES_BATCH_BYTES = 1 << 20
#: Options of a postgres connection's extra that are libpq's own (the rest are the provider's).
_POSTGRES_IGNORED = {"iam", "redshift", "redshift-serverless", "aws_conn_id", "cursor", "azure_conn_id"}

# MySQL protocol field types (MySQLdb.constants.FIELD_TYPE).
_MYSQL_INTS = {2, 3, 8, 9, 13}  # SHORT, LONG, LONGLONG, INT24, YEAR
_MYSQL_TINY, _MYSQL_DOUBLE, _MYSQL_DATES = 1, 5, {7, 10, 12, 14}
_MYSQL_TEXTS = {15, 247, 248, 249, 250, 251, 252, 253, 254}

# A numeric's text that str(Decimal(text)) spells differently: not plain digits (NaN, Infinity), or
# below 1e-6 with 7+ fraction digits, where Decimal switches to an exponent (0E-10, 1.000E-7).
_PLAIN_NUMERIC = r"^-?\d+(\.\d+)?$"
_EXPONENT_NUMERIC = r"^-?0\.0{6}\d"


class Unfaithful(Exception):
    """The Arrow reader cannot spell this query's results as the DB-API reader does."""


# -- PostgreSQL ---------------------------------------------------------------------------------


def postgres_uri(hook: Any) -> str:
    """A libpq URI for the hook's connection, with the settings ``PostgresHook.get_conn`` passes to
    psycopg: host, port, login, password, database (the hook's, else the schema), ``options`` and
    every extra that is a libpq keyword (``sslmode``, ``sslrootcert``, ``application_name``...)."""
    conn = hook.get_connection(getattr(hook, hook.conn_name_attr))
    extra = dict(conn.extra_dejson)
    for flag in ("iam", "redshift", "redshift-serverless", "azure_conn_id"):
        if extra.get(flag):
            raise Unfaithful(f"the connection uses {flag!r} (credentials only the postgres hook can make)")
    ignored = set(getattr(hook, "ignored_extra_options", ())) | _POSTGRES_IGNORED
    params = {k: v for k, v in extra.items() if k not in ignored and not k.startswith("sqlalchemy_")}
    if getattr(hook, "options", None):
        params["options"] = hook.options
    user = quote(conn.login or "", safe="")
    password = f":{quote(conn.password, safe='')}" if conn.password else ""
    auth = f"{user}{password}@" if user or password else ""
    host = conn.host or ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = f":{conn.port}" if conn.port else ""
    database = quote(getattr(hook, "database", None) or conn.schema or "", safe="")
    query = "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in params.items())
    return f"postgresql://{auth}{host}{port}/{database}" + (f"?{query}" if query else "")


class PostgresArrowReader:
    """Streams a query's result from PostgreSQL through ADBC.

    :param hook: a ``PostgresHook``.
    :param sql: the query.
    :param batch_rows: not used: ADBC's batches are about :data:`POSTGRES_BATCH_BYTES` of COPY data,
        which bounds them whatever the rows' width.
    """

    name = "arrow (adbc-driver-postgresql)"
    #: how the window of an incremental export is bound: ADBC reads a query with bound parameters
    #: whole (no COPY), so the bounds are session settings (:func:`sls_provider.incremental.window_query`)
    paramstyle = "settings"

    def __init__(self, hook: Any, sql: str, *, batch_rows: int | None = None, parameters: Any = None) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        self.sql = sql
        self.settings: dict[str, str] = dict(parameters or {})
        self.conn = adbc.connect(postgres_uri(hook))
        self.cursor: Any = None
        self.zone: ZoneInfo | None = None

    def open(self) -> pa.RecordBatchReader:
        """Run the query; raise :class:`Unfaithful` (before any row is read) for a column type the
        Arrow reader cannot spell as the DB-API reader does."""
        self._read_only()
        zone = self._session_zone()  # before the query: its COPY holds the connection until read
        self._apply_settings()
        self.cursor = self.conn.cursor()
        self.cursor.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(POSTGRES_BATCH_BYTES)}
        )
        self.cursor.execute(self.sql)
        reader = self.cursor.fetch_record_batch()
        bad = []
        for field in reader.schema:
            typname = (field.metadata or {}).get(b"POSTGRESQL:type", b"?").decode()
            if typname not in POSTGRES_TYPES:
                bad.append(f"{field.name} ({typname})")
            elif typname == "timestamptz":
                if isinstance(zone, str):
                    bad.append(f"{field.name} (timestamptz in the session time zone {zone!r})")
                self.zone = zone if isinstance(zone, ZoneInfo) else None
        if bad:
            raise Unfaithful("column type(s) it does not read as the DB-API reader does: " + ", ".join(bad))
        return reader

    def _read_only(self) -> None:
        """The same read-only session as the DB-API reader's (:func:`~sls_provider.sources.sql.
        read_only_session`): committed, so the query's own transaction is read-only."""
        cursor = self.conn.cursor()
        try:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        finally:
            cursor.close()
        self.conn.commit()

    def _apply_settings(self) -> None:
        """Session settings the query reads with ``current_setting`` (bound, never in the SQL text)."""
        if not self.settings:
            return
        cursor = self.conn.cursor()
        try:
            for name, value in self.settings.items():
                cursor.execute("SELECT set_config($1, $2, false)", (name, value))
                cursor.fetchall()
        finally:
            cursor.close()

    def _session_zone(self) -> ZoneInfo | str:
        """The session's zone (psycopg hands timestamptz over in it, ADBC in UTC), or its name if it
        is not an IANA zone Python knows."""
        cursor = self.conn.cursor()
        try:
            cursor.execute("SELECT current_setting('TimeZone')")
            name = str(cursor.fetchone()[0])
        finally:
            cursor.close()
        try:
            return ZoneInfo(name)
        except (ValueError, OSError):
            return name

    def fix(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with each column in the DB-API reader's spelling."""
        columns = []
        for field, column in zip(batch.schema, batch.columns, strict=True):
            typname = (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
            if typname == "numeric":
                column = numeric_text(column.storage if isinstance(column, pa.ExtensionArray) else column)
            elif typname in _POSTGRES_TEXT_STORAGE and isinstance(column, pa.ExtensionArray):
                column = column.storage
            elif typname == "timestamptz":
                column = column.cast(pa.timestamp(column.type.unit, tz=str(self.zone)))
            columns.append(column)
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)

    def close(self) -> None:
        for part in (self.cursor, self.conn):
            try:
                if part is not None:
                    part.close()
            except Exception:  # noqa: BLE001 - closing after a failure: the failure matters
                pass


def numeric_text(column: pa.Array) -> pa.Array:
    """PostgreSQL numeric text (ADBC) as ``str(Decimal(text))`` (psycopg's ``Decimal``) spells it:
    the same text, except NaN (left out), Infinity, and values below 1e-6 with 7+ fraction digits."""
    text = pl.Series(column)
    odd = (~text.str.contains(_PLAIN_NUMERIC) | text.str.contains(_EXPONENT_NUMERIC)).fill_null(False)
    rows = odd.arg_true()
    if len(rows):
        text = text.scatter(rows, [to_text(Decimal(v)) for v in text.gather(rows).to_list()])
    return text.to_arrow()


# -- MySQL / MariaDB ----------------------------------------------------------------------------


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


class MySqlArrowReader:
    """Streams a query's result from MySQL/MariaDB through connectorx.

    connectorx's Arrow schema does not say which ``TINYINT`` is a ``BOOLEAN`` nor which text is ``TIME``,
    so the column types come from the driver first: the query as a derived table with ``LIMIT 0``.

    :param hook: a ``MySqlHook``.
    :param sql: the query.
    :param batch_rows: rows a batch at most (the export's ``chunksize``); at most 10,000.
    """

    name = "arrow (connectorx)"
    #: connectorx binds no parameters: no incremental window on this reader
    paramstyle = None

    def __init__(self, hook: Any, sql: str, *, batch_rows: int | None = None) -> None:
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
        """Check the column types, then run the query (see :meth:`PostgresArrowReader.open`)."""
        import connectorx

        bad = []
        for i, column in enumerate(self._describe()):
            code, size = column[1], column[3]
            if code == _MYSQL_TINY:
                if size == 1:
                    self.fixes[i] = mysql_bool_text
            # DECIMAL: connectorx 0.4 reads them at scale 10 and fails on other scales.
            elif code not in _MYSQL_INTS | _MYSQL_DATES | _MYSQL_TEXTS | {_MYSQL_DOUBLE}:
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


def mysql_bool_text(column: pa.Array) -> pa.Array:
    """``TINYINT(1)``/``BOOLEAN`` as the DB-API reader spells it: 0 and 1 as booleans, others digits."""
    text = pc.cast(column, pa.string())
    return pc.if_else(pc.equal(column, 0), "false", pc.if_else(pc.equal(column, 1), "true", text))


# -- both ---------------------------------------------------------------------------------------


def rechunk(batches: Iterator[pa.RecordBatch], chunksize: int) -> Iterator[pa.Table]:
    """Tables of exactly ``chunksize`` rows (the last one fewer), whatever the driver's batch sizes:
    chunks decide how rows group by topic, so every reader must cut the same chunks."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        rows += batch.num_rows
        if rows >= chunksize:
            table = _concat(pending)
            start = 0
            while rows - start >= chunksize:
                yield table.slice(start, chunksize)
                start += chunksize
            rest = table.slice(start).to_batches()
            pending, rows = [b for b in rest if b.num_rows], rows - start
    if rows:
        yield _concat(pending)


def _concat(batches: list[pa.RecordBatch]) -> pa.Table:
    """One table of ``batches``. A column whose type differs between them (a reader that spells one
    batch's column value by value, e.g. MySQL's zero dates) becomes text in all of them, spelled by
    the encoder's own :func:`~sls_provider.core.encode.arrow_column_text`, so the bytes sent are the
    same as if each batch had been encoded alone."""
    schema = batches[0].schema
    if all(b.schema.equals(schema) for b in batches[1:]):
        return pa.Table.from_batches(batches)
    differ = {
        i
        for i, field in enumerate(schema)
        if any(not b.schema.field(i).type.equals(field.type) for b in batches)
    }
    texts = []
    for batch in batches:
        table = pa.Table.from_batches([batch])
        columns = [
            _text(table.column(i), name) if i in differ else table.column(i)
            for i, name in enumerate(table.column_names)
        ]
        texts.append(pa.Table.from_arrays(columns, names=table.column_names))
    return pa.concat_tables(texts)


def text_array(values: Iterable[Any], name: str) -> pa.Array:
    """Python values as an Arrow string array in the encoder's spelling (for the readers' columns
    spelled value by value)."""
    return values_text(values, name).to_arrow().cast(pa.string())


def _text(column: pa.ChunkedArray, name: str) -> pa.Array:
    # A table of the one column: the result's names may repeat (SELECT a, a).
    return arrow_column_text(pa.table([column], names=[name]), name).to_arrow().cast(pa.string())
