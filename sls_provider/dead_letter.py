"""The dead-letter destination: an export's rows not sent, as NDJSON files wherever Airflow's
``ObjectStoragePath`` reaches (``file:///...``, ``s3://...``, ``gs://...``; the scheme's fsspec
package and an Airflow connection for credentials, as ObjectStoragePath takes them).

What goes in a record and how files are named is :mod:`sls_provider.core.deadletter`'s; this module
only writes. Files go in a folder named by the export id under the URL given.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ObjectStorageSink"]


class ObjectStorageSink:
    """Writes dead-letter files under ``{url}/{export_id}/``.

    :param url: the ``dead_letter`` option.
    :param export_id: the export's id: its folder.
    """

    def __init__(self, url: str, export_id: str) -> None:
        from airflow.sdk import ObjectStoragePath

        self.root = ObjectStoragePath(url) / export_id
        #: shown in the summary
        self.location = str(self.root)

    def write(self, name: str, lines: Sequence[bytes]) -> None:
        """Replace the file ``name`` with ``lines`` (one write: a retry rewrites, never appends)."""
        # Object stores have no folders; a local file system needs this one.
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / name).open("wb") as out:
            out.write(b"".join(line + b"\n" for line in lines))
