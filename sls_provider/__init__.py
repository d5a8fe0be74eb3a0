"""Apache Airflow provider for Alibaba Cloud Simple Log Service (PutWebTracking exports)."""

from __future__ import annotations

__version__ = "0.1.0"


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
