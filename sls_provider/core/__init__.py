"""The protocol core: encode rows, pack requests, compress, send. It imports nothing from Airflow.

Data flows one way: a source of row chunks -> :mod:`.encode` (JSON lines) -> :mod:`.pack`
(request bodies within the limits) -> :mod:`.compress` -> :mod:`.client` (HTTP with retries),
orchestrated by :mod:`.export`.
"""
