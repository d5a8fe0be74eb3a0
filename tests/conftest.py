"""Suite-wide set-up: a private Airflow home with a SQLite metadata DB per xdist worker, and an SLS
emulator with an ``sls`` connection pointing at it.

Airflow reads its configuration when first imported, so the environment is set here, at import time,
before any test module imports Airflow.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="sls-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "")

from sls_provider.core.client import RetryPolicy  # noqa: E402
from sls_provider.emulator import SlsEmulator  # noqa: E402
from sls_provider.testing import EmulatorFactory, connection_json  # noqa: E402
from tests.airflow_db import migrated_sqlite  # noqa: E402

PROJECT, LOGSTORE = "proj", "store"

#: The suite's one fast retry policy: waits of a millisecond or so, so a retried test stays quick.
#: A test that needs its own attempts or deadline says only that:
#: ``dataclasses.replace(FAST_RETRY, attempts=4)``.
FAST_RETRY = RetryPolicy(attempts=8, deadline=60, backoff=0.001, max_backoff=0.01)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata DB for this worker (``tests/airflow_db.py``: a copy of one migrated once)."""
    migrated_sqlite(_HOME / "airflow.db")
    return _HOME


@pytest.fixture
def emulator(sls_emulator_factory: EmulatorFactory) -> SlsEmulator:
    """A fresh in-memory emulator with ``proj/store`` (web tracking on); no auto-creation."""
    return sls_emulator_factory(logstores=[(PROJECT, LOGSTORE)])


def content(log: dict[str, str]) -> dict[str, str]:
    """A stored log without the service's own fields (``__topic__``, ``__tag__:...``)."""
    return {k: v for k, v in log.items() if not k.startswith("__")}


def sls_connection(endpoint: str, **extra: object) -> str:
    """An ``sls`` connection to ``proj/store`` at ``endpoint`` (the shipped ``connection_json``);
    ``extra`` may name another project or logstore."""
    return connection_json(endpoint, **{"project": PROJECT, "logstore": LOGSTORE, **extra})


@pytest.fixture
def sls_conn(emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> SlsEmulator:
    """``sls_default`` pointing at the emulator; returns the emulator."""
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint))
    return emulator
