"""``sls-emulator`` as a subprocess: endpoint line, one request, SIGTERM -> exit 0, --db restart."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(port: int, db: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sls_provider.emulator.cli", "--port", str(port), "--db", str(db)]
        + ["--logstore", "proj/store"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    return proc, first


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    return proc.returncode, err


def test_cli_serves_stops_and_keeps_logs(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "cli.db"
    proc, first = start(port, db)
    try:
        assert first.startswith(f"SLS emulator listening on http://127.0.0.1:{port} ")
        assert "127.0.0.1 only" in first
        resp = requests.post(
            f"http://127.0.0.1:{port}/logstores/store/track",
            data=b'{"__topic__": "cli", "__logs__": [{"hello": "world"}]}',
            headers={"Host": f"proj.127.0.0.1:{port}", "x-log-apiversion": "0.6.0"},
            timeout=5,
        )
        assert resp.status_code == 200
    finally:
        code, err = stop(proc)
    assert code == 0
    assert "/logstores/store/track proj/store 200 OK logs=1" in err

    port = free_port()
    proc, first = start(port, db)
    try:
        got = requests.get(
            f"http://127.0.0.1:{port}/logstores/store",
            params={"type": "log"},
            headers={"Host": f"proj.127.0.0.1:{port}"},
            timeout=5,
        )
        assert [row["hello"] for row in got.json()] == ["world"]
    finally:
        code, _ = stop(proc)
    assert code == 0


def test_cli_rejects_bad_logstore_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sls_provider.emulator.cli", "--logstore", "nostore"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2 and "PROJECT/LOGSTORE" in result.stderr
