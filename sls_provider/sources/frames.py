"""Input adapters: whatever the caller has -> chunks of rows the exporter takes.

A DataFrame (pandas or polars) or an Arrow table is sliced into chunks without copying; mappings
(``put_logs``) and DB-API rows (the SQL reader) become chunks of object columns, each value keeping
its own type.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from sls_provider.core.errors import SlsInputError

__all__ = ["as_pandas", "check_chunksize", "dataframe_chunks", "frames_from_records", "frames_from_rows"]


def check_chunksize(chunksize: int) -> None:
    if not isinstance(chunksize, int) or isinstance(chunksize, bool) or chunksize < 1:
        raise SlsInputError(f"chunksize must be a positive integer, got {chunksize!r}")


def as_pandas(df: Any) -> pd.DataFrame:
    """``df`` if it is a pandas DataFrame; anything else is refused (polars frames and Arrow tables
    never get here: :func:`dataframe_chunks` slices them as they are)."""
    if isinstance(df, pd.DataFrame):
        return df
    raise SlsInputError(f"Expected a pandas or polars DataFrame or an Arrow table, got {type(df).__name__}")


def dataframe_chunks(df: Any, chunksize: int) -> Iterator[Any]:
    """Slices of ``chunksize`` rows (views, not copies). A polars DataFrame or a pyarrow Table (or
    RecordBatch) is sliced as it is and encoded from its Arrow buffers: no pandas round trip."""
    check_chunksize(chunksize)
    if isinstance(df, pa.RecordBatch):
        df = pa.Table.from_batches([df])
    if isinstance(df, pa.Table | pl.DataFrame):
        for start in range(0, len(df), chunksize):
            yield df.slice(start, chunksize)
        return
    frame = as_pandas(df)
    for start in range(0, len(frame), chunksize):
        yield frame.iloc[start : start + chunksize]


def frames_from_records(records: Iterable[Mapping[str, Any]], chunksize: int) -> Iterator[pd.DataFrame]:
    """Chunks of object columns from mappings, keeping each value's own type (no int -> float for
    keys missing from some records). A key missing from a record is left out of that log."""
    batch: list[Mapping[str, Any]] = []
    for number, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise SlsInputError(f"Log #{number} is a {type(record).__name__}, not a mapping of key -> value")
        batch.append(record)
        if len(batch) >= chunksize:
            yield _object_frame(batch)
            batch = []
    if batch:
        yield _object_frame(batch)


def _object_frame(batch: list[Mapping[str, Any]]) -> pd.DataFrame:
    names: dict[Any, None] = {}
    for record in batch:
        names.update(dict.fromkeys(record))
    columns = {name: pd.Series([r.get(name) for r in batch], dtype=object) for name in names}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(batch)))


def frames_from_rows(rows: Iterable[tuple], names: list[str]) -> pd.DataFrame:
    """One chunk of object columns from DB-API rows: values keep the driver's types, so an integer
    column holding NULLs still sends ``"3"``, exactly as a DataFrame with an ``Int64`` column would."""
    rows = list(rows)
    n = len(rows)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    # fromiter into an object array: one copy, and no type inference that would turn ints into floats.
    data = {
        i: pd.Series(np.fromiter(col, dtype=object, count=n), dtype=object, copy=False)
        for i, col in enumerate(columns)
    }
    return pd.DataFrame(data, index=pd.RangeIndex(n)).set_axis(names, axis=1)
