"""MySQL/MariaDB as Arrow record batches through mysqlclient's own low-level API, streamed and bounded.

The hook's ``MySQLdb`` connection runs the query with ``mysql_use_result`` (rows are read off the
socket as they are fetched, as ``SSCursor`` does, so the server waits on a slow export and memory stays
a few batches), and the rows are fetched as the server's raw text, without a Python converter, in
batches of :data:`BATCH_ROWS`. Each column then becomes one Arrow array:

- **native**, where an Arrow cast of the text spells every value exactly as the DB-API reader's Python
  value does: integers (``TINYINT(1)`` as ``mysql_bool_text``), ``YEAR``, ``DOUBLE``/``FLOAT`` (parsed
  as float64, as ``float(text)`` is), ``DECIMAL`` (its text, put as ``str(Decimal)`` spells it),
  ``DATE``/``DATETIME``/``TIMESTAMP``, UTF-8 text and binary strings;
- **value by value** otherwise (``TIME``, ``BIT``, ``JSON``, converters the connection was given, a
  batch whose dates Arrow cannot read such as MariaDB's zero date): the very conversion the DB-API
  reader applies (the connection's converter chosen as mysqlclient chooses it, then the
  :mod:`~sls_provider.sources.types` fix of the column), spelled by
  :func:`~sls_provider.core.encode.values_text`. The spelling is the DB-API reader's by construction.

The session is the DB-API reader's: read-only (:func:`~sls_provider.sources.sql.read_only_session`),
``net_write_timeout`` raised, date converters keeping unparsed text (``keep_date_text``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sls_provider.sources import mysql_types as field_type
from sls_provider.sources.arrow import mysql_bool_text, numeric_text, text_array
from sls_provider.sources.reader import ArrowReader, SourceHook, Unfaithful
from sls_provider.sources.sql import abort, read_only_session, set_net_write_timeout
from sls_provider.sources.types import description_fixes, keep_date_text

#: Rows fetched per batch, at most: under a chunk (the default chunksize is 20,000 rows), so that what
#: the read-ahead holds stays a few chunks; large enough that per-batch costs do not show. A smaller
#: ``chunksize`` (wide rows) makes the batches that small too.
BATCH_ROWS = 16_384

# Python codecs for the charsets mysqlclient names differently (``_get_encoding`` in _mysql.c).
_ENCODINGS = {"latin1": "cp1252", "koi8r": "koi8_r", "koi8u": "koi8_u"}

Convert = Callable[[bytes], Any]


def _choose(entry: Any, flags: int) -> Any:
    """The converter mysqlclient picks for a field from the connection's converter entry: a list of
    ``(flag mask, converter)`` is matched against the field's flags (``_mysql_ResultObject_Initialize``)."""
    if entry is None or not isinstance(entry, list | tuple):
        return entry
    for item in entry:
        if isinstance(item, tuple) and len(item) == 2:
            mask, fun = item
            if not isinstance(mask, int) or mask & flags:
                return fun
    return None


def _python(converter: Any, type_code: int, encoding: str) -> Convert:
    """The Python value mysqlclient makes of a field's text with ``converter``."""
    if converter is str:
        return lambda raw: raw.decode(encoding)
    if converter is None or converter is bytes:
        return lambda raw: raw
    if converter is int:
        return int
    if type_code in field_type.STR_ARGUMENT:
        return lambda raw: converter(raw.decode("utf-8"))
    return converter  # type: ignore[no-any-return]


class MySqlClientArrowReader(ArrowReader):
    """Streams a query's result from MySQL/MariaDB through the hook's mysqlclient connection.

    :param hook: a ``MySqlHook`` whose client is mysqlclient (``MySQLdb``).
    :param sql: the query.
    :param batch_rows: rows a batch at most (the export's ``chunksize``); at most :data:`BATCH_ROWS`.
    """

    name = "arrow (mysqlclient)"
    #: how the window of an incremental export is bound (:func:`sls_provider.incremental.window_query`)
    paramstyle = "format"
    conn_types = ("mysql",)
    clients = ("mysqlclient",)
    package = "MySQLdb"

    @classmethod
    def why(cls, source: SourceHook) -> str:
        return (
            f"{cls.name} streams the hook's mysqlclient connection (use_result, raw text into Arrow, "
            f"batches of up to {BATCH_ROWS:,} rows)"
        )

    def __init__(self, hook: Any, sql: str, *, batch_rows: int | None = None, parameters: Any = None) -> None:
        self.hook = hook
        self.sql = sql
        self.parameters = parameters
        self.batch_rows = min(batch_rows or BATCH_ROWS, BATCH_ROWS)
        self.conn: Any = None
        self.result: Any = None
        self.done = False

    def open(self) -> Iterator[pa.RecordBatch]:
        """Run the query; the batches are read as they are iterated."""
        from MySQLdb import _mysql

        conn = self.conn = self.hook.get_conn()
        if not isinstance(conn, _mysql.connection):
            raise Unfaithful(f"the hook's connection is a {type(conn).__module__} one, not mysqlclient's")
        read_only_session(conn, "MySQLdb")
        keep_date_text(conn, "MySQLdb")
        set_net_write_timeout(conn)
        encoding = str(conn.character_set_name()).lower()
        utf8 = encoding.startswith("utf8")
        encoding = "utf-8" if utf8 else _ENCODINGS.get(encoding, encoding)
        if self.parameters is not None:
            # Bound by mysqlclient itself, as its cursor's execute() does (it escapes client-side).
            binder = conn.cursor()
            try:
                self.sql = binder.mogrify(self.sql, self.parameters)
            finally:
                binder.close()
        conn.query(self.sql.encode(conn.encoding) if isinstance(self.sql, str) else self.sql)
        # A converter entry of (BINARY, bytes) for every type: each field's converter is then ``bytes``
        # exactly where mysqlclient sees a binary string (charset 63; field_flags() alone cannot tell
        # those from text in a _bin collation), and every value arrives as the server's raw bytes.
        probe = {code: [(field_type.BINARY, bytes)] for code in range(256)}
        self.result = result = _mysql.result(conn, 1, probe)
        description = result.describe()
        if not description:
            raise Unfaithful("the statement returned no result set")
        names = [column[0] for column in description]
        fixes = description_fixes("MySQLdb", description)
        defaults = _default_converters()
        columns = []
        for i, (column, raw_flags, marker) in enumerate(
            zip(description, result.field_flags(), result.converter, strict=True)
        ):
            flags = (raw_flags | field_type.BINARY) if marker is bytes else (raw_flags & ~field_type.BINARY)
            type_code = column[1]
            converter = _choose(conn.converter.get(type_code), flags)
            fix = fixes.get(i)
            python = _python(converter, type_code, encoding)
            native = _native(type_code, column[3], flags, converter, defaults, fix, utf8)
            columns.append(_ResultColumn(i, names[i], python, fix, native))
        return self._batches(result, columns)

    def _batches(self, result: Any, columns: list[_ResultColumn]) -> Iterator[pa.RecordBatch]:
        names = [c.name for c in columns]
        width = len(columns)
        native = any(c.native is not None for c in columns)
        while True:
            rows = result.fetch_row(self.batch_rows, 0)
            if not rows:
                break
            # One flat list and one Arrow array of the whole batch, each column then taken out of it
            # in C++: less CPU than a transpose and an array per column (each a pass over Python
            # objects), on the reading thread that bounds a MySQL export's speed (docs/performance.md).
            values = list(chain.from_iterable(rows))
            del rows
            flat = pa.array(values, pa.binary(), size=len(values)) if native else None
            if isinstance(flat, pa.ChunkedArray):
                flat = None  # over 2 GiB in one batch (pa.array then splits it): column by column
            arrays = [column(flat, values, width) for column in columns]
            del values, flat
            yield pa.RecordBatch.from_arrays(arrays, names=names)
        self.done = True

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if not self.done:
            # Rows still pending (an early stop, a failure): close the connection before the result
            # is released, which would otherwise read every remaining row first (see sql.abort).
            abort(conn)
            self.result = None
            return
        self.result = None
        try:
            conn.rollback()  # the statement only read; whatever else it did is undone
        finally:
            conn.close()


def _default_converters() -> dict[int, Any]:
    from MySQLdb.converters import conversions

    return conversions


def _native(
    type_code: int,
    size: Any,
    flags: int,
    converter: Any,
    defaults: dict[int, Any],
    fix: Any,
    utf8: bool,
) -> Callable[[pa.Array], pa.Array] | None:
    """The Arrow conversion of a column's raw text that spells as the DB-API reader's value does, or
    ``None`` where only the value-by-value path does: a converter other than mysqlclient's own for the
    type, or a fix of :mod:`~sls_provider.sources.types` other than the boolean's."""
    if type_code in field_type.INTEGERS and converter is int:
        if fix is not None:
            if size != 1:
                return None
            return lambda raw: mysql_bool_text(raw.cast(pa.string()).cast(pa.int64()))
        kind = pa.uint64() if flags & field_type.UNSIGNED else pa.int64()
        return lambda raw: raw.cast(pa.string()).cast(kind)
    if fix is not None:
        return None
    if type_code in (field_type.DOUBLE, field_type.FLOAT) and converter is float:
        return lambda raw: raw.cast(pa.string()).cast(pa.float64())
    if type_code in (field_type.DECIMAL, field_type.NEWDECIMAL) and converter is Decimal:
        return lambda raw: numeric_text(raw.cast(pa.string()))
    if type_code in (field_type.DATE, field_type.DATETIME, field_type.TIMESTAMP) and converter is not None:
        # keep_date_text wrapped mysqlclient's parser (as ``.parse``): the cast stands for it only
        # where the parser inside is mysqlclient's default one.
        if getattr(converter, "parse", converter) is not defaults.get(type_code):
            return None
        return _date_cast(type_code == field_type.DATE)
    if converter is str and utf8:
        return lambda raw: raw.cast(pa.string())
    if converter is None or converter is bytes:
        return lambda raw: raw
    return None


#: 0001-01-01, the first day Python's dates hold, in days and microseconds since 1970-01-01.
_FIRST_DAY, _FIRST_MICROSECOND = -719_162, -62_135_596_800_000_000


def _date_cast(date: bool) -> Callable[[pa.Array], pa.Array]:
    """Arrow reads the year 0 (``0000-01-01``), which mysqlclient cannot parse: the DB-API reader
    then sends the database's text, so such a batch is spelled value by value."""
    kind, storage, first = (
        (pa.date32(), pa.int32(), _FIRST_DAY)
        if date
        else (pa.timestamp("us"), pa.int64(), _FIRST_MICROSECOND)
    )

    def cast(raw: pa.Array) -> pa.Array:
        column = raw.cast(pa.string()).cast(kind)
        low = pc.min(column.view(storage)).as_py()
        if low is not None and low < first:
            raise pa.ArrowInvalid("a date before 0001-01-01")
        return column

    return cast


class _ResultColumn:
    """One result column: its raw text -> an Arrow array in the DB-API reader's spelling."""

    __slots__ = ("index", "name", "native", "python", "fix")

    def __init__(self, index: int, name: str, python: Convert, fix: Any, native: Any) -> None:
        self.index, self.name, self.python, self.fix, self.native = index, name, python, fix, native

    def __call__(self, flat: pa.Array | None, values: list, width: int) -> pa.Array:
        """The column's array out of a batch of ``width`` columns, row after row: its values as one
        flat Arrow array (``flat``; ``None`` to build the column's own) and as Python ``values``."""
        if self.native is not None:
            try:
                if flat is not None:
                    return self.native(flat.take(np.arange(self.index, len(flat), width)))
                return self.native(pa.array(values[self.index :: width], pa.binary()))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # e.g. a zero date in this batch: spelled value by value below
        return self.by_value(values[self.index :: width])

    def by_value(self, values: list) -> pa.Array:
        python, fix = self.python, self.fix
        converted = [None if v is None else python(v) for v in values]
        if fix is not None:
            converted = [fix(v) for v in converted]
        return text_array(converted, self.name)
