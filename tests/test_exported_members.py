"""The public API: each public module's ``__all__`` names what exists, the names a user needs are
importable from where they use them, and every import in the docs uses a public path (the idea of
httpx's ``tests/test_exported_members.py``)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sls_provider
from sls_provider.core import client, errors, export

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = [
    "sls_provider",
    "sls_provider.core.client",
    "sls_provider.core.errors",
    "sls_provider.core.export",
    "sls_provider.core.options",
    "sls_provider.emulator",
    "sls_provider.hooks.web_tracking",
    "sls_provider.incremental",
    "sls_provider.lineage",
    "sls_provider.operators.web_tracking",
    "sls_provider.partitions",
    "sls_provider.testing",
]
ERRORS = [
    "SlsConfigError",
    "SlsEmptyExportError",
    "SlsError",
    "SlsInputError",
    "SlsQuotaError",
    "SlsRequestError",
    "SlsRetryableError",
    "SlsServiceError",
    "SlsSourceError",
    "SlsStoppedError",
]
#: What a user of the hook or the operator needs, and where it must be importable from.
USER_NAMES = {
    "RetryPolicy": client.RetryPolicy,
    "ExportSummary": export.ExportSummary,
    **{name: getattr(errors, name) for name in ERRORS},
}


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_name_in_all_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    missing = [member for member in exported if not hasattr(module, member)]
    assert missing == [], f"{name}.__all__ names what the module does not have"


@pytest.mark.parametrize("where", ["sls_provider", "sls_provider.hooks.web_tracking"])
def test_user_names_are_importable_from_the_public_paths(where: str) -> None:
    module = importlib.import_module(where)
    for name, obj in USER_NAMES.items():
        assert name in module.__all__, f"{where}.__all__ lacks {name}"
        assert getattr(module, name) is obj


def test_every_error_class_is_exported() -> None:
    classes = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.SlsError)}
    assert classes == set(ERRORS) == set(errors.__all__)


#: What only the operator takes: importable from the top and from the operator's module.
OPERATOR_NAMES = {"Incremental": "sls_provider.incremental"}


def test_operator_names_are_importable_from_the_top_and_the_operator() -> None:
    operator = importlib.import_module("sls_provider.operators.web_tracking")
    for name, home in OPERATOR_NAMES.items():
        obj = getattr(importlib.import_module(home), name)
        assert getattr(sls_provider, name) is obj and getattr(operator, name) is obj
        assert name in operator.__all__


def test_top_level_lazy_names_are_exactly_the_exported_ones() -> None:
    assert set(sls_provider.__all__) == set(sls_provider._LAZY) | {"__version__", "get_provider_info"}
    assert set(sls_provider._LAZY) == set(USER_NAMES) | set(OPERATOR_NAMES)
    assert set(USER_NAMES) <= set(dir(sls_provider))
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        sls_provider.Nothing  # noqa: B018 - the attribute access is the test


def test_provider_discovery_imports_nothing_but_the_package() -> None:
    """Airflow calls get_provider_info() in every process that lists providers: it must stay cheap."""
    code = (
        "import sys, sls_provider; sls_provider.get_provider_info(); "
        "print(sorted(m for m in sys.modules if m.startswith(('sls_provider', 'airflow', 'pandas'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    # connection_form holds the form's definition and imports nothing but the standard library.
    assert out.stdout.strip() == "['sls_provider', 'sls_provider.connection_form']"


# -- the docs import only public names --------------------------------------------------------------

_PYCON = re.compile(r"^\s*(?:>>>|\.\.\.) ?", re.MULTILINE)
# A regular expression, not ast: some python blocks are signatures, not code.
_IMPORT = re.compile(r"^\s*from (sls_provider[\w.]*) import (\([^)]*\)|[^\n#]+)", re.MULTILINE)
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(python|pycon)\b[^\n]*\n(.*?)^\s*\1", re.MULTILINE | re.DOTALL)


def doc_imports() -> list[tuple[str, str, str]]:
    """``(page, module, name)`` of every ``from sls_provider... import name`` in a python or pycon
    block of ``docs/*.md`` or the README."""
    found = []
    for page in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        for match in _FENCE.finditer(page.read_text()):
            code = match.group(3)
            if match.group(2) == "pycon":
                code = "\n".join(_PYCON.sub("", line) for line in code.splitlines() if _PYCON.match(line))
            for module, names in _IMPORT.findall(code):
                for alias in names.strip("()").replace("\n", " ").split(","):
                    if alias.strip():
                        found.append((page.name, module, alias.split(" as ")[0].strip()))
    return found


def test_the_docs_have_imports_to_check() -> None:
    imports = doc_imports()
    assert ("errors.md", "sls_provider.hooks.web_tracking", "RetryPolicy") in imports
    assert len(imports) > 20


@pytest.mark.parametrize(("page", "module", "name"), doc_imports())
def test_docs_import_only_names_their_module_exports(page: str, module: str, name: str) -> None:
    exported = getattr(importlib.import_module(module), "__all__", None)
    assert exported is not None, f"{page} imports from {module}, which has no __all__ (not a public module)"
    assert name in exported, f"{page} imports {name} from {module}, whose __all__ does not list it"
