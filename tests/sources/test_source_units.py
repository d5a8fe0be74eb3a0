"""The source layer's pure parts, without a database server: the read-ahead thread, Arrow
rechunking and text, SQLite rows into Arrow, the read-only check and DataFrame slicing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from sls_provider.core.errors import SlsInputError
from sls_provider.sources.arrow import numeric_text, rechunk
from sls_provider.sources.frames import as_pandas, dataframe_chunks
from sls_provider.sources.readers import prefetch
from sls_provider.sources.sql import check_read_only
from sls_provider.sources.sqlite_arrow import rows_to_batch

# -- prefetch -----------------------------------------------------------------------------------


def test_prefetch_yields_every_chunk_in_order() -> None:
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))


def test_prefetch_raises_the_producers_error_in_the_consumer_after_its_chunks() -> None:
    def chunks() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("driver says no")

    seen = []
    with pytest.raises(ValueError, match="driver says no"):
        for chunk in prefetch(chunks(), depth=1):
            seen.append(chunk)
    assert seen == [1, 2]


def test_prefetch_stopped_early_closes_the_source_on_the_producers_thread() -> None:
    closed_on: list[str] = []

    def chunks() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed_on.append(threading.current_thread().name)

    stream = prefetch(chunks(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed_on == ["sls-read"]  # a generator must be closed on the thread that runs it


def test_prefetch_holds_at_most_depth_chunks_ahead() -> None:
    produced = []
    tick = threading.Event()  # never set: a bounded pause

    def chunks() -> Iterator[int]:
        for n in range(10):
            produced.append(n)
            yield n

    stream = prefetch(chunks(), depth=2)
    assert next(stream) == 0
    # The producer fills the queue (2) and then holds one more in hand, blocked on put: never more.
    for _ in range(50):
        if len(produced) >= 4:
            break
        tick.wait(0.02)
    assert len(produced) <= 4
    stream.close()


# -- rechunk ------------------------------------------------------------------------------------


def batch(values: list, name: str = "a") -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({name: values})


def test_rechunk_cuts_exact_chunks_whatever_the_batch_sizes() -> None:
    batches = [batch(list(range(0, 3))), batch([]), batch(list(range(3, 10))), batch(list(range(10, 11)))]
    tables = list(rechunk(iter(batches), 4))
    assert [t.num_rows for t in tables] == [4, 4, 3]
    assert [v for t in tables for v in t.column("a").to_pylist()] == list(range(11))


def test_rechunk_joins_batches_whose_column_types_differ_as_the_encoders_text() -> None:
    tables = list(rechunk(iter([batch([1, 2]), batch(["x"])]), 3))
    assert len(tables) == 1 and tables[0].column("a").type == pa.string()
    assert tables[0].column("a").to_pylist() == ["1", "2", "x"]


def test_rechunk_of_nothing_is_nothing() -> None:
    assert list(rechunk(iter([batch([])]), 5)) == []


# -- numeric_text ------------------------------------------------------------------------------


def test_numeric_text_spells_as_psycopgs_decimal() -> None:
    texts = ["1.50", "-0.0000001", "1E+3", "Infinity", None]
    out = numeric_text(pa.array(texts, pa.string())).to_pylist()
    assert out[0] == "1.50"  # plain numerals are kept as the server wrote them
    assert out[1] == str(Decimal("-0.0000001")) == "-1E-7"
    assert out[2] == str(Decimal("1E+3"))
    assert out[3] == "Infinity" and out[4] is None


# -- rows_to_batch (SQLite) ----------------------------------------------------------------------


def test_rows_to_batch_keeps_one_type_columns_native_and_spells_mixed_ones() -> None:
    rows = [(1, 1.5, "a", 1, None), (2, None, "b", "x", None)]
    out = rows_to_batch(rows, ["i", "f", "s", "mixed", "empty"])
    assert out.schema.types == [pa.int64(), pa.float64(), pa.string(), pa.string(), pa.string()]
    assert out.column(3).to_pylist() == ["1", "x"]
    assert out.column(1).to_pylist() == [1.5, None]


# -- check_read_only ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select * from t where a = 'DELETE' -- a comment",
        "WITH x AS (SELECT 1) SELECT * FROM x;",
        "(SELECT 1) UNION (SELECT 2)",
        "VALUES (1), (2)",
    ],
)
def test_read_statements_pass(sql: str) -> None:
    check_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("DELETE FROM t", "DELETE"),
        ("SELECT 1; DROP TABLE t", "2 statements"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "DELETE"),
        ("SELECT * INTO t2 FROM t", "INTO"),
        ("SELECT * FROM t FOR UPDATE", "locking read"),
        ("SELECT /*! 1; DELETE FROM t */ 1", "executable comment"),
        ("-- only a comment", "only comments"),
        ("   ", "empty"),
    ],
)
def test_anything_else_is_refused_naming_what_it_is(sql: str, words: str) -> None:
    with pytest.raises(SlsInputError, match=words):
        check_read_only(sql)


# -- DataFrame slicing ------------------------------------------------------------------------------


def test_dataframe_chunks_slice_every_kind_of_frame_without_converting_it() -> None:
    data = {"a": list(range(5))}
    for frame, kind in (
        (pd.DataFrame(data), pd.DataFrame),
        (pl.DataFrame(data), pl.DataFrame),
        (pa.table(data), pa.Table),
        (pa.RecordBatch.from_pydict(data), pa.Table),
    ):
        chunks = list(dataframe_chunks(frame, 2))
        assert [len(c) for c in chunks] == [2, 2, 1] and all(isinstance(c, kind) for c in chunks)


@pytest.mark.parametrize("chunksize", [0, -1, 1.5, True, "10"])
def test_dataframe_chunks_refuse_a_bad_chunksize(chunksize: object) -> None:
    with pytest.raises(SlsInputError, match="chunksize"):
        list(dataframe_chunks(pd.DataFrame({"a": [1]}), chunksize))  # type: ignore[arg-type]


def test_as_pandas_refuses_what_is_not_a_frame() -> None:
    with pytest.raises(SlsInputError, match="got list"):
        as_pandas([1, 2])
