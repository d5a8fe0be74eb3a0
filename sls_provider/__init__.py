"""Apache Airflow provider for Alibaba Cloud Simple Log Service (PutWebTracking exports)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and IDEs
    from sls_provider.core.client import RetryPolicy
    from sls_provider.core.errors import (
        SlsConfigError,
        SlsError,
        SlsInputError,
        SlsRequestError,
        SlsRetryableError,
        SlsServiceError,
    )
    from sls_provider.core.export import ExportSummary

__version__ = "0.1.0"

# What a user needs, importable from the top (``from sls_provider import RetryPolicy``). Loaded on
# first use, so Airflow's provider discovery (get_provider_info) imports nothing else.
_LAZY = {
    "RetryPolicy": "sls_provider.core.client",
    "ExportSummary": "sls_provider.core.export",
    "SlsError": "sls_provider.core.errors",
    "SlsConfigError": "sls_provider.core.errors",
    "SlsInputError": "sls_provider.core.errors",
    "SlsServiceError": "sls_provider.core.errors",
    "SlsRetryableError": "sls_provider.core.errors",
    "SlsRequestError": "sls_provider.core.errors",
}

__all__ = [  # a literal list, so linters and type checkers read it; tests keep it equal to _LAZY's keys
    "ExportSummary",
    "RetryPolicy",
    "SlsConfigError",
    "SlsError",
    "SlsInputError",
    "SlsRequestError",
    "SlsRetryableError",
    "SlsServiceError",
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
                # The declarative form Airflow 3's UI reads; stored in the connection's extra.
                "conn-fields": {
                    "project": {"label": "Project", "schema": {"type": ["string", "null"]}},
                    "logstore": {"label": "Logstore", "schema": {"type": ["string", "null"]}},
                    "compress_type": {
                        "label": "Compression",
                        "schema": {
                            "type": ["string", "null"],
                            "default": "lz4",
                            "enum": ["lz4", "deflate", "none"],
                        },
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                    "verify": {
                        "label": "Verify TLS (true, false or a CA bundle path)",
                        "schema": {"type": ["string", "null"], "default": "true"},
                    },
                    "security_token": {
                        "label": "STS security token",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "Only with a temporary AccessKey from STS.",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Endpoint",
                        "login": "AccessKey ID",
                        "password": "AccessKey Secret",
                    },
                    "placeholders": {
                        "host": "cn-hangzhou.log.aliyuncs.com (https) or http://127.0.0.1:9090",
                        "login": "optional: only the Test button and enable_web_tracking sign calls",
                        "project": "my-project",
                        "logstore": "my-logstore",
                    },
                },
            }
        ],
        "hooks": [
            {
                "integration-name": "Alibaba Cloud SLS",
                "python-modules": ["sls_provider.hooks.web_tracking"],
            }
        ],
        "operators": [
            {
                "integration-name": "Alibaba Cloud SLS",
                "python-modules": ["sls_provider.operators.web_tracking"],
            }
        ],
    }
