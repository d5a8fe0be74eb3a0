"""Shards and write quotas: the accounting on its own (fake clock), then over real HTTP. Quotas count
raw (uncompressed) bytes and writes, as SLS's limits do."""

from __future__ import annotations

import json
import subprocess
import sys

import lz4.block
import pytest
import requests

from sls_provider.emulator import WriteQuota
from sls_provider.emulator.errors import EmulatorError
from sls_provider.emulator.protocol import MB
from sls_provider.emulator.quota import PROJECT_MB_PER_SECOND, QuotaBook
from sls_provider.testing import EmulatorFactory


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def book(shards: int = 2, **quota: float) -> tuple[QuotaBook, FakeClock]:
    clock = FakeClock()
    quotas = QuotaBook(clock=clock)
    quotas.set_logstore("p", "s", shards, WriteQuota(**quota))
    return quotas, clock


def refused(quotas: QuotaBook, nbytes: int) -> str | None:
    try:
        quotas.admit("p", "s", nbytes)
    except EmulatorError as err:
        assert err.status == 403
        return err.code
    return None


def test_bytes_bucket_holds_one_second_and_refills() -> None:
    quotas, clock = book(shards=1, mb_per_second=1.0)
    assert [refused(quotas, MB // 4) for _ in range(5)] == [None] * 4 + ["ShardWriteQuotaExceed"]
    clock.now += 0.5  # half a second refills half a MB
    assert [refused(quotas, MB // 4) for _ in range(3)] == [None, None, "ShardWriteQuotaExceed"]
    clock.now += 10  # the burst is capped at one second
    assert [refused(quotas, MB // 4) for _ in range(5)] == [None] * 4 + ["ShardWriteQuotaExceed"]
    (shard,) = quotas.counters("p", "s")
    assert (shard.accepted, shard.refused) == (10, 3)
    assert shard.accepted_raw_bytes == 10 * (MB // 4) and shard.refused_raw_bytes == 3 * (MB // 4)


def test_writes_bucket() -> None:
    quotas, clock = book(shards=1, writes_per_second=3)
    assert [refused(quotas, 10) for _ in range(4)] == [None, None, None, "ShardWriteQuotaExceed"]
    clock.now += 1 / 3
    assert refused(quotas, 10) is None


def test_round_robin_over_shards() -> None:
    # Each shard holds two writes: round robin refuses the 5th and 6th, one on each shard.
    quotas, _ = book(shards=2, mb_per_second=2 * 100 / MB)
    assert [refused(quotas, 100) for _ in range(6)] == [None] * 4 + ["ShardWriteQuotaExceed"] * 2
    assert [(s.accepted, s.refused) for s in quotas.counters("p", "s")] == [(2, 1), (2, 1)]


def test_a_write_larger_than_the_burst_passes_on_a_full_bucket_and_is_paid_for() -> None:
    quotas, clock = book(shards=1, mb_per_second=1.0)
    assert refused(quotas, 2 * MB) is None
    clock.now += 1.5  # in debt by one MB: 1.5 s later only half a MB is there
    assert refused(quotas, MB) == "ShardWriteQuotaExceed"
    clock.now += 0.5
    assert refused(quotas, MB) is None


def test_the_quota_counts_raw_bytes_not_the_compressed_ones() -> None:
    # 1 MB/s of raw data: four writes of a quarter MB raw fill it, however small they are on the wire.
    quotas, _ = book(shards=1, mb_per_second=1.0)
    outcomes = []
    for _ in range(5):
        try:
            quotas.admit("p", "s", MB // 4, body_bytes=MB // 40)
            outcomes.append(None)
        except EmulatorError as err:
            outcomes.append(err.code)
    assert outcomes == [None] * 4 + ["ShardWriteQuotaExceed"]
    (shard,) = quotas.counters("p", "s")
    assert (shard.accepted_raw_bytes, shard.accepted_body_bytes) == (MB, 4 * (MB // 40))
    assert (shard.refused_raw_bytes, shard.refused_body_bytes) == (MB // 4, MB // 40)


@pytest.mark.parametrize(("index", "mb"), [(True, 5.0), (False, 10.0)])
def test_a_shard_takes_5_mb_with_an_index_and_10_without(index: bool, mb: float) -> None:
    clock = FakeClock()
    quotas = QuotaBook(clock=clock)
    quotas.set_logstore("p", "s", 1, WriteQuota(), index=index)  # SLS's figures
    assert [refused(quotas, MB) for _ in range(int(mb) + 1)] == [None] * int(mb) + ["ShardWriteQuotaExceed"]
    (store,) = quotas.snapshot()["logstores"]  # type: ignore[index]
    assert store["index"] is index
    assert store["quota"] == {"mb_per_second": mb, "writes_per_second": 500.0, "soft": 0.0}
    quotas.set_logstore("p", "s", 1, WriteQuota(mb_per_second=0.5), index=index)  # named: as named
    assert [refused(quotas, MB // 4) for _ in range(3)] == [None, None, "ShardWriteQuotaExceed"]


def project_refusal(quotas: QuotaBook, nbytes: int = 1) -> EmulatorError:
    with pytest.raises(EmulatorError) as caught:
        quotas.admit("p", "a", nbytes)
    assert (caught.value.status, caught.value.code) == (403, "WriteQuotaExceed")
    return caught.value


def test_project_quota_is_checked_first_and_spans_logstores() -> None:
    clock = FakeClock()
    quotas = QuotaBook(clock=clock)
    quotas.set_project("p", WriteQuota(writes_per_second=2))
    quotas.set_logstore("p", "a", 1, WriteQuota(writes_per_second=1))
    quotas.admit("p", "a", 1)
    quotas.admit("p", "b", 1)
    # The documented message of a project over its writes (the shard would refuse too).
    message = project_refusal(quotas).message
    assert message == "Project write quota exceed: qps: 2 writes/s (Write QPS Exceed), project: p"
    counters = quotas.project_counters("p")
    assert counters is not None and (counters.accepted, counters.refused) == (2, 1)
    quotas.admit("q", "a", 1)  # other projects are not limited


def test_project_raw_bytes_quota_and_sls_figures() -> None:
    clock = FakeClock()
    quotas = QuotaBook(clock=clock)
    quotas.set_project("p", WriteQuota(mb_per_second=1.0))
    quotas.admit("p", "a", MB, body_bytes=MB // 10)
    message = project_refusal(quotas, MB // 2).message
    assert (
        message == "Project write quota exceed: inflow: 1 MB/s of raw data (Inflow Quota Exceed), project: p"
    )
    counters = quotas.project_counters("p")
    assert counters is not None and (counters.accepted_raw_bytes, counters.refused_raw_bytes) == (MB, MB // 2)
    # Unnamed figures are SLS's: 100 GB/min and 600,000 writes/min.
    quotas.set_project("p", WriteQuota())
    (project,) = quotas.snapshot()["projects"]  # type: ignore[index]
    assert project["quota"] == {
        "mb_per_second": PROJECT_MB_PER_SECOND,
        "writes_per_second": 10_000.0,
        "soft": 0.0,
    }
    assert PROJECT_MB_PER_SECOND * 60 == 100 * 1024


def test_soft_mode_accepts_some_over_quota_writes_within_a_bounded_debt() -> None:
    quotas, clock = book(shards=1, writes_per_second=10, soft=0.5)
    outcomes = [refused(quotas, 1) for _ in range(40)]  # all at one instant
    (shard,) = quotas.counters("p", "s")
    assert shard.accepted == outcomes.count(None) and shard.refused == outcomes.count("ShardWriteQuotaExceed")
    assert 0 < shard.soft_accepted < 30 and shard.refused > 0
    # debt is bounded at one second: after 2 s the bucket is full again
    clock.now += 2.0
    assert refused(quotas, 1) is None


def test_no_quota_means_unlimited() -> None:
    quotas = QuotaBook(clock=FakeClock())
    for _ in range(10_000):
        quotas.admit("p", "s", 3 * MB)
    assert quotas.counters("p", "s") == []


def test_bad_quota_values() -> None:
    with pytest.raises(ValueError, match="positive"):
        WriteQuota(mb_per_second=0)
    with pytest.raises(ValueError, match="writes_per_second"):
        WriteQuota(writes_per_second=-1)
    with pytest.raises(ValueError, match="soft"):
        WriteQuota(soft=1.5)
    with pytest.raises(ValueError, match="shards"):
        QuotaBook().set_logstore("p", "s", 0, WriteQuota())


# -- over HTTP ---------------------------------------------------------------------------------------


def test_over_quota_is_refused_with_the_service_answer_and_nothing_stored(
    sls_emulator_factory: EmulatorFactory, expect_error
) -> None:
    emu = sls_emulator_factory()
    emu.create_logstore("proj", "store", shards=2, quota=WriteQuota(writes_per_second=1))
    session = requests.Session()
    url = f"{emu.endpoint}/logstores/store/track"
    headers = {"Host": f"proj.127.0.0.1:{emu.port}", "x-log-apiversion": "0.6.0"}
    answers = [session.post(url, data=b'{"__logs__":[{"a":"1"}]}', headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 403]
    expect_error(answers[2], 403, "ShardWriteQuotaExceed")
    assert emu.count("proj", "store") == 2
    assert [(s.accepted, s.refused) for s in emu.shard_counters("proj", "store")] == [(1, 1), (1, 0)]
    assert emu.requests[2]["error_code"] == "ShardWriteQuotaExceed"
    admin = session.get(f"{emu.endpoint}/_emulator/quotas").json()
    (store,) = admin["logstores"]
    assert [(s["accepted"], s["refused"]) for s in store["shards"]] == [(1, 1), (1, 0)]
    assert store["quota"]["writes_per_second"] == 1
    described = session.get(f"{emu.endpoint}/logstores/store", headers=headers).json()
    assert described["shardCount"] == 2


def test_a_body_that_compresses_10x_is_refused_at_the_raw_rate(
    sls_emulator_factory: EmulatorFactory, expect_error
) -> None:
    emu = sls_emulator_factory()
    raw = json.dumps({"__logs__": [{"a": "x" * 100, "n": str(i % 10)} for i in range(1000)]}).encode()
    body = lz4.block.compress(raw, store_size=False)
    assert len(raw) >= 10 * len(body)
    # One shard holding two of these bodies raw (over twenty of them compressed).
    emu.create_logstore("proj", "store", shards=1, quota=WriteQuota(mb_per_second=2.5 * len(raw) / MB))
    headers = {
        "Host": f"proj.127.0.0.1:{emu.port}",
        "x-log-apiversion": "0.6.0",
        "x-log-compresstype": "lz4",
        "x-log-bodyrawsize": str(len(raw)),
    }
    with requests.Session() as session:
        url = f"{emu.endpoint}/logstores/store/track"
        answers = [session.post(url, data=body, headers=headers, timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    expect_error(answers[2], 403, "ShardWriteQuotaExceed")
    assert "MB/s of raw data" in answers[2].json()["errorMessage"]
    (shard,) = emu.shard_counters("proj", "store")
    assert (shard.accepted_raw_bytes, shard.accepted_body_bytes) == (2 * len(raw), 2 * len(body))
    assert (shard.refused_raw_bytes, shard.refused_body_bytes) == (len(raw), len(body))
    assert emu.count("proj", "store") == 2000


def test_sls_quotas_by_index_and_for_the_project(sls_emulator_factory: EmulatorFactory, expect_error) -> None:
    emu = sls_emulator_factory()
    emu.create_logstore("proj", "indexed", quota=True)
    emu.create_logstore("proj", "plain", quota=True, index=False)
    emu.set_project_quota("proj", True)
    snapshot = requests.get(f"{emu.endpoint}/_emulator/quotas", timeout=10).json()
    assert [(s["logstore"], s["index"], s["quota"]["mb_per_second"]) for s in snapshot["logstores"]] == [
        ("indexed", True, 5.0),
        ("plain", False, 10.0),
    ]
    assert snapshot["projects"][0]["quota"]["writes_per_second"] == 10_000.0
    spec = {"project": "proj", "quota": {"writes_per_second": 1}}
    assert requests.post(f"{emu.endpoint}/_emulator/quotas", json=spec, timeout=10).status_code == 200
    url = f"{emu.endpoint}/logstores/plain/track"
    headers = {"Host": f"proj.127.0.0.1:{emu.port}", "x-log-apiversion": "0.6.0"}
    answers = [
        requests.post(url, data=b'{"__logs__":[{"a":"1"}]}', headers=headers, timeout=10) for _ in range(2)
    ]
    expect_error(answers[1], 403, "WriteQuotaExceed")
    assert "Write QPS Exceed" in answers[1].json()["errorMessage"]


def test_admin_creates_a_logstore_with_shards_and_quota_and_a_project_quota(
    sls_emulator_factory: EmulatorFactory,
) -> None:
    emu = sls_emulator_factory()
    session = requests.Session()
    spec = {"project": "proj", "logstore": "s", "shards": 3, "quota": {"mb_per_second": 0.5}}
    created = session.post(f"{emu.endpoint}/_emulator/logstores", json=spec)
    assert created.status_code == 200 and created.json()["shardCount"] == 3
    assert len(emu.shard_counters("proj", "s")) == 3
    bad = session.post(f"{emu.endpoint}/_emulator/logstores", json={**spec, "quota": {"x": 1}})
    assert bad.status_code == 400 and "Bad quota" in bad.json()["errorMessage"]
    answer = session.post(
        f"{emu.endpoint}/_emulator/quotas", json={"project": "proj", "quota": {"writes_per_second": 1}}
    )
    assert answer.status_code == 200 and answer.json()["projects"][0]["project"] == "proj"
    url = f"{emu.endpoint}/logstores/s/track"
    headers = {"Host": f"proj.127.0.0.1:{emu.port}", "x-log-apiversion": "0.6.0"}
    codes = [session.post(url, data=b'{"__logs__":[{"a":"1"}]}', headers=headers) for _ in range(2)]
    assert codes[1].status_code == 403 and codes[1].json()["errorCode"] == "WriteQuotaExceed"


def test_cli_flags_make_a_quota() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sls_provider.emulator.cli",
            "--port",
            "0",
            "--quiet",
            "--logstore",
            "proj/store",
            "--shards",
            "4",
            "--shard-mb-per-second",
            "0.25",
            "--project-writes-per-second",
            "7",
            "--no-index",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().split()[4]
        snapshot = requests.get(f"{endpoint}/_emulator/quotas", timeout=10).json()
        (store,) = snapshot["logstores"]
        assert len(store["shards"]) == 4 and store["index"] is False
        assert store["quota"] == {"mb_per_second": 0.25, "writes_per_second": 500.0, "soft": 0.0}
        (project,) = snapshot["projects"]
        assert project["project"] == "proj" and project["quota"]["writes_per_second"] == 7.0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
