"""An empty package named after the distribution, for Airflow's example-DAG discovery.

With ``[core] load_examples`` on (Airflow's default), Airflow 3.3 builds its DAG bundles by importing,
for every installed provider, a module named after the distribution (``airflow-provider-sls`` ->
``airflow_provider_sls``) and looking for an ``example_dags`` folder in it; when the import fails it
logs an ERROR with a traceback in every task log and DAG processor pass (apache/airflow#66305). The
provider's code lives in :mod:`sls_provider`; this package only lets that import succeed. It has no
``example_dags`` folder on purpose: the examples in the repository's ``dags/`` need a warehouse and an
SLS connection, and would show up as broken DAGs in every Airflow that installs the provider.
"""
