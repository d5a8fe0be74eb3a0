"""``[core] hostname_callable`` for the Celery test: each worker process names itself (both run on one
machine, so the real host name would not tell them apart)."""

from __future__ import annotations

import os
import socket


def worker_name() -> str:
    return os.environ.get("SLS_TEST_WORKER_NAME") or socket.getfqdn()
