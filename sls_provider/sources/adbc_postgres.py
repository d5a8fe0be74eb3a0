"""PostgreSQL's Arrow reader: ADBC (``adbc-driver-postgresql``, libpq and ``COPY ... TO STDOUT (FORMAT
binary)`` underneath), batches streamed as they arrive.

It accepts a query only if every column's type is one it reads *faithfully*: each value spelled
exactly as the DB-API reader (:mod:`sls_provider.sources.sql`) spells it (``docs/values.md``);
:meth:`PostgresArrowReader.open` raises :class:`~sls_provider.sources.reader.Unfaithful` otherwise,
and the caller uses the DB-API reader for that query. The few columns that need it are put into the
DB-API spelling here, as Arrow columns (numeric text, ``timestamptz`` in the session's zone).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pyarrow as pa

from sls_provider.sources.arrow import numeric_text
from sls_provider.sources.reader import ArrowReader, Unfaithful

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
#: of 16 MiB each (the peak RSS grew with the table at the default: docs/performance.md).
POSTGRES_BATCH_BYTES = 1 << 20
#: Options of a postgres connection's extra that are libpq's own (the rest are the provider's).
_POSTGRES_IGNORED = {"iam", "redshift", "redshift-serverless", "aws_conn_id", "cursor", "azure_conn_id"}


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


class PostgresArrowReader(ArrowReader):
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
    conn_types = ("postgres",)
    package = "adbc_driver_postgresql"

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
