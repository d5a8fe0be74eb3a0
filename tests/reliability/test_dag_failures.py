"""Final errors and task retries inside real DAG runs (``dag.test()``) against the emulator."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import DAG, task

from sls_provider.emulator import SlsEmulator
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import LOGSTORE, PROJECT, sls_connection
from tests.dagrun import START, retrying_dag, run
from tests.reliability.test_transient_faults import frame, stored_batches

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.mark.parametrize(
    "code, status, make_it_happen",
    [
        ("InvalidKey", 400, lambda emu: emu.faults.fail_next(1, status=400, error_code="InvalidKey")),
        ("LogStoreNotExist", 404, lambda emu: None),  # the operator names a logstore that does not exist
        ("Unauthorized", 403, lambda emu: emu.create_logstore(PROJECT, "closed", web_tracking=False)),
    ],
)
def test_final_error_fails_the_task_after_one_request(
    sls_conn: SlsEmulator, capsys: pytest.CaptureFixture[str], code: str, status: int, make_it_happen
) -> None:
    make_it_happen(sls_conn)
    logstore = {"LogStoreNotExist": "missing", "Unauthorized": "closed"}.get(code, LOGSTORE)
    with DAG(f"final_{code}", schedule=None, start_date=START) as dag:
        SlsWebTrackingOperator(
            task_id="export",
            dataframe=frame(20_000),
            logstore=logstore,
            max_workers=1,
            max_logs=1000,
            retries=0,
        )
    assert run(dag) == "failed"
    sent = sls_conn.requests.where(path=f"/logstores/{logstore}/track")
    assert len(sent) == 1 and sent[0]["status"] == status and sent[0]["error_code"] == code
    task_log = capsys.readouterr().out  # dag.test() prints the task's log
    assert f"SlsRequestError: SLS answered {status} {code}" in task_log


def retried_export(
    emulator: SlsEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    dag_id: str,
    arm: Callable[[], None],
) -> dict:
    """Run a DAG whose export task has one retry and no retries of requests; ``arm`` arms the
    emulator's fault once ten requests were acknowledged, so the first try fails mid-export. Returns
    the summary the task returned."""
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, retry_attempts=1))
    acked = Counter[str]()

    def after_ten(record: dict) -> None:
        if record["status"] == 200:
            acked["n"] += 1
            if acked["n"] == 10:
                arm()

    emulator._state.on_request = after_ten
    out = tmp_path / "summary.json"
    with retrying_dag(dag_id, 1) as dag:
        export = SlsWebTrackingOperator(
            task_id="export", dataframe=frame(), topic_column="topic", max_logs=2000, max_workers=2
        )

        @task
        def keep(summary: dict) -> None:
            out.write_text(json.dumps(summary))

        keep(export.output)

    assert run(dag) == "success"
    return json.loads(out.read_text())


@pytest.mark.skipif(
    not hasattr(__import__("airflow.sdk", fromlist=["ResumableJobMixin"]), "ResumableJobMixin"),
    reason="resume needs Airflow's task_state_store (3.3+)",
)
def test_task_retry_resumes_and_stores_every_row_once(
    emulator: SlsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try fails after some requests were acknowledged (a 503 with retries off on the
    connection); Airflow retries the task, which sends only what the first try did not."""
    summary = retried_export(
        emulator,
        monkeypatch,
        tmp_path,
        "resume",
        lambda: emulator.faults.fail_next(1, status=503, error_code="ServerBusy"),
    )
    assert emulator.faults.injected["fail_next"] == 1
    batches = stored_batches(emulator)
    assert summary["requests"] == len(batches)  # the summary covers both tries
    assert summary["resumed_requests"] >= 10
    assert summary["rows"] == 200_000
    assert all(n == 1 for n in batches.values()), "a request was stored twice"
    ids = Counter(int(log["id"]) for log in emulator.get_logs(PROJECT, LOGSTORE))
    assert len(ids) == 200_000 and set(ids.values()) == {1}


@pytest.mark.skipif(
    not hasattr(__import__("airflow.sdk", fromlist=["ResumableJobMixin"]), "ResumableJobMixin"),
    reason="resume needs Airflow's task_state_store (3.3+)",
)
def test_requests_in_flight_when_a_try_dies_are_possible_duplicates_of_the_next(
    emulator: SlsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first try dies with requests on the wire whose answers never came back (the service
    stored one, then answered an error; retries are off). The second try sends them again and its
    summary counts them as possible duplicates, whose sequence numbers the log names."""
    summary = retried_export(
        emulator,
        monkeypatch,
        tmp_path,
        "in_flight",
        lambda: emulator.faults.accept_then_fail(1, status=503, error_code="ServerBusy"),
    )
    assert emulator.faults.injected["accept_then_fail"] >= 1
    twice = sorted(int(seq) for (_, seq), n in stored_batches(emulator).items() if n > 1)
    assert len(twice) == 1, twice
    assert summary["possible_duplicates"] == len(twice)
    assert summary["resumed_requests"] >= 10
    ids = Counter(int(log["id"]) for log in emulator.get_logs(PROJECT, LOGSTORE))
    assert set(ids) == set(range(200_000))
    task_log = capsys.readouterr().out
    assert "1 request(s) were sent by an earlier try" in task_log
    assert f"(sls_seq {twice[0]} of export {summary['export_id']})" in task_log


def test_each_run_is_a_new_export(sls_conn: SlsEmulator) -> None:
    """A second run of the DAG sends everything again, under a new export id."""
    data = pd.DataFrame({"n": np.arange(10)})
    with DAG("twice", schedule=None, start_date=START) as dag:
        SlsWebTrackingOperator(task_id="export", dataframe=data)
    assert run(dag) == "success"
    assert run(dag) == "success"
    logs = sls_conn.get_logs(PROJECT, LOGSTORE)
    assert len(logs) == 20
    # Two exports, told apart by their ids.
    assert len({log["__tag__:sls_export"] for log in logs}) == 2
