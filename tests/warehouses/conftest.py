"""Real database servers for the warehouse tests: PostgreSQL and MariaDB/MySQL on this machine.

Each fixture connects once (3 s timeout) and skips the test, with the server's address and the error
as the reason, only when the server cannot be reached. Addresses can be moved with environment
variables (``SLS_TEST_PG_HOST``/``_PORT``/``_USER``/``_DB``, ``SLS_TEST_MYSQL_HOST``/``_PORT``/``_USER``/
``_PASSWORD``/``_DB``); the defaults are the servers every session and CI run of this project has.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Server:
    """How to reach one database server, as an Airflow connection and as a raw driver connection."""

    kind: str  # "postgres" | "mysql"
    host: str
    port: int
    user: str
    password: str
    database: str

    def airflow_conn(self, **extra: Any) -> str:
        """``AIRFLOW_CONN_<ID>`` JSON for this server."""
        return json.dumps(
            {
                "conn_type": self.kind,
                "host": self.host,
                "port": self.port,
                "login": self.user,
                "password": self.password or None,
                "schema": self.database,
                "extra": extra,
            }
        )

    def connect(self, **kwargs: Any) -> Any:
        """A raw connection (psycopg / MySQLdb) for setting up tables, autocommit on."""
        if self.kind == "postgres":
            import psycopg

            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password or None,
                dbname=self.database,
                connect_timeout=3,
                autocommit=True,
                **kwargs,
            )
        import MySQLdb

        conn = MySQLdb.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            connect_timeout=3,
            charset="utf8mb4",
            **kwargs,
        )
        conn.autocommit(True)
        return conn

    def execute(self, *statements: str) -> None:
        conn = self.connect()
        try:
            cursor = conn.cursor()
            for statement in statements:
                cursor.execute(statement)
            cursor.close()
        finally:
            conn.close()


POSTGRES = Server(
    "postgres",
    os.environ.get("SLS_TEST_PG_HOST", "127.0.0.1"),
    int(os.environ.get("SLS_TEST_PG_PORT", "5432")),
    os.environ.get("SLS_TEST_PG_USER", "postgres"),
    os.environ.get("SLS_TEST_PG_PASSWORD", ""),
    os.environ.get("SLS_TEST_PG_DB", "test"),
)
MARIADB = Server(
    "mysql",
    os.environ.get("SLS_TEST_MYSQL_HOST", "127.0.0.1"),
    int(os.environ.get("SLS_TEST_MYSQL_PORT", "3306")),
    os.environ.get("SLS_TEST_MYSQL_USER", "root"),
    os.environ.get("SLS_TEST_MYSQL_PASSWORD", ""),
    os.environ.get("SLS_TEST_MYSQL_DB", "test"),
)

_reachable: dict[str, str | None] = {}


def unreachable(server: Server) -> str | None:
    """``None`` if the server answers, else why not (cached per process)."""
    if server.kind not in _reachable:
        try:
            server.connect().close()
            _reachable[server.kind] = None
        except ImportError as err:  # a missing driver is a broken environment, not a missing server
            raise RuntimeError(f"the {server.kind} driver is not installed: {err}") from err
        except Exception as err:  # noqa: BLE001 - any failure to connect means unreachable
            _reachable[server.kind] = f"{type(err).__name__}: {err}".strip()
    return _reachable[server.kind]


def require(server: Server) -> Server:
    reason = unreachable(server)
    if reason is not None:
        name = "PostgreSQL" if server.kind == "postgres" else "MariaDB/MySQL"
        message = f"{name} at {server.host}:{server.port} is unreachable: {reason}"
        print(f"SKIP: {message}")
        pytest.skip(message)
    return server


@pytest.fixture
def postgres() -> Server:
    return require(POSTGRES)


@pytest.fixture
def mariadb() -> Server:
    return require(MARIADB)


def table_name(prefix: str) -> str:
    """A table name no other test process uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def scratch_tables() -> Iterator[list[tuple[Server, str]]]:
    """Register ``(server, table)`` pairs to drop after the test."""
    tables: list[tuple[Server, str]] = []
    yield tables
    for server, table in tables:
        try:
            server.execute(f"DROP TABLE IF EXISTS {table}")
        except Exception:  # noqa: BLE001 - best effort
            pass


@contextmanager
def heavy(name: str) -> Iterator[None]:
    """Run the machine-filling parts of a test (the memory exports, the Celery cluster) one at a time
    across pytest-xdist workers: on two cores, two of them at once take more than twice as long,
    which makes timeouts flaky and the printed figures meaningless."""
    path = Path(tempfile.gettempdir()) / "sls-provider-heavy-tests.lock"
    with open(path, "a") as lock:
        started = time.monotonic()
        fcntl.flock(lock, fcntl.LOCK_EX)
        waited = time.monotonic() - started
        if waited > 1:
            print(f"\n{name}: waited {waited:.0f} s for another heavy test to finish")
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
