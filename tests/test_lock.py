"""The committed locks match ``pyproject.toml``, and ``make check-lock`` says so in one line when
they do not (what ``make test`` runs first)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    "Makefile",
    "pyproject.toml",
    "uv.lock",
    "requirements",
    "scripts/oldest_requirements.py",
    "README.md",
]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in FILES:
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "sls_provider").symlink_to(ROOT / "sls_provider")
    return tmp_path


def check_lock(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "check-lock"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_committed_locks_are_current(checkout: Path) -> None:
    result = check_lock(checkout)
    assert result.returncode == 0, result.stderr


def test_a_changed_dependency_without_make_lock_fails_with_one_line(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"lz4>=4.3"', '"lz4>=4.3.2"'))
    result = check_lock(checkout)
    assert result.returncode != 0
    assert "uv.lock is out of date with pyproject.toml: run 'make lock'" in result.stderr


def test_a_stale_oldest_input_fails_too(checkout: Path) -> None:
    oldest = checkout / "requirements" / "oldest.in"
    oldest.write_text(oldest.read_text().replace("lz4==4.3", "lz4==4.3.3"))
    result = check_lock(checkout)
    assert result.returncode != 0
    assert "requirements/oldest.in is out of date with pyproject.toml" in result.stderr


def test_every_runtime_dependency_is_pinned_at_its_lower_bound_for_the_oldest_pass() -> None:
    pinned = {
        line.split("==")[0].lower(): line.split("==")[1].split()[0]
        for line in (ROOT / "requirements" / "oldest.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    wanted = [
        line.split("==")
        for line in (ROOT / "requirements" / "oldest.in").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    ]
    assert wanted
    for name, version in wanted:
        assert pinned[name.lower()].startswith(version), (name, version, pinned[name.lower()])
