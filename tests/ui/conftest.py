"""Shared by the browser tests: Airflow's API server (one per session: it takes the longest to
start), and each test's outcome kept on its item, so the page fixtures screenshot only failures."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_db import migrated_sqlite


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class AirflowUi:
    """The running API server: its URL, and the environment naming its AIRFLOW_HOME (for commands
    that must share its metadata DB, such as a DAG run whose task the UI then shows)."""

    base: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowUi]:
    """Airflow's API server on a fresh AIRFLOW_HOME: simple auth manager, everyone admin, no
    password; connection testing enabled; Airflow's defaults otherwise (the examples on, as a new
    user has them)."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="True",
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrated_sqlite(home / "airflow.db")  # what `airflow db migrate` makes, copied
    port = _free_port()
    log = (home / "api-server.log").open("wb")
    server = subprocess.Popen(
        [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a bound for a hang, not a speed target
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((home / "api-server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield AirflowUi(base, env)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def api_server(airflow_ui: AirflowUi) -> str:
    """The API server's base URL."""
    return airflow_ui.base


@pytest.fixture(scope="session")
def airflow_env(airflow_ui: AirflowUi) -> dict[str, str]:
    """The environment naming the API server's AIRFLOW_HOME (for ``airflow`` commands run beside it)."""
    return airflow_ui.env


#: Debian's Chromium (never a downloaded browser), with the flags this closed network needs.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextlib.contextmanager
def chromium_page(*, width: int, height: int, timeout_ms: int) -> Iterator[Any]:
    """A Playwright page in Chromium of that viewport, every wait bounded by ``timeout_ms``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()
