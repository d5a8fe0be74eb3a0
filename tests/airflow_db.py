"""Migrated Airflow metadata databases for the tests, made once and copied: ``airflow db migrate``
costs 8-15 s of CPU each time (most of it importing Airflow), and the suite, its oldest-dependencies
pass, the browser test and the real-scheduler clusters each need fresh ones.

A copy is what ``airflow db migrate`` leaves on an empty database, nothing more: the original is
made before any test touches it, and is named after the installed Airflow distributions (core and
providers, each of which may add tables), so another set of versions never copies it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def versions_key() -> str:
    """A short hash of the installed ``apache-airflow*`` distributions and their versions."""
    versions = sorted(
        f"{d.metadata['Name'].lower()}=={d.version}"
        for d in importlib.metadata.distributions()
        if d.metadata["Name"] and d.metadata["Name"].lower().startswith("apache-airflow")
    )
    return hashlib.sha256("\n".join(versions).encode()).hexdigest()[:12]


def migrated_sqlite(target: Path) -> None:
    """Write a migrated SQLite metadata DB to ``target``: a copy of one migrated once per set of
    Airflow versions and kept in the system's temporary directory (made, under a file lock, by the
    first process that needs it, with a home and database of its own and Airflow's defaults)."""
    original = Path(tempfile.gettempdir()) / f"sls-provider-airflow-{versions_key()}.db"
    with open(f"{original}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held by a migrate, itself bounded by its timeout
        try:
            if not original.exists():
                with tempfile.TemporaryDirectory(prefix="sls-airflow-migrate-") as home:
                    making = Path(home) / "airflow.db"
                    migrate_env = {
                        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
                        "AIRFLOW_HOME": home,
                        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{making}",
                        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    }
                    command = [AIRFLOW, "db", "migrate"]
                    subprocess.run(command, env=migrate_env, check=True, capture_output=True, timeout=180)
                    # SQLite's backup, not a file copy: Airflow puts the database in WAL mode, where
                    # the file alone may lack what the log holds. Then a rename: a run killed midway
                    # leaves no half-written original.
                    with (
                        contextlib.closing(sqlite3.connect(making)) as source,
                        contextlib.closing(sqlite3.connect(f"{original}.making")) as copy,
                    ):
                        source.backup(copy)
                    os.replace(f"{original}.making", original)
            shutil.copy(original, target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
