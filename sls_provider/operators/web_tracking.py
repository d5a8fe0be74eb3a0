"""Export a DataFrame or the results of a SQL query to an SLS logstore."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator

try:  # the Task SDK's own (Airflow 3.3)
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.1: its task runner catches airflow.exceptions' (Task SDK 1.1.2 checked)
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef,attr-defined]

from sls_provider.core.compress import check_compress_type
from sls_provider.core.pack import MAX_BYTES, MAX_LOGS
from sls_provider.core.reasons import one_line
from sls_provider.core.stop import StopSignal
from sls_provider.hooks.web_tracking import (
    DEFAULT_CHUNKSIZE,
    ExportOptions,
    ExportSummary,
    RetryPolicy,
    SlsConfigError,
    SlsEmptyExportError,
    SlsError,
    SlsInputError,
    SlsRequestError,
    SlsSourceError,
    SlsWebTrackingHook,
    check_timeout,
)
from sls_provider.incremental import Incremental, IncrementalRun, logstore_outlet
from sls_provider.lineage import export_lineage
from sls_provider.links import SlsLogsLink, logs_since, push_logs_link
from sls_provider.metrics import emit_export_metrics
from sls_provider.sources.frames import check_chunksize, dataframe_chunks
from sls_provider.sources.readers import check_sql_reader, read_query

__all__ = ["STATE_KEY", "Incremental", "RetryPolicy", "SlsWebTrackingOperator"]

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Timetables of periodic schedules whose runs have no data interval (a cron or delta *trigger*).
_NO_INTERVAL_TIMETABLES = frozenset(
    {"CronTriggerTimetable", "MultipleCronTriggerTimetable", "DeltaTriggerTimetable"}
)

#: Why a task fails at once on the errors :func:`cannot_heal` names (said in its failure).
NOT_RETRIED = "the same export would fail the same way on every try of the task"


def cannot_heal(err: SlsError) -> bool:
    """Whether no retry of the task can make ``err`` go away: the task then fails at once instead of
    waiting out its ``retries``. Bad arguments, data or connection settings
    (:class:`SlsConfigError`, :class:`SlsInputError`), a request SLS refused as made (a missing
    logstore, web tracking off, bad content: :class:`SlsRequestError`) and a query the warehouse
    refused as written (a syntax error, a missing table: :class:`SlsSourceError` not ``transient``).
    Failures that time may heal keep the task's retries: transient service errors that outlasted
    the retry policy, a write quota that admitted nothing, a dropped warehouse connection.

    :param err: what the export raised.
    """
    if isinstance(err, SlsSourceError):
        return not err.transient
    return isinstance(err, (SlsConfigError, SlsInputError, SlsRequestError))


#: Key of the resume ledger's head in ``context["task_state_store"]`` (its other keys start with it).
STATE_KEY = "sls_export_ledger"


class SlsWebTrackingOperator(BaseOperator):
    """Send rows to an Alibaba Cloud SLS logstore through PutWebTracking: a DataFrame (or an upstream
    task's DataFrame via XCom), or the results of ``sql`` on any common.sql connection, streamed.

    Rows are grouped by topic, packed into requests as full as the limits allow, compressed and sent
    on ``max_workers`` threads; transient failures are retried. Each acknowledged request is recorded
    in the task's state store, so a retry of the task sends only what the earlier try did not.
    Returns (to XCom) the summary: ``rows``, ``requests``, ``raw_bytes``, ``sent_bytes``, ``topics``,
    ``skipped_rows``, ``retries``, ``possible_duplicates``, ``resumed_requests``, ``export_id``...

    :param sls_conn_id: the ``sls`` connection.
    :param project: SLS project (templated); overrides the connection's.
    :param logstore: logstore (templated); overrides the connection's.
    :param sql: a query, or a path to a ``.sql`` file (templated); needs ``sql_conn_id``.
    :param sql_conn_id: any connection whose hook is a common.sql ``DbApiHook``; only with ``sql``.
    :param parameters: query parameters (templated), in the driver's paramstyle; only with ``sql``.
    :param sql_reader: how ``sql`` is read: ``auto`` (the Arrow reader where the connection has one
        with bounded memory: PostgreSQL (ADBC), MySQL/MariaDB through mysqlclient, SQLite; else the
        DB-API reader), ``arrow`` (fail rather than fall back) or ``dbapi``. The same rows give the
        same bytes either way.
    :param dataframe: a DataFrame, or an ``XComArg`` resolving to one (templated).
    :param topic: ``__topic__`` of every row (templated); not together with ``topic_column``.
    :param topic_column: column holding each row's topic (null -> ``""``); the column is not sent.
    :param source: ``__source__`` (templated); default: left out, and the service records the
        worker's IP address (request bodies then do not depend on which worker sends them).
    :param tags: ``__tags__`` of every request (templated), string values.
    :param compress_type: ``lz4``, ``deflate`` or ``none``; default: the connection's, else ``lz4``.
    :param timeout: seconds to wait for the service per request; default: the connection's
        ``extra.timeout``, else 30.
    :param max_workers: requests sent concurrently.
    :param chunksize: rows read and encoded at a time.
    :param key_policy: ``strict`` (bad column names fail the task before sending) or ``sanitize``.
    :param on_oversize: ``fail`` or ``skip`` (and count) a row too large for a request.
    :param fail_on_empty: fail the task (``SlsEmptyExportError``) when the export has no rows to send,
        as ``SqlSensor(fail_on_empty=True)`` does; by default it logs a warning naming the query (or
        the DataFrame) and the connections, and succeeds (a quiet day may have no rows).
    :param max_logs: logs per request (at most 4096).
    :param max_bytes: uncompressed bytes per request (at most 3 MiB).
    :param resume: skip requests a failed earlier try of this task instance already delivered
        (needs Airflow's ``task_state_store``, 3.3+). Sound only on the same rows in the same order:
        give SQL sources an ``ORDER BY``.
    :param trace_tags: tag each request with ``sls_export`` (the export id) and ``sls_seq`` (its
        number), so a duplicate left by a lost answer can be found with a query.
    :param retry: how transient failures are retried; default: the connection's settings.
    :param max_requests_per_second: cap on this task's requests/s (attempts included). Not needed to
        share a logstore's write quota between mapped tasks: each adapts its pace to SLS's answers.
    :param max_mb_per_second: cap on this task's raw (uncompressed) MB/s, the bytes SLS's write
        quota counts (a shard takes about 5 MB/s of raw data with an index, 10 without).
    :param stall_timeout: seconds the task may go without a single acknowledged request while SLS
        refuses its writes for quota, before it fails naming the quota (default 300).
    :param dead_letter: where rows not sent are kept, as NDJSON with why, the export id, topic and
        position: any URL Airflow's ``ObjectStoragePath`` opens (``file:///...``, ``s3://...``);
        ``None``: they are only counted and logged.
    :param max_bad_rows: rows of requests SLS refuses for their content (400) put aside in
        ``dead_letter`` while the export goes on; one more fails the task (``0``: the first does).
    :param incremental: export only the rows new since the last successful run, by a cursor column
        (:class:`~sls_provider.incremental.Incremental`; Airflow 3.3+, ``sql`` only). The watermark is
        kept on the logstore's asset, which the operator adds to its outlets (docs/incremental.md).
    """

    template_fields: Sequence[str] = (
        "sql",
        "topic",
        "source",
        "tags",
        "parameters",
        "project",
        "logstore",
        "dataframe",
    )
    template_ext: Sequence[str] = (".sql",)
    operator_extra_links = (SlsLogsLink(),)
    template_fields_renderers = {"sql": "sql", "parameters": "json", "tags": "json"}

    def __init__(
        self,
        *,
        sls_conn_id: str = SlsWebTrackingHook.default_conn_name,
        project: str | None = None,
        logstore: str | None = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        sql_reader: str = "auto",
        dataframe: Any = None,
        topic: str = "",
        topic_column: str | None = None,
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        compress_type: str | None = None,
        timeout: float | None = None,
        max_workers: int = 4,
        chunksize: int = DEFAULT_CHUNKSIZE,
        key_policy: str = "strict",
        on_oversize: str = "fail",
        fail_on_empty: bool = False,
        max_logs: int = MAX_LOGS,
        max_bytes: int = MAX_BYTES,
        resume: bool = True,
        trace_tags: bool = True,
        retry: RetryPolicy | None = None,
        max_requests_per_second: float | None = None,
        max_mb_per_second: float | None = None,
        stall_timeout: float | None = None,
        dead_letter: str | None = None,
        max_bad_rows: int = 0,
        incremental: Incremental | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Checked here, so a mistake fails when the DAG file is parsed, not in the middle of a run.
        if (sql is None) == (dataframe is None):
            raise SlsConfigError(f"{self.task_id}: pass exactly one of sql= or dataframe=")
        if sql is not None and not sql_conn_id:
            raise SlsConfigError(f"{self.task_id}: sql= needs sql_conn_id= (the connection to run it on)")
        if dataframe is not None:
            # Arguments that only a query uses would be silently ignored with a DataFrame.
            given = [
                name
                for name, value in (("sql_conn_id", sql_conn_id), ("parameters", parameters))
                if value is not None
            ]
            if given:
                raise SlsConfigError(
                    f"{self.task_id}: {' and '.join(f'{n}=' for n in given)} only apply to sql=, "
                    "not to dataframe=: remove them"
                )
        if topic_column is not None and topic:
            raise SlsConfigError(
                f"{self.task_id}: pass topic= or topic_column=, not both (topic_column={topic_column!r} "
                f"gives each row its topic, so topic={topic!r} would be ignored)"
            )
        check_chunksize(chunksize)
        if timeout is not None:
            check_timeout(timeout, subject=self.task_id)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise SlsConfigError(f"{self.task_id}: retry must be a RetryPolicy, got {type(retry).__name__}")
        if incremental is not None:
            if not isinstance(incremental, Incremental):
                raise SlsConfigError(
                    f"{self.task_id}: incremental must be an Incremental, got {type(incremental).__name__}"
                )
            if sql is None:
                raise SlsConfigError(
                    f"{self.task_id}: incremental= needs sql= (a query to bound by the cursor)"
                )
            #: the logstore's asset, which keeps the watermark: in the outlets, as Airflow requires
            self.incremental_asset = logstore_outlet(self.outlets, sls_conn_id, project, logstore)
            if self.incremental_asset not in self.outlets:
                self.outlets = [*self.outlets, self.incremental_asset]
        self.incremental = incremental
        # Every argument is kept as an attribute of the same name, as Airflow operators do.
        self.sls_conn_id = sls_conn_id
        self.project = project
        self.logstore = logstore
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.sql_reader = check_sql_reader(sql_reader)
        self.dataframe = dataframe
        self.topic = topic
        self.topic_column = topic_column
        self.source = source
        self.tags = tags
        # None and an empty field are "not given": the connection's, else the hook's default.
        self.compress_type = None if compress_type in (None, "") else check_compress_type(compress_type)
        self.timeout = timeout
        self.max_workers = max_workers
        self.chunksize = chunksize
        self.key_policy = key_policy
        self.on_oversize = on_oversize
        self.fail_on_empty = fail_on_empty
        self.max_logs = max_logs
        self.max_bytes = max_bytes
        self.resume = resume
        self.trace_tags = trace_tags
        self.retry = retry
        self.max_requests_per_second = max_requests_per_second
        self.max_mb_per_second = max_mb_per_second
        self.stall_timeout = stall_timeout
        self.dead_letter = dead_letter
        self.max_bad_rows = max_bad_rows
        #: the validated export options (raises ``SlsInputError`` here, when the DAG is parsed); the
        #: templated fields (topic, source, tags) are rendered later and passed with each export
        self.export_options = ExportOptions(
            key_policy=key_policy,
            on_oversize=on_oversize,
            max_workers=max_workers,
            max_logs=max_logs,
            max_bytes=max_bytes,
            trace_tags=trace_tags,
            max_requests_per_second=max_requests_per_second,
            max_mb_per_second=max_mb_per_second,
            stall_timeout=stall_timeout,
            dead_letter=dead_letter,
            max_bad_rows=max_bad_rows,
        )

    @cached_property
    def hook(self) -> SlsWebTrackingHook:
        return SlsWebTrackingHook(
            sls_conn_id=self.sls_conn_id,
            project=self.project,
            logstore=self.logstore,
            compress_type=self.compress_type,
            timeout=self.timeout,
            retry=self.retry,
        )

    @cached_property
    def sql_hook(self) -> Any:
        """The common.sql hook of ``sql_conn_id``."""
        return BaseHook.get_connection(str(self.sql_conn_id)).get_hook()

    def _chunks(self, stop: StopSignal, run: IncrementalRun | None = None) -> Iterator[Any]:
        if self.dataframe is not None:
            return dataframe_chunks(self.dataframe, self.chunksize)
        if run is not None:
            return run.chunks(
                self.sql_hook, str(self.sql), self.parameters, self.chunksize, self.sql_reader, stop
            )
        return read_query(
            self.sql_hook,
            str(self.sql),
            self.parameters,
            self.chunksize,
            self.sql_reader,
            self.log,
            stop=stop,
        )

    def on_kill(self) -> None:
        """Airflow stops the task (SIGTERM: marked failed or success, or the process terminated;
        also after ``execution_timeout``): the export stops within seconds, flushing its ledger.
        Runs in a signal handler, so it only sets the export's stop signal."""
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set(
                "Airflow asked the task to stop (SIGTERM: the task was marked failed or success, "
                "or its process was terminated)"
            )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the tables the query read (as common.sql operators report them) and the
        logstore, as dataset ``{logstore}`` in namespace ``sls://{project}.{endpoint}``."""
        return export_lineage(
            sql=self.sql if self.dataframe is None else None,
            sql_hook=self.sql_hook if self.dataframe is None else None,
            namespace=self.hook.target.namespace,
            logstore=self.hook.target.logstore,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            return self._export(context)
        except SlsError as err:
            if cannot_heal(err):
                # Airflow's way to fail without using the task's retries; the SlsError stays the
                # cause, so its type and message are in the log.
                message = f"{type(err).__name__}: {err} (not retried: {NOT_RETRIED})"
                raise AirflowFailException(message) from err
            raise

    def _export(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        store = context.get("task_state_store") if self.resume else None
        if self.resume and store is None:
            self.log.warning(
                "This Airflow has no task_state_store (3.3+): resume is off, and a retry of this task "
                "sends every row again."
            )
        #: the export's stop signal, set by on_kill (see sls_provider/core/stop.py)
        self._stop = stop = StopSignal()
        ti_key = f"{ti.dag_id}\x00{ti.task_id}\x00{ti.run_id}\x00{getattr(ti, 'map_index', -1)}"
        run = None
        if self.incremental is not None:  # the window first: a run that must not export fails here
            run = IncrementalRun(self.incremental, context, self.incremental_asset, self.log)
            run.decide(self.sql_hook, str(self.sql), self.parameters)
        # The hook owns resume: it decides the export id (kept from an unfinished earlier try) and
        # keeps the ledger. The id is known before the export, so the "SLS logs" link is there for a
        # failed try too (open ended); its range starts with the run, to cover earlier tries' requests.
        with self.hook.resumable_export(
            store, key=STATE_KEY, fingerprint=self.fingerprint(), owner=ti_key
        ) as export:
            since = logs_since(context)
            link_id = export.export_id if self.trace_tags else None
            push_logs_link(context, self.hook.target, export_id=link_id, since=since, done=False)
            summary = export.run(
                self._chunks(stop, run),
                self.export_options,
                topic=self.topic,
                topic_column=self.topic_column,
                source=self.source,
                tags=self.tags,
                stop=stop,
            )
            push_logs_link(context, self.hook.target, export_id=link_id, since=since, done=True)
            result = summary.to_dict()
            if run is not None:  # every request acknowledged: the watermark moves, the event says so
                extra = run.done(result)
                context["outlet_events"][self.incremental_asset].extra.update(extra)
                result.update(extra)
        # Leaving the block ended the export: a cleared and re-run task is a new export.
        emit_export_metrics(summary, dag_id=ti.dag_id, task_id=ti.task_id, logstore=self.hook.target.logstore)
        if not summary.rows:
            self._nothing_sent(summary, context, run.window if run is not None else None)
        # The export itself logged the summary ("SLS export done: ..."): not twice.
        return result

    def _nothing_sent(self, summary: ExportSummary, context: Context, window: Any = None) -> None:
        """Say that the export sent no rows, naming what gave none; raise with ``fail_on_empty``.
        A task that exports an empty period would otherwise succeed unnoticed (see issue #22: a
        filter on ``{{ ds }}`` under a trigger timetable selects the day that has just begun)."""
        if self.dataframe is not None:
            what = "the DataFrame"
        else:
            what = f"the query {one_line(str(self.sql), 1000)!r}"
            if self.parameters is not None:
                what += f" with parameters {self.parameters!r}"
            what += f" on connection {self.sql_conn_id!r}"
            if window is not None and self.incremental is not None:  # the window selected the rows
                column = self.incremental.cursor_column
                what += f" in the window {column} >= {window.start!r} and < {window.end!r}"
        if summary.skipped_rows:
            gave = f"gave {summary.skipped_rows:,} row(s), all skipped as oversize"
        else:
            gave = "gave no rows"
        target = self.hook.target
        message = (
            f"SLS export sent no rows: {what} {gave}, so nothing went to "
            f"{target.project}/{target.logstore} (connection {self.sls_conn_id!r})."
        )
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        timetable = type(getattr(context.get("dag"), "timetable", None)).__name__
        hint = ""
        if start and end and start != end:
            hint = f" against this run's data interval, {start} to {end}"
        elif timetable in _NO_INTERVAL_TIMETABLES:  # schedule="@daily": the likeliest mistake
            hint = (
                f': this scheduled run has no data interval ({timetable}: with schedule="@daily", '
                "{{ ds }} is the day that begins; CronDataIntervalTimetable gives each run the period "
                "that ended)"
            )
        advice = f"If rows were expected, check what selects them{hint}."
        if self.fail_on_empty:
            raise SlsEmptyExportError(f"{message} {advice} The task fails: fail_on_empty=True.")
        self.log.warning("%s %s Pass fail_on_empty=True to fail the task instead.", message, advice)

    def fingerprint(self) -> str:
        """What must not change between tries for a resume to be sound: the query and its
        parameters, the target, what names the rows (rendered) and the options that decide how
        rows become requests. (The rows themselves are checked request by request, see
        :mod:`sls_provider.core.ledger`.)"""
        options = {k: v for k, v in asdict(self.export_options).items() if k != "progress_interval"}
        facts = {
            "sql": self.sql,
            "parameters": self.parameters,
            "target": [self.sls_conn_id, self.project, self.logstore],
            "rows": [self.topic, self.topic_column, self.source, self.tags],
            "options": options,
            "chunksize": self.chunksize,
        }
        if self.incremental is not None:  # not in the dict otherwise: existing ledgers stay valid
            facts["incremental"] = repr(self.incremental)
        text = json.dumps(facts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
