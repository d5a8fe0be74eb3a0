"""Concurrency (nothing lost, arrival order kept per logstore) and SQLite persistence."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from sls_provider.emulator import SlsEmulator


def post(emu: SlsEmulator, session: requests.Session, logs: list[dict[str, str]], topic: str) -> int:
    body = {"__topic__": topic, "__logs__": logs}
    resp = session.post(
        f"{emu.endpoint}/logstores/store/track",
        json=body,
        headers={"Host": f"proj.127.0.0.1:{emu.port}", "x-log-apiversion": "0.6.0"},
        timeout=10,
    )
    return resp.status_code


@pytest.mark.parametrize("use_db", [False, True])
def test_eight_threads_nothing_lost(tmp_path: Path, use_db: bool) -> None:
    db = str(tmp_path / "sls.db") if use_db else None
    with SlsEmulator(db_path=db) as emu:
        emu.create_logstore("proj", "store")
        errors: list[int] = []

        def worker(n: int) -> None:
            with requests.Session() as session:
                for batch in range(20):
                    logs = [{"thread": str(n), "batch": str(batch), "i": str(i)} for i in range(50)]
                    status = post(emu, session, logs, f"t{n}")
                    if status != 200:
                        errors.append(status)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert emu.count("proj", "store") == 8 * 20 * 50
        assert emu.counts() == {("proj", "store", f"t{n}"): 1000 for n in range(8)}
        for n in range(8):  # each thread's logs come back in the order it sent them
            mine = emu.get_logs("proj", "store", topic=f"t{n}")
            assert [(int(r["batch"]), int(r["i"])) for r in mine] == [
                (b, i) for b in range(20) for i in range(50)
            ]
        assert len(emu.requests) == 160
    emu.close()


def test_persistence_across_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "sls.db")
    with SlsEmulator(db_path=db) as emu:
        emu.create_logstore("proj", "store")
        emu.create_logstore("proj", "off", web_tracking=False)
        with requests.Session() as session:
            assert post(emu, session, [{"a": "1"}, {"a": "2"}], "t") == 200
    emu.close()
    with SlsEmulator(db_path=db) as again:
        assert [r["a"] for r in again.get_logs("proj", "store")] == ["1", "2"]
        assert again.counts() == {("proj", "store", "t"): 2}
        with requests.Session() as session:
            assert post(again, session, [{"a": "3"}], "t") == 200
            off = session.post(
                f"{again.endpoint}/logstores/off/track",
                data=b'{"__logs__": [{"a": "b"}]}',
                headers={"Host": f"proj.127.0.0.1:{again.port}", "x-log-apiversion": "0.6.0"},
                timeout=5,
            )
        assert off.status_code == 403  # the web-tracking switch persisted too
        assert [r["a"] for r in again.get_logs("proj", "store")] == ["1", "2", "3"]
        again.clear()
        assert again.count("proj", "store") == 0
    again.close()


def test_stop_and_start_again(emu: SlsEmulator, track) -> None:
    assert track([{"a": "1"}]).status_code == 200
    emu.stop()
    assert emu.count("proj", "store") == 1  # readable while stopped
    emu.start()
    with requests.Session() as session:
        assert post(emu, session, [{"a": "2"}], "") == 200
    assert emu.count("proj", "store") == 2
