"""The fixtures the provider gives its users' tests (the ``pytest11`` plugin in sls_provider/testing.py)."""

from __future__ import annotations

import pandas as pd

from sls_provider.emulator import SlsEmulator
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from sls_provider.testing import TEST_LOGSTORE, TEST_PROJECT


def test_plugin_fixtures_point_the_default_connection_at_an_emulator(
    sls_default_connection: SlsEmulator,
) -> None:
    summary = SlsWebTrackingHook().put_dataframe(pd.DataFrame({"n": [1, 2, 3]}), topic="t")
    assert summary.rows == 3
    assert sls_default_connection.count(TEST_PROJECT, TEST_LOGSTORE) == 3


def test_the_emulator_fixture_creates_logstores_on_first_write(sls_emulator: SlsEmulator) -> None:
    from sls_provider.core.client import WebTrackingClient
    from sls_provider.core.endpoint import resolve_target
    from sls_provider.core.export import Exporter, ExportOptions
    from sls_provider.sources.frames import frames_from_records

    client = WebTrackingClient(resolve_target(sls_emulator.endpoint, "any-project", "any-store"))
    Exporter(client, ExportOptions()).run(frames_from_records([{"a": "1"}], 10))
    assert sls_emulator.count("any-project", "any-store") == 1
