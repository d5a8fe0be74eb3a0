"""Columnar encoding: a DataFrame chunk -> one JSON object per row, each followed by a comma.

Building one Python dict per row costs microseconds a row and dominates every per-row sender, so
this module never does: one polars query turns every column into a ``String`` column with the
spelling of :func:`sls_provider.core.values.to_text`, then polars writes all rows as NDJSON in
native code, and the row-separating newlines become commas in place, so that a run of rows is
already the inside of the request's ``__logs__`` array. Missing values come out of polars as
``"key":null`` and are cut out of the bytes, which is safe because a log key is ``[A-Za-z0-9_]``
and a quote inside a JSON string is always escaped.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any, cast

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from sls_provider.core.errors import SlsInputError
from sls_provider.core.values import to_text

__all__ = ["EncodedRows", "column_text", "encode_frame", "from_ndjson"]


@dataclass(frozen=True)
class EncodedRows:
    """Rows encoded as JSON objects, each followed by a ``,``: a run of consecutive rows is already
    the inside of a JSON array, so a request body is its envelope plus slices of ``data``.

    :param data: the rows (``bytes``, or a ``memoryview`` of the encoder's own buffer).
    :param ends: for row ``i``, the offset of the comma after it; row ``i`` is
        ``data[ends[i-1] + 1 : ends[i]]`` (with ``ends[-1]`` taken as ``-1``).
    """

    data: bytes | memoryview
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.ends)

    def row(self, i: int) -> bytes:
        start = int(self.ends[i - 1]) + 1 if i else 0
        return bytes(self.data[start : int(self.ends[i])])

    def take(self, rows: np.ndarray) -> EncodedRows:
        """The selected rows, in the given order (used to split a chunk by topic)."""
        starts = np.concatenate(([0], self.ends[:-1] + 1))[rows]
        ends = self.ends[rows]
        view = memoryview(self.data)
        data = b"".join([view[s : e + 1] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)])
        return EncodedRows(data, np.cumsum(ends - starts + 1) - 1)


def from_ndjson(data: bytes | bytearray | memoryview) -> EncodedRows:
    """Index NDJSON (every row terminated by ``\\n``) and turn its newlines into commas: raw
    newlines only separate rows, since JSON escapes them inside strings. A writable buffer is
    changed in place (the encoder's own, which saves a copy of every chunk); bytes are copied."""
    view = memoryview(data)
    if view.readonly:
        view = memoryview(bytearray(view))
    array = np.frombuffer(view, dtype=np.uint8)
    ends = np.flatnonzero(array == 0x0A)
    array[ends] = 0x2C
    return EncodedRows(view, ends)


def encode_frame(frame: pd.DataFrame, keys: list[str]) -> EncodedRows:
    """Encode every row of ``frame`` as a JSON object whose keys are ``keys`` (one per column, in
    order, already valid) and whose values are strings; missing values leave the key out."""
    if len(frame) == 0:
        return EncodedRows(b"", np.empty(0, dtype=np.int64))
    if not keys:
        return from_ndjson(bytearray(b"{}\n" * len(frame)))
    text = _texts([_plan(frame.iloc[:, i], key) for i, key in enumerate(keys)])
    return _ndjson(text)


def encode_arrow(data: pa.Table | pa.RecordBatch | pl.DataFrame, keys: list[str]) -> EncodedRows:
    """:func:`encode_frame` for Arrow data (a ``pyarrow`` Table or RecordBatch, or a polars
    DataFrame), read in place: no pandas frame and no Python object per value, except for the types
    spelled by :func:`to_text` value by value (nested, durations, extension types)."""
    if data.num_rows if not isinstance(data, pl.DataFrame) else data.height:
        if not keys:
            return from_ndjson(bytearray(b"{}\n" * len(data)))
        return _ndjson(_texts([_arrow_plan(data, i, key) for i, key in enumerate(keys)]))
    return EncodedRows(b"", np.empty(0, dtype=np.int64))


def _ndjson(text: pl.DataFrame) -> EncodedRows:
    blocks = _Blocks()
    text.write_ndjson(cast(IO[bytes], blocks))
    data: bytearray | memoryview = bytearray().join(blocks.blocks)
    if any(text.null_count().row(0)):
        data = _drop_nulls(data)
    return from_ndjson(data)


class _Blocks(io.RawIOBase):
    """A write-only file for polars' NDJSON writer that keeps the blocks it is given, to be joined
    once into a buffer of the right size. (``io.BytesIO`` grows by reallocating and copying: on
    11 MB chunks that cost more than writing the JSON.)"""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, block: Any) -> int:
        self.blocks.append(block)  # polars hands over a new bytes object each time
        return len(block)


_QUOTE, _BACKSLASH, _COMMA, _OPEN = (ord(c) for c in '"\\,{')
_COLON_N = int.from_bytes(b":n", "little")


def _drop_nulls(data: bytearray | memoryview) -> bytearray | memoryview:
    """``data`` without its ``"key":null`` members, in one pass whatever the number of columns with
    nulls (a pass per such column made wide frames quadratic). Every value is a string, so ``:null``
    right after a key's closing quote can only be a missing value; a quote inside a string is
    escaped, so a ``"`` preceded by ``\\`` is never a key's (keys are ``[A-Za-z0-9_]``)."""
    array = np.frombuffer(data, dtype=np.uint8)
    colons = _pairs(array, _COLON_N)
    colons = colons[(colons >= 2) & (colons + 5 < len(array))]
    after = colons + 5
    found = (
        (array[colons - 1] == _QUOTE)
        & (array[colons - 2] != _BACKSLASH)
        & (array[colons + 2] == ord("u"))
        & (array[colons + 3] == ord("l"))
        & (array[colons + 4] == ord("l"))
        & ((array[after] == _COMMA) | (array[after] == ord("}")))
    )
    ends = after[found]
    if not len(ends):
        return data
    starts = _key_starts(array, colons[found] - 1)
    # A member goes with the comma before it; a row's first member has none, so a run of nulls at the
    # start of a row goes with the comma after the run (if a member follows).
    first = array[starts - 1] == _OPEN
    cut_from = np.where(first, starts, starts - 1)
    cut_to = ends.copy()
    run_ends = np.flatnonzero(np.append(cut_from[1:] != ends[:-1], True))
    last = run_ends[np.searchsorted(run_ends, np.flatnonzero(first))]
    cut_to[last[array[ends[last]] == _COMMA]] += 1
    # The cuts are disjoint and in order: the bytes kept are the runs between them.
    bounds = np.empty(2 * len(cut_from) + 2, dtype=np.int64)
    bounds[0], bounds[1:-1:2], bounds[2:-1:2], bounds[-1] = 0, cut_from, cut_to, len(array)
    kept = np.ones(len(bounds) - 1, dtype=bool)
    kept[1::2] = False
    return memoryview(array[np.repeat(kept, np.diff(bounds))])  # a new, writable array


def _pairs(array: np.ndarray, pair: int) -> np.ndarray:
    """Sorted positions where the two bytes ``pair`` (a little-endian ``uint16``) start: compared two
    bytes at a time at even and at odd offsets, so that only the few hits become positions (every
    member has a colon; few have ``:n``)."""
    size = len(array)
    even = np.flatnonzero(array[: size - size % 2].view("<u2") == pair) * 2
    odd = np.flatnonzero(array[1 : size - (size - 1) % 2].view("<u2") == pair) * 2 + 1
    return np.sort(np.concatenate((even, odd)))


def _key_starts(array: np.ndarray, closing: np.ndarray) -> np.ndarray:
    """Position of the opening quote of each key whose closing quote is at ``closing``: keys are
    short and hold no quote, so step back one byte at a time for those not found yet."""
    starts = np.empty_like(closing)
    pending = np.arange(len(closing))
    back = 1
    while len(pending):
        hit = array[closing[pending] - back] == _QUOTE
        starts[pending[hit]] = closing[pending[hit]] - back
        pending = pending[~hit]
        back += 1
    return starts


@dataclass(frozen=True)
class _ColumnPlan:
    """How one column becomes text: ``source`` goes into a polars frame, where the expression
    ``text`` turns it into the ``String`` column named as the key; ``patches`` (positions, texts)
    are then written over it."""

    source: pl.Series
    text: pl.Expr
    patches: tuple[np.ndarray, list[str]] | None = None


def _texts(columns: list[_ColumnPlan]) -> pl.DataFrame:
    """Every column's text, from one polars query. The query runs without the GIL and spreads the
    columns over polars' threads; one small call per column instead waits for the GIL again after
    each call while the sending threads run Python, which made encoding several times slower during
    an export than alone (docs/performance.md, "What the changes bought")."""
    frame = pl.DataFrame([c.source for c in columns]).lazy().select([c.text for c in columns]).collect()
    for column in columns:
        if column.patches is not None:
            positions, texts = column.patches
            name = column.source.name
            frame = frame.with_columns(frame.get_column(name).scatter(positions, texts))
    return frame


def _ready(text: pl.Series) -> _ColumnPlan:
    return _ColumnPlan(text, pl.col(text.name))


def column_text(column: pd.Series, name: str) -> pl.Series:
    """One column as a polars ``String`` series spelled as :func:`to_text` would, nulls for missing."""
    return _texts([_plan(column, name)]).to_series()


def values_text(values: Iterable[Any], name: str) -> pl.Series:
    """:func:`column_text` of Python values, spelled as an object column holding them would be."""
    return _texts([_object_column(name, list(values))]).to_series()


def _plan(column: pd.Series, name: str) -> _ColumnPlan:
    dtype = column.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iub":
            return _ColumnPlan(pl.Series(name, column.to_numpy()), pl.col(name).cast(pl.String))
        if dtype.kind == "f":
            return _float_column(name, column.to_numpy())
        if dtype.kind == "M":
            # from_pandas also takes datetime64[s] (pandas >= 2), which pl.Series(numpy) refuses.
            stamps = _polars(column, name)
            return _ColumnPlan(stamps, _datetime_expr(pl.col(name), stamps.dtype))
    elif isinstance(dtype, pd.DatetimeTZDtype):
        return _ready(_aware_datetime_text(column, name))
    elif isinstance(dtype, pd.StringDtype):
        if dtype.storage == "pyarrow":
            return _ready(_polars(column, name))  # zero-copy from the arrow buffers
        return _ready(_strings(name, column.tolist()))
    elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        # Nullable Int64 / boolean: polars keeps the mask, so NULLs never turn ints into floats.
        return _ColumnPlan(_polars(column, name), pl.col(name).cast(pl.String))
    return _object_column(name, column.tolist())


def _polars(column: pd.Series, name: str) -> pl.Series:
    """``column`` as a polars Series named ``name`` (zero-copy where the memory layout allows)."""
    series = pl.from_pandas(column)
    assert isinstance(series, pl.Series)  # a pandas Series always gives one
    return series.rename(name)


def _aware_datetime_text(column: pd.Series, name: str) -> pl.Series:
    """isoformat() of tz-aware stamps: the wall-clock time, then the UTC offset, both from pandas.
    Polars' zone rules disagree with Python's after 2037 (no DST), and its ``%:z`` drops the seconds
    of local mean time offsets before ~1900 (``-04:56:02``)."""
    wall = column.dt.tz_localize(None)
    seconds = (wall - column.dt.tz_convert("UTC").dt.tz_localize(None)).dt.total_seconds()
    codes, inverse = np.unique(seconds.fillna(0).to_numpy(dtype=np.int64), return_inverse=True)
    offsets = pl.Series("o", [_offset_text(int(c)) for c in codes], dtype=pl.String)[inverse.ravel()]
    frame = pl.DataFrame([_polars(wall, "t"), offsets])
    text = pl.concat_str(_datetime_expr(pl.col("t"), frame.schema["t"]), pl.col("o"))
    return frame.select(text.alias(name)).to_series()


def _offset_text(seconds: int) -> str:
    """A UTC offset as isoformat() writes it: ``+HH:MM``, with ``:SS`` only when there are seconds."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def _object_column(name: str, values: list) -> _ColumnPlan:
    """Values of any Python types (object columns, SQL cursor rows), with fast paths for the common
    case of one type per column."""
    types = set(map(type, values))
    types.discard(type(None))
    if types <= {str}:
        return _ready(_strings(name, values))
    if types == {int}:
        try:
            return _ColumnPlan(pl.Series(name, values, dtype=pl.Int64), pl.col(name).cast(pl.String))
        except (OverflowError, TypeError, pl.exceptions.PolarsError):
            pass  # beyond int64: the general path spells it with str()
    elif types == {float}:
        return _float_column(name, np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    elif types == {dt.datetime} and all(v is None or v.tzinfo is None for v in values):
        stamps = pl.Series(name, values, dtype=pl.Datetime("us"))
        return _ColumnPlan(stamps, _datetime_expr(pl.col(name), stamps.dtype))
    try:
        texts = list(map(to_text, values))
    except (TypeError, ValueError, RecursionError) as err:
        raise _bad_value(name, values) from err
    return _ready(_strings(name, texts))


def _bad_value(name: str, values: list) -> SlsInputError:
    """The error for the first value :func:`to_text` cannot spell (found again, one by one, only
    once the column has failed): JSON cannot write a dict with a tuple key, a list that contains
    itself, or one nested deeper than Python's recursion limit."""
    for row, value in enumerate(values):
        try:
            to_text(value)
        except RecursionError:
            limit = sys.getrecursionlimit()
            why = f"it is nested too deeply to write as JSON (Python's limit: {limit:,} levels)"
        except (TypeError, ValueError) as err:
            why = str(err)
        else:
            continue
        return SlsInputError(
            f"Column {name!r}, row {row}: a {type(value).__name__} value cannot be sent as text: {why}. "
            "Convert or drop it before export."
        )
    return SlsInputError(f"Column {name!r}: a value cannot be sent as text")  # pragma: no cover


def _strings(name: str, texts: list) -> pl.Series:
    if _has_float_nan(texts):
        texts = [None if isinstance(t, float) or t is pd.NA else t for t in texts]
    try:
        return pl.Series(name, texts, dtype=pl.String)
    except (UnicodeEncodeError, pl.exceptions.PolarsError) as err:
        for row, text in enumerate(texts):
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as bad:
                    raise SlsInputError(
                        f"Column {name!r}, row {row}: {text[bad.start : bad.end]!r} is a lone surrogate, "
                        "not valid UTF-8; SLS refuses it (InvalidEncoding). Clean the text before export."
                    ) from err
        raise


def _has_float_nan(values: list) -> bool:
    # pandas 3 string columns hand back NaN (a float), not None, for missing values; "string[python]"
    # hands back pd.NA.
    return any(isinstance(v, float) or v is pd.NA for v in values)


def _float_column(name: str, values: np.ndarray) -> _ColumnPlan:
    # to_text() spells float32/float16 values as the float64 they widen to; polars would print the
    # shorter float32 digits (0.1 where repr(float(np.float32(0.1))) is 0.10000000149011612).
    values = values.astype(np.float64, copy=False)
    # polars and repr() agree on the shortest round-trip digits, but polars writes small magnitudes
    # positionally (0.00001) where repr() switches to an exponent (1e-05) below 1e-4.
    tiny = np.flatnonzero((np.abs(values) < 1e-4) & (values != 0))
    patches = (tiny, [repr(float(v)) for v in values[tiny]]) if len(tiny) else None
    return _ColumnPlan(pl.Series(name, values), pl.col(name).fill_nan(None).cast(pl.String), patches)


def _datetime_expr(stamps: pl.Expr, dtype: Any) -> pl.Expr:
    """isoformat() of naive stamps: fraction digits only when needed (6, or 9 for nanoseconds). One
    strftime, then cut what isoformat() omits: the last 3 digits of a whole microsecond, and a zero
    fraction. (Tz-aware stamps get their offsets from pandas: see :func:`_aware_datetime_text`.)"""
    base = "%Y-%m-%dT%H:%M:%S"
    if getattr(dtype, "time_unit", "us") == "ns":
        return stamps.dt.to_string(base + "%.9f").str.strip_suffix("000").str.strip_suffix(".000000")
    return stamps.dt.to_string(base + "%.6f").str.strip_suffix(".000000")


# -- Arrow / polars columns -----------------------------------------------------------------------


def arrow_column_text(data: pa.Table | pl.DataFrame, name: str) -> pl.Series:
    """:func:`column_text` of the column ``name`` of Arrow data."""
    names = list(data.column_names if isinstance(data, pa.Table) else data.columns)
    return _texts([_arrow_plan(data, names.index(name), name)]).to_series()


def _arrow_plan(data: pa.Table | pa.RecordBatch | pl.DataFrame, i: int, name: str) -> _ColumnPlan:
    if isinstance(data, pl.DataFrame):
        return _polars_plan(data.to_series(i).rename(name))
    column = data.column(i)
    kind = column.type
    if isinstance(kind, pa.BaseExtensionType):
        return _object_column(name, column.to_pylist())
    if pa.types.is_decimal(kind):
        # Arrow writes a decimal exactly as str(Decimal) does (exponent below 1e-6).
        return _ready(_arrow_series(column.cast(pa.string()), name))
    return _polars_plan(_arrow_series(column, name))


def _arrow_series(column: pa.Array | pa.ChunkedArray, name: str) -> pl.Series:
    series = pl.from_arrow(column)
    assert isinstance(series, pl.Series)  # an array always gives one
    return series.rename(name)


def _polars_plan(series: pl.Series) -> _ColumnPlan:
    name, dtype = series.name, series.dtype
    if dtype.is_integer() or dtype == pl.Boolean:
        return _ColumnPlan(series, pl.col(name).cast(pl.String))
    if dtype.is_float():
        return _float_column(name, series.cast(pl.Float64).to_numpy())
    if dtype == pl.String:
        return _ready(series)
    if dtype in (pl.Categorical, pl.Enum, pl.Null):
        return _ready(series.cast(pl.String))
    if dtype == pl.Date:
        return _ColumnPlan(series, pl.col(name).cast(pl.String))
    if dtype == pl.Time:
        return _ColumnPlan(series, pl.col(name).dt.to_string("%H:%M:%S%.6f").str.strip_suffix(".000000"))
    if dtype == pl.Binary:
        return _ColumnPlan(series, pl.col(name).bin.encode("base64"))
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return _ColumnPlan(series, _datetime_expr(pl.col(name), dtype))
        return _ready(_aware_datetime_text(series.to_pandas(), name))
    if isinstance(dtype, pl.Decimal):
        return _ready(_arrow_series(series.to_arrow().cast(pa.string()), name))
    # Lists, structs, durations, objects: each value by its Python type, as a DataFrame's would be.
    return _object_column(name, series.to_list())
