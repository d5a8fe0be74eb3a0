"""HTTP for PutWebTracking: one pooled keep-alive session per thread, errors classified, retries.

Retries use tenacity (exponential backoff with full jitter, ``Retry-After`` honoured), bounded by
attempts and by a total deadline. What is retried follows PROTOCOL.md: connection errors and
timeouts, 429, 5xx, and 403 quota codes. Anything else is final at the first answer.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
import tenacity
import urllib3
from requests.adapters import HTTPAdapter

from sls_provider.core.compress import compress
from sls_provider.core.endpoint import Target
from sls_provider.core.errors import SlsRequestError, SlsRetryableError, SlsServiceError
from sls_provider.core.pack import Request
from sls_provider.core.ratelimit import RateLimiter

log = logging.getLogger(__name__)

API_VERSION = "0.6.0"
QUOTA_CODES = frozenset({"WriteQuotaExceed", "ShardWriteQuotaExceed", "ExceedQuota"})


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    :param attempts: tries per request, the first included.
    :param deadline: seconds after the first try past which no new try starts.
    :param backoff: first wait in seconds; doubles each try, with full jitter.
    :param max_backoff: longest single wait in seconds (``Retry-After`` may ask for longer, up to
        the deadline).
    """

    attempts: int = 8
    deadline: float = 300.0
    backoff: float = 0.2
    max_backoff: float = 20.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry attempts must be at least 1, got {self.attempts}")
        if self.deadline <= 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("retry deadline must be positive, backoffs not negative")


@dataclass(frozen=True)
class Sent:
    """An acknowledged request."""

    request_id: str | None
    sent_bytes: int
    attempts: int


def error_body(response: requests.Response) -> tuple[str | None, str | None]:
    """``errorCode`` and ``errorMessage`` of an SLS error answer (the start of the text if not JSON)."""
    try:
        payload = response.json()
    except ValueError:
        return None, response.text[:200] or None
    if isinstance(payload, dict):
        return payload.get("errorCode"), payload.get("errorMessage")
    return None, None


def classify(response: requests.Response, target: Target, topic: str, seq: int) -> SlsServiceError:
    """Turn a non-200 answer into the right error, naming everything needed to act on it."""
    code, message = error_body(response)
    status = response.status_code
    request_id = response.headers.get("x-log-requestid")
    retry_after = _retry_after(response.headers.get("Retry-After"))
    retryable = status == 429 or status >= 500 or (status == 403 and code in QUOTA_CODES)
    text = (
        f"SLS answered {status} {code or '-'}: {message or '(no message)'} "
        f"[request id {request_id or '-'}, project {target.project!r}, logstore {target.logstore!r}, "
        f"topic {topic!r}, request #{seq} of this export]"
    )
    if status in (401, 403) and not retryable:
        text += " Web tracking may be off for this logstore: switch it on, or check the project and endpoint."
    kind = SlsRetryableError if retryable else SlsRequestError
    return kind(
        text,
        status=status,
        error_code=code,
        error_message=message,
        request_id=request_id,
        retry_after=retry_after,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from SLS, so fall back to our own backoff


def _never_connected(err: requests.ConnectionError) -> bool:
    reason = err.args[0] if err.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, urllib3.exceptions.NewConnectionError | urllib3.exceptions.NameResolutionError)


class WebTrackingClient:
    """Sends packed requests to one logstore. Safe to share between threads.

    :param target: where to send (see :func:`~sls_provider.core.endpoint.resolve_target`).
    :param compress_type: ``lz4``, ``deflate`` or ``none``.
    :param timeout: seconds to connect and to wait for an answer.
    :param verify: verify TLS certificates (``True``), or a CA bundle path.
    :param retry: the :class:`RetryPolicy`.
    :param pool_size: keep-alive connections kept per thread's session.
    :param on_retry: called with the error before each retry (for counting and logging).
    """

    def __init__(
        self,
        target: Target,
        *,
        compress_type: str = "lz4",
        timeout: float = 30.0,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[SlsServiceError], None] | None = None,
    ) -> None:
        self.target = target
        self.compress_type = compress_type
        self.timeout = timeout
        self.verify = verify
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        #: paces every attempt (see :class:`~sls_provider.core.ratelimit.RateLimiter`); set per export
        self.rate_limiter: RateLimiter | None = None
        self._idle: queue.LifoQueue[requests.Session] = queue.LifoQueue()
        self._closed = False

    @contextmanager
    def _session(self) -> Iterator[requests.Session]:
        """A keep-alive session for one request. Sessions are pooled, not per thread: exports make
        new sending threads each time, and a session per thread would pile up open connections."""
        try:
            session = self._idle.get_nowait()
        except queue.Empty:
            session = requests.Session()
            session.mount(self.target.base_url, HTTPAdapter(pool_connections=1, pool_maxsize=1))
            session.verify = self.verify
        try:
            yield session
        finally:
            if self._closed:
                session.close()
            else:
                self._idle.put(session)

    def close(self) -> None:
        """Close the idle keep-alive connections (sessions in use close when they come back)."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break

    def _headers(self, raw_size: int) -> dict[str, str]:
        headers = {
            "x-log-apiversion": API_VERSION,
            "x-log-bodyrawsize": str(raw_size),
            "Content-Type": "application/json",
        }
        if self.compress_type != "none":
            headers["x-log-compresstype"] = self.compress_type
        if self.target.host_header:
            headers["Host"] = self.target.host_header
        return headers

    def post_once(self, request: Request, payload: bytes, headers: dict[str, str]) -> str | None:
        """One try. Returns the request id, or raises a classified :class:`SlsServiceError`."""
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(len(payload))
        try:
            with self._session() as session:
                response = session.post(
                    self.target.track_url, data=payload, headers=headers, timeout=self.timeout
                )
        except requests.RequestException as err:
            if isinstance(err, requests.ConnectTimeout) or (
                isinstance(err, requests.ConnectionError) and _never_connected(err)
            ):
                # Nothing reached the service: retrying cannot duplicate anything.
                raise SlsRetryableError(
                    f"Could not connect to SLS at {self.target.base_url}: {type(err).__name__}: {err}"
                ) from err
            # The request may have reached the service: a retry can store its logs twice.
            raise SlsRetryableError(
                f"No answer from SLS for request #{request.seq} (topic {request.topic!r}): "
                f"{type(err).__name__}: {err}",
                ambiguous=True,
            ) from err
        if response.status_code == 200:
            return response.headers.get("x-log-requestid")
        raise classify(response, self.target, request.topic, request.seq)

    def send(self, request: Request) -> Sent:
        """Compress and send ``request``, retrying transient failures; raise the last error if they
        run out, or at once for a final one."""
        payload = compress(request.body, self.compress_type)
        headers = self._headers(len(request.body))
        policy = self.retry
        exponential = tenacity.wait_random_exponential(multiplier=policy.backoff, max=policy.max_backoff)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            asked = getattr(error, "retry_after", None) or 0.0
            return max(asked, exponential(state))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, SlsServiceError) and self.on_retry:
                self.on_retry(error)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_after_delay(policy.deadline),
            wait=wait,
            retry=tenacity.retry_if_exception_type(SlsRetryableError),
            before_sleep=before_sleep,
            reraise=True,
        )
        request_id = retrying(self.post_once, request, payload, headers)
        attempts = retrying.statistics.get("attempt_number", 1)
        return Sent(request_id=request_id, sent_bytes=len(payload), attempts=attempts)
