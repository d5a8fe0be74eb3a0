"""The contract of an Arrow reader: what :func:`sls_provider.sources.readers.read_query` asks of each
class in :data:`~sls_provider.sources.readers.READERS`, the list it chooses from.

A reader says what it accepts in class attributes (:class:`ArrowReader`), whether it can read a
hook's connection (:meth:`ArrowReader.can_read`, and why not), and reads: constructed with the hook
and the query, :meth:`~ArrowReader.open` runs the query and gives record batches, each put into the
DB-API reader's spelling by :meth:`~ArrowReader.fix`, and :meth:`~ArrowReader.close` ends it, on the
read-ahead thread. A query it cannot spell as the DB-API reader does raises :class:`Unfaithful`
before any row is read, and the DB-API reader runs it instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from functools import cached_property
from typing import Any, ClassVar

import pyarrow as pa


class Unfaithful(Exception):
    """The Arrow reader cannot spell this query's results as the DB-API reader does."""


class SourceHook:
    """A hook and what the readers are chosen by, each read from it at most once.

    :param hook: a common.sql hook (``PostgresHook``, ``MySqlHook``, ``SqliteHook``...).
    """

    def __init__(self, hook: Any) -> None:
        self.hook = hook
        #: the connection's type (``postgres``, ``mysql``, ``sqlite``...), ``""`` if the hook has none
        self.conn_type = str(getattr(hook, "conn_type", "") or "")

    @cached_property
    def client(self) -> str:
        """The connection's ``client`` extra: the MySQL hook's client library, ``mysqlclient`` (its
        default) or ``mysql-connector-python``."""
        try:
            conn = self.hook.get_connection(getattr(self.hook, self.hook.conn_name_attr))
            return str(conn.extra_dejson.get("client") or "mysqlclient")
        except Exception:  # noqa: BLE001 - not a MySqlHook as we know it: the reader checks the connection
            return "mysqlclient"


class ArrowReader(ABC):
    """Reads a query's result as Arrow record batches, each value spelled as the DB-API reader
    (:mod:`sls_provider.sources.sql`) spells it.

    :param hook: the hook whose connection it reads.
    :param sql: the query.
    :param batch_rows: rows a batch at most (the export's ``chunksize``), where the reader decides it.
    :param parameters: the incremental window's bounds, in :attr:`paramstyle`.
    """

    #: the reader's name in the log line and in errors: ``arrow (<driver>)``
    name: ClassVar[str]
    #: how the window of an incremental export is bound (:func:`sls_provider.incremental.window_query`):
    #: ``qmark``, ``format``, ``settings``; ``None`` if the reader binds no parameters
    paramstyle: ClassVar[str | None]
    #: the connection types it reads (``Connection.conn_type``)
    conn_types: ClassVar[tuple[str, ...]]
    #: the connection's clients it reads (:attr:`SourceHook.client`); ``None``: any
    clients: ClassVar[tuple[str, ...] | None] = None
    #: the module it needs (``find_spec`` name), ``None`` for the standard library's
    package: ClassVar[str | None] = None
    #: why its memory is not bounded (``sql_reader="auto"`` then does not take it); ``None``: bounded
    unbounded: ClassVar[str | None] = None

    @classmethod
    def can_read(cls, source: SourceHook) -> str | None:
        """``None`` if it reads ``source``'s connection, else why not."""
        if source.conn_type not in cls.conn_types:
            other = f"not {source.conn_type} ones" if source.conn_type else "the hook has no connection type"
            return f"it reads {' and '.join(cls.conn_types)} connections, {other}"
        if cls.clients is not None and source.client not in cls.clients:
            return f"it reads through {' or '.join(cls.clients)}, the connection's client is {source.client}"
        return None

    @classmethod
    def why(cls, source: SourceHook) -> str:
        """Why it reads ``source``'s query: the end of the line "Reading the query with the ... reader"."""
        return f"{cls.name} reads {source.conn_type} natively"

    @abstractmethod
    def __init__(self, hook: Any, sql: str, *, batch_rows: int | None = None, parameters: Any = None) -> None:
        """Keep what :meth:`open` needs (a reader may connect here; nothing else is read)."""

    @abstractmethod
    def open(self) -> Iterable[pa.RecordBatch]:
        """Run the query: its batches, read as they are iterated. Raises :class:`Unfaithful` (before any
        row is read) for a query whose values it cannot spell as the DB-API reader does."""

    def fix(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` in the DB-API reader's spelling; as it is where :meth:`open`'s batches already are."""
        return batch

    @abstractmethod
    def close(self) -> None:
        """Release the connection, on the reading thread, whether the batches were all read or not."""
