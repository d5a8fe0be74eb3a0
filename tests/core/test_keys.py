"""Log keys, checked against docs/protocol.md: 1-128 bytes of [A-Za-z0-9_], not starting with a digit;
``__topic__``, ``__source__``, ``__partition_time__``, ``_extract_others_``, ``__extract_others__``
refused; ``__time__`` accepted but overwritten by the arrival time (so: a warning)."""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sls_provider.core.errors import SlsError, SlsInputError
from sls_provider.core.keys import key_problem, resolve_keys, sanitize_key

# Written out from docs/protocol.md, not imported from the module under test.
RESERVED = {"__topic__", "__source__", "__partition_time__", "_extract_others_", "__extract_others__"}
KEY_SYNTAX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_valid_key(key: str) -> bool:
    return (
        isinstance(key, str)
        and KEY_SYNTAX.fullmatch(key) is not None
        and 1 <= len(key.encode("utf-8")) <= 128
        and key not in RESERVED
    )


@pytest.mark.parametrize(
    "names",
    [
        ["a"],
        ["_"],
        ["A_b9", "lower", "UPPER", "_leading_underscore", "x" * 128],
        ["user_id", "event_time", "__tag", "___"],
        [],
    ],
)
def test_valid_names_are_kept_as_they_are_under_both_policies(names: list[str]) -> None:
    assert resolve_keys(names) == names
    assert resolve_keys(names, policy="sanitize") == names


@pytest.mark.parametrize(
    "name",
    ["1abc", "9", "has space", "a-b", "a.b", "é", "名字", "emoji😀", "", "x" * 129, "tab\t", "a:b", "$x"],
)
def test_malformed_names_are_refused(name: str) -> None:
    assert key_problem(name) is not None
    with pytest.raises(SlsInputError) as info:
        resolve_keys(["fine", name])
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", sorted(RESERVED))
def test_reserved_names_are_refused(name: str) -> None:
    assert key_problem(name) == "is reserved by SLS"
    with pytest.raises(SlsInputError, match="reserved"):
        resolve_keys([name])


@pytest.mark.parametrize("name", [5, None, 1.5, ("a", "b"), b"bytes", True])
def test_non_string_names_are_refused_in_strict_mode(name: object) -> None:
    assert key_problem(name) is not None
    with pytest.raises(SlsInputError) as info:
        resolve_keys(["ok", name])
    assert repr(name) in str(info.value)


def test_128_is_the_length_limit() -> None:
    assert resolve_keys(["k" * 128]) == ["k" * 128]
    with pytest.raises(SlsInputError):
        resolve_keys(["k" * 129])


def test_strict_names_every_bad_column_in_one_error() -> None:
    bad = ["1st", "has space", "__source__", "x" * 129, "ü", 42]
    names = ["good_one", *bad, "dup", "another_good", "dup"]
    with pytest.raises(SlsInputError) as info:
        resolve_keys(names)
    message = str(info.value)
    for name in bad:
        assert repr(name) in message, name
    assert "'dup' appears more than once" in message
    assert "good_one" not in message and "another_good" not in message
    assert "sanitize" in message  # says how to get past it


def test_input_error_is_a_provider_error_and_a_value_error() -> None:
    with pytest.raises(SlsError):
        resolve_keys(["bad key"])
    with pytest.raises(ValueError):
        resolve_keys(["bad key"])


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(SlsInputError, match="key_policy"):
        resolve_keys(["a"], policy="lenient")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("has space", "has_space"),
        ("a-b.c", "a_b_c"),
        ("1abc", "_1abc"),
        ("9", "_9"),
        ("", "_"),
        ("é", "_"),
        ("名字", "__"),
        ("__topic__", "___topic__"),
        ("__source__", "___source__"),
        ("_extract_others_", "__extract_others_"),
        (5, "_5"),
        (None, "None"),
        ("x" * 200, "x" * 128),
        ("1" + "y" * 200, "_1" + "y" * 126),
    ],
)
def test_sanitize_rewrites(name: object, expected: str) -> None:
    assert sanitize_key(name) == expected
    assert resolve_keys([name], policy="sanitize") == [expected]


def test_sanitize_makes_duplicates_unique_in_column_order() -> None:
    assert resolve_keys(["a", "a", "a"], policy="sanitize") == ["a", "a_2", "a_3"]
    assert resolve_keys(["a b", "a-b", "a.b"], policy="sanitize") == ["a_b", "a_b_2", "a_b_3"]
    long_keys = resolve_keys(["x" * 200, "x" * 300], policy="sanitize")
    assert long_keys == ["x" * 128, "x" * 126 + "_2"]


def test_sanitize_suffix_never_collides_with_an_existing_key() -> None:
    keys = resolve_keys(["a", "a", "a_2"], policy="sanitize")
    assert len(set(keys)) == 3
    assert all(is_valid_key(k) for k in keys)


def test_time_key_is_allowed_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sls_provider.core.keys"):
        assert resolve_keys(["__time__", "msg"]) == ["__time__", "msg"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "__time__" in warnings[0].getMessage()
    assert "arrival time" in warnings[0].getMessage()


def test_time_key_twice_warns_once_when_sanitized(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sls_provider.core.keys"):
        keys = resolve_keys(["__time__", "__time__"], policy="sanitize")
    assert keys == ["__time__", "__time___2"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_no_warning_without_time_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sls_provider.core.keys"):
        resolve_keys(["time", "_time_", "__time"])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


NAMES = st.lists(
    st.one_of(
        st.text(max_size=140),
        st.text(alphabet="ab_1", max_size=4),  # many collisions
        st.sampled_from(sorted(RESERVED | {"__time__"})),
        st.integers(-10, 10),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(NAMES)
def test_sanitize_always_gives_valid_unique_keys_deterministically(names: list[object]) -> None:
    keys = resolve_keys(names, policy="sanitize")
    assert len(keys) == len(names)
    assert all(is_valid_key(k) for k in keys), keys
    assert len(set(keys)) == len(keys)
    assert resolve_keys(list(names), policy="sanitize") == keys
    # A valid, unique name is never rewritten when nothing before it could claim it.
    for i, (name, key) in enumerate(zip(names, keys, strict=True)):
        if isinstance(name, str) and is_valid_key(name) and name not in keys[:i]:
            if all(isinstance(n, str) and is_valid_key(n) for n in names[:i]):
                assert key == name


@settings(max_examples=200, deadline=None)
@given(NAMES)
def test_strict_accepts_exactly_the_valid_unique_names(names: list[object]) -> None:
    acceptable = all(isinstance(n, str) and is_valid_key(n) for n in names) and len(set(names)) == len(names)
    if acceptable:
        assert resolve_keys(names) == names
    else:
        with pytest.raises(SlsInputError):
            resolve_keys(names)
