"""The ``sls`` connection and PutWebTracking writes, as an Airflow hook over :mod:`sls_provider.core`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

import pandas as pd
from airflow.sdk import BaseHook

from sls_provider.connection_form import hook_field_behaviour, hook_widgets
from sls_provider.core.client import RetryPolicy, WebTrackingClient
from sls_provider.core.compress import check_compress_type
from sls_provider.core.endpoint import Target, resolve_target
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
from sls_provider.core.export import Exporter
from sls_provider.core.ledger import Ledger, StateStore, seq_ranges
from sls_provider.core.management import ManagementClient
from sls_provider.core.options import (
    ExportOptions,
    ExportSummary,
    check_positive,
    is_positive_number,
    new_export_id,
)
from sls_provider.core.reasons import mask
from sls_provider.core.stop import StopSignal
from sls_provider.dead_letter import ObjectStorageSink
from sls_provider.sources.frames import check_chunksize, dataframe_chunks, frames_from_records

# The names a user of the hook needs, importable from here: the options, the summary and the errors.
__all__ = [
    "DEFAULT_CHUNKSIZE",
    "ExportOptions",
    "ExportSummary",
    "ResumableExport",
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
    "SlsSettings",
    "SlsWebTrackingHook",
]

#: Rows read and encoded at a time: as fast as larger chunks, with a lower peak memory
#: (docs/performance.md, "Figures behind the code").
DEFAULT_CHUNKSIZE = 20_000

#: Seconds to wait for each answer when neither the hook nor the connection says.
DEFAULT_TIMEOUT = 30.0
#: Body compression when neither the hook nor the connection says.
DEFAULT_COMPRESS_TYPE = "lz4"

_PORT_SUFFIX = re.compile(r":\d+$")  # "host:9090" or "[::1]:9090", not "[::1]"


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


def check_timeout(value: object, *, subject: str) -> float:
    """The one rule for the answer timeout, wherever it is given (operator, hook, connection): a
    finite number of seconds above 0. Checked before any request: urllib3 would refuse a 0 with a
    ``ValueError`` of its own, mid-export or out of ``test_connection()``.

    :param subject: what the error names first (a task id, or the connection).
    """
    if not is_positive_number(value):
        raise _bad_timeout(value, subject)
    return float(cast(float, value))  # an int or a float: is_positive_number said so


def _extra_timeout(value: object, *, subject: str) -> float:
    """``extra.timeout``: text from the connection form, or a JSON number; empty means the default."""
    if _blank(value):
        return DEFAULT_TIMEOUT
    if not isinstance(value, str):
        return check_timeout(value, subject=subject)
    try:
        number = float(value)
    except ValueError as err:
        raise SlsConfigError(f"{subject}: extra.timeout must be seconds, got {value!r}") from err
    if not is_positive_number(number):
        raise _bad_timeout(value, subject)  # the text as given, not the float it became
    return number


def _bad_timeout(value: object, subject: str) -> SlsConfigError:
    return SlsConfigError(f"{subject}: timeout must be a positive, finite number of seconds, got {value!r}")


def _blank(value: object) -> bool:
    """Not given: ``None``, or an empty form field (``""``). Anything else, ``0`` and ``False``
    included, is a value for its check to take or refuse."""
    return value is None or value == ""


def _first_given(*values: Any) -> Any:
    """The first value that is not :func:`_blank` (the last one given is the default)."""
    return next(v for v in values if not _blank(v))


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
    :param retry: how transient failures are retried (:class:`RetryPolicy`);
        overrides the connection's ``extra.retry_attempts``/``retry_deadline``/``retry_backoff``/
        ``retry_max_backoff``/``retry_first_answer``.
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
        check_positive("stall_timeout", stall_timeout)
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
        """Extra fields of the connection form for Airflow before 3.2 (later releases read the same
        definition, :mod:`sls_provider.connection_form`, from ``conn-fields`` in the provider info)."""
        try:
            return hook_widgets()
        except ImportError:  # no FAB/wtforms: the declarative form is the only one
            return {}

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Labels, placeholders and hidden fields (:mod:`sls_provider.connection_form`)."""
        return hook_field_behaviour()

    @cached_property
    def connection(self) -> Any:
        """The ``sls`` connection, read once (a secrets backend or the API server may be behind it)."""
        return self.get_connection(self.sls_conn_id)

    @cached_property
    def settings(self) -> SlsSettings:
        """The connection's settings with this hook's arguments applied; validated."""
        return self._read_settings(f"Connection {self.sls_conn_id!r}")

    def _read_settings(self, subject: str) -> SlsSettings:
        """:param subject: how errors name the connection (the UI's Test runs it under a random id)."""
        conn = self.connection
        extra = conn.extra_dejson
        project = self.project or extra.get("project")
        logstore = self.logstore or extra.get("logstore")
        missing = [name for name, value in (("project", project), ("logstore", logstore)) if not value]
        if missing:
            fields = " and ".join(name.capitalize() for name in missing) + (
                " fields" if len(missing) > 1 else " field"
            )
            keys = ", ".join(f'"{name}"' for name in missing)
            args = ", ".join(f"{name}=..." for name in missing)
            raise SlsConfigError(
                f"{subject} has no SLS {' or '.join(missing)}: fill in the connection form's {fields} "
                f"(extra {keys}), or pass {args} to the hook or operator."
            )
        if self.timeout is not None:
            timeout = check_timeout(self.timeout, subject=subject)
        else:
            timeout = _extra_timeout(extra.get("timeout"), subject=subject)
        compress_type = _first_given(self.compress_type, extra.get("compress_type"), DEFAULT_COMPRESS_TYPE)
        verify = extra.get("verify")
        return SlsSettings(
            endpoint=conn.host or "",
            project=str(project),
            logstore=str(logstore),
            compress_type=check_compress_type(compress_type),
            timeout=timeout,
            verify=True if _blank(verify) else _as_bool_or_path(verify),
            access_key_id=conn.login or None,
            access_key_secret=conn.password or None,
            security_token=extra.get("security_token") or None,
            retry=self.retry or self._retry_policy(extra, subject),
        )

    def _retry_policy(self, extra: Mapping[str, Any], subject: str) -> RetryPolicy:
        """``retry_attempts``, ``retry_deadline``, ``retry_backoff``, ``retry_max_backoff`` and
        ``retry_first_answer`` from the connection's extra, each falling back to :class:`RetryPolicy`'s
        default."""
        fields = {
            "attempts": int,
            "deadline": float,
            "backoff": float,
            "max_backoff": float,
            "first_answer": float,
        }
        given = {}
        for name, kind in fields.items():
            value = extra.get(f"retry_{name}")
            if value is None:
                continue
            try:
                given[name] = kind(value)
            except (TypeError, ValueError) as err:
                raise SlsConfigError(
                    f"{subject}: extra.retry_{name} must be a number, got {value!r}"
                ) from err
        try:
            return RetryPolicy(**given)
        except ValueError as err:
            raise SlsConfigError(f"{subject}: {err}") from err

    @cached_property
    def target(self) -> Target:
        return self._target(self.settings)

    def _target(self, settings: SlsSettings) -> Target:
        bare = resolve_target(settings.endpoint, settings.project, settings.logstore)
        # Port 0 is no port: Airflow 3.3's UI sends 0 for an empty port field when it tests. The
        # scheme's own port, filled in so the UI's Test button works, changes no URL or Host header.
        port = self.connection.port or None
        own_port = {"https": 443, "http": 80}.get(bare.scheme)
        if port is None or (port == own_port and not _PORT_SUFFIX.search(bare.netloc)):
            return bare
        return resolve_target(settings.endpoint, settings.project, settings.logstore, port=port)

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

    def management(self, settings: SlsSettings | None = None) -> ManagementClient:
        """Signed GetLogStore/UpdateLogStore calls (unsigned when the connection has no AccessKey).

        :param settings: the settings to use; default: the hook's (:attr:`settings`)."""
        settings = settings or self.settings
        return ManagementClient(
            self._target(settings),
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
        answers like SLS; what a signature would be needed for is said in the message. The
        message never holds the AccessKey or token, even if a proxy echoed them back.
        """
        ok, message = self._test_connection()
        try:
            settings = self.settings
        except SlsError:
            return ok, message  # the settings could not be read: the message is ours, with no secret
        return ok, mask(
            message, (settings.access_key_secret, settings.security_token, settings.access_key_id)
        )

    def _test_connection(self) -> tuple[bool, str]:
        try:
            # Not "connection 'HnBbTPyf'": the UI tests a copy of the connection under a random id.
            # Read here and not cached: the hook's own settings (and what was built from them) stay.
            settings = self._read_settings("The connection")
            client = self.management(settings)
        except SlsError as err:
            return False, str(err)
        target = client.target
        where = f"logstore {target.project}/{target.logstore} at {target.base_url}"
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
        self,
        chunks: Iterable[Any],
        options: ExportOptions,
        *,
        topic: str = "",
        topic_column: str | None = None,
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        export_id: str | None = None,
        owner: str | None = None,
        stop: StopSignal | None = None,
    ) -> ExportSummary:
        """Send every row of ``chunks`` (pandas or polars DataFrames, Arrow tables) with
        ``options``, once: no state is kept for a later try (:meth:`resumable_export` keeps it).

        :param topic: ``__topic__`` of every row, unless ``topic_column`` is given.
        :param topic_column: a column holding each row's topic (null -> ``""``); not sent itself.
        :param source: ``__source__``; ``None`` leaves it out: the service records the sender's IP.
        :param tags: ``__tags__`` of every request.
        :param export_id: the ``sls_export`` tag; ``None``: a new id.
        :param owner: names what runs the export (a task instance) in a new id's first 8 characters.
        :param stop: a stop signal (:class:`~sls_provider.core.stop.StopSignal`): set it (from another
            thread or a signal handler) and the export ends within seconds, raising
            :class:`SlsStoppedError` (the operator's ``on_kill`` does this).
        """
        export_id = export_id if export_id is not None else new_export_id(owner)
        once = ResumableExport(self, None, export_id)  # no ledger: nothing kept for a later try
        return once.run(
            chunks, options, topic=topic, topic_column=topic_column, source=source, tags=tags, stop=stop
        )

    def resumable_export(
        self, store: StateStore | None, *, key: str, fingerprint: str, owner: str
    ) -> ResumableExport:
        """One export of a task instance, resumed across its tries through ``store`` (Airflow's
        ``task_state_store``; ``None``: no resume, every try sends every row). The export id is
        decided here, once: an unfinished export's is kept (and what its earlier tries delivered is
        skipped), a new export (a first try, or a task cleared after success) gets a new id naming
        ``owner``, written to ``store`` at once so that a retry after a crash keeps it.

        Use it as a context manager; :meth:`ResumableExport.run` sends the rows. Leaving the block
        normally ends the export (its state is removed: a cleared task is a new export); leaving it
        by an exception keeps the state for the next try::

            with hook.resumable_export(store, key="sls_export_ledger", fingerprint=f, owner=ti) as export:
                push_link(export.export_id)  # known before any row is sent
                summary = export.run(chunks, options, topic="orders")
                ...  # steps that must succeed before the export counts as done

        :param key: the key of the state in ``store`` (its other keys start with it).
        :param fingerprint: what must not change between tries (see :class:`Ledger`).
        :param owner: names the task instance in a new id's first 8 characters.
        """
        if store is None:
            return ResumableExport(self, None, new_export_id(owner))
        state = store.get(key)
        state = state if isinstance(state, dict) else None
        export_id = str(state["export_id"]) if state and state.get("export_id") else new_export_id(owner)
        ledger = Ledger(export_id, fingerprint, store=store, key=key, state=state or {})
        ledger.flush()
        if len(ledger):
            self.log.info(
                "Resuming export %s: %d request(s) were acknowledged by an earlier try and are "
                "not sent again",
                export_id,
                len(ledger),
            )
        if ledger.crashed_in_flight:
            self.log.warning(
                "%d request(s) were sent by an earlier try that stopped before their answer came "
                "(sls_seq %s of export %s): the service may have stored them, and they are sent "
                "again, so they are possible duplicates.",
                len(ledger.crashed_in_flight),
                seq_ranges(ledger.crashed_in_flight),
                export_id,
            )
        return ResumableExport(self, ledger, export_id)

    def put_logs(
        self,
        logs: Iterable[Mapping[str, Any]],
        *,
        topic: str = "",
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        chunksize: int = DEFAULT_CHUNKSIZE,
        topic_column: str | None = None,
        export_id: str | None = None,
        **options: Any,
    ) -> ExportSummary:
        """Send ``logs`` (mappings of key -> value; values are turned into strings, ``None`` leaves
        the key out) under one topic.

        :param logs: any iterable of mappings, consumed in chunks of ``chunksize``.
        :param topic: ``__topic__`` of every log.
        :param source: ``__source__``; ``None`` leaves it out: the service records the sender's IP.
        :param tags: ``__tags__`` of every request.
        :param topic_column: a key whose value is each log's topic (not sent itself).
        :param export_id: the ``sls_export`` tag of every request; ``None``: a new random id.
        :param options: :class:`~sls_provider.core.options.ExportOptions` fields (``key_policy``,
            ``on_oversize``, ``max_workers``, ``max_logs``, ``max_bytes``...).
        """
        if isinstance(logs, (str, bytes, Mapping, pd.DataFrame)):
            raise SlsInputError(
                f"put_logs takes an iterable of mappings, got a {type(logs).__name__}"
                + ("; use put_dataframe for a DataFrame" if isinstance(logs, pd.DataFrame) else "")
            )
        check_chunksize(chunksize)
        return self.export(
            frames_from_records(logs, chunksize),
            ExportOptions(**options),
            topic=topic,
            topic_column=topic_column,
            source=source,
            tags=tags,
            export_id=export_id,
        )

    def put_dataframe(
        self,
        df: pd.DataFrame,
        *,
        topic: str = "",
        topic_column: str | None = None,
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        chunksize: int = DEFAULT_CHUNKSIZE,
        export_id: str | None = None,
        **options: Any,
    ) -> ExportSummary:
        """Send every row of ``df`` as one log (columns -> keys).

        :param df: a pandas or polars DataFrame, or a pyarrow Table.
        :param topic: ``__topic__`` of every row, unless ``topic_column`` is given.
        :param topic_column: a column holding each row's topic (null -> ``""``); not sent itself.
        :param source: ``__source__``; ``None`` leaves it out: the service records the sender's IP.
        :param tags: ``__tags__`` of every request.
        :param export_id: the ``sls_export`` tag of every request; ``None``: a new random id.
        :param options: :class:`~sls_provider.core.options.ExportOptions` fields.
        """
        return self.export(
            dataframe_chunks(df, chunksize),
            ExportOptions(**options),
            topic=topic,
            topic_column=topic_column,
            source=source,
            tags=tags,
            export_id=export_id,
        )


class ResumableExport:
    """An export that a task's retries resume: made by :meth:`SlsWebTrackingHook.resumable_export`,
    which owns its state (the resume :class:`Ledger` in the task state store) from start to end.

    :ivar export_id: the ``sls_export`` tag of every request of the export, in every try.
    """

    def __init__(self, hook: SlsWebTrackingHook, ledger: Ledger | None, export_id: str) -> None:
        self._hook = hook
        self._ledger = ledger
        self.export_id = export_id

    def __repr__(self) -> str:
        resumed = len(self._ledger) if self._ledger is not None else None
        return f"ResumableExport(export_id={self.export_id!r}, acknowledged_before={resumed!r})"

    def run(self, chunks: Iterable[Any], options: ExportOptions, **rows: Any) -> ExportSummary:
        """Send every row of ``chunks`` that no earlier try delivered; what is acknowledged is
        recorded as it comes.

        :param rows: ``topic``, ``topic_column``, ``source``, ``tags`` and ``stop``, as
            :meth:`SlsWebTrackingHook.export` takes them (the export id is this export's own).
        """
        hook = self._hook
        hook.log.info(
            "Exporting to SLS project %r, logstore %r at %s (%s)",
            hook.target.project,
            hook.target.logstore,
            hook.target.base_url,
            hook.settings.compress_type,
        )
        exporter = Exporter(
            hook.client,
            options,
            self._ledger,
            export_id=self.export_id,
            stall_timeout=hook.stall_timeout,
            dead_letters=ObjectStorageSink(options.dead_letter, self.export_id)
            if options.dead_letter
            else None,
            **rows,
        )
        return exporter.run(chunks)

    def __enter__(self) -> ResumableExport:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        # Done: the state goes, so a cleared and re-run task is a new export, not a resume of this
        # one. After a failure it stays for the next try (the ledger was flushed by the export).
        if kind is None and self._ledger is not None:
            self._ledger.discard()
