"""The documentation: the site builds with ``mkdocs build --strict``, and every code block in
``docs/*.md`` either runs against the local SLS emulator or says why it does not.

Markers in the markdown, an HTML comment on the line right before a fenced block or table:

- ``<!-- not-run: reason -->``: the block is not run; the reason is required.
- ``<!-- file: path -->``: the block is written to ``path`` in the page's scratch directory (for example
  a ``.sql`` file next to a DAG) when the page's blocks run.
- ``<!-- run: pytest -->``: a python block that is a pytest module, run by pytest in a subprocess.
- ``<!-- check-table: NAME -->``: the markdown table below is compared with the code by
  ``TABLE_CHECKS[NAME]``.

Blocks of one page run in page order, sharing one scratch directory (the working directory), one
emulator holding ``my-project/web-events`` and one Python namespace, like a tutorial followed step by
step. ``AIRFLOW_CONN_SLS_DEFAULT`` points at the emulator and ``AIRFLOW_CONN_WAREHOUSE`` at a SQLite
database with a ``web_events`` table for 2026-01-01. The endpoint ``http://127.0.0.1:9090`` (what the
docs tell users to start the emulator on) is replaced with the test emulator's endpoint in python and
shell blocks, and ``~/airflow`` (the getting-started page's ``AIRFLOW_HOME``) with the suite's.

- ``python``: exec'd. Every DAG it binds to a name is run with ``dag.test()`` (``tests/dagrun.run``),
  as the run that covers 2026-01-01 (``tests/dagrun.covering``: started at midnight after it for a
  data-interval timetable), and must succeed; one with an ``SlsWebTrackingOperator`` must store logs
  in the emulator. A first
  line ``# dags/name.py`` names the file the block is saved and compiled as, so the DAG's folder (where
  ``.sql`` templates are looked up) is the scratch ``dags/``.
- ``pycon``: run with doctest (``ELLIPSIS``, ``NORMALIZE_WHITESPACE``; Airflow's log lines are ignored),
  without the endpoint replacement: a pycon block shows values, and the docs' endpoint may be one.
- ``sh``/``bash``: run with ``bash -euo pipefail`` in the suite's ``AIRFLOW_HOME``. ``AIRFLOW_CONN_*``
  and ``AIRFLOW__*`` (configuration) variables it exports are kept for the page's later blocks, and
  every ``sls`` connection it defines (exported, or added to the metadata DB with
  ``airflow connections add``) must resolve and have a port (the UI's Test button of Airflow 3.3.2
  needs it); one pointing at the emulator must pass ``test_connection()``. Connections added to the
  DB are deleted afterwards.
- ``json`` must parse. Other languages (``text``, ``sql``, ...) are data and need no marker.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import doctest
import importlib.util
import io
import json
import math
import os
import random
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sls_provider.emulator import SlsEmulator

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
PROJECT, LOGSTORE = "my-project", "web-events"
DOCS_ENDPOINT = "http://127.0.0.1:9090"
DOCS_PORT = 9090
DOCS_AIRFLOW_HOME = "~/airflow"  # the getting-started page's; the suite's own home replaces it
SHELL = {"sh", "bash", "shell"}
RUN = {"python", "pycon"} | SHELL
MUST_MARK = {"console", ""}  # transcripts and unlabelled blocks: not runnable as they stand
DAY = "2026-01-01"  # tests/dagrun.START


# -- reading the markdown ---------------------------------------------------------------------------

_MARKER = re.compile(r"^\s*<!--\s*(not-run|file|run|check-table):\s*(.*?)\s*-->\s*$")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)[^`]*$")


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None = None  # not-run / file / run
    arg: str = ""

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


@dataclass
class Table:
    page: str
    line: int
    name: str
    rows: list[list[str]] = field(default_factory=list)  # body rows, cells stripped


def parse(page: str) -> tuple[list[Block], list[Table]]:
    lines = (DOCS / page).read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    tables: list[Table] = []
    marker: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        found = _MARKER.match(line)
        fence = _FENCE.match(line)
        if found:
            marker = (found.group(1), found.group(2))
            i += 1
            continue
        if fence:
            indent, ticks, lang = fence.group(1), fence.group(2), fence.group(3).lower()
            body: list[str] = []
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(ticks):
                text = lines[j]
                body.append(text[len(indent) :] if text.startswith(indent) else text.lstrip())
                j += 1
            assert j < len(lines), f"docs/{page}:{i + 1}: unclosed code block"
            kind, arg = marker if marker else (None, "")
            assert kind != "check-table", f"docs/{page}:{i + 1}: check-table must precede a table"
            blocks.append(Block(page, i + 1, lang, "\n".join(body) + "\n", kind, arg))
            marker = None
            i = j + 1
            continue
        if marker and marker[0] == "check-table" and line.startswith("|"):
            table = Table(page, i + 1, marker[1])
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    table.rows.append(cells)
                i += 1
            table.rows = table.rows[1:]  # the header
            tables.append(table)
            marker = None
            continue
        if line.strip():
            assert marker is None, f"docs/{page}:{i}: a marker must be right before a block or table"
        i += 1
    assert marker is None, f"docs/{page}: a marker at the end of the page marks nothing"
    return blocks, tables


# -- the site ---------------------------------------------------------------------------------------


def test_site_builds_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed: it belongs in the dev extra (pip install mkdocs)")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()


@pytest.mark.parametrize("page", PAGES)
def test_every_block_is_run_or_says_why_not(page: str) -> None:
    """Static: each block of a runnable language is run, or marked not-run with a reason."""
    blocks, tables = parse(page)
    for block in blocks:
        if block.marker == "not-run":
            assert block.arg, f"{block.where}: not-run needs a reason"
        elif block.lang in MUST_MARK:
            pytest.fail(
                f"{block.where}: a ```{block.lang or '(no language)'} block cannot run; mark it "
                "<!-- not-run: reason --> or write it as sh/python"
            )
        elif block.marker == "run":
            assert block.arg == "pytest" and block.lang == "python", f"{block.where}: unknown run marker"
        elif block.marker == "file":
            assert block.arg and not Path(block.arg).is_absolute() and ".." not in Path(block.arg).parts
    for table in tables:
        assert table.name in TABLE_CHECKS, f"docs/{page}:{table.line}: no check named {table.name!r}"
        assert table.rows, f"docs/{page}:{table.line}: empty table"


# A schedule given as a cron string or preset is a cron *trigger* timetable in Airflow 3: a run has no
# data interval and {{ ds }} is the day that begins when it starts, so a nightly export of "the day"
# sends an empty day every night (issue #22). Examples select the period the run covers instead.
_DS = re.compile(r"\{\{\s*ds\s*\}\}|\bds\s*=\s*None|\bds\s*:\s*str")
_STRING_SCHEDULE = re.compile(r"""schedule\s*=\s*["']""")
EXAMPLES = (
    [f"docs/{p}" for p in PAGES]
    + ["README.md"]
    + [f"dags/{p.name}" for p in sorted((ROOT / "dags").glob("*.py"))]
)


def example_code(source: str) -> list[str]:
    """The python and sql blocks of a page, or a DAG file without its docstring; comments left out
    (they may name the mistake to explain it)."""
    text = (ROOT / source).read_text(encoding="utf-8")
    if source.endswith(".md"):
        blocks = re.findall(r"^```(?:python|sql)\n(.*?)^```", text, re.S | re.M)
    else:
        blocks = [re.sub(r'^""".*?"""', "", text, flags=re.S)]
    return [re.sub(r"(^|\s)#.*$", "", block, flags=re.M) for block in blocks]


@pytest.mark.parametrize("source", EXAMPLES)
def test_no_example_exports_the_day_that_has_just_begun(source: str) -> None:
    for code in example_code(source):
        found = _DS.findall(code)
        # A query selecting by a cron string's run (an incremental export selects by its watermark).
        if "sql=" in code and "incremental=" not in code and _STRING_SCHEDULE.search(code):
            found.append("a cron string schedule")
        assert not found, f"{source}: {found}: a scheduled export must select the period its run covers"


# -- running a page ---------------------------------------------------------------------------------


def build_warehouse(path: Path) -> None:
    rng = random.Random(7)
    kinds = ("page_view", "click", "add_to_cart", "purchase", "signup")
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE web_events (id INTEGER PRIMARY KEY, event_date TEXT, event_time TEXT, "
            "event_type TEXT, user_id INTEGER, page TEXT, referrer TEXT, country TEXT, revenue NUMERIC, "
            "latency_ms REAL, is_mobile BOOLEAN)"
        )
        rows = []
        for i in range(2000):
            kind = kinds[i % len(kinds)]
            rows.append(
                (
                    i,
                    DAY if i < 1500 else "2026-01-02",
                    f"{DAY}T{i % 24:02d}:{i % 60:02d}:00Z",
                    kind,
                    rng.randrange(1, 500),
                    f"/products/{i % 50}",
                    rng.choice([None, "https://example.com/"]),
                    ("CN", "SG", "DE", "US", "BR")[i % 5 if i % 7 else 0],
                    round(rng.uniform(5, 500), 2) if kind == "purchase" else None,
                    round(rng.uniform(5, 900), 3),
                    i % 3 == 0,
                )
            )
        db.executemany("INSERT INTO web_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def stored(emu: SlsEmulator) -> int:
    return sum(emu.counts().values())


def db_connection_ids() -> set[str]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        return {c.conn_id for c in session.query(Connection).all()}


def delete_db_connections(conn_ids: set[str]) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.in_(conn_ids)).delete(synchronize_session=False)


def db_connection_json(conn_id: str) -> str:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        conn = session.query(Connection).filter(Connection.conn_id == conn_id).one()
        return json.dumps(
            {
                "conn_type": conn.conn_type,
                "host": conn.host,
                "port": conn.port,
                "login": conn.login,
                "extra": conn.extra_dejson,
            }
        )


class _IgnoreLogLines(doctest.OutputChecker):
    """Airflow's log lines go to stdout, where doctest looks for the printed value: leave them out."""

    _LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[\w+ *\] .*\n", re.M)

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        return super().check_output(want, self._LOG_LINE.sub("", got), optionflags)

    def output_difference(self, example: doctest.Example, got: str, optionflags: int) -> str:
        return super().output_difference(example, self._LOG_LINE.sub("", got), optionflags)


class PageRun:
    """Runs the blocks of one page in order."""

    def __init__(self, page: str, scratch: Path, emu: SlsEmulator) -> None:
        self.page = page
        self.scratch = scratch
        self.emu = emu
        self.namespace: dict = {"__name__": f"docs_{Path(page).stem.replace('-', '_')}"}
        self.added_connections: set[str] = set()
        self.written_outside: list[Path] = []
        self.ran: list[str] = []

    def text(self, block: Block) -> str:
        code = block.code.replace(DOCS_ENDPOINT, self.emu.endpoint)
        # The port field repeating the docs' endpoint's port (what the UI's Test button needs).
        for spelled in ("--conn-port {}", '"port": {}'):
            code = code.replace(spelled.format(DOCS_PORT), spelled.format(self.emu.port))
        return code.replace(DOCS_AIRFLOW_HOME, os.environ["AIRFLOW_HOME"])

    def run(self, block: Block) -> None:
        if block.marker == "not-run":
            return
        if block.marker == "file":
            target = self.scratch / block.arg
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.text(block), encoding="utf-8")
        elif block.marker == "run":
            self.run_pytest(block)
        elif block.lang == "python":
            self.run_python(block)
        elif block.lang == "pycon":
            self.run_pycon(block)
        elif block.lang in SHELL:
            self.run_shell(block)
        elif block.lang == "json":
            json.loads(block.code)
        else:
            return
        self.ran.append(block.where)

    def run_python(self, block: Block) -> None:
        from airflow.sdk import DAG

        code = self.text(block)
        first = code.split("\n", 1)[0]
        # "# dags/x.py" is the scratch DAG folder; "# ~/airflow/dags/x.py" Airflow's (the suite's).
        named = re.fullmatch(r"#\s*((?:/\S+/)?dags/[\w/.-]+\.py)\s*", first)
        path = self.scratch / (named.group(1) if named else f"dags/{Path(self.page).stem}_{block.line}.py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
        if not path.is_relative_to(self.scratch):  # the suite's DAG folder: removed after the page
            self.written_outside.append(path)
        before = {id(v) for v in self.namespace.values() if isinstance(v, DAG)}
        exec(compile(code, str(path), "exec"), self.namespace)  # noqa: S102 - the docs' own code
        dags = [v for v in self.namespace.values() if isinstance(v, DAG) and id(v) not in before]
        if re.search(r"\bDAG\(|@dag\b", code):
            assert dags, f"{block.where}: the block defines a DAG but binds none to a name"
        for dag in dags:
            self.run_dag(block, dag)

    def run_dag(self, block: Block, dag) -> None:  # noqa: ANN001
        from tests.dagrun import covering, run

        for task in dag.tasks:
            task.retry_delay = dt.timedelta(0)  # a failing block fails fast instead of waiting
        logs_before = stored(self.emu)
        state = run(dag, covering(dag))  # the run that exports DAY, as the scheduler would start it
        assert state == "success", f"{block.where}: DAG {dag.dag_id} ended {state}"
        if any(task.task_type == "SlsWebTrackingOperator" for task in dag.tasks):
            assert stored(self.emu) > logs_before, f"{block.where}: DAG {dag.dag_id} stored no logs"

    def run_pycon(self, block: Block) -> None:
        parser = doctest.DocTestParser()
        # Not self.text(block): a pycon block shows values, and the docs' endpoint is one of them.
        test = parser.get_doctest(block.code, self.namespace, block.where, str(DOCS / self.page), block.line)
        runner = doctest.DocTestRunner(
            checker=_IgnoreLogLines(), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        )
        out = io.StringIO()
        runner.run(test, out=out.write, clear_globs=False)
        assert runner.failures == 0, f"{block.where}:\n{out.getvalue()}"

    def run_pytest(self, block: Block) -> None:
        path = self.scratch / f"test_docs_block_{block.line}.py"
        path.write_text(self.text(block), encoding="utf-8")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(self.scratch),
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.scratch,
        )
        assert result.returncode == 0, f"{block.where}:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"

    def run_shell(self, block: Block) -> None:
        dump = self.scratch / ".env-after"
        before_db = db_connection_ids()
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        script = f"{self.text(block)}\nenv -0 > {str(dump)!r}\n"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=self.scratch,
            env=env,
        )
        assert result.returncode == 0, f"{block.where}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        after = dict(item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
        exported = {
            k: v
            for k, v in after.items()
            if k.startswith(("AIRFLOW_CONN_", "AIRFLOW__")) and os.environ.get(k) != v
        }
        os.environ.update(exported)
        defined = {
            k[len("AIRFLOW_CONN_") :].lower(): v for k, v in exported.items() if k.startswith("AIRFLOW_CONN_")
        }
        added = db_connection_ids() - before_db
        self.added_connections |= added
        for conn_id in sorted(added):
            defined[conn_id] = db_connection_json(conn_id)
        for conn_id, value in defined.items():
            self.check_connection(block, conn_id, value)

    def check_connection(self, block: Block, conn_id: str, value: str) -> None:
        """An ``sls`` connection the docs define must resolve; at the emulator it must test OK."""
        from airflow.sdk import Connection

        from sls_provider.hooks.web_tracking import SlsWebTrackingHook

        if value.lstrip().startswith("{"):
            conn = Connection.from_json(value, conn_id)
        else:
            conn = Connection.from_uri(value, conn_id)
        if conn.conn_type != "sls":
            return
        # The UI's Test button of Airflow 3.3.2 refuses a connection without a port
        # (docs/connection.md#in-the-ui): every documented connection has one.
        assert conn.port, f"{block.where}: connection {conn_id!r} has no port, so its Test button fails"
        # The hook reads connections from the environment; give it this one under a private id.
        private = f"AIRFLOW_CONN_DOCS_CHECK_{conn_id.upper()}"
        os.environ[private] = conn.as_json()
        try:
            hook = SlsWebTrackingHook(sls_conn_id=f"docs_check_{conn_id}")
            target = hook.target
            if target.base_url == self.emu.endpoint:
                ok, message = hook.test_connection()
                assert ok, f"{block.where}: connection {conn_id!r}: {message}"
        finally:
            del os.environ[private]


@pytest.fixture
def page_env(tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    saved = dict(os.environ)
    warehouse = tmp_path / "warehouse.db"
    build_warehouse(warehouse)
    scratch = tmp_path / "work"
    (scratch / "dags").mkdir(parents=True)
    monkeypatch.chdir(scratch)
    with SlsEmulator() as emu:
        emu.create_logstore(PROJECT, LOGSTORE, web_tracking=True)
        os.environ["AIRFLOW_CONN_SLS_DEFAULT"] = json.dumps(
            {"conn_type": "sls", "host": emu.endpoint, "extra": {"project": PROJECT, "logstore": LOGSTORE}}
        )
        os.environ["AIRFLOW_CONN_WAREHOUSE"] = json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
        yield scratch, emu
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("page", PAGES)
def test_page_blocks_run(page: str, page_env: tuple) -> None:
    scratch, emu = page_env
    blocks, tables = parse(page)
    for table in tables:
        TABLE_CHECKS[table.name](table)
    runner = PageRun(page, scratch, emu)
    try:
        # Files first: a DAG block may come before the .sql file it reads.
        for block in blocks:
            if block.marker == "file":
                runner.run(block)
        for block in blocks:
            if block.marker != "file":
                runner.run(block)
    finally:
        if runner.added_connections:
            delete_db_connections(runner.added_connections)
        for path in runner.written_outside:
            path.unlink(missing_ok=True)


# -- tables checked against the code ---------------------------------------------------------------

_CODE = re.compile(r"`([^`]*)`")
_EVAL_NAMES = {"pd": pd, "np": np, "dt": dt, "Decimal": Decimal, "uuid": uuid, "math": math}


def code_cells(cell: str) -> list[str]:
    return _CODE.findall(cell)


def evaluate(expr: str):  # noqa: ANN201
    return eval(expr, dict(_EVAL_NAMES))  # noqa: S307 - expressions written in our own docs


def expected_texts(cell: str) -> list[str | None]:
    """``"a"``, key left out -> ["a", None]."""
    tokens = re.findall(r"`([^`]*)`|(key left out)", cell)
    return [None if left else ast.literal_eval(code) for code, left in tokens]


def where(table: Table, row: list[str]) -> str:
    return f"docs/{table.page}:{table.line} row {row}"


def check_values(table: Table) -> None:
    from sls_provider.core.encode import encode_frame
    from sls_provider.core.values import to_text

    for row in table.rows:
        [expr] = code_cells(row[1])
        [want] = expected_texts(row[2])
        value = evaluate(expr)
        assert to_text(value) == want, where(table, row)
        column = np.empty(1, dtype=object)
        column[0] = value
        encoded = encode_frame(pd.DataFrame({"v": pd.Series(column, dtype=object)}), ["v"])
        assert json.loads(encoded.row(0)) == ({} if want is None else {"v": want}), where(table, row)


def check_columns(table: Table) -> None:
    from sls_provider.core.encode import encode_frame

    for row in table.rows:
        [expr] = code_cells(row[1])
        series = evaluate(expr)
        encoded = encode_frame(pd.DataFrame({"v": series}), ["v"])
        got = [json.loads(encoded.row(i)).get("v") for i in range(len(encoded))]
        assert got == expected_texts(row[2]), where(table, row)


def check_keys(table: Table) -> None:
    from sls_provider.core.keys import resolve_keys

    def names(cell: str) -> list:
        [expr] = code_cells(cell)
        value = evaluate(expr)
        return list(value) if isinstance(value, tuple) else [value]

    for row in table.rows:
        assert resolve_keys(names(row[0]), "sanitize") == names(row[1]), where(table, row)


def check_endpoints(table: Table) -> None:
    from sls_provider.core.endpoint import resolve_target

    previous = None
    for row in table.rows:
        [host] = code_cells(row[0])
        target = resolve_target(host, PROJECT, LOGSTORE)
        if row[1] == "the same":
            assert previous is not None and target.track_url == previous.track_url, where(table, row)
        else:
            [url] = code_cells(row[1])
            if url.endswith("/..."):
                assert target.track_url.startswith(url[:-3]), where(table, row)
            else:
                assert target.track_url == url, where(table, row)
        header = None if row[2] == "the URL's" else code_cells(row[2])[0]
        assert target.host_header == header, where(table, row)
        previous = target


def _literal(cell: str):  # noqa: ANN202
    if cell == "none":
        return None
    [code] = code_cells(cell)
    return ast.literal_eval(code)


def _documented(table: Table) -> dict[str, list[str]]:
    rows = {}
    for row in table.rows:
        [name] = code_cells(row[0])
        assert name not in rows, where(table, row)
        rows[name] = row
    return rows


def _signature_defaults(func: Callable, skip: set[str]) -> dict[str, object]:
    import inspect

    params = inspect.signature(func).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.name not in skip and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def check_operator_params(table: Table) -> None:
    from sls_provider.operators.web_tracking import SlsWebTrackingOperator

    documented = _documented(table)
    defaults = _signature_defaults(SlsWebTrackingOperator.__init__, {"self"})
    assert set(documented) == set(defaults), "operator parameters documented != the signature"
    for name, row in documented.items():
        assert _literal(row[1]) == defaults[name], where(table, row)
        assert (row[2] == "yes") == (name in SlsWebTrackingOperator.template_fields), where(table, row)


def check_incremental_fields(table: Table) -> None:
    from sls_provider import Incremental

    documented = _documented(table)
    defaults = {f.name: f.default for f in fields(Incremental)}
    assert set(documented) == set(defaults), "Incremental fields documented != the dataclass"
    for name, row in documented.items():
        if row[1] == "(required)":
            assert defaults[name] is MISSING, where(table, row)
        else:
            assert _literal(row[1]) == defaults[name], where(table, row)


def check_hook_params(table: Table) -> None:
    from sls_provider.hooks.web_tracking import SlsWebTrackingHook

    documented = _documented(table)
    defaults = _signature_defaults(SlsWebTrackingHook.__init__, {"self"})
    assert set(documented) == set(defaults), "hook parameters documented != the signature"
    for name, row in documented.items():
        assert _literal(row[1]) == defaults[name], where(table, row)


def check_export_options(table: Table) -> None:
    import inspect

    from sls_provider.core.export import ExportOptions
    from sls_provider.hooks.web_tracking import SlsWebTrackingHook

    documented = _documented(table)
    # The keyword options of put_logs: its own (but chunksize, and what names the rows, documented
    # with the method) and ExportOptions'.
    own = {f.name: f.default for f in fields(ExportOptions)}
    apart = ("chunksize", "topic", "source", "tags")
    for name, parameter in inspect.signature(SlsWebTrackingHook.put_logs).parameters.items():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in apart:
            own[name] = parameter.default
    assert set(documented) == set(own), "hook options documented != put_logs' keyword options"
    for name, row in documented.items():
        assert _literal(row[1]) == own[name], where(table, row)


def check_summary(table: Table) -> None:
    from sls_provider.core.export import ExportSummary

    documented = _documented(table)
    assert set(documented) == {f.name for f in fields(ExportSummary)}
    assert set(documented) == set(ExportSummary().to_dict())


def check_retry_policy(table: Table) -> None:
    from sls_provider.core.client import RetryPolicy

    documented = _documented(table)
    own = {f.name: f.default for f in fields(RetryPolicy)}
    assert set(documented) == set(own)
    for name, row in documented.items():
        assert _literal(row[2]) == own[name], where(table, row)
        assert code_cells(row[1]) == [f"retry_{name}"], where(table, row)


def check_extras(table: Table) -> None:
    """Defaults as the hook applies them to a connection with only project and logstore."""
    from sls_provider.core.client import RetryPolicy
    from sls_provider.hooks.web_tracking import SlsWebTrackingHook

    documented = _documented(table)
    os.environ["AIRFLOW_CONN_DOCS_EXTRAS"] = json.dumps(
        {
            "conn_type": "sls",
            "host": "cn-hangzhou.log.aliyuncs.com",
            "extra": {"project": PROJECT, "logstore": LOGSTORE},
        }
    )
    try:
        settings = SlsWebTrackingHook("docs_extras").settings
    finally:
        del os.environ["AIRFLOW_CONN_DOCS_EXTRAS"]
    policy = RetryPolicy()
    applied = {
        "project": None,
        "logstore": None,  # no default: required
        "compress_type": settings.compress_type,
        "timeout": settings.timeout,
        "verify": settings.verify,
        "security_token": settings.security_token,
        "retry_attempts": policy.attempts,
        "retry_deadline": policy.deadline,
        "retry_backoff": policy.backoff,
        "retry_max_backoff": policy.max_backoff,
        "retry_first_answer": policy.first_answer,
    }
    assert set(documented) == set(applied)
    for name, row in documented.items():
        want = applied[name]
        got = _literal(row[1]) if row[1] == "none" else code_cells(row[1])[0]
        if isinstance(want, bool):
            assert got == str(want).lower(), where(table, row)
        elif want is None:
            assert got is None, where(table, row)
        else:
            assert type(want)(got) == want, where(table, row)


def check_exceptions(table: Table) -> None:
    from sls_provider.core import errors

    documented = _documented(table)
    own = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.SlsError)}
    assert set(documented) == own
    for name, row in documented.items():
        bases = [b.__name__ for b in getattr(errors, name).__bases__]
        assert code_cells(row[1]) == bases, where(table, row)


def check_metrics(table: Table) -> None:
    from sls_provider.metrics import METRICS

    documented = [(code_cells(row[0]), row[1]) for row in table.rows]
    assert documented == [([m.name], m.kind) for m in METRICS], "metrics documented != METRICS, in order"
    for row, metric in zip(table.rows, METRICS, strict=True):
        # What the code says the value counts, then maybe a parenthesis of the page's (a link, an example).
        assert row[2] == metric.meaning or row[2].startswith(metric.meaning + " ("), (
            f"{where(table, row)}: the code says it counts {metric.meaning!r}"
        )


TABLE_CHECKS: dict[str, Callable[[Table], None]] = {
    "metrics": check_metrics,
    "values": check_values,
    "columns": check_columns,
    "keys": check_keys,
    "endpoints": check_endpoints,
    "operator-params": check_operator_params,
    "incremental-fields": check_incremental_fields,
    "hook-params": check_hook_params,
    "export-options": check_export_options,
    "summary": check_summary,
    "retry-policy": check_retry_policy,
    "extras": check_extras,
    "exceptions": check_exceptions,
}
