"""The ``sls`` connection and PutWebTracking writes, as an Airflow hook over :mod:`sls_provider.core`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import pandas as pd
from airflow.sdk import BaseHook

from sls_provider.core.client import RetryPolicy, WebTrackingClient
from sls_provider.core.compress import check_compress_type
from sls_provider.core.endpoint import Target, resolve_target
from sls_provider.core.errors import SlsConfigError, SlsError, SlsInputError, SlsServiceError
from sls_provider.core.export import Exporter, ExportOptions, ExportSummary, frames_from_records
from sls_provider.core.ledger import Ledger
from sls_provider.core.management import ManagementClient

#: Rows read and encoded at a time. 20,000 is as fast as 50,000 (the encoder is one polars query a
#: chunk) and a SQL export's peak memory is about 200 MB lower (benchmarks/bench_memory.py).
DEFAULT_CHUNKSIZE = 20_000


@dataclass(frozen=True)
class SlsSettings:
    """Everything the hook reads from its connection, after hook arguments were applied."""

    endpoint: str
    project: str
    logstore: str
    compress_type: str
    timeout: float
    verify: bool | str
    access_key_id: str | None
    # The secret and the STS token are kept out of reprs, logs and XCom on purpose.
    access_key_secret: str | None
    security_token: str | None
    retry: RetryPolicy

    def __repr__(self) -> str:
        return (
            f"SlsSettings(endpoint={self.endpoint!r}, project={self.project!r}, logstore={self.logstore!r}, "
            f"compress_type={self.compress_type!r}, timeout={self.timeout!r}, verify={self.verify!r}, "
            f"access_key_id={'***' if self.access_key_id else None})"
        )


def _as_bool_or_path(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    return text  # a CA bundle path


class SlsWebTrackingHook(BaseHook):
    """Writes logs to one Alibaba Cloud SLS logstore through PutWebTracking.

    Connection (``conn_type`` ``sls``): ``host`` is the endpoint (``cn-hangzhou.log.aliyuncs.com``,
    https unless a scheme is given, or ``http://127.0.0.1:9090``); ``login``/``password`` an optional
    AccessKey (web tracking itself is anonymous); ``extra`` may hold ``project``, ``logstore``,
    ``compress_type`` (``lz4``, ``deflate``, ``none``), ``timeout`` (seconds), ``verify`` (bool or CA
    bundle path) and ``security_token``.

    :param sls_conn_id: the ``sls`` connection.
    :param project: the SLS project; overrides the connection's ``extra.project``.
    :param logstore: the logstore; overrides the connection's ``extra.logstore``.
    :param compress_type: overrides the connection's ``extra.compress_type`` (default ``lz4``).
    :param timeout: overrides the connection's ``extra.timeout`` (default 30 s).
    :param retry: how transient failures are retried (:class:`~sls_provider.core.client.RetryPolicy`);
        overrides the connection's ``extra.retry_attempts``/``retry_deadline``/``retry_backoff``/
        ``retry_max_backoff``.
    :param stall_timeout: seconds an export may go without a single acknowledged request while SLS
        refuses its writes for quota, before it fails (default 300). Refusals for quota are retried
        for as long as the export makes progress; an export's own ``stall_timeout`` option wins.
    """

    conn_name_attr = "sls_conn_id"
    default_conn_name = "sls_default"
    conn_type = "sls"
    hook_name = "Alibaba Cloud SLS (web tracking)"

    def __init__(
        self,
        sls_conn_id: str = default_conn_name,
        project: str | None = None,
        logstore: str | None = None,
        *,
        compress_type: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        stall_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if stall_timeout is not None and not (
            isinstance(stall_timeout, (int, float)) and 0 < stall_timeout < float("inf")
        ):
            raise SlsConfigError(f"stall_timeout must be a positive number of seconds, got {stall_timeout!r}")
        self.stall_timeout = stall_timeout
        self.sls_conn_id = sls_conn_id
        self.project = project
        self.logstore = logstore
        self.compress_type = compress_type
        self.timeout = timeout
        self.retry = retry

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(sls_conn_id={self.sls_conn_id!r}, project={self.project!r}, "
            f"logstore={self.logstore!r})"
        )

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (the classic, Flask-based UI; Airflow 3's UI reads
        the same fields from ``conn-fields`` in :func:`sls_provider.get_provider_info`)."""
        try:
            from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import PasswordField, SelectField, StringField
        except ImportError:  # Airflow 3 without the FAB provider: the declarative form is used
            return {}
        return {
            "project": StringField(lazy_gettext("Project"), widget=BS3TextFieldWidget()),
            "logstore": StringField(lazy_gettext("Logstore"), widget=BS3TextFieldWidget()),
            "compress_type": SelectField(
                lazy_gettext("Compression"), choices=["lz4", "deflate", "none"], default="lz4"
            ),
            "security_token": PasswordField(
                lazy_gettext("STS security token"), widget=BS3PasswordFieldWidget()
            ),
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Endpoint", "login": "AccessKey ID", "password": "AccessKey Secret"},
            "placeholders": {
                "host": "cn-hangzhou.log.aliyuncs.com or http://127.0.0.1:9090",
                "login": "optional: only management calls are signed",
                "extra": '{"project": "my-project", "logstore": "my-logstore", "compress_type": "lz4"}',
            },
        }

    @cached_property
    def connection(self) -> Any:
        """The ``sls`` connection, read once (a secrets backend or the API server may be behind it)."""
        return self.get_connection(self.sls_conn_id)

    @cached_property
    def settings(self) -> SlsSettings:
        """The connection's settings with this hook's arguments applied; validated."""
        conn = self.connection
        extra = conn.extra_dejson
        project = self.project or extra.get("project")
        logstore = self.logstore or extra.get("logstore")
        missing = [name for name, value in (("project", project), ("logstore", logstore)) if not value]
        if missing:
            raise SlsConfigError(
                f"No SLS {' or '.join(missing)} for connection {self.sls_conn_id!r}: pass "
                f"{', '.join(missing)}=... or set it in the connection's extra."
            )
        try:
            timeout = float(self.timeout if self.timeout is not None else extra.get("timeout", 30))
        except (TypeError, ValueError) as err:
            raise SlsConfigError(f"Connection {self.sls_conn_id!r}: extra.timeout must be seconds") from err
        return SlsSettings(
            endpoint=conn.host or "",
            project=str(project),
            logstore=str(logstore),
            compress_type=check_compress_type(self.compress_type or extra.get("compress_type") or "lz4"),
            timeout=timeout,
            verify=_as_bool_or_path(extra.get("verify", True)),
            access_key_id=conn.login or None,
            access_key_secret=conn.password or None,
            security_token=extra.get("security_token") or None,
            retry=self.retry or self._retry_policy(extra),
        )

    def _retry_policy(self, extra: Mapping[str, Any]) -> RetryPolicy:
        """``retry_attempts``, ``retry_deadline``, ``retry_backoff`` and ``retry_max_backoff`` from
        the connection's extra, each falling back to :class:`RetryPolicy`'s default."""
        fields = {"attempts": int, "deadline": float, "backoff": float, "max_backoff": float}
        given = {}
        for name, kind in fields.items():
            value = extra.get(f"retry_{name}")
            if value is None:
                continue
            try:
                given[name] = kind(value)
            except (TypeError, ValueError) as err:
                raise SlsConfigError(
                    f"Connection {self.sls_conn_id!r}: extra.retry_{name} must be a number, got {value!r}"
                ) from err
        try:
            return RetryPolicy(**given)
        except ValueError as err:
            raise SlsConfigError(f"Connection {self.sls_conn_id!r}: {err}") from err

    @cached_property
    def target(self) -> Target:
        settings = self.settings
        return resolve_target(
            settings.endpoint, settings.project, settings.logstore, port=self.connection.port
        )

    def get_conn(self) -> WebTrackingClient:
        """The pooled, thread-safe client for this logstore."""
        return self.client

    @cached_property
    def client(self) -> WebTrackingClient:
        settings = self.settings
        return WebTrackingClient(
            self.target,
            compress_type=settings.compress_type,
            timeout=settings.timeout,
            verify=settings.verify,
            retry=settings.retry,
        )

    def management(self) -> ManagementClient:
        """Signed GetLogStore/UpdateLogStore calls (unsigned when the connection has no AccessKey)."""
        settings = self.settings
        return ManagementClient(
            self.target,
            settings.access_key_id,
            settings.access_key_secret,
            settings.security_token,
            timeout=min(settings.timeout, 10.0),
            verify=settings.verify,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection without writing anything to the logstore.

        With an AccessKey: a signed GetLogStore tells whether the logstore exists and has web
        tracking on. Without one, the same call unsigned shows whether the endpoint is reachable and
        answers like SLS; what a signature would be needed for is said in the message.
        """
        try:
            client = self.management()
        except SlsError as err:
            return False, str(err)
        where = f"logstore {self.target.project}/{self.target.logstore} at {self.target.base_url}"
        try:
            spec = client.get_logstore()
        except SlsServiceError as err:
            if not client.signed and err.status in (401, 403):
                return True, (
                    f"Reached SLS for {where}. The connection has no AccessKey, so whether the "
                    "logstore exists and has web tracking on could not be checked: add an AccessKey "
                    "(login/password) to check them. Nothing was written."
                )
            return False, str(err)
        except SlsError as err:
            return False, str(err)
        tracking = spec.get("enable_tracking")
        if tracking is False:
            return False, (
                f"The {where} exists, but web tracking is off, so exports would be refused (403). "
                "Switch it on in the SLS console or with SlsWebTrackingHook(...).enable_web_tracking()."
            )
        if tracking is None:
            return True, f"The {where} exists; its answer did not say whether web tracking is on."
        return True, f"The {where} exists and web tracking is on. Nothing was written."

    def enable_web_tracking(self) -> None:
        """Switch web tracking on for the logstore (a signed UpdateLogStore; needs an AccessKey
        allowed to update the logstore)."""
        client = self.management()
        if not client.signed:
            raise SlsConfigError(
                f"Connection {self.sls_conn_id!r} has no AccessKey (login/password): switching web "
                "tracking on is a signed call."
            )
        client.set_web_tracking(True)
        self.log.info("Web tracking is on for %s/%s", self.target.project, self.target.logstore)

    def export(
        self, frames: Iterable[pd.DataFrame], options: ExportOptions, ledger: Ledger | None = None
    ) -> ExportSummary:
        """Send every row of ``frames`` (DataFrame chunks) with ``options``; the operator's entry point."""
        self.log.info(
            "Exporting to SLS project %r, logstore %r at %s (%s)",
            self.target.project,
            self.target.logstore,
            self.target.base_url,
            self.settings.compress_type,
        )
        if options.stall_timeout is None and self.stall_timeout is not None:
            options = replace(options, stall_timeout=self.stall_timeout)
        return Exporter(self.client, options, ledger).run(frames)

    def put_logs(
        self,
        logs: Iterable[Mapping[str, Any]],
        topic: str = "",
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        chunksize: int = DEFAULT_CHUNKSIZE,
        **options: Any,
    ) -> ExportSummary:
        """Send ``logs`` (mappings of key -> value; values are turned into strings, ``None`` leaves
        the key out) under one topic.

        :param logs: any iterable of mappings, consumed in chunks of ``chunksize``.
        :param topic: ``__topic__`` of every log.
        :param source: ``__source__``; ``None`` leaves it out: the service records the sender's IP.
        :param tags: ``__tags__`` of every request.
        :param options: further :class:`~sls_provider.core.export.ExportOptions` fields
            (``key_policy``, ``on_oversize``, ``max_workers``, ``max_logs``, ``max_bytes``, ``export_id``).
        """
        if isinstance(logs, (str, bytes, Mapping, pd.DataFrame)):
            raise SlsInputError(
                f"put_logs takes an iterable of mappings, got a {type(logs).__name__}"
                + ("; use put_dataframe for a DataFrame" if isinstance(logs, pd.DataFrame) else "")
            )
        check_chunksize(chunksize)
        export = ExportOptions(topic=topic, source=source, tags=tags, **options)
        return self.export(frames_from_records(logs, chunksize), export)

    def put_dataframe(
        self,
        df: pd.DataFrame,
        topic: str = "",
        topic_column: str | None = None,
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        chunksize: int = DEFAULT_CHUNKSIZE,
        **options: Any,
    ) -> ExportSummary:
        """Send every row of ``df`` as one log (columns -> keys).

        :param df: a pandas DataFrame (a polars DataFrame is converted).
        :param topic: ``__topic__`` of every row, unless ``topic_column`` is given.
        :param topic_column: a column holding each row's topic (null -> ``""``); not sent itself.
        :param source: ``__source__``; ``None`` leaves it out: the service records the sender's IP.
        :param tags: ``__tags__`` of every request.
        :param options: further :class:`~sls_provider.core.export.ExportOptions` fields.
        """
        export = ExportOptions(topic=topic, topic_column=topic_column, source=source, tags=tags, **options)
        return self.export(dataframe_chunks(df, chunksize), export)


def check_chunksize(chunksize: int) -> None:
    if not isinstance(chunksize, int) or isinstance(chunksize, bool) or chunksize < 1:
        raise SlsInputError(f"chunksize must be a positive integer, got {chunksize!r}")


def as_pandas(df: Any) -> pd.DataFrame:
    """``df`` as a pandas DataFrame; polars frames are converted, anything else is refused."""
    if isinstance(df, pd.DataFrame):
        return df
    if type(df).__module__.startswith("polars"):
        return df.to_pandas()
    raise SlsInputError(f"Expected a pandas (or polars) DataFrame, got {type(df).__name__}")


def dataframe_chunks(df: Any, chunksize: int) -> Iterator[pd.DataFrame]:
    """Slices of ``chunksize`` rows (views, not copies)."""
    check_chunksize(chunksize)
    frame = as_pandas(df)
    for start in range(0, len(frame), chunksize):
        yield frame.iloc[start : start + chunksize]
