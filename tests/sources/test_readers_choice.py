"""Which reader runs a query, chosen from :data:`~sls_provider.sources.readers.READERS` by each
reader's contract (:class:`~sls_provider.sources.reader.ArrowReader`), without a database: small
fake hooks stand for the common.sql ones."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sls_provider.core.errors import SlsConfigError
from sls_provider.sources import readers
from sls_provider.sources.adbc_postgres import PostgresArrowReader
from sls_provider.sources.connectorx_mysql import UNBOUNDED, MySqlArrowReader
from sls_provider.sources.mysql_arrow import MySqlClientArrowReader
from sls_provider.sources.reader import ArrowReader, SourceHook
from sls_provider.sources.sqlite_arrow import SqliteArrowReader


class _Connection:
    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra_dejson = extra


class FakeHook:
    """A common.sql hook as the choice sees it: a connection type, and a connection whose extra
    names the client."""

    conn_name_attr = "fake_conn_id"
    fake_conn_id = "warehouse"

    def __init__(self, conn_type: str | None, **extra: Any) -> None:
        self.conn_type = conn_type
        self.extra = extra
        self.lookups = 0

    def get_connection(self, conn_id: str) -> _Connection:
        assert conn_id == "warehouse"
        self.lookups += 1
        return _Connection(self.extra)


class _NotAHook:
    """No conn_type, no connection: not a common.sql hook at all."""


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The packages the choice finds installed (every reader's, unless a test removes one)."""
    present = {r.package for r in readers.READERS if r.package is not None}
    monkeypatch.setattr(readers, "find_spec", lambda name: object() if name in present else None)
    return present


def choose(hook: Any, sql_reader: str = "auto", parameters: Any = None, windowed: bool = False) -> Any:
    return readers._arrow_reader(hook, parameters, sql_reader, windowed)


@pytest.mark.parametrize(
    ("hook", "sql_reader", "expected"),
    [
        (FakeHook("sqlite"), "auto", SqliteArrowReader),
        (FakeHook("postgres"), "auto", PostgresArrowReader),
        (FakeHook("postgres"), "arrow", PostgresArrowReader),
        (FakeHook("mysql"), "auto", MySqlClientArrowReader),  # mysqlclient: the hook's default client
        (FakeHook("mysql", client="mysqlclient"), "auto", MySqlClientArrowReader),
        (FakeHook("mysql", client="mysqlclient"), "arrow", MySqlClientArrowReader),
        (FakeHook("mysql", client="mysql-connector-python"), "arrow", MySqlArrowReader),
    ],
    ids=lambda v: v.conn_type if isinstance(v, FakeHook) else getattr(v, "__name__", v),
)
def test_each_connection_picks_its_reader(
    installed: set[str], hook: FakeHook, sql_reader: str, expected: Any
) -> None:
    reader, why = choose(hook, sql_reader)
    assert reader is expected
    assert why == expected.why(SourceHook(hook))


def test_the_reasons_said_in_the_log_line(installed: set[str]) -> None:
    assert (
        choose(FakeHook("sqlite"))[1] == "sqlite3's rows go straight to Arrow columns, without a pandas frame"
    )
    assert choose(FakeHook("postgres"))[1] == "arrow (adbc-driver-postgresql) reads postgres natively"
    assert choose(FakeHook("mysql"))[1] == (
        "arrow (mysqlclient) streams the hook's mysqlclient connection (use_result, raw text into Arrow, "
        "batches of up to 16,384 rows)"
    )
    connector = FakeHook("mysql", client="mysql-connector-python")
    assert choose(connector, "arrow")[1] == "arrow (connectorx) reads mysql natively"


def test_auto_skips_a_reader_whose_memory_is_not_bounded(installed: set[str]) -> None:
    assert MySqlArrowReader.unbounded == UNBOUNDED
    assert all(r.unbounded is None for r in readers.READERS if r is not MySqlArrowReader)
    assert choose(FakeHook("mysql", client="mysql-connector-python"), "auto") == (None, UNBOUNDED)


def test_auto_takes_a_later_bounded_reader_after_an_unbounded_one(
    installed: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Bounded(_Duck):
        conn_types = ("mysql",)
        clients = None

    monkeypatch.setattr(readers, "READERS", (MySqlArrowReader, Bounded))
    connector = FakeHook("mysql", client="mysql-connector-python")
    assert choose(connector, "auto")[0] is Bounded
    assert choose(connector, "arrow")[0] is MySqlArrowReader  # "arrow" keeps the order of preference


def test_the_client_is_looked_up_once(installed: set[str]) -> None:
    hook = FakeHook("mysql", client="mysql-connector-python")
    choose(hook, "arrow")
    assert hook.lookups == 1  # two MySQL readers asked, one connection lookup
    hook = FakeHook("postgres")
    choose(hook)
    assert hook.lookups == 0  # only MySQL readers ask for the client


def test_a_hook_whose_connection_cannot_be_read_counts_as_mysqlclient(installed: set[str]) -> None:
    class Odd(FakeHook):
        def get_connection(self, conn_id: str) -> _Connection:
            raise RuntimeError("no such connection")

    assert choose(Odd("mysql"))[0] is MySqlClientArrowReader


def test_no_reader_for_other_connections(installed: set[str]) -> None:
    assert choose(FakeHook("oracle")) == (None, "no Arrow reader for oracle connections")
    assert choose(FakeHook(None)) == (None, "no Arrow reader for FakeHook connections")
    assert choose(_NotAHook()) == (None, "no Arrow reader for _NotAHook connections")


def test_a_missing_package_falls_back_with_the_reason(installed: set[str]) -> None:
    installed.discard("adbc_driver_postgresql")
    assert choose(FakeHook("postgres")) == (None, readers.MISSING["adbc_driver_postgresql"])
    installed.discard("MySQLdb")
    assert choose(FakeHook("mysql")) == (
        None,
        "MySQLdb is not installed (pip install 'airflow-provider-sls[arrow]')",
    )
    installed.discard("connectorx")
    connector = FakeHook("mysql", client="mysql-connector-python")
    assert choose(connector, "arrow") == (
        None,
        "connectorx is not installed (pip install 'airflow-provider-sls[arrow]')",
    )
    assert choose(connector, "auto") == (None, UNBOUNDED)  # not taken by auto, installed or not


def test_a_missing_package_warns_and_reads_with_dbapi(
    installed: set[str], caplog: pytest.LogCaptureFixture
) -> None:
    installed.discard("adbc_driver_postgresql")
    caplog.set_level(logging.INFO, logger=readers.log.name)
    chunks = readers.read_query(FakeHook("postgres"), "SELECT 1", None, 1000)  # not iterated: nothing runs
    [line] = [r for r in caplog.records if r.getMessage().startswith("Reading the query with")]
    assert line.levelno == logging.WARNING
    assert (
        line.getMessage()
        == f"Reading the query with the dbapi reader: {readers.MISSING['adbc_driver_postgresql']}"
    )
    chunks.close()


def test_parameters_fall_back_to_the_dbapi_reader(installed: set[str]) -> None:
    for hook in (FakeHook("sqlite"), FakeHook("postgres"), FakeHook("mysql")):
        assert choose(hook, parameters=[1]) == (
            None,
            "the query has parameters, which the DB-API driver binds in its own paramstyle",
        )
    # An incremental window needs a reader that binds its bounds: connectorx binds none.
    connector = FakeHook("mysql", client="mysql-connector-python")
    assert choose(connector, "arrow", windowed=True) == (
        None,
        "arrow (connectorx) cannot bind the incremental window's bounds",
    )
    for hook in (FakeHook("sqlite"), FakeHook("postgres"), FakeHook("mysql")):
        assert choose(hook, windowed=True)[0] is not None


def test_arrow_refuses_rather_than_falls_back(installed: set[str]) -> None:
    with pytest.raises(SlsConfigError, match=r"^sql_reader='arrow' cannot be used: the query has parameters"):
        readers.read_query(FakeHook("postgres"), "SELECT %s", [1], 10, "arrow")
    with pytest.raises(SlsConfigError, match=r"cannot be used: no Arrow reader for oracle connections$"):
        readers.read_query(FakeHook("oracle"), "SELECT 1", None, 10, "arrow")
    installed.discard("adbc_driver_postgresql")
    with pytest.raises(SlsConfigError, match="cannot be used: adbc-driver-postgresql is not installed"):
        readers.read_query(FakeHook("postgres"), "SELECT 1", None, 10, "arrow")


def test_each_reader_says_why_it_cannot_read_a_connection() -> None:
    postgres, mysql = SourceHook(FakeHook("postgres")), SourceHook(FakeHook("mysql"))
    connector = SourceHook(FakeHook("mysql", client="mysql-connector-python"))
    assert PostgresArrowReader.can_read(postgres) is None
    assert PostgresArrowReader.can_read(mysql) == "it reads postgres connections, not mysql ones"
    assert SqliteArrowReader.can_read(SourceHook(_NotAHook())) == (
        "it reads sqlite connections, the hook has no connection type"
    )
    assert MySqlClientArrowReader.can_read(mysql) is None
    assert MySqlClientArrowReader.can_read(connector) == (
        "it reads through mysqlclient, the connection's client is mysql-connector-python"
    )
    assert MySqlArrowReader.can_read(connector) is None
    assert MySqlArrowReader.can_read(mysql) == "mysqlclient's connections have their own reader"
    assert MySqlArrowReader.can_read(postgres) == "it reads mysql connections, not postgres ones"


def test_every_reader_keeps_the_contract() -> None:
    assert len(set(readers.READERS)) == len(readers.READERS)
    for reader in readers.READERS:
        assert issubclass(reader, ArrowReader)
        assert reader.name.startswith("arrow (") and reader.name.endswith(")")
        assert reader.paramstyle in (None, "qmark", "format", "settings")
        assert reader.conn_types and all(isinstance(t, str) for t in reader.conn_types)
        assert not reader.__abstractmethods__


# -- a new reader is one class and its line in READERS -------------------------------------------


class _Duck(ArrowReader):
    """A reader of a connection type no real reader serves, its batches made up."""

    name = "arrow (duck)"
    paramstyle = "qmark"
    conn_types = ("duckdb",)
    closed: list[str] = []

    def __init__(self, hook: Any, sql: str, *, batch_rows: int | None = None, parameters: Any = None) -> None:
        self.sql, self.parameters = sql, parameters

    def open(self) -> Iterator[pa.RecordBatch]:
        for start in (0, 3, 5):
            yield pa.record_batch({"n": list(range(start, start + 3))})

    def fix(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.record_batch({"n": pc.multiply(batch.column(0), 10)})

    def close(self) -> None:
        self.closed.append(self.sql)


def test_a_new_reader_is_one_line_in_readers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(readers, "READERS", (*readers.READERS, _Duck))
    caplog.set_level(logging.INFO, logger=readers.log.name)
    _Duck.closed.clear()
    chunks = list(readers.read_query(FakeHook("duckdb"), "SELECT n FROM t", None, 4))
    assert [c.column("n").to_pylist() for c in chunks] == [[0, 10, 20, 30], [40, 50, 50, 60], [70]]
    assert _Duck.closed == ["SELECT n FROM t"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Reading the query with")]
    assert lines == ["Reading the query with the arrow (duck) reader: arrow (duck) reads duckdb natively"]
    # Its paramstyle is the one the incremental window is written in.
    styles: list[str] = []

    def bind(style: str) -> tuple[str, Any]:
        styles.append(style)
        return "SELECT n FROM t WHERE n > ?", (1,)

    assert len(list(readers.read_query(FakeHook("duckdb"), "SELECT n FROM t", None, 4, bind=bind))) == 3
    assert styles == ["qmark"]
