"""Apache Airflow provider for Alibaba Cloud Simple Log Service (PutWebTracking exports)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and IDEs
    from sls_provider.core.client import RetryPolicy
    from sls_provider.core.errors import (
        SlsConfigError,
        SlsEmptyExportError,
        SlsError,
        SlsInputError,
        SlsQuotaError,
        SlsRequestError,
        SlsRetryableError,
        SlsServiceError,
        SlsSourceError,
        SlsStoppedError,
    )
    from sls_provider.core.export import ExportSummary
    from sls_provider.incremental import Incremental

from sls_provider.connection_form import conn_fields, ui_field_behaviour

__version__ = "0.1.0"

# What a user needs, importable from the top (``from sls_provider import RetryPolicy``). Loaded on
# first use, so Airflow's provider discovery (get_provider_info) imports nothing else.
_LAZY = {
    "RetryPolicy": "sls_provider.core.client",
    "ExportSummary": "sls_provider.core.export",
    "Incremental": "sls_provider.incremental",
    "SlsError": "sls_provider.core.errors",
    "SlsConfigError": "sls_provider.core.errors",
    "SlsEmptyExportError": "sls_provider.core.errors",
    "SlsInputError": "sls_provider.core.errors",
    "SlsServiceError": "sls_provider.core.errors",
    "SlsRetryableError": "sls_provider.core.errors",
    "SlsRequestError": "sls_provider.core.errors",
    "SlsQuotaError": "sls_provider.core.errors",
    "SlsSourceError": "sls_provider.core.errors",
    "SlsStoppedError": "sls_provider.core.errors",
}

__all__ = [  # a literal list, so linters and type checkers read it; tests keep it equal to _LAZY's keys
    "ExportSummary",
    "Incremental",
    "RetryPolicy",
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
    "__version__",
    "get_provider_info",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def get_provider_info() -> dict:
    """Describe this provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-sls",
        "name": "Alibaba Cloud Simple Log Service (SLS)",
        "description": "Export DataFrames and SQL query results to SLS logstores through PutWebTracking.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "sls",
                "hook-class-name": "sls_provider.hooks.web_tracking.SlsWebTrackingHook",
                "hook-name": "Alibaba Cloud SLS (web tracking)",
                # The declarative form Airflow 3.2+ reads (the hook builds its widgets from the same
                # definition for earlier releases).
                "conn-fields": conn_fields(),
                "ui-field-behaviour": ui_field_behaviour(),
            }
        ],
        "hooks": [
            {
                "integration-name": "Alibaba Cloud SLS",
                "python-modules": ["sls_provider.hooks.web_tracking"],
            }
        ],
        # The operator's "SLS logs" link (sls_provider/links.py), listed as providers list theirs.
        "extra-links": ["sls_provider.links.SlsLogsLink"],
        "operators": [
            {
                "integration-name": "Alibaba Cloud SLS",
                "python-modules": ["sls_provider.operators.web_tracking"],
            }
        ],
    }
