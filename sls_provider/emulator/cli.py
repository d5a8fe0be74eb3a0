"""``sls-emulator``: run the emulator from the command line until Ctrl-C or SIGTERM.

The first line of stdout is the endpoint (flushed, so scripts can wait for it); one line per
request goes to stderr. Binds to 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from sls_provider.emulator.backend import Record
from sls_provider.emulator.quota import (
    PROJECT_MB_PER_SECOND,
    PROJECT_WRITES_PER_SECOND,
    SHARD_MB_PER_SECOND,
    SHARD_MB_PER_SECOND_NO_INDEX,
    SHARD_WRITES_PER_SECOND,
    WriteQuota,
)
from sls_provider.emulator.server import SlsEmulator

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _logstore(text: str) -> tuple[str, str]:
    project, _, logstore = text.partition("/")
    if not project or not logstore or "/" in logstore:
        raise argparse.ArgumentTypeError(f"expected PROJECT/LOGSTORE, got {text!r}")
    return project, logstore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sls-emulator", description="Local SLS PutWebTracking emulator.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=9090, help="port (0 picks a free one; default 9090)")
    parser.add_argument(
        "--db", help="SQLite file keeping logstores and logs across restarts (default: memory)"
    )
    parser.add_argument(
        "--logstore",
        action="append",
        type=_logstore,
        default=[],
        metavar="PROJECT/LOGSTORE",
        help="create this logstore with web tracking on (repeatable)",
    )
    parser.add_argument("--auto-create", action="store_true", help="create unknown logstores on first write")
    parser.add_argument("--shards", type=int, default=2, help="shards of each --logstore (default 2)")
    parser.add_argument(
        "--no-index",
        action="store_true",
        help=f"each --logstore has no index: SLS gives its shards {SHARD_MB_PER_SECOND_NO_INDEX:g} MB/s "
        f"instead of {SHARD_MB_PER_SECOND:g}",
    )
    parser.add_argument(
        "--quota", action="store_true", help="enforce SLS's write quota on each shard of each --logstore"
    )
    parser.add_argument(
        "--shard-mb-per-second",
        type=float,
        help=f"raw (uncompressed) MB/s a shard accepts (implies --quota; default {SHARD_MB_PER_SECOND:g}, "
        f"{SHARD_MB_PER_SECOND_NO_INDEX:g} with --no-index)",
    )
    parser.add_argument(
        "--shard-writes-per-second",
        type=float,
        help=f"writes/s a shard accepts (implies --quota; default {SHARD_WRITES_PER_SECOND:g})",
    )
    parser.add_argument(
        "--project-quota",
        action="store_true",
        help="enforce SLS's project write quota (100 GB/min, 600,000 writes/min) on each --logstore's "
        "project",
    )
    parser.add_argument(
        "--project-mb-per-second",
        type=float,
        help=f"raw MB/s a project accepts (implies --project-quota; default {PROJECT_MB_PER_SECOND:.0f})",
    )
    parser.add_argument(
        "--project-writes-per-second",
        type=float,
        help=f"writes/s a project accepts (implies --project-quota; default {PROJECT_WRITES_PER_SECOND:g})",
    )
    parser.add_argument(
        "--soft-quota",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="fraction of over-quota writes accepted anyway (best effort; default 0)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-request lines on stderr")
    return parser


def _log_line(rec: Record) -> None:
    where = f"{rec['project']}/{rec['logstore']}" if rec["logstore"] else "-"
    code = rec["error_code"] or ("dropped" if rec["status"] == 0 else "OK")
    fault = f" fault={rec['fault']}" if rec["fault"] else ""
    print(
        f"{rec['method']} {rec['path']} {where} {rec['status']} {code} logs={rec['logs']}"
        f" bytes={rec['body_bytes']}/{rec['raw_bytes']}{fault}",
        file=sys.stderr,
        flush=True,
    )


def _bind_note(host: str) -> str:
    if host in _LOOPBACK:
        return f"bound to {host} only; pass --host 0.0.0.0 to expose it"
    return f"bound to {host}: reachable from other machines, with no authentication"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    quota = project_quota = None
    try:
        if args.quota or args.shard_mb_per_second or args.shard_writes_per_second or args.soft_quota:
            # What is not given is SLS's figure, filled in by the logstore (index or not).
            quota = WriteQuota(args.shard_mb_per_second, args.shard_writes_per_second, args.soft_quota)
        if args.project_quota or args.project_mb_per_second or args.project_writes_per_second:
            project_quota = WriteQuota(args.project_mb_per_second, args.project_writes_per_second)
    except ValueError as exc:
        parser.error(str(exc))
    if args.shards < 1:
        parser.error(f"--shards must be at least 1, got {args.shards}")
    emu = SlsEmulator(
        args.host,
        args.port,
        args.db,
        auto_create=args.auto_create,
        logstores=args.logstore,
        on_request=None if args.quiet else _log_line,
        shards=args.shards,
        quota=quota,
        index=not args.no_index,
    )
    for project in sorted({project for project, _ in args.logstore} if project_quota else ()):
        emu.set_project_quota(project, project_quota)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    emu.start()
    print(f"SLS emulator listening on {emu.endpoint} ({_bind_note(args.host)})", flush=True)
    try:
        while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
            pass
    finally:
        emu.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
