"""Apache Airflow provider for Alibaba Cloud Simple Log Service (PutWebTracking exports)."""

from __future__ import annotations

from sls_provider.connection_form import conn_fields, ui_field_behaviour

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
        "operators": [
            {
                "integration-name": "Alibaba Cloud SLS",
                "python-modules": ["sls_provider.operators.web_tracking"],
            }
        ],
    }
