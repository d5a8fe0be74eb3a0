"""Raw driver connections for tests that read through :func:`stream_query` without Airflow's hooks:
the other drivers a hook may hand out (psycopg2, PyMySQL), and what the exporter would send."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sls_provider.core.encode import encode_frame
from sls_provider.sources.sql import stream_query
from tests.warehouses.conftest import MARIADB, POSTGRES


class RawHook:
    """Just enough of a DbApiHook for :func:`stream_query`: a new raw driver connection per call."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect

    def get_conn(self) -> Any:
        return self._connect()

    def run(self, *args: Any, **kwargs: Any) -> None:  # pragma: no cover - never called
        raise NotImplementedError


def stream_logs(hook: Any, sql: str, chunksize: int = 2) -> list[dict[str, str]]:
    """What the exporter would send for ``sql``: frames from the source layer, the exporter's encoder."""
    logs: list[dict[str, str]] = []
    for frame in stream_query(hook, sql, None, chunksize):
        encoded = encode_frame(frame, [str(c) for c in frame.columns])
        logs.extend(json.loads(encoded.row(i)) for i in range(len(encoded)))
    return logs


def psycopg2_connect(**options: Any) -> Any:
    """A psycopg2 connection to the test PostgreSQL (``options``: libpq settings)."""
    import psycopg2

    return psycopg2.connect(
        host=POSTGRES.host,
        port=POSTGRES.port,
        user=POSTGRES.user,
        dbname=POSTGRES.database,
        password=POSTGRES.password or None,
        **options,
    )


def pymysql_connect() -> Any:
    """A PyMySQL connection to the test MariaDB, in utf8mb4."""
    import pymysql

    return pymysql.connect(
        host=MARIADB.host,
        port=MARIADB.port,
        user=MARIADB.user,
        password=MARIADB.password,
        database=MARIADB.database,
        charset="utf8mb4",
    )
