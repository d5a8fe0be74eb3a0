"""A throw-away Airflow cluster with a real scheduler, every process started and stopped by the test.

``executor="LocalExecutor"`` (the default): the scheduler runs tasks in its own worker processes, as
``airflow standalone`` does; what scheduling renders (data intervals, retries after a crash, signals
to a running task) is only seen this way, not with ``dag.test()``. ``executor="CeleryExecutor"``
adds two Celery workers:

- metadata DB: a fresh PostgreSQL database per run (SQLite cannot be shared by concurrent processes),
  copied from a migrated template kept on the server;
- broker (Celery only): Redis, a database number of its own (``SLS_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/7``)
  and a queue name of its own per run (so concurrent runs cannot take each other's tasks), whose keys
  are deleted at the end; Celery results go to the metadata database;
- processes: ``airflow api-server --apps execution`` (task processes talk to the execution API; pass
  ``apps="all"`` for the public REST API too), ``airflow scheduler`` and, for Celery, two
  ``airflow celery worker`` (``--concurrency 2``, named ``w1``/``w2``).
  DAGs are parsed once with ``airflow dags reserialize`` instead of a running dag-processor.

Each worker reports its own host name (``[core] hostname_callable`` -> :func:`tests.celery.hostname`),
so ``task_instance.hostname`` says which worker ran each task. Process output goes to files under
the cluster's home, shown when something fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.airflow_db import versions_key

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
REDIS_URL = os.environ.get("SLS_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


TEMPLATE_LOCK = 0x5151_7E11  # a pg_advisory_lock key of this suite's own


def template_name() -> str:
    """The name of the migrated metadata DB the clusters copy, one per set of Airflow versions."""
    return f"sls_cluster_template_{versions_key()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """``with Cluster(home, pg, env) as c:`` -> migrated DB, DAGs serialized, all processes up."""

    def __init__(
        self,
        home: Path,
        pg: Any,
        env: dict[str, str],
        dag_files: list[Path],
        *,
        executor: str = "LocalExecutor",
        apps: str = "execution",
    ) -> None:
        self.home = home
        self.pg = pg  # tests.warehouses.conftest.Server
        self.executor = executor
        self.apps = apps
        run = uuid.uuid4().hex[:10]
        self.database = f"sls_cluster_{run}"
        self.queue = f"sls_cluster_{run}"
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        dags = home / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        for path in dag_files:
            shutil.copy(path, dags / path.name)
        dsn = self.dsn(self.database)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))},
            **env,
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": str(ROOT),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.celery.hostname.worker_name",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn,
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{dsn}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,  # tasks' queue, and the workers' default
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "SLS_TEST_WORKER_NAME": "scheduler",
        }

    def dsn(self, database: str) -> str:
        return f"postgresql+psycopg://{self.pg.user}@{self.pg.host}:{self.pg.port}/{database}"

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._create_database()
        self.spawn(
            "api-server",
            [
                AIRFLOW,
                "api-server",
                "--apps",
                self.apps,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
        )
        self.spawn("scheduler", [AIRFLOW, "scheduler", "--skip-serve-logs"])
        for name in self.workers:
            self.spawn(
                name,
                [
                    AIRFLOW,
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"{name}@%h",
                    "--concurrency",
                    "2",
                    "--skip-serve-logs",
                    "--without-gossip",
                    "--without-mingle",
                ],
                SLS_TEST_WORKER_NAME=name,
            )
        self.cli("dags", "reserialize", timeout=120)  # while the processes start
        self.wait_for("api-server", self._api_up, 90)
        for name in self.workers:
            self.wait_for(name, lambda n=name: " ready." in self.output(n), 90)

    def _create_database(self) -> None:
        """The run's metadata DB, a copy of a migrated template: ``airflow db migrate`` takes about 10 s
        (a tenth of each cluster test), a copy a fraction of a second. The template is made once per
        set of Airflow versions (its name says which) and kept on the server for later runs; an
        advisory lock keeps two workers from making it at once or copying it while it is made."""
        template = template_name()
        with self.pg.connect() as conn:
            # Bounded: the holder makes the template within migrate's 180 s, or its session ends.
            conn.execute("SET lock_timeout = '300s'")
            conn.execute("SELECT pg_advisory_lock(%s)", (TEMPLATE_LOCK,))
            try:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone():
                    # Made under another name and renamed when complete: a run killed midway leaves
                    # no half-migrated template behind for the next one to copy.
                    making = f"{template}_making"
                    # Templates of other Airflow versions go (no run copies one: copies take this lock).
                    stale = conn.execute(
                        "SELECT datname FROM pg_database WHERE datname LIKE 'sls\\_cluster\\_template\\_%'"
                    ).fetchall()
                    for (name,) in stale:
                        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                    conn.execute(f"CREATE DATABASE {making}")
                    self.cli("db", "migrate", timeout=180, database=making)
                    conn.execute(f"ALTER DATABASE {making} RENAME TO {template}")
                conn.execute(f"CREATE DATABASE {self.database} TEMPLATE {template}")
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (TEMPLATE_LOCK,))

    @property
    def workers(self) -> tuple[str, ...]:
        return ("w1", "w2") if self.executor == "CeleryExecutor" else ()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        try:
            if self.workers:
                self._clean_redis()
        finally:
            self.pg.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")

    # -- helpers --------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 60, database: str | None = None) -> str:
        """``airflow *args`` in the cluster's environment (against ``database`` instead of the run's
        metadata DB when given)."""
        env = (
            self.env
            if database is None
            else {**self.env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.dsn(database)}
        )
        out = subprocess.run(
            [AIRFLOW, *args], env=env, cwd=self.home, capture_output=True, text=True, timeout=timeout
        )
        if out.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-4000:]}")
        return out.stdout

    def spawn(self, name: str, argv: list[str], **env: str) -> None:
        log = self.home / f"{name}.log"
        self.logs[name] = log
        with open(log, "wb") as sink:
            # A session of its own: stop() signals the whole process group (Celery's pool children too).
            self.procs[name] = subprocess.Popen(
                argv,
                env={**self.env, **env},
                cwd=self.home,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self, name: str) -> str:
        path = self.logs.get(name)
        return path.read_text(errors="replace") if path and path.exists() else ""

    def wait_for(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.output(name)[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready after {timeout} s:\n{self.output(name)[-4000:]}")
            time.sleep(0.3)

    def _api_up(self) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/execution/health", timeout=2)
            return True
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            return False

    def _clean_redis(self) -> None:
        """Delete this run's queue and its bindings (other keys are Celery's shared bookkeeping)."""
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            for key in list(client.scan_iter(match=f"*{self.queue}*")):
                client.delete(key)
        finally:
            client.close()

    def query(self, sql: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(
            host=self.pg.host, port=self.pg.port, user=self.pg.user, dbname=self.database, connect_timeout=3
        ) as conn:
            return list(conn.execute(sql).fetchall())

    def wait_run(self, dag_id: str, run_id: str | None = None, timeout: float = 240) -> tuple[str, str]:
        """Wait for a run of ``dag_id`` (``run_id``, or its first run) to end: ``(run_id, state)``."""
        where = f"dag_id = '{dag_id}'" + (f" AND run_id = '{run_id}'" if run_id else "")
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(f"SELECT run_id, state FROM dag_run WHERE {where} ORDER BY id LIMIT 1")
            if rows and rows[0][1] in ("success", "failed"):
                return rows[0][0], rows[0][1]
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"run of {dag_id} not ended after {timeout} s: {rows}\n{self.diagnostics()}"
                )
            time.sleep(1)

    def diagnostics(self) -> str:
        return "\n".join(f"===== {name} =====\n{self.output(name)[-3000:]}" for name in self.procs)
