"""Pure functions: project from Host, and the GetLogs query subset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sls_provider.emulator as emulator_package
from sls_provider.emulator.backend import compile_query
from sls_provider.emulator.errors import EmulatorError, ErrorCode
from sls_provider.emulator.protocol import project_from_host


@pytest.mark.parametrize(
    ("host", "project"),
    [
        ("proj.127.0.0.1:9090", "proj"),
        ("proj.sls.test:9090", "proj"),
        ("proj.sls.test", "proj"),
        ("my-proj.cn-hangzhou.log.aliyuncs.com", "my-proj"),
        ("PROJ.localhost:80", "proj"),
        ("127.0.0.1:9090", None),
        ("127.0.0.1", None),
        ("localhost", None),
        ("localhost:9090", None),
        ("[::1]:9090", None),
        ("emulator:9090", None),
        ("", None),
        (None, None),
    ],
)
def test_project_from_host(host: str | None, project: str | None) -> None:
    assert project_from_host(host) == project


def test_query_terms() -> None:
    row = {"__topic__": "a b", "k": "value", "__tag__:env": "prod"}
    assert compile_query("*") is None and compile_query("") is None
    for text, expected in [
        ('__topic__: "a b"', True),
        ("k: value", True),
        ("k: val*", True),
        ("k: other", False),
        ("k: value AND __tag__:env: prod", True),
        ("missing: x", False),
    ]:
        predicate = compile_query(text)
        assert predicate is not None and predicate(row) is expected, text
    with pytest.raises(EmulatorError):
        compile_query("k: value or k: other")


def test_error_codes_are_named_in_one_module() -> None:
    """Every code the emulator answers is an ``ErrorCode``; no module spells one as a literal."""
    codes = {name: value for name, value in vars(ErrorCode).items() if name.isupper()}
    assert len(set(codes.values())) == len(codes)
    package = Path(emulator_package.__file__).parent
    for module in sorted(package.glob("*.py")):
        if module.name != "errors.py":
            text = module.read_text(encoding="utf-8")
            assert not re.search(r'EmulatorError\(\s*\w+,\s*"', text), module.name
    assert EmulatorError.bad_parameter("x").code == ErrorCode.PARAMETER_INVALID == "ParameterInvalid"
