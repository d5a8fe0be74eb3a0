"""SlsWebTrackingHook over real HTTP against the emulator."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from sls_provider.core.errors import SlsConfigError, SlsInputError, SlsRequestError
from sls_provider.emulator import SlsEmulator
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import FAST_RETRY, LOGSTORE, PROJECT, content, sls_connection


def test_put_dataframe_several_topics_and_tags(sls_conn: SlsEmulator) -> None:
    n = 30_000
    topics = np.array(["checkout", "search", "", "home"])[np.arange(n) % 4]
    frame = pd.DataFrame({"seq": np.arange(n), "topic": topics, "note": ["x" * (i % 50) for i in range(n)]})
    frame.loc[frame.index % 4 == 2, "topic"] = None  # null topic -> ""
    summary = SlsWebTrackingHook().put_dataframe(
        frame,
        topic_column="topic",
        source="batch-7",
        tags={"team": "growth", "env": "test"},
        max_logs=1000,
        chunksize=7_000,
    )
    assert summary.rows == n
    assert summary.topics == {"": n // 4, "checkout": n // 4, "home": n // 4, "search": n // 4}
    assert sls_conn.counts() == {(PROJECT, LOGSTORE, t): n // 4 for t in ("", "checkout", "home", "search")}
    ok = sls_conn.requests.where(status=200)
    assert summary.requests == len(ok)
    assert all(r["logs"] <= 1000 for r in ok)
    assert len({r["topic"] for r in ok}) == 4
    assert summary.raw_bytes == sum(r["raw_bytes"] for r in ok)
    assert summary.sent_bytes == sum(r["body_bytes"] for r in ok)

    logs = sls_conn.get_logs(PROJECT, LOGSTORE)
    assert sorted(int(log["seq"]) for log in logs) == list(range(n))
    for log in logs:
        assert log["__source__"] == "batch-7"
        assert log["__tag__:team"] == "growth" and log["__tag__:env"] == "test"
        assert "topic" not in log  # the topic column is not sent
        seq = int(log["seq"])
        assert log["__topic__"] == ["checkout", "search", "", "home"][seq % 4]
        assert log.get("note", "") == "x" * (seq % 50)  # "" is sent as ""
    # Row order within a topic is kept: by request sequence number (requests travel concurrently, so
    # arrival order is not the order sent), then by position within the request.
    stored = sls_conn.get_logs(PROJECT, LOGSTORE, topic="search")
    assert len({log["__tag__:sls_export"] for log in stored}) == 1
    in_order = sorted(enumerate(stored), key=lambda p: (int(p[1]["__tag__:sls_seq"]), p[0]))
    search = [int(log["seq"]) for _, log in in_order]
    assert search == list(range(1, n, 4))


def test_put_logs_keeps_each_values_type(sls_conn: SlsEmulator) -> None:
    logs = [{"n": 3, "ok": True}, {"n": None, "x": 2.5, "tags": ["a", "é"]}, {"nested": {"k": 1}}]
    summary = SlsWebTrackingHook().put_logs(iter(logs), topic="api", source="me")
    assert (summary.rows, summary.requests, summary.topics) == (3, 1, {"api": 3})
    stored = [content(log) for log in sls_conn.get_logs(PROJECT, LOGSTORE, topic="api")]
    assert stored == [{"n": "3", "ok": "true"}, {"x": "2.5", "tags": '["a","é"]'}, {"nested": '{"k":1}'}]


@pytest.mark.parametrize("compress_type", ["lz4", "deflate", "none"])
def test_each_compression_from_the_connection(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch, compress_type: str
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, compress_type=compress_type)
    )
    summary = SlsWebTrackingHook().put_logs([{"a": "b" * 100}] * 50)
    [request] = emulator.requests.where(status=200)
    assert request["compress_type"] == (None if compress_type == "none" else compress_type)
    assert summary.sent_bytes == request["body_bytes"]
    assert (summary.sent_bytes < summary.raw_bytes) == (compress_type != "none")
    assert emulator.count(PROJECT, LOGSTORE) == 50


def test_hook_arguments_override_the_connection(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.create_logstore("other-proj", "other-store", web_tracking=True)
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint))
    SlsWebTrackingHook(project="other-proj", logstore="other-store").put_logs([{"a": "1"}])
    assert emulator.counts() == {("other-proj", "other-store", ""): 1}


def test_missing_project_is_named(emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLS_DEFAULT", json.dumps({"conn_type": "sls", "host": emulator.endpoint})
    )
    with pytest.raises(SlsConfigError, match="project or logstore"):
        SlsWebTrackingHook().put_logs([{"a": "1"}])


def test_web_tracking_off_is_a_clear_final_error(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.create_logstore(PROJECT, "closed", web_tracking=False)
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint))
    with pytest.raises(SlsRequestError, match="403 Unauthorized.*Web tracking may be off") as raised:
        SlsWebTrackingHook(logstore="closed").put_logs([{"a": "1"}])
    assert raised.value.status == 403
    assert len(emulator.requests.snapshot()) == 1  # not retried


def test_bad_input_is_refused_before_sending(sls_conn: SlsEmulator) -> None:
    hook = SlsWebTrackingHook()
    with pytest.raises(SlsInputError, match="use put_dataframe"):
        hook.put_logs(pd.DataFrame({"a": [1]}))
    with pytest.raises(SlsInputError, match="Log #1 is a list"):
        hook.put_logs([{"a": 1}, ["not", "a", "mapping"]])
    with pytest.raises(SlsInputError, match=r"'bad key'.*'1st'"):
        hook.put_dataframe(pd.DataFrame({"bad key": [1], "ok": [2], "1st": [3]}))
    with pytest.raises(SlsInputError, match="topic_column 'nope'"):
        hook.put_dataframe(pd.DataFrame({"a": [1]}), topic_column="nope")
    big = pd.DataFrame({"payload": ["a", "b" * 5000, "c"]})
    with pytest.raises(SlsInputError, match="row 1 .* 5,01[0-9] bytes"):
        hook.put_dataframe(big, max_bytes=4096)
    assert sls_conn.requests.snapshot() == []


def test_oversize_rows_can_be_skipped_and_counted(sls_conn: SlsEmulator) -> None:
    big = pd.DataFrame({"payload": ["a", "b" * 5000, "c"]})
    summary = SlsWebTrackingHook().put_dataframe(big, max_bytes=4096, on_oversize="skip")
    assert (summary.rows, summary.skipped_rows) == (2, 1)
    assert [log["payload"] for log in sls_conn.get_logs(PROJECT, LOGSTORE)] == ["a", "c"]
    assert "skipped oversize rows: 1" in summary.line()


def test_sanitize_policy_rewrites_bad_keys(sls_conn: SlsEmulator) -> None:
    SlsWebTrackingHook().put_dataframe(
        pd.DataFrame({"user id": [1], "1st": [2], "ok": [3]}), key_policy="sanitize"
    )
    [log] = sls_conn.get_logs(PROJECT, LOGSTORE)
    assert content(log) == {"user_id": "1", "_1st": "2", "ok": "3"}


def test_repr_and_settings_hide_the_secret(emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(sls_connection(emulator.endpoint, security_token="sts-token-value"))
    conn.update(login="LTAI5tAccessKeyId", password="very-secret-key-value")
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", json.dumps(conn))
    hook = SlsWebTrackingHook()
    text = repr(hook) + repr(hook.settings)
    assert hook.settings.access_key_secret == "very-secret-key-value"  # read, but never shown
    for secret in ("very-secret-key-value", "sts-token-value", "LTAI5tAccessKeyId"):
        assert secret not in text


def test_rate_limit_paces_requests(sls_conn: SlsEmulator) -> None:
    """40 requests at 20/s: the first second's 20 go at once, the other 20 take at least a second."""
    summary = SlsWebTrackingHook().put_dataframe(
        pd.DataFrame({"i": np.arange(4000)}), max_logs=100, max_requests_per_second=20
    )
    assert summary.requests == 40
    times = sorted(r["time"] for r in sls_conn.requests.where(status=200))
    assert times[-1] - times[0] >= 0.9  # a lower bound only: a slow machine cannot make it fail


class _CapturingServer:
    """Answers 200 to every POST and keeps the bodies, to see exactly what the client sent."""

    def __init__(self) -> None:
        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.send_header("x-log-requestid", "capture-1")  # what SLS acknowledges with
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _CapturingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.mark.parametrize(("source", "sent"), [(None, None), ("", ""), ("batch-7", "batch-7")])
def test_source_is_sent_exactly_as_given_and_left_out_by_default(
    monkeypatch: pytest.MonkeyPatch, source: str | None, sent: str | None
) -> None:
    """By default no ``__source__`` is in the body, so bodies are the same from any worker (the
    service records the sender's address); a given source is sent as it is, even an empty one."""
    with _CapturingServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(server.endpoint, compress_type="none"))
        SlsWebTrackingHook().put_logs([{"a": "1"}], source=source)
    [body] = [json.loads(raw) for raw in server.bodies]
    assert body.get("__source__", None) == sent
    assert ("__source__" in body) == (source is not None)
    assert body["__logs__"] == [{"a": "1"}]


def test_default_source_is_the_senders_address_in_the_service(sls_conn: SlsEmulator) -> None:
    SlsWebTrackingHook().put_logs([{"a": "1"}])
    [log] = sls_conn.get_logs(PROJECT, LOGSTORE)
    assert log["__source__"] == "127.0.0.1"


def test_reserved_tracing_tags_are_refused(sls_conn: SlsEmulator) -> None:
    with pytest.raises(SlsInputError, match=r"\['sls_seq'\] are reserved"):
        SlsWebTrackingHook().put_logs([{"a": "1"}], tags={"sls_seq": "mine"})
    SlsWebTrackingHook().put_logs([{"a": "1"}], tags={"sls_seq": "mine"}, trace_tags=False)
    [log] = sls_conn.get_logs(PROJECT, LOGSTORE)
    assert log["__tag__:sls_seq"] == "mine" and "__tag__:sls_export" not in log


def test_refused_connection_is_retried_but_not_a_possible_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    from sls_provider.core.errors import SlsRetryableError

    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection("http://127.0.0.1:1"))
    hook = SlsWebTrackingHook(retry=replace(FAST_RETRY, attempts=2))
    with pytest.raises(SlsRetryableError, match="Could not connect") as raised:
        hook.put_logs([{"a": "1"}])
    assert raised.value.ambiguous is False


def test_port_zero_is_no_port_and_test_connection_names_the_field(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3.3's UI tests a connection with ``port: 0`` for an empty port field, under a random
    connection id: port 0 means no port, and a missing project names the form field, not the id."""
    conn = {"conn_type": "sls", "host": emulator.endpoint, "port": 0, "extra": {"logstore": "web-events"}}
    monkeypatch.setenv("AIRFLOW_CONN_HNBBTPYF", json.dumps(conn))
    ok, message = SlsWebTrackingHook("HnBbTPyf").test_connection()
    assert not ok
    assert message == (
        "The connection has no SLS project: fill in the connection form's Project field "
        '(extra "project"), or pass project=... to the hook or operator.'
    )
    hook = SlsWebTrackingHook("HnBbTPyf", project="my-project")
    assert hook.target.base_url == emulator.endpoint


@pytest.mark.parametrize("timeout", [0, -1, "inf", "soon", True])
def test_a_bad_timeout_in_the_connection_is_a_failed_test_not_a_crash(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch, timeout: object
) -> None:
    """``timeout: 0`` reached urllib3, whose own ValueError escaped ``test_connection()``."""
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, timeout=timeout))
    ok, message = SlsWebTrackingHook().test_connection()
    assert not ok and "timeout" in message and repr(timeout) in message
    with pytest.raises(SlsConfigError, match="timeout"):
        SlsWebTrackingHook().put_logs([{"a": "1"}])
    assert emulator.counts() == {}


@pytest.mark.parametrize("timeout", [True, 0, float("inf"), float("nan"), "30"])
def test_the_hooks_timeout_argument_follows_the_operators_rule(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch, timeout: object
) -> None:
    """One rule for a timeout wherever it is given: the hook took ``True`` as 1 s and ``"30"`` as 30 s
    where the operator refused both, and the operator took ``inf`` where the hook refused it."""
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint))
    with pytest.raises(SlsConfigError, match=r"timeout must be a positive, finite number of seconds"):
        _ = SlsWebTrackingHook(timeout=timeout).settings  # type: ignore[arg-type]
    with pytest.raises(SlsConfigError, match=r"timeout must be a positive, finite number of seconds"):
        SlsWebTrackingOperator(task_id="t", dataframe=pd.DataFrame({"a": [1]}), timeout=timeout)  # type: ignore[arg-type]
    assert SlsWebTrackingHook(timeout=2).settings.timeout == 2.0


@pytest.mark.parametrize("kind", [False, 0, "gzip"])
def test_a_compress_type_that_is_given_is_checked_not_replaced_by_the_default(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch, kind: object
) -> None:
    """``extra.compress_type: false`` became lz4 through an ``or`` chain: only None and an empty
    form field are "not given"."""
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, compress_type=kind))
    ok, message = SlsWebTrackingHook().test_connection()
    assert not ok and "compress_type must be one of" in message and repr(kind) in message


def test_a_bad_retry_extra_names_the_connection_as_the_form_test_does(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI tests a connection under a random id: every error names it as "The connection", as
    the missing-project one does, not by that id."""
    conn = {
        "conn_type": "sls",
        "host": emulator.endpoint,
        "extra": {"project": "p", "logstore": "s", "retry_attempts": "many"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_HNBBTPYF", json.dumps(conn))
    ok, message = SlsWebTrackingHook("HnBbTPyf").test_connection()
    assert (ok, message) == (False, "The connection: extra.retry_attempts must be a number, got 'many'")
    conn["extra"]["retry_attempts"] = 0  # type: ignore[index]
    monkeypatch.setenv("AIRFLOW_CONN_HNBBTPYF", json.dumps(conn))
    ok, message = SlsWebTrackingHook("HnBbTPyf").test_connection()
    assert not ok and message.startswith("The connection: ") and "HnBbTPyf" not in message
    with pytest.raises(SlsConfigError, match=r"^Connection 'HnBbTPyf': "):
        _ = SlsWebTrackingHook("HnBbTPyf").settings


def test_test_connection_leaves_the_hooks_own_settings_alone(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test reads the connection under a neutral name, without replacing the settings (and
    the target and client built from them) that the hook already holds."""
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint))
    hook = SlsWebTrackingHook(timeout=7)
    settings, client = hook.settings, hook.client
    assert hook.test_connection()[0]
    assert hook.settings is settings and hook.client is client


def test_empty_form_fields_mean_the_hook_defaults(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI stores an empty optional field as null: the hook's defaults apply, nothing is stored."""
    extra = {
        "project": "proj1",
        "logstore": "web-events",
        "compress_type": None,
        "timeout": None,
        "verify": "",
    }
    conn = {"conn_type": "sls", "host": emulator.endpoint, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_SLS_FORM", json.dumps(conn))
    settings = SlsWebTrackingHook("sls_form").settings
    assert (settings.compress_type, settings.timeout, settings.verify) == ("lz4", 30.0, True)


@pytest.mark.parametrize(
    ("host", "port", "url", "host_header"),
    [
        ("cn-hangzhou.log.aliyuncs.com", 443, "https://proj1.cn-hangzhou.log.aliyuncs.com", None),
        ("https://10.0.0.5", 443, "https://10.0.0.5", "proj1.10.0.0.5"),
        ("http://127.0.0.1", 80, "http://127.0.0.1", "proj1.127.0.0.1"),
        ("http://127.0.0.1:9090", 9090, "http://127.0.0.1:9090", "proj1.127.0.0.1:9090"),
        ("http://127.0.0.1", 9090, "http://127.0.0.1:9090", "proj1.127.0.0.1:9090"),
        ("https://10.0.0.5", 0, "https://10.0.0.5", "proj1.10.0.0.5"),
    ],
)
def test_form_port(
    host: str, port: int, url: str, host_header: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port filled in for the UI's Test icon: the scheme's own port changes nothing, 0 is none."""
    conn = {
        "conn_type": "sls",
        "host": host,
        "port": port,
        "extra": {"project": "proj1", "logstore": "store1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SLS_PORT", json.dumps(conn))
    target = SlsWebTrackingHook("sls_port").target
    assert (target.base_url, target.host_header) == (url, host_header)


def test_form_port_disagreeing_with_the_endpoint_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "sls",
        "host": "http://127.0.0.1:9090",
        "port": 80,
        "extra": {"project": "proj1", "logstore": "store1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SLS_PORT", json.dumps(conn))
    with pytest.raises(SlsConfigError, match="names port 9090 and the connection port 80"):
        _ = SlsWebTrackingHook("sls_port").target


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True, "5"])
def test_stall_timeout_is_checked_by_one_rule_wherever_it_is_given(bad: object) -> None:
    """The hook, the export options and the pacing controller once checked it three ways, with
    three error types (a bare ValueError among them)."""
    from sls_provider.core.congestion import SendController
    from sls_provider.core.options import ExportOptions

    for make in (SendController, ExportOptions, SlsWebTrackingHook):
        with pytest.raises(SlsInputError, match=r"stall_timeout must be a positive, finite number"):
            make(stall_timeout=bad)  # type: ignore[arg-type]
