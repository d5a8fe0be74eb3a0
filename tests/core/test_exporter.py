"""The exporter and its sender without HTTP: a fake client (or send function) stands for the service.

What is checked: requests go out numbered in input order, at most ``Sender.max_in_flight`` are in
flight, a final error stops what has not started while what is on the wire finishes and is recorded,
and a resumed export skips what the ledger holds.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pandas as pd
import pytest

from sls_provider.core.client import Sent
from sls_provider.core.encode import from_ndjson
from sls_provider.core.errors import SlsRequestError
from sls_provider.core.export import Exporter
from sls_provider.core.ledger import Ledger
from sls_provider.core.options import ExportOptions
from sls_provider.core.pack import Packer, Request
from sls_provider.core.sender import IN_FLIGHT_PER_WORKER, Sender


class FakeClient:
    """Acknowledges every request (records it), or raises ``fail[seq]`` for that request."""

    def __init__(self, fail: dict[int, BaseException] | None = None) -> None:
        self.fail = fail or {}
        self.sent: list[Request] = []
        self._lock = threading.Lock()

    def send(
        self, request: Request, *, controller: Any = None, on_retry: Any = None, stop: Any = None
    ) -> Sent:
        if request.seq in self.fail:
            raise self.fail[request.seq]
        with self._lock:
            self.sent.append(request)
        return Sent(request_id=f"id-{request.seq}", sent_bytes=len(request.body) // 2)


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"n": [str(i) for i in range(n)], "kind": ["a" if i % 3 else "b" for i in range(n)]})


def chunks(frame: pd.DataFrame, size: int = 25) -> list[pd.DataFrame]:
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def logs(request: Request) -> list[dict[str, str]]:
    return json.loads(request.body)["__logs__"]


def test_requests_are_numbered_in_input_order_and_every_row_is_sent_once() -> None:
    client = FakeClient()
    options = ExportOptions(max_logs=10, max_workers=3)
    summary = Exporter(client, options, topic_column="kind", export_id="e1").run(chunks(rows(200)))
    sent = sorted(client.sent, key=lambda r: r.seq)
    assert [r.seq for r in sent] == list(range(len(sent)))
    for topic in ("a", "b"):
        numbers = [int(log["n"]) for r in sent if r.topic == topic for log in logs(r)]
        assert numbers == [i for i in range(200) if ("a" if i % 3 else "b") == topic]  # in order
    assert summary.rows == 200 and summary.requests == len(sent)
    assert summary.topics == {"a": 133, "b": 67}
    assert summary.sent_bytes == sum(len(r.body) // 2 for r in sent)
    assert all(json.loads(r.body)["__tags__"] == {"sls_export": "e1", "sls_seq": str(r.seq)} for r in sent)


def requests_of(n: int) -> list[Request]:
    packer = Packer(source=None, max_logs=1)
    out = [r for i in range(n) for r in packer.add("t", from_ndjson(f'{{"n":"{i}"}}\n'.encode()))]
    return out + list(packer.finish())


@pytest.mark.parametrize("workers", [1, 3])
def test_no_more_than_max_in_flight_requests_are_held(workers: int) -> None:
    gate = threading.Event()
    acked = 0
    pulled = 0
    held: list[int] = []

    def send(request: Request) -> int:
        assert gate.wait(30)
        return 1

    def on_acked(request: Request, sent_bytes: int) -> None:
        nonlocal acked
        acked += 1

    sender = Sender(send, workers=workers, on_acked=on_acked)
    assert sender.max_in_flight == IN_FLIGHT_PER_WORKER * workers

    def source() -> Any:
        nonlocal pulled
        for request in requests_of(30):
            held.append(pulled - acked)  # submitted, not yet accounted for: in flight
            if pulled == sender.max_in_flight:
                gate.set()  # the sender holds its bound and waits: let the sends finish
            pulled += 1
            yield request

    sender.run(source())
    assert max(held) == sender.max_in_flight
    assert acked == 30


def test_a_final_error_stops_what_has_not_started_and_lets_in_flight_requests_finish() -> None:
    started: list[int] = []
    sender: Sender

    def send(request: Request) -> int:
        started.append(request.seq)
        if request.seq == 1:
            raise SlsRequestError("refused", status=400)
        if request.seq == 0:
            # Still on the wire when request 1 fails for good; it must be waited for and recorded.
            deadline = time.monotonic() + 30
            while not sender._stopping.is_set() and time.monotonic() < deadline:  # the sender saw it
                time.sleep(0.001)
        return 1

    ledger = Ledger("e", store=MemoryStore())
    acked: list[int] = []
    sender = Sender(send, workers=2, ledger=ledger, on_acked=lambda r, b: acked.append(r.seq))
    requests = requests_of(20)
    with pytest.raises(SlsRequestError, match="refused"):
        sender.run(requests)
    assert sorted(started) == [0, 1]  # requests 2 and 3 were submitted but never sent
    assert acked == [0]
    assert ledger.is_acked(requests[0]) and not ledger.is_acked(requests[1])


def test_the_exporter_raises_the_final_error_after_recording_what_was_acknowledged() -> None:
    store = MemoryStore()
    client = FakeClient(fail={3: SlsRequestError("bad request", status=400)})
    options = ExportOptions(max_logs=10, max_workers=1)
    with pytest.raises(SlsRequestError):
        Exporter(client, options, Ledger("e2", "f", store=store), export_id="e2").run(chunks(rows(100)))
    assert sorted(r.seq for r in client.sent) == [0, 1, 2]  # one thread: request 4 never started

    # The next try with the same rows skips what the first one delivered and sends the rest.
    retry = FakeClient()
    ledger = Ledger("e2", "f", store=store)
    summary = Exporter(retry, options, ledger, export_id="e2").run(chunks(rows(100)))
    assert sorted(r.seq for r in retry.sent) == list(range(3, 10))
    assert (summary.resumed_requests, summary.resumed_rows) == (3, 30)
    assert summary.rows == 100 and summary.requests == 10
    assert ledger.mismatches == 0


def test_an_export_leaves_what_others_froze_frozen() -> None:
    """The export freezes the collector's long-lived objects while it runs; gc.unfreeze() thaws
    every frozen object of the process, so it must not when something else froze them first. In a
    fresh interpreter: the collector's state is the whole process's, shared with other tests'
    threads."""
    import subprocess
    import sys

    code = """
import gc
import pandas as pd
from sls_provider.core.export import Exporter
from sls_provider.core.options import ExportOptions
from tests.core.test_exporter import FakeClient, chunks, rows

marker = []
marker.append(marker)  # a cycle, so the collector tracks it
gc.freeze()  # as a forking server does before it forks
frozen = lambda: not any(o is marker for o in gc.get_objects())  # not in generations 0-2
assert frozen()
Exporter(FakeClient(), ExportOptions(max_workers=1)).run(chunks(rows(50)))
assert frozen(), "the export thawed what it had not frozen"
gc.unfreeze()
Exporter(FakeClient(), ExportOptions(max_workers=1)).run(chunks(rows(50)))
assert gc.get_freeze_count() == 0, "the export left frozen what it froze itself"
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
