"""No secret in task logs, errors, XCom, rendered templates or reprs; TLS verified by default."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from airflow.sdk import DAG, task

from sls_provider.core.errors import SlsServiceError
from sls_provider.emulator import SlsEmulator
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import LOGSTORE, PROJECT
from tests.dagrun import run

SECRET, TOKEN = "s3cr3t-AccessKeySecret-value", "sts-security-token-value"


def connection(endpoint: str, logstore: str = LOGSTORE) -> str:
    return json.dumps(
        {
            "conn_type": "sls",
            "host": endpoint,
            "login": "LTAI5tExampleKeyId",
            "password": SECRET,
            "extra": {"project": PROJECT, "logstore": logstore, "security_token": TOKEN},
        }
    )


@pytest.mark.usefixtures("airflow_db")
def test_full_dag_run_never_shows_the_secret(
    emulator: SlsEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", connection(emulator.endpoint))
    emulator.create_logstore(PROJECT, "closed", web_tracking=False)
    out = tmp_path / "xcom.json"
    with DAG("secrets", schedule=None, start_date=pd.Timestamp("2026-01-01", tz="UTC")) as dag:
        ok = SlsWebTrackingOperator(task_id="ok", dataframe=pd.DataFrame({"a": [1, 2]}), tags={"t": "x"})
        SlsWebTrackingOperator(task_id="refused", dataframe=pd.DataFrame({"a": [1]}), logstore="closed")

        @task
        def keep(summary: dict) -> None:
            out.write_text(json.dumps(summary))

        keep(ok.output)

    assert run(dag) == "failed"  # "refused" fails, with its error in the log
    captured = capfd.readouterr()
    # The summary is the export's own log line (module logger): read the log records too.
    text = captured.out + captured.err + caplog.text
    assert "SLS answered 403 Unauthorized" in text and "SLS export done" in text
    for secret in (SECRET, TOKEN):
        assert secret not in text
        assert secret not in out.read_text()
    assert emulator.count(PROJECT, LOGSTORE) == 2
    # Nothing secret is ever sent: web tracking is anonymous, so neither the request line nor any
    # header carries the key.
    for record in emulator.requests.snapshot():
        assert SECRET not in json.dumps(record, default=str)


def test_errors_and_reprs_never_show_the_secret(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", connection(emulator.endpoint, logstore="missing"))
    hook = SlsWebTrackingHook()
    with pytest.raises(SlsServiceError) as raised:
        hook.put_logs([{"a": "1"}])
    shown = str(raised.value) + repr(raised.value) + repr(hook) + repr(hook.settings) + repr(hook.client)
    assert "LogStoreNotExist" in shown
    assert SECRET not in shown and TOKEN not in shown


def test_tls_is_verified_by_default(emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", connection("cn-hangzhou.log.aliyuncs.com"))
    hook = SlsWebTrackingHook()
    assert hook.target.scheme == "https" and hook.client.verify is True
    assert (
        hook.target.track_url == f"https://{PROJECT}.cn-hangzhou.log.aliyuncs.com/logstores/{LOGSTORE}/track"
    )
