"""The install the getting-started page gives is the fast one: ``sql_reader="auto"`` reads PostgreSQL
with ADBC without any extra; an install that lacks the driver anyway says, once, what it costs."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import pytest

from sls_provider.sources import readers

ROOT = Path(__file__).resolve().parent.parent
#: What auto's PostgreSQL Arrow reader imports (sources/adbc_postgres.py).
POSTGRES_ARROW = {"adbc-driver-postgresql", "adbc-driver-manager", "pyarrow"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[\s]", requirement, maxsplit=1)[0].lower()


def documented_install_line() -> str:
    page = (ROOT / "docs" / "index.md").read_text()
    section = page.split("### 1. Install", 1)[1]
    return next(line for line in section.splitlines() if line.startswith("pip install "))


def test_the_documented_install_brings_the_fast_postgres_reader() -> None:
    line = documented_install_line()
    # The clone's folder itself (".", whatever its name), with or without extras.
    extras = re.match(r"pip install '?\.(?:\[([\w,]+)\])?'?(?:\s|$)", line)
    assert extras, line
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = {_name(r) for r in project["dependencies"]}
    for extra in (extras.group(1) or "").split(","):
        installed |= {_name(r) for r in project["optional-dependencies"].get(extra, [])}
    assert POSTGRES_ARROW <= installed, f"{line!r} leaves out {sorted(POSTGRES_ARROW - installed)}"


class _PostgresHook:
    conn_type = "postgres"
    conn_name_attr = "postgres_conn_id"
    postgres_conn_id = "warehouse"


def test_auto_without_the_postgres_driver_warns_what_it_costs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = readers.find_spec
    monkeypatch.setattr(readers, "find_spec", lambda name: None if name.startswith("adbc") else real(name))
    caplog.set_level(logging.INFO, logger=readers.log.name)
    chunks = readers.read_query(_PostgresHook(), "SELECT 1", None, 1000)  # not iterated: nothing runs
    lines = [r for r in caplog.records if r.getMessage().startswith("Reading the query with")]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    text = lines[0].getMessage()
    assert "dbapi reader: adbc-driver-postgresql is not installed" in text
    assert "several times slower (docs/performance.md" in text
    assert "pip install adbc-driver-postgresql" in text
    chunks.close()
