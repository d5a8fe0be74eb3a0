"""The resume ledger against a store that records every write, as Airflow's task_state_store would
keep it (JSON values by key)."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest

from sls_provider.core.ledger import Ledger, digest, seq_ranges
from sls_provider.core.pack import Request

KEY = "sls_export_ledger"
EXPORT, PRINT = "3f2a9c0e1b7d4a65", "0123456789abcdef"


class RecordingStore:
    """Values kept as JSON text (what goes through Airflow), every write's size recorded."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes: list[tuple[str, int]] = []

    def get(self, key: str) -> Any:
        return json.loads(self.data[key]) if key in self.data else None

    def set(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        self.writes.append((key, len(text)))
        self.data[key] = text

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def request(seq: int, body: bytes | None = None) -> Request:
    return Request(seq=seq, topic="", body=body if body is not None else b"body %d" % seq, logs=10)


def ledger(store: RecordingStore, fingerprint: str = PRINT) -> Ledger:
    opened = Ledger(EXPORT, fingerprint, store=store, key=KEY)
    opened.flush()
    return opened


def send(led: Ledger, seqs: range | list[int], *, in_flight: int = 8, seed: int = 0) -> None:
    """As the exporter does: announce, then record and flush each completion, in a random order."""
    rng = random.Random(seed)
    wire: list[Request] = []
    for seq in seqs:
        req = request(seq)
        led.sending(req)
        wire.append(req)
        while len(wire) >= in_flight:
            led.record(wire.pop(rng.randrange(len(wire))))
            led.flush()
    while wire:
        led.record(wire.pop(rng.randrange(len(wire))))
        led.flush()


def test_acknowledged_requests_are_skipped_on_the_next_try() -> None:
    store = RecordingStore()
    send(ledger(store), range(1000))  # blocks 0-2 complete, block 3 open
    again = ledger(store)
    assert len(again) == 1000
    assert all(again.is_acked(request(seq)) for seq in range(1000))
    assert not again.is_acked(request(1000))
    assert again.mismatches == 0 and again.possible_duplicates == 0


def test_a_changed_input_is_sent_again_and_its_new_digest_kept() -> None:
    store = RecordingStore()
    send(ledger(store), range(600))
    again = ledger(store)
    # 10 is in a complete block (its own key), 590 in the open one (the head).
    for seq in (10, 590):
        changed = request(seq, b"other rows")
        assert not again.is_acked(changed)
        again.sending(changed)
        again.record(changed)
    assert again.mismatches == 2
    assert again.is_acked(request(11)) and again.is_acked(request(589))
    again.flush()
    third = ledger(store)
    assert third.is_acked(request(10, b"other rows")) and not third.is_acked(request(10))
    assert third.is_acked(request(590, b"other rows")) and not third.is_acked(request(590))


def test_same_number_other_body_is_not_skipped_even_after_a_crash() -> None:
    """Only a number AND digest match skips: a crashed try's in-flight request was never acked."""
    store = RecordingStore()
    first = ledger(store)
    send(first, range(20))
    first.sending([request(20), request(21)])  # then the process dies
    again = ledger(store)
    assert not again.is_acked(request(20)) and not again.is_acked(request(21))
    assert again.is_acked(request(19)) and not again.is_acked(request(19, b"x"))


def test_a_changed_fingerprint_starts_over_and_the_old_keys_are_deleted_at_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RecordingStore()
    send(ledger(store), range(1000))
    assert f"{KEY}.2" in store.data
    with caplog.at_level(logging.WARNING):
        other = ledger(store, fingerprint="fedcba9876543210")
    assert "changed since the earlier try: starting the export over" in caplog.text
    assert len(other) == 0 and not other.is_acked(request(0))
    send(other, range(10))
    assert ledger(store, fingerprint="fedcba9876543210").is_acked(request(5))
    ledger(store, fingerprint="fedcba9876543210").discard()
    assert store.data == {}  # the first fingerprint's three block keys too


def test_writes_stay_small_and_proportional_for_30000_requests() -> None:
    # 30,000 requests (bench_ledger.py measures 100,000): the 0.1.0 layout already wrote 240 KB at
    # once and 3.6 GB in all here, far past both bounds.
    store = RecordingStore()
    led = ledger(store)
    send(led, range(30_000))
    largest = max(size for _, size in store.writes)
    total = sum(size for _, size in store.writes)
    assert largest < 4_000  # Airflow warns from 64 KB
    assert total < 2_000 * 30_000  # about 1.4 KB per request
    heads = [size for key, size in store.writes if key == KEY]
    assert max(heads) < 4_000
    again = ledger(store)
    assert len(again) == 30_000 and again.is_acked(request(29_999)) and again.is_acked(request(0))
    again.discard()
    assert store.data == {}


def test_in_flight_requests_of_a_crashed_try_are_possible_duplicates() -> None:
    store = RecordingStore()
    first = ledger(store)
    send(first, range(300))
    wire = [request(seq) for seq in range(300, 306)]
    first.sending(wire[:3])
    first.sending(wire[3:])
    first.record(wire[0])
    first.flush()  # 300 acknowledged and saved
    first.record(wire[1])  # 301 acknowledged, then the process is killed before the flush
    second = ledger(store)
    assert second.earlier_in_flight == second.crashed_in_flight == [301, 302, 303, 304, 305]
    assert second.possible_duplicates == 5
    assert seq_ranges(second.crashed_in_flight) == "301-305"
    assert second.is_acked(wire[0]) and not second.is_acked(wire[1])
    # The second try dies too, before resending them: the third still counts them, once.
    second.sending(request(301))
    third = ledger(store)
    assert third.earlier_in_flight == [301, 302, 303, 304, 305] and third.crashed_in_flight == []


def test_a_finished_try_leaves_nothing_in_flight() -> None:
    store = RecordingStore()
    first = ledger(store)
    send(first, range(50))
    cancelled = request(50)
    first.sending(cancelled)
    first.not_sent(cancelled)  # the export stopped before it went out
    first.flush()
    assert json.loads(store.data[f"{KEY}.sent"])["seqs"] == []
    assert ledger(store).possible_duplicates == 0


def test_a_ledger_of_the_one_key_layout_is_read() -> None:
    """0.1.0 kept every CRC in one value; a retry after an upgrade resumes from it."""
    store = RecordingStore()
    prefix = "".join(digest(request(seq)) for seq in range(300))
    store.set(
        KEY,
        {
            "export_id": EXPORT,
            "fingerprint": PRINT,
            "prefix": prefix,
            "beyond": {"302": digest(request(302))},
        },
    )
    again = ledger(store)
    assert len(again) == 301
    assert again.is_acked(request(299)) and again.is_acked(request(302)) and not again.is_acked(request(300))
    assert "prefix" not in json.loads(store.data[KEY])  # rewritten in blocks
    assert ledger(store).is_acked(request(0))
