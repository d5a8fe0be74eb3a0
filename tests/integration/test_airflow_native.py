"""What an Airflow user sees: the provider in the CLI, the connection form, the Test button."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import sls_provider
from sls_provider.emulator import SlsEmulator
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from tests.conftest import LOGSTORE, PROJECT, sls_connection


def airflow(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def airflow_json(*args: str) -> Any:
    """The JSON document a CLI command printed, wherever it starts: another installed package may
    print a warning line on stdout before it, and that is not what these tests check."""
    out = airflow(*args, "--output", "json")
    starts = [i for i, line in enumerate(out.splitlines()) if line.lstrip().startswith(("[", "{"))]
    assert starts, f"no JSON in the output of airflow {' '.join(args)}: {out[-2000:]}"
    lines = out.splitlines()
    for start in starts:
        try:
            value, _ = json.JSONDecoder().raw_decode("\n".join(lines[start:]).lstrip())
            return value
        except json.JSONDecodeError:
            continue
    raise AssertionError(f"no parsable JSON in the output of airflow {' '.join(args)}: {out[-2000:]}")


def test_cli_json_is_found_after_a_warning_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # The helper itself: a warning printed before the document (as an old celery provider did).
    printed = "Please define the 'cli' section in the 'get_provider_info' [x]\n[{\"a\": 1}]\n"
    monkeypatch.setattr(sys.modules[__name__], "airflow", lambda *args: printed)
    assert airflow_json("providers", "list") == [{"a": 1}]
    monkeypatch.setattr(sys.modules[__name__], "airflow", lambda *args: "just a warning\n")
    with pytest.raises(AssertionError, match="no JSON"):
        airflow_json("providers", "list")


@pytest.mark.usefixtures("airflow_db")
def test_cli_shows_provider_hook_and_connection_type() -> None:
    providers = airflow_json("providers", "list")
    mine = [p for p in providers if p["package_name"] == "airflow-provider-sls"]
    assert mine and mine[0]["version"] == sls_provider.__version__
    hooks = airflow_json("providers", "hooks")
    assert any(h["connection_type"] == "sls" and h["class"].endswith("SlsWebTrackingHook") for h in hooks)

    extra = json.dumps({"project": PROJECT, "logstore": LOGSTORE, "compress_type": "deflate"})
    airflow(
        "connections",
        "add",
        "sls_from_cli",
        "--conn-type",
        "sls",
        "--conn-host",
        "http://127.0.0.1:9090",
        "--conn-extra",
        extra,
    )
    shown = airflow_json("connections", "get", "sls_from_cli")
    assert shown[0]["conn_type"] == "sls" and shown[0]["host"] == "http://127.0.0.1:9090"
    extra_shown = shown[0].get("extra_dejson") or json.loads(shown[0].get("extra") or "{}")
    assert extra_shown["compress_type"] == "deflate", shown


def test_building_the_bundles_with_examples_on_logs_no_error(airflow_db, tmp_path) -> None:
    """With ``[core] load_examples`` on (Airflow's default), building the DAG bundles imports a module
    named after each provider's distribution to look for example DAGs (apache/airflow#66305): none
    must fail, or every task log of every DAG carries an ERROR traceback."""
    shutil.copy(airflow_db / "airflow.db", tmp_path / "airflow.db")  # migrated once per worker
    (tmp_path / "dags").mkdir()
    env = {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
    }
    # Only the (empty) DAG folder is reserialized, but every bundle, the examples' included, is built.
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "reserialize", "--bundle-name", "dags-folder"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "example_dags" in output  # the examples were on: Airflow's own example bundle was built
    assert "example DAG discovery" not in output, output[-3000:]
    assert "airflow_provider_sls" not in output, output[-3000:]


def test_connection_form_declares_the_sls_fields() -> None:
    [conn_type] = sls_provider.get_provider_info()["connection-types"]
    assert set(conn_type["conn-fields"]) >= {"project", "logstore", "compress_type", "security_token"}
    assert conn_type["conn-fields"]["security_token"]["schema"]["format"] == "password"
    assert conn_type["conn-fields"]["compress_type"]["schema"]["enum"] == ["lz4", "deflate", "none"]
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["relabeling"] == {
        "host": "Endpoint",
        "port": "Port (for the Test button)",
        "login": "AccessKey ID",
        "password": "AccessKey Secret",
    }
    assert "log.aliyuncs.com" in behaviour["placeholders"]["host"]
    # The form asks for what makes the Test button work on Airflow 3.3.2 (docs/connection.md#in-the-ui).
    assert "Test button needs it" in behaviour["placeholders"]["port"]
    hook_behaviour = SlsWebTrackingHook.get_ui_field_behaviour()
    assert hook_behaviour["relabeling"] == behaviour["relabeling"]
    assert set(hook_behaviour["hidden_fields"]) == set(behaviour["hidden-fields"])
    # One definition: the hook's placeholders are the conn-fields' examples; no form default is
    # written into a connection's extra.
    assert (
        hook_behaviour["placeholders"]["project"]
        == conn_type["conn-fields"]["project"]["schema"]["examples"][0]
    )
    assert all("default" not in spec["schema"] for spec in conn_type["conn-fields"].values())
    assert conn_type["conn-fields"]["project"]["schema"]["type"] == "string"  # required in the form
    assert "port" not in behaviour["hidden-fields"]


def test_test_button_with_web_tracking_on(sls_conn: SlsEmulator) -> None:
    ok, message = SlsWebTrackingHook().test_connection()
    assert ok, message
    assert "exists and web tracking is on" in message
    assert sls_conn.count(PROJECT, LOGSTORE) == 0  # nothing written
    assert [r["method"] for r in sls_conn.requests.snapshot()] == ["GET"]


def test_test_button_with_web_tracking_off(emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.create_logstore(PROJECT, "quiet", web_tracking=False)
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, logstore="quiet"))
    ok, message = SlsWebTrackingHook().test_connection()
    assert not ok and "web tracking is off" in message and "enable_web_tracking" in message


def test_test_button_with_a_missing_logstore(emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, logstore="nope"))
    ok, message = SlsWebTrackingHook().test_connection()
    assert not ok and "404 LogStoreNotExist" in message


def test_test_button_with_a_bad_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection("http://127.0.0.1:1"))
    ok, message = SlsWebTrackingHook().test_connection()
    assert not ok and "Could not reach SLS at http://127.0.0.1:1" in message


def test_enable_web_tracking_is_a_signed_call(emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.create_logstore(PROJECT, "quiet", web_tracking=False)
    conn = json.loads(sls_connection(emulator.endpoint, logstore="quiet"))
    conn.update(login="LTAI5tKeyId", password="key-secret-value")
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", json.dumps(conn))
    hook = SlsWebTrackingHook()
    hook.enable_web_tracking()
    assert hook.test_connection()[0]
    assert hook.put_logs([{"a": "1"}]).rows == 1


class _Capture(BaseHTTPRequestHandler):
    """A stand-in for the real service's signature check: records each request's headers and
    answers with the status the test sets."""

    status = 200
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen.append(dict(self.headers.items()))
        body = json.dumps(
            {"enable_tracking": True}
            if self.status == 200
            else {"errorCode": "Unauthorized", "errorMessage": "x"}
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def capture() -> Iterator[tuple[str, type[_Capture]]]:
    handler = type("Handler", (_Capture,), {"seen": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_signature_follows_the_sls_v1_scheme(capture, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, handler = capture
    conn = json.loads(sls_connection(endpoint, security_token="sts-token"))
    conn.update(login="LTAI5tKeyId", password="key-secret-value")
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", json.dumps(conn))
    ok, _ = SlsWebTrackingHook().test_connection()
    assert ok
    [headers] = handler.seen
    assert headers["Host"] == f"{PROJECT}.{endpoint.removeprefix('http://')}"
    assert headers["x-acs-security-token"] == "sts-token"
    # String to sign, per the SLS API's V1 signature: verb, Content-MD5, Content-Type, Date, the
    # x-log-/x-acs- headers sorted, the resource.
    signed = sorted(
        f"{k.lower()}:{v}"
        for k, v in headers.items()
        if k.lower().startswith(("x-log-", "x-acs-")) and k.lower() != "x-log-date"
    )
    text = "\n".join(["GET", "", "", headers["Date"], *signed, f"/logstores/{LOGSTORE}"])
    digest = hmac.new(b"key-secret-value", text.encode(), hashlib.sha1).digest()
    assert headers["Authorization"] == "LOG LTAI5tKeyId:" + base64.b64encode(digest).decode()


def test_unsigned_test_says_what_it_could_not_check(capture, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, handler = capture
    handler.status = 401
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(endpoint))
    ok, message = SlsWebTrackingHook().test_connection()
    assert ok and "could not be checked" in message and "AccessKey" in message
    assert "Authorization" not in handler.seen[0]
