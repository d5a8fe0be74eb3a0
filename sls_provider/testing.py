"""pytest fixtures for testing DAGs that export to SLS, with no cloud account.

Installed with the provider as a pytest plugin (entry point ``pytest11``), so any project's tests
can ask for them by name::

    def test_my_export(sls_default_connection):
        ...  # run the DAG; SlsWebTrackingOperator's default connection points at the emulator
        assert sls_default_connection.count("test-project", "test-logstore") == 42

An emulator set up differently (its own logstores, quotas, a SQLite file, no auto-creation) comes
from :func:`sls_emulator_factory`; :func:`connection_json` is the ``AIRFLOW_CONN_...`` value that
points a connection at one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sls_provider.emulator import SlsEmulator

__all__ = [
    "TEST_LOGSTORE",
    "TEST_PROJECT",
    "EmulatorFactory",
    "connection_json",
    "sls_default_connection",
    "sls_emulator",
    "sls_emulator_factory",
]

#: Project and logstore of :func:`sls_default_connection`.
TEST_PROJECT, TEST_LOGSTORE = "test-project", "test-logstore"

#: ``factory(**kwargs)``: a started :class:`SlsEmulator`; the keyword arguments are its own.
EmulatorFactory = Callable[..., SlsEmulator]


def connection_json(
    endpoint: str, *, project: str = TEST_PROJECT, logstore: str = TEST_LOGSTORE, **extra: Any
) -> str:
    """An ``sls`` connection as JSON (the value of an ``AIRFLOW_CONN_...`` variable).

    :param endpoint: the emulator's ``endpoint``.
    :param project: the connection's project.
    :param logstore: the connection's logstore.
    :param extra: more connection extras (``compress_type``, ``timeout``, ``retry_attempts``...).
    """
    connection = {
        "conn_type": "sls",
        "host": endpoint,
        "extra": {"project": project, "logstore": logstore, **extra},
    }
    return json.dumps(connection)


@pytest.fixture
def sls_emulator_factory() -> Iterator[EmulatorFactory]:
    """Starts emulators with any :class:`SlsEmulator` arguments (``logstores=[(project, logstore)]``,
    ``quota=``, ``db_path=``...); each is closed when the test ends."""
    started: list[SlsEmulator] = []

    def factory(**kwargs: Any) -> SlsEmulator:
        emulator = SlsEmulator(**kwargs)
        started.append(emulator)
        return emulator.start()

    yield factory
    for emulator in reversed(started):
        emulator.close()


@pytest.fixture
def sls_emulator(sls_emulator_factory: EmulatorFactory) -> SlsEmulator:
    """A local SLS on a free port, in memory; any project/logstore written to exists, with web
    tracking on."""
    return sls_emulator_factory(auto_create=True)


@pytest.fixture
def sls_default_connection(sls_emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> SlsEmulator:
    """Points the ``sls_default`` connection at :func:`sls_emulator` (project ``test-project``,
    logstore ``test-logstore``) for the test; returns the emulator."""
    sls_emulator.create_logstore(TEST_PROJECT, TEST_LOGSTORE, web_tracking=True)
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", connection_json(sls_emulator.endpoint))
    return sls_emulator
