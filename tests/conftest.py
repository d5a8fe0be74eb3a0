"""Suite-wide set-up: a private Airflow home with a SQLite metadata DB per xdist worker, and an SLS
emulator with an ``sls`` connection pointing at it.

Airflow reads its configuration when first imported, so the environment is set here, at import time,
before any test module imports Airflow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="sls-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "")

from sls_provider.emulator import SlsEmulator  # noqa: E402

PROJECT, LOGSTORE = "proj", "store"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata DB for this worker (about 3 s, once)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ
    )
    return _HOME


@pytest.fixture
def emulator() -> Iterator[SlsEmulator]:
    """A fresh in-memory emulator with ``proj/store`` (web tracking on)."""
    with SlsEmulator() as emu:
        emu.create_logstore(PROJECT, LOGSTORE, web_tracking=True)
        yield emu


def content(log: dict[str, str]) -> dict[str, str]:
    """A stored log without the service's own fields (``__topic__``, ``__tag__:...``)."""
    return {k: v for k, v in log.items() if not k.startswith("__")}


def sls_connection(endpoint: str, **extra: object) -> str:
    return json.dumps(
        {"conn_type": "sls", "host": endpoint, "extra": {"project": PROJECT, "logstore": LOGSTORE, **extra}}
    )


@pytest.fixture
def sls_conn(emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> SlsEmulator:
    """``sls_default`` pointing at the emulator; returns the emulator."""
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint))
    return emulator
