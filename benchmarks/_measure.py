"""Shared helpers of the benchmarks: the sink process, peak RSS, medians, machine facts."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


# -- memory: this process's resident set, from /proc (Linux) ---------------------------------------


def _status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+) kB", text).group(1)) * 1024 for key in ("VmRSS", "VmHWM")}


def rss() -> int:
    """Resident set size now, bytes."""
    return _status()["VmRSS"]


def peak_rss() -> int:
    """Peak resident set size (VmHWM) of this process since it started or since :func:`reset_peak`."""
    return _status()["VmHWM"]


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ``/proc/self/clear_refs`` 5); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the sink process -------------------------------------------------------------------------------


class Sink:
    """``benchmarks/sink.py`` in its own process; ``with Sink() as sink:`` then ``sink.port``."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> Sink:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "sink.py"), "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def sink_connection(port: int, *, project: str = "bench", logstore: str = "bench") -> None:
    """Point ``sls_default`` (``AIRFLOW_CONN_SLS_DEFAULT``) at the sink on ``port``, lz4."""
    os.environ["AIRFLOW_CONN_SLS_DEFAULT"] = json.dumps(
        {
            "conn_type": "sls",
            "host": f"http://127.0.0.1:{port}",
            "extra": {"project": project, "logstore": logstore, "compress_type": "lz4"},
        }
    )


def sink_call(port: int, what: str) -> dict[str, Any]:
    """GET ``/_sink/{what}`` (``stats``, ``reset``, ``reset?keep=1``, ``inspect``) on the sink."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sink/{what}", timeout=120) as resp:
        return json.loads(resp.read())


# -- reporting --------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def versions(*modules: str) -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in modules:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "-"
    return found


def write_json(name: str, payload: dict[str, Any], *, default_run: bool = True) -> Path:
    """Write ``benchmarks/results/{name}``; a run with non-default arguments writes
    ``{stem}.custom.json`` instead, so a quick trial never replaces the published figures."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / (name if default_run else name.replace(".json", ".custom.json"))
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def is_default(parser: Any, args: Any) -> bool:
    """True when every argument of ``args`` has its default value (a published run)."""
    return all(getattr(args, key) == parser.get_default(key) for key in vars(args))


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f}"
