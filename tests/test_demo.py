"""``make demo`` end to end, as a subprocess in a scratch directory: it must exit 0 and report the
warehouse's rows per topic of the day the run covers as stored in the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["SLS_DEMO_DIR"] = str(tmp_path / "demo")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "OK: 120,005 logs in SLS" in out
    # The run at midnight exports the day that has just ended (the warehouse holds the days either side).
    assert "data interval: 2026-03-01 00:00:00+00:00 to 2026-03-02 00:00:00+00:00" in out, out[-3000:]
    assert "page_view" in out and "MISMATCH" not in out
    # Only the demo's own lines: Airflow's log stream is in the file it names.
    assert "[info     ]" not in out and "INFO" not in out, out[:3000]
    assert len(out.splitlines()) < 40, out[:3000]
    log = tmp_path / "demo" / "airflow-run.log"
    assert f"Airflow's log: {log}" in out
    assert "SLS export done" in log.read_text()
