"""pytest fixtures for testing DAGs that export to SLS, with no cloud account.

Installed with the provider as a pytest plugin (entry point ``pytest11``), so any project's tests
can ask for them by name::

    def test_my_export(sls_default_connection):
        ...  # run the DAG; SlsWebTrackingOperator's default connection points at the emulator
        assert sls_default_connection.count("test-project", "test-logstore") == 42
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sls_provider.emulator import SlsEmulator

__all__ = ["TEST_LOGSTORE", "TEST_PROJECT", "sls_default_connection", "sls_emulator"]

#: Project and logstore of :func:`sls_default_connection`.
TEST_PROJECT, TEST_LOGSTORE = "test-project", "test-logstore"


@pytest.fixture
def sls_emulator() -> Iterator[SlsEmulator]:
    """A local SLS on a free port, in memory; any project/logstore written to exists, with web
    tracking on."""
    with SlsEmulator(auto_create=True) as emulator:
        yield emulator


@pytest.fixture
def sls_default_connection(sls_emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> SlsEmulator:
    """Points the ``sls_default`` connection at :func:`sls_emulator` (project ``test-project``,
    logstore ``test-logstore``) for the test; returns the emulator."""
    sls_emulator.create_logstore(TEST_PROJECT, TEST_LOGSTORE, web_tracking=True)
    connection = {
        "conn_type": "sls",
        "host": sls_emulator.endpoint,
        "extra": {"project": TEST_PROJECT, "logstore": TEST_LOGSTORE},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", json.dumps(connection))
    return sls_emulator
