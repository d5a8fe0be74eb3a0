"""Exception types of the provider.

One base class, :class:`SlsError`, so callers can catch everything the provider raises; below it
the kinds a caller reacts to differently: bad input (fix the data or the arguments), bad
configuration (fix the connection), and service errors split into retryable and final.
"""

from __future__ import annotations

__all__ = [
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
]


class SlsError(Exception):
    """Base class of every error raised by this provider."""


class SlsConfigError(SlsError, ValueError):
    """The connection or the arguments are missing something or malformed."""


class SlsInputError(SlsError, ValueError):
    """The rows cannot be sent as they are (bad key, oversized row, invalid text)."""


class SlsEmptyExportError(SlsInputError):
    """An export with ``fail_on_empty`` had no rows to send: names the query (or the DataFrame) and
    the connections. An input error, since the same query on the same data gives no rows again."""


class SlsServiceError(SlsError):
    """A request was refused by SLS, or never got an answer.

    :param message: what happened, in words.
    :param status: HTTP status, or ``None`` when no answer came (connection error, timeout).
    :param error_code: SLS ``errorCode`` from the answer, if any.
    :param error_message: SLS ``errorMessage`` from the answer, if any (secrets masked).
    :param request_id: ``x-log-requestid`` of the answer, if any.
    :param ambiguous: ``True`` when the service may have stored the logs although the client saw
        a failure (the answer was lost): a retry may then duplicate them.
    :param retry_after: seconds the service asked the client to wait (``Retry-After``), if any.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        request_id: str | None = None,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id
        self.ambiguous = ambiguous
        self.retry_after = retry_after
        #: set when the client retries after this error: the try it ended (from 1), and the seconds
        #: until the next try
        self.attempt: int | None = None
        self.wait: float | None = None


class SlsRetryableError(SlsServiceError):
    """Transient: throttling, a server error, or a lost connection. Retried with backoff."""

    retryable = True


class SlsRequestError(SlsServiceError):
    """Final: retrying the same request cannot succeed (bad content, wrong names, not authorised)."""


class SlsQuotaError(SlsServiceError):
    """Final: the logstore's (or project's) write quota refused every write for ``stall_timeout``
    seconds, so the export could make no progress at all."""


class SlsSourceError(SlsError):
    """Reading a query's result failed (connection dropped, syntax error...): names the query, the
    reader and the connection, and says that the warehouse failed, not SLS.

    :param message: what happened, in words.
    :param transient: ``False`` when running the same query again cannot succeed (a syntax error, a
        missing table, a statement the read-only session refused); ``True`` (the default) when it
        may (a dropped connection, a server shutting down).
    """

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class SlsStoppedError(SlsError):
    """The export was asked to stop (Airflow's ``on_kill``: SIGTERM, a task marked failed) and did:
    no request started after it; the message gives the reason."""

    #: raised for one request: whether a try of it went out (the service may have it)
    sent = False
