"""Dead letters: rows an export does not send are kept, once, where ``dead_letter`` says, and none of
them is also counted as sent. Files are read back through Airflow's ``ObjectStoragePath``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath, task

from sls_provider import SlsInputError, SlsRequestError
from sls_provider.emulator import SlsEmulator
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import FAST_RETRY, LOGSTORE, PROJECT, sls_connection
from tests.dagrun import retrying_dag, run

pytestmark = pytest.mark.usefixtures("airflow_db")
BIG = "x" * 1_100_000  # one value over SLS's 1 MiB limit
ROWS, OVERSIZE = 40, (5, 33)


def rows_frame() -> pd.DataFrame:
    return pd.DataFrame({"id": range(ROWS), "v": [BIG if i in OVERSIZE else f"v{i}" for i in range(ROWS)]})


def read_back(url: str) -> dict[str, list[dict]]:
    """Every dead-letter file under ``url``, as records, through ObjectStoragePath."""
    files = {}
    for path in sorted(ObjectStoragePath(url).iterdir()):
        with path.open("r") as lines:
            files[path.name] = [json.loads(line) for line in lines]
    return files


@pytest.mark.skipif(
    not hasattr(__import__("airflow.sdk", fromlist=["ResumableJobMixin"]), "ResumableJobMixin"),
    reason="resume needs Airflow's task_state_store (3.3+)",
)
def test_a_retried_task_keeps_each_dead_letter_once(
    emulator: SlsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Try 1: request 0 is refused for its content (400) and put aside, then request 1 meets a
    server error (503, one attempt), so the task fails and Airflow retries it (a failure that a
    retry may heal; one past max_bad_rows would not be retried). Try 2 (the same export, resumed):
    request 0 is refused and put aside again, the rest goes. Rows 5 and 33 are too large and skipped
    on both tries."""
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, retry_attempts=1))
    emulator.faults.fail_next(1, status=400, error_code="PostBodyInvalid")
    emulator.faults.fail_every(2)  # request 1: 503 (request 0 takes the 400 above)

    def before_try_2(context: object) -> None:
        emulator.faults.fail_every(10**9)  # disarmed
        emulator.faults.fail_next(1, status=400, error_code="PostBodyInvalid")

    dead_letter = (tmp_path / "dead").as_uri()
    out = tmp_path / "summary.json"
    with retrying_dag("dead_letters", 1, on_retry_callback=before_try_2) as dag:
        export = SlsWebTrackingOperator(
            task_id="export",
            dataframe=rows_frame(),
            topic="t",
            max_logs=5,
            max_workers=1,  # requests go in order: the refusals hit requests 0, 1, then 0 again
            on_oversize="skip",
            dead_letter=dead_letter,
            max_bad_rows=5,
        )

        @task
        def keep(summary: dict) -> None:
            out.write_text(json.dumps(summary))

        keep(export.output)

    assert run(dag) == "success"
    assert emulator.faults.injected["fail_next"] == 2  # one on each try
    assert emulator.faults.injected["fail_every"] == 1  # the 503 that failed try 1
    summary = json.loads(out.read_text())
    export_id = summary["export_id"]
    assert summary["dead_letter_path"] == f"{dead_letter}/{export_id}"
    assert summary["dead_letter_rows"] == 5 + 2 and summary["skipped_rows"] == 2

    files = read_back(summary["dead_letter_path"])
    assert sorted(files) == ["refused-00000000.ndjson", "skipped-000000000000.ndjson"]
    refused, skipped = files["refused-00000000.ndjson"], files["skipped-000000000000.ndjson"]
    assert [r["log"]["id"] for r in refused] == ["0", "1", "2", "3", "4"]  # once, though refused twice
    assert {(r["request"], r["index"], r["error_code"]) for r in refused} == {
        (0, i, "PostBodyInvalid") for i in range(5)
    }
    assert all(r["reason"].startswith("refused by SLS: 400 PostBodyInvalid") for r in refused)
    assert [(r["row"], r["log"]["id"], len(r["log"]["v"])) for r in skipped] == [
        (5, "5", len(BIG)),
        (33, "33", len(BIG)),
    ]
    assert all("1,100,000 bytes in 'v'" in r["reason"] for r in skipped)
    assert {r["export_id"] for r in refused + skipped} == {export_id}
    assert {r["topic"] for r in refused + skipped} == {"t"}

    # What was put aside was not sent, nor counted as sent; everything else was, once.
    stored = Counter(log["id"] for log in emulator.get_logs(PROJECT, LOGSTORE))
    kept_aside = {r["log"]["id"] for r in refused + skipped}
    assert set(stored.values()) == {1} and not kept_aside & set(stored)
    assert set(stored) | kept_aside == {str(i) for i in range(ROWS)}
    assert summary["rows"] == len(stored) == ROWS - 7

    # Reloadable: the file is NDJSON any reader takes, and its logs go back through put_logs.
    frame = pd.read_json(Path(tmp_path / "dead" / export_id / "refused-00000000.ndjson"), lines=True)
    assert list(frame["log"].map(lambda log: log["id"])) == ["0", "1", "2", "3", "4"]
    again = SlsWebTrackingHook(retry=FAST_RETRY).put_logs(list(frame["log"]), topic="t")
    assert again.rows == 5 and emulator.count(PROJECT, LOGSTORE) == ROWS - 2


def test_refusals_past_max_bad_rows_or_of_the_target_fail_as_before(
    sls_conn: SlsEmulator, tmp_path: Path
) -> None:
    hook = SlsWebTrackingHook(retry=FAST_RETRY)
    logs = [{"id": i} for i in range(10)]
    dead_letter = (tmp_path / "dead").as_uri()

    sls_conn.faults.fail_next(2, status=400, error_code="InvalidKey")
    with pytest.raises(SlsRequestError, match="InvalidKey"):  # 4 rows aside, the next 4 are too many
        hook.put_logs(logs, max_logs=4, max_workers=1, dead_letter=dead_letter, max_bad_rows=6)

    sls_conn.clear()
    sls_conn.faults.fail_next(1, status=403, error_code="Unauthorized")  # not content: not put aside
    with pytest.raises(SlsRequestError, match="Unauthorized"):
        hook.put_logs(logs, max_logs=4, max_workers=1, dead_letter=dead_letter, max_bad_rows=100)

    sls_conn.clear()
    sls_conn.faults.fail_next(1, status=400, error_code="PostBodyInvalid")
    summary = hook.put_logs(logs, max_logs=4, max_workers=1, dead_letter=dead_letter, max_bad_rows=4)
    assert (summary.rows, summary.requests, summary.dead_letter_rows) == (6, 2, 4)
    assert sls_conn.count(PROJECT, LOGSTORE) == 6

    with pytest.raises(SlsInputError, match="give dead_letter="):
        hook.put_logs(logs, max_bad_rows=1)


def test_without_dead_letter_nothing_is_written_and_rows_are_only_counted(sls_conn: SlsEmulator) -> None:
    summary = SlsWebTrackingHook(retry=FAST_RETRY).put_dataframe(rows_frame(), on_oversize="skip")
    assert (summary.rows, summary.skipped_rows, summary.dead_letter_rows) == (ROWS - 2, 2, 0)
    assert summary.dead_letter_path is None
