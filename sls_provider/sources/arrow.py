"""Arrow helpers the readers share: chunks of exactly ``chunksize`` rows (:func:`rechunk`), and
columns put into the DB-API reader's spelling (:func:`text_array`, :func:`numeric_text`,
:func:`mysql_bool_text`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from sls_provider.core.encode import arrow_column_text, values_text
from sls_provider.core.values import to_text

# A numeric's text that str(Decimal(text)) spells differently: not plain digits (NaN, Infinity), or
# below 1e-6 with 7+ fraction digits, where Decimal switches to an exponent (0E-10, 1.000E-7).
_PLAIN_NUMERIC = r"^-?\d+(\.\d+)?$"
_EXPONENT_NUMERIC = r"^-?0\.0{6}\d"


def numeric_text(column: pa.Array) -> pa.Array:
    """PostgreSQL numeric text (ADBC) as ``str(Decimal(text))`` (psycopg's ``Decimal``) spells it:
    the same text, except NaN (left out), Infinity, and values below 1e-6 with 7+ fraction digits."""
    text = pl.Series(column)
    odd = (~text.str.contains(_PLAIN_NUMERIC) | text.str.contains(_EXPONENT_NUMERIC)).fill_null(False)
    rows = odd.arg_true()
    if len(rows):
        text = text.scatter(rows, [to_text(Decimal(v)) for v in text.gather(rows).to_list()])
    return text.to_arrow()


def mysql_bool_text(column: pa.Array) -> pa.Array:
    """``TINYINT(1)``/``BOOLEAN`` as the DB-API reader spells it: 0 and 1 as booleans, others digits."""
    text = pc.cast(column, pa.string())
    return pc.if_else(pc.equal(column, 0), "false", pc.if_else(pc.equal(column, 1), "true", text))


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
