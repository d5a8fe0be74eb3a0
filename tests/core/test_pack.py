"""Packer: request bodies as full as the PutWebTracking limits allow, and never over them.

Sizes are measured on the real request bodies (``len(request.body)``, bytes, envelope included); the
envelope size used to build rows of an exact size is computed here with json.dumps, independently of
the packer.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sls_provider.core.encode import EncodedRows, from_ndjson
from sls_provider.core.errors import SlsInputError
from sls_provider.core.options import MAX_VALUE_BYTES
from sls_provider.core.pack import Packer, Request
from sls_provider.core.screen import screen

MIB = 1024 * 1024
SDK_MAX_BYTES = 3 * MIB  # docs/protocol.md: 3 MB counted as 1024 * 1024 bytes
SDK_MAX_LOGS = 4096
SEQ_SLACK = 12  # an export's request number, up to 12 digits, may not be known when a row is placed


def compact(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def ndjson(rows: Iterable[dict[str, str]]) -> EncodedRows:
    return from_ndjson(b"".join(compact(r) + b"\n" for r in rows))


def empty_body_size(topic: str, source: str, tags: dict[str, str]) -> int:
    """Bytes of a body with no logs; each log adds its own bytes plus one comma after the first."""
    return len(compact({"__topic__": topic, "__source__": source, "__tags__": tags, "__logs__": []}))


def row_of_size(size: int, fill: str = "x", key: str = "k") -> dict[str, str]:
    """A one-key row whose compact JSON is exactly ``size`` bytes, using ``fill`` as much as possible."""
    overhead = len(compact({key: ""}))
    room = size - overhead
    width = len(fill.encode("utf-8"))
    value = fill * (room // width) + "x" * (room % width)
    row = {key: value}
    assert len(compact(row)) == size
    return row


class Screened:
    """The export's path: rows screened for size (:mod:`sls_provider.core.screen`), then packed."""

    def __init__(self, on_oversize: str = "skip", **kwargs: Any) -> None:
        self.packer = Packer(**kwargs)
        self.on_oversize = on_oversize
        self.max_bytes = kwargs.get("max_bytes", SDK_MAX_BYTES)
        self.skipped_rows = 0

    def add(self, topic: str, rows: EncodedRows) -> Iterator[Request]:
        kept, skipped = screen(
            rows,
            topic=topic,
            budget=self.packer.row_budget(topic),
            max_bytes=self.max_bytes,
            max_value_bytes=MAX_VALUE_BYTES,
            on_oversize=self.on_oversize,
            first_row=0,
            positions=None,
        )
        self.skipped_rows += skipped
        return self.packer.add(topic, kept)

    def finish(self) -> Iterator[Request]:
        return self.packer.finish()


def run(packer: Packer | Screened, adds: Iterable[tuple[str, list[dict[str, str]]]]) -> list[Request]:
    requests: list[Request] = []
    for topic, rows in adds:
        requests.extend(packer.add(topic, ndjson(rows)))
    requests.extend(packer.finish())
    return requests


def parsed(request: Request) -> dict:
    body = json.loads(request.body.decode("utf-8"))
    assert set(body) == {"__topic__", "__source__", "__tags__", "__logs__"}
    assert body["__topic__"] == request.topic
    assert len(body["__logs__"]) == request.logs
    return body


def check_limits(requests: list[Request], max_logs: int, max_bytes: int) -> None:
    for request in requests:
        assert 1 <= request.logs <= max_logs
        assert len(request.body) <= max_bytes
        parsed(request)


# -- exact byte limit ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_bytes", [1024, 65536, SDK_MAX_BYTES])
def test_a_row_filling_the_body_exactly_to_the_limit_fits(max_bytes: int) -> None:
    packer = Packer(source="src", max_bytes=max_bytes)
    row = row_of_size(max_bytes - empty_body_size("t", "src", {}))
    [request] = run(packer, [("t", [row])])
    assert len(request.body) == max_bytes
    assert parsed(request)["__logs__"] == [row]


@pytest.mark.parametrize("max_bytes", [1024, 65536, SDK_MAX_BYTES])
def test_one_byte_over_the_limit_is_refused_naming_the_size(max_bytes: int) -> None:
    packer = Screened("fail", source="src", max_bytes=max_bytes)
    size = max_bytes - empty_body_size("t", "src", {}) + 1
    with pytest.raises(SlsInputError) as info:
        run(packer, [("t", [row_of_size(size)])])
    message = str(info.value)
    assert f"{size:,}" in message or str(size) in message
    assert "'t'" in message  # the topic
    assert "on_oversize" in message


def test_rows_just_under_at_and_over_the_limit_with_skip() -> None:
    max_bytes = 4096
    exact = max_bytes - empty_body_size("t", "src", {})
    rows = [row_of_size(exact - 1), row_of_size(exact), row_of_size(exact + 1), row_of_size(exact + 5000)]
    packer = Screened(source="src", max_bytes=max_bytes)
    requests = run(packer, [("t", rows)])
    assert [len(r.body) for r in requests] == [max_bytes - 1, max_bytes]
    assert [parsed(r)["__logs__"] for r in requests] == [[rows[0]], [rows[1]]]
    assert packer.skipped_rows == 2
    assert sum(r.logs for r in requests) == 2


def test_skipped_rows_keep_the_others_in_order() -> None:
    packer = Screened(source="s", max_bytes=2048)
    rows = [{"n": "0"}, row_of_size(5000), {"n": "2"}, row_of_size(3000), {"n": "4"}]
    [request] = run(packer, [("t", rows)])
    assert parsed(request)["__logs__"] == [{"n": "0"}, {"n": "2"}, {"n": "4"}]
    assert packer.skipped_rows == 2


def test_only_oversized_rows_give_no_request() -> None:
    packer = Screened(source="s", max_bytes=1024)
    assert run(packer, [("t", [row_of_size(2000), row_of_size(3000)])]) == []
    assert packer.skipped_rows == 2


@pytest.mark.parametrize(("fill", "width"), [("é", 2), ("中", 3), ("😀", 4)])
def test_multibyte_text_is_counted_in_bytes(fill: str, width: int) -> None:
    max_bytes = 2048
    exact = max_bytes - empty_body_size("t", "s", {})
    row = row_of_size(exact, fill)
    assert len(json.dumps(row, ensure_ascii=False)) < exact  # fewer characters than bytes
    [request] = run(Packer(source="s", max_bytes=max_bytes), [("t", [row])])
    assert len(request.body) == max_bytes
    with pytest.raises(SlsInputError):
        run(Packer(source="s", max_bytes=max_bytes), [("t", [{"k": row["k"] + "x"}])])


def test_many_multibyte_rows_stay_under_the_byte_limit_and_fill_it() -> None:
    max_bytes = 8192
    rows = [{"i": str(i), "t": "中文😀" * (5 + i % 40)} for i in range(600)]
    requests = run(Packer(source="s", max_bytes=max_bytes), [("t", rows)])
    check_limits(requests, SDK_MAX_LOGS, max_bytes)
    assert [log for r in requests for log in parsed(r)["__logs__"]] == rows
    for request, following in zip(requests, requests[1:], strict=False):
        next_row = len(compact(parsed(following)["__logs__"][0]))
        assert len(request.body) + 1 + next_row > max_bytes  # cut only when the next row did not fit
    assert any(len(r.body.decode("utf-8")) < len(r.body) for r in requests)


def test_envelope_strings_are_counted_in_bytes() -> None:
    topic, source, tags = "主题" * 20, "来源" * 20, {"标签": "值" * 30}
    max_bytes = 2048
    exact = max_bytes - empty_body_size(topic, source, tags)
    packer = Packer(source=source, tags=tags, max_bytes=max_bytes)
    [request] = run(packer, [(topic, [row_of_size(exact)])])
    assert len(request.body) == max_bytes
    with pytest.raises(SlsInputError):
        run(Packer(source=source, tags=tags, max_bytes=max_bytes), [(topic, [row_of_size(exact + 1)])])


def test_with_an_export_id_bodies_stay_within_the_limit_and_waste_at_most_the_seq_width() -> None:
    max_bytes = 1024
    exact = max_bytes - empty_body_size("t", "s", {"sls_export": "exp", "sls_seq": "0"})
    accepted = []
    for size in range(exact - 20, exact + 3):
        try:
            [request] = run(
                Packer(source="s", export_id="exp", max_bytes=max_bytes), [("t", [row_of_size(size)])]
            )
        except SlsInputError:
            assert size > exact - SEQ_SLACK
            continue
        accepted.append(size)
        assert len(request.body) <= max_bytes
    assert accepted and max(accepted) >= exact - SEQ_SLACK


def test_growing_sequence_numbers_never_push_a_body_over_the_limit() -> None:
    max_bytes = 1024
    exact = max_bytes - empty_body_size("t", "s", {"sls_export": "e", "sls_seq": "0"})
    rows = [row_of_size(exact - k % (SEQ_SLACK + 1)) for k in range(1500)]
    packer = Screened(source="s", export_id="e", max_logs=1, max_bytes=max_bytes)
    requests = run(packer, [("t", rows)])
    assert requests[-1].seq >= 100  # three-digit sequence numbers reached
    check_limits(requests, 1, max_bytes)


# -- log count limit ----------------------------------------------------------------------------


def test_4096_logs_make_one_full_request_at_once() -> None:
    packer = Packer(source="s")
    yielded = list(packer.add("t", ndjson([{}] * SDK_MAX_LOGS)))
    assert [r.logs for r in yielded] == [SDK_MAX_LOGS]
    assert len(parsed(yielded[0])["__logs__"]) == SDK_MAX_LOGS
    assert list(packer.finish()) == []


def test_4097_logs_make_two_requests() -> None:
    rows = [{"n": str(i)} for i in range(SDK_MAX_LOGS + 1)]
    requests = run(Packer(source="s"), [("t", rows)])
    assert [r.logs for r in requests] == [SDK_MAX_LOGS, 1]
    assert [log for r in requests for log in parsed(r)["__logs__"]] == rows


def test_log_limit_holds_across_many_small_adds() -> None:
    packer = Packer(source="s")
    adds = [("t", [{"n": str(i * 7 + j)} for j in range(7)]) for i in range(1300)]  # 9100 rows
    requests = run(packer, adds)
    assert [r.logs for r in requests] == [4096, 4096, 908]
    check_limits(requests, SDK_MAX_LOGS, SDK_MAX_BYTES)


def test_full_requests_are_at_least_98_percent_of_a_limit() -> None:
    rng = random.Random(7)
    max_bytes = 64 * 1024
    rows = [{"i": str(i), "v": "x" * rng.randint(40, 600)} for i in range(3000)]
    by_bytes = run(Packer(source="s", max_bytes=max_bytes, export_id="e"), [("t", rows)])
    assert len(by_bytes) > 10
    for request in by_bytes[:-1]:
        assert len(request.body) >= 0.98 * max_bytes
    by_logs = run(Packer(source="s", export_id="e"), [("t", [{"k": "v"}] * 10000)])
    assert [r.logs for r in by_logs] == [4096, 4096, 1808]


@pytest.mark.parametrize(("max_logs", "max_bytes"), [(1, 1024), (10, 1024), (100, 4000), (4096, 2 * MIB)])
def test_configurable_lower_limits(max_logs: int, max_bytes: int) -> None:
    rng = random.Random(max_logs)
    rows = [{"i": str(i), "v": "é" * rng.randint(0, 60)} for i in range(500)]
    requests = run(Packer(source="s", max_logs=max_logs, max_bytes=max_bytes), [("t", rows)])
    check_limits(requests, max_logs, max_bytes)
    assert [log for r in requests for log in parsed(r)["__logs__"]] == rows
    for request in requests[:-1]:
        assert request.logs == max_logs or len(request.body) > max_bytes - 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_logs": 0},
        {"max_logs": SDK_MAX_LOGS + 1},
        {"max_bytes": 1023},
        {"max_bytes": SDK_MAX_BYTES + 1},
        {"source": "s" * 129},
        {"source": "é" * 65},
        {"tags": {"k": 1}},
        {"tags": {2: "v"}},
        {"tags": {"k": "bad \ud800"}},
        {"tags": {"bad \udc00": "v"}},
        {"source": "bad \ud800"},
        {"export_id": "bad \ud800"},
        {"max_pending_bytes": -1},
    ],
    ids=repr,
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(SlsInputError):
        Packer(**{"source": "s", **kwargs})


def test_limits_at_the_protocol_maximum_are_used_in_full() -> None:
    """A 128-byte source is sent as it is, and the largest limits are filled, not merely accepted."""
    source = "s" * 128
    packer = Packer(source=source, max_logs=SDK_MAX_LOGS, max_bytes=SDK_MAX_BYTES)
    exact = SDK_MAX_BYTES - empty_body_size("t", source, {})
    [full] = run(packer, [("t", [row_of_size(exact)])])
    assert len(full.body) == SDK_MAX_BYTES
    assert parsed(full)["__source__"] == source
    by_count = run(Packer(source=source), [("t", [{"n": str(i)} for i in range(SDK_MAX_LOGS + 1)])])
    assert [r.logs for r in by_count] == [SDK_MAX_LOGS, 1]


def test_smallest_limits_with_a_128_byte_multibyte_source() -> None:
    source = "é" * 64  # 64 characters, 128 bytes
    requests = run(Packer(source=source, max_logs=1, max_bytes=1024), [("t", [{"n": "1"}, {"n": "2"}])])
    assert [parsed(r)["__logs__"] for r in requests] == [[{"n": "1"}], [{"n": "2"}]]
    assert {parsed(r)["__source__"] for r in requests} == {source}
    exact = 1024 - empty_body_size("t", source, {})
    [request] = run(Packer(source=source, max_logs=1, max_bytes=1024), [("t", [row_of_size(exact)])])
    assert len(request.body) == 1024


@pytest.mark.parametrize("topic", ["t" * 129, "é" * 65])
def test_topic_over_128_bytes_is_refused(topic: str) -> None:
    with pytest.raises(SlsInputError, match="128"):
        run(Packer(source="s"), [(topic, [{"a": "b"}])])


def test_topic_with_a_lone_surrogate_is_an_input_error() -> None:
    with pytest.raises(SlsInputError, match="UTF-8"):
        run(Packer(source="s"), [("bad \ud800", [{"a": "b"}])])


@pytest.mark.parametrize("topic", ["t" * 128, "é" * 64, ""])
def test_topic_up_to_128_bytes_is_accepted(topic: str) -> None:
    [request] = run(Packer(source="s"), [(topic, [{"a": "b"}])])
    assert parsed(request)["__topic__"] == topic


# -- envelope, topics, order --------------------------------------------------------------------


def test_body_is_the_protocol_envelope_with_export_tags() -> None:
    packer = Packer(source="host-1", tags={"env": "prod", "中": "文"}, export_id="exp-42", max_logs=2)
    rows = [{"a": "1"}, {"a": "2", "b": "x\ny"}, {"c": '"q"'}]
    requests = run(packer, [("orders", rows)])
    assert [r.seq for r in requests] == [0, 1]
    bodies = [parsed(r) for r in requests]
    for seq, body in enumerate(bodies):
        assert body["__topic__"] == "orders"
        assert body["__source__"] == "host-1"
        assert body["__tags__"] == {"env": "prod", "中": "文", "sls_export": "exp-42", "sls_seq": str(seq)}
    assert [b["__logs__"] for b in bodies] == [rows[:2], rows[2:]]


def test_without_export_id_only_the_given_tags_are_sent() -> None:
    [request] = run(Packer(source="s", tags={"env": "dev"}), [("t", [{"a": "1"}])])
    assert parsed(request)["__tags__"] == {"env": "dev"}
    [request] = run(Packer(source=""), [("", [{"a": "1"}])])
    assert parsed(request) == {"__topic__": "", "__source__": "", "__tags__": {}, "__logs__": [{"a": "1"}]}


def test_empty_rows_and_empty_adds() -> None:
    packer = Packer(source="s")
    assert list(packer.add("t", ndjson([]))) == []
    assert list(packer.finish()) == []
    [request] = run(Packer(source="s"), [("t", [{}, {}, {}])])
    assert parsed(request)["__logs__"] == [{}, {}, {}]


def test_one_request_never_mixes_topics_and_order_is_kept_per_topic() -> None:
    packer = Packer(source="s", max_logs=3, export_id="e")
    adds = []
    sent: dict[str, list[dict[str, str]]] = defaultdict(list)
    for i in range(40):
        topic = "abc"[i % 3] if i % 5 else "a"
        rows = [{"topic": topic, "n": str(len(sent[topic]) + j)} for j in range(i % 4)]
        sent[topic].extend(rows)
        adds.append((topic, rows))
    requests = run(packer, adds)
    assert [r.seq for r in requests] == list(range(len(requests)))
    got: dict[str, list[dict[str, str]]] = defaultdict(list)
    for request in requests:
        body = parsed(request)
        assert {log["topic"] for log in body["__logs__"]} == {request.topic}
        assert body["__tags__"]["sls_seq"] == str(request.seq)
        got[request.topic].extend(body["__logs__"])
    assert got == sent


def test_finish_sends_open_requests_in_order_of_first_appearance() -> None:
    packer = Packer(source="s")
    for topic in ["b", "a", "c", "a"]:
        assert list(packer.add(topic, ndjson([{"t": topic}]))) == []
    assert [r.topic for r in packer.finish()] == ["b", "a", "c"]


def test_pending_limit_sends_early_without_losing_rows() -> None:
    packer = Packer(source="s", max_bytes=64 * 1024, max_pending_bytes=4096)
    sent: dict[str, list[dict[str, str]]] = defaultdict(list)
    early: list[Request] = []
    for i in range(300):
        topic = f"t{i % 7}"
        row = {"n": str(i), "pad": "p" * 50}
        sent[topic].append(row)
        early.extend(packer.add(topic, ndjson([row])))
    assert early  # nothing was full, so these were sent for the pending limit
    requests = early + list(packer.finish())
    check_limits(requests, SDK_MAX_LOGS, 64 * 1024)
    got: dict[str, list[dict[str, str]]] = defaultdict(list)
    for request in requests:
        got[request.topic].extend(parsed(request)["__logs__"])
    assert got == sent
    assert sorted(r.seq for r in requests) == list(range(len(requests)))


# -- property: random adds --------------------------------------------------------------------

TOPICS = ["", "a", "主题"]
TEXT = st.text(alphabet=st.sampled_from(["x", "é", "中", "😀", '"', "\\", "\n"]), max_size=150)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    adds=st.lists(st.tuples(st.sampled_from(TOPICS), st.lists(TEXT, max_size=30)), max_size=15),
    max_logs=st.integers(1, 25),
    max_bytes=st.integers(1024, 6000),
    export_id=st.one_of(st.none(), st.just("export-1")),
)
def test_random_adds_lose_or_duplicate_nothing_and_respect_limits(
    adds: list[tuple[str, list[str]]], max_logs: int, max_bytes: int, export_id: str | None
) -> None:
    packer = Packer(source="src", export_id=export_id, max_logs=max_logs, max_bytes=max_bytes)
    counter = 0
    sent: dict[str, list[dict[str, str]]] = defaultdict(list)
    batches = []
    for topic, texts in adds:
        rows = []
        for text in texts:
            rows.append({"id": str(counter), "v": text})
            counter += 1
        sent[topic].extend(rows)
        batches.append((topic, rows))
    requests = run(packer, batches)

    check_limits(requests, max_logs, max_bytes)
    assert [r.seq for r in requests] == list(range(len(requests)))
    by_topic: dict[str, list[Request]] = defaultdict(list)
    got: dict[str, list[dict[str, str]]] = defaultdict(list)
    for request in requests:
        by_topic[request.topic].append(request)
        got[request.topic].extend(parsed(request)["__logs__"])
    assert got == {t: rows for t, rows in sent.items() if rows}
    # A request is cut only when it is full: the log limit, or the next row would not fit.
    for group in by_topic.values():
        for request, following in zip(group, group[1:], strict=False):
            next_row = len(compact(parsed(following)["__logs__"][0]))
            assert request.logs == max_logs or len(request.body) + 1 + next_row > max_bytes - SEQ_SLACK


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    adds=st.lists(
        st.tuples(
            st.sampled_from(TOPICS), st.lists(st.tuples(st.integers(0, 1400), st.sampled_from("xé中")))
        ),
        max_size=8,
    ),
    max_logs=st.integers(1, 10),
    max_bytes=st.integers(1024, 3000),
)
def test_random_adds_with_oversized_rows_skip_exactly_those_and_pack_the_rest_tightly(
    adds: list[tuple[str, list[tuple[int, str]]]], max_logs: int, max_bytes: int
) -> None:
    packer = Screened(source="src", max_logs=max_logs, max_bytes=max_bytes)
    kept: dict[str, list[dict[str, str]]] = defaultdict(list)
    skipped = 0
    batches = []
    for number, (topic, specs) in enumerate(adds):
        rows = [{"id": f"{number}.{i}", "v": fill * length} for i, (length, fill) in enumerate(specs)]
        for row in rows:
            if len(compact(row)) <= max_bytes - empty_body_size(topic, "src", {}):
                kept[topic].append(row)
            else:
                skipped += 1
        batches.append((topic, rows))
    requests = run(packer, batches)

    check_limits(requests, max_logs, max_bytes)
    assert packer.skipped_rows == skipped
    got: dict[str, list[dict[str, str]]] = defaultdict(list)
    by_topic: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        got[request.topic].extend(parsed(request)["__logs__"])
        by_topic[request.topic].append(request)
    assert got == {t: rows for t, rows in kept.items() if rows}
    for group in by_topic.values():
        for request, following in zip(group, group[1:], strict=False):
            next_row = len(compact(parsed(following)["__logs__"][0]))
            assert request.logs == max_logs or len(request.body) + 1 + next_row > max_bytes
