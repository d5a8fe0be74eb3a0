"""OpenLineage facets for an export: the SQL source's tables in, the logstore out.

Everything here is optional: without the OpenLineage provider installed the operator reports no
lineage and exports as usual.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["export_lineage", "logstore_asset"]


def logstore_asset(*, endpoint: str, project: str, logstore: str) -> Any:
    """An Airflow ``Asset`` for a logstore, ``sls://{project}.{endpoint}/{logstore}``: put it in an
    export's ``outlets`` and schedule downstream DAGs on it. Named like the OpenLineage dataset."""
    from airflow.sdk import Asset

    from sls_provider.core.endpoint import resolve_target

    target = resolve_target(endpoint, project, logstore)
    return Asset(uri=f"{target.namespace}/{logstore}", name=f"sls:{project}/{logstore}")


def export_lineage(*, sql: str | None, sql_hook: Any | None, namespace: str, logstore: str) -> Any:
    """The ``OperatorLineage`` of one export, or ``None`` when OpenLineage is not installed.

    :param sql: the rendered query, when the source is SQL.
    :param sql_hook: the common.sql hook that ran it.
    :param namespace: the logstore's namespace, ``sls://{project}.{endpoint}``.
    :param logstore: the logstore name.
    """
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset, SQLJobFacet
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    output = Dataset(namespace=namespace, name=logstore)
    if not sql or sql_hook is None:
        return OperatorLineage(outputs=[output])
    inputs = _sql_inputs(sql, sql_hook)
    return OperatorLineage(inputs=inputs, outputs=[output], job_facets={"sql": SQLJobFacet(query=sql)})


def _sql_inputs(sql: str, hook: Any) -> list[Any]:
    """The tables ``sql`` reads, named the way common.sql operators name them: through the hook's
    OpenLineage database info when it has some (PostgreSQL, MySQL...), else from the parsed SQL with
    the connection's type and host as namespace."""
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.sqlparser import SQLParser

    connection = hook.get_connection(getattr(hook, hook.conn_name_attr))
    try:
        database_info = hook.get_openlineage_database_info(connection)
        parser = SQLParser(
            dialect=hook.get_openlineage_database_dialect(connection),
            default_schema=hook.get_openlineage_default_schema(),
        )
        lineage = parser.generate_openlineage_metadata_from_sql(
            sql=sql, hook=hook, database_info=database_info, use_connection=False
        )
        if lineage.inputs:
            return list(lineage.inputs)
    except Exception as err:  # noqa: BLE001 - lineage must never fail an export
        log.debug("OpenLineage database info unavailable for %s: %s", type(hook).__name__, err)
    try:
        meta = SQLParser(dialect=connection.conn_type or "generic").parse(sql)
    except Exception as err:  # noqa: BLE001 - as above
        log.debug("OpenLineage could not parse the query: %s", err)
        return []
    if meta is None:
        return []
    namespace = f"{connection.conn_type}://{connection.host or ''}"
    return [Dataset(namespace=namespace, name=table.qualified_name) for table in meta.in_tables]
