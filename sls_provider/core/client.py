"""PutWebTracking's client: one request compressed, sent over the shared transport
(:mod:`~sls_provider.core.transport`), its answer judged (:mod:`~sls_provider.core.answers`), and
retried.

What is retried: connection errors and timeouts, and the answers
:func:`~sls_provider.core.answers.is_retryable` names (429, 5xx, 403 quota codes); anything else is
final at the first answer. Refusals for quota (429, 403 quota codes) are throttling, not failure:
they slow the export's :class:`~sls_provider.core.congestion.SendController` down and are retried
while the export makes progress. Other transient errors are retried with exponential
backoff and full jitter, bounded by attempts and a deadline; ``Retry-After`` is honoured up to the
deadline.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import urllib3

from sls_provider.core.answers import Answer, classify, is_throttle, not_from_sls
from sls_provider.core.compress import compress
from sls_provider.core.congestion import SendController
from sls_provider.core.endpoint import Target
from sls_provider.core.errors import (
    SlsConfigError,
    SlsRetryableError,
    SlsServiceError,
    SlsStoppedError,
)
from sls_provider.core.pack import Request
from sls_provider.core.reasons import refused_certificate, transport_reason
from sls_provider.core.stop import StopSignal
from sls_provider.core.transport import API_VERSION, connection_pool, exchange
from sls_provider.core.trydeadline import Try

log = logging.getLogger(__name__)

__all__ = ["RetryPolicy", "Sent", "WebTrackingClient"]


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    :param attempts: tries per request, the first included.
    :param deadline: seconds after the first try past which no new try starts; a try still
        running then is cut short (see :meth:`WebTrackingClient.post_once`).
    :param backoff: first wait in seconds; doubles each try, with full jitter.
    :param max_backoff: longest single wait in seconds (``Retry-After`` may ask for longer, up to
        the deadline).
    :param first_answer: seconds after an export's first try by which the endpoint must have
        answered something (anything: an error too), or the export fails without further tries; at
        least 1.5 x the client's timeout, so one whole try of a slow endpoint fits. An endpoint that
        takes connections and never answers fails the export in this time, not in ``deadline``.
    """

    attempts: int = 8
    deadline: float = 300.0
    backoff: float = 0.2
    max_backoff: float = 20.0
    first_answer: float = 45.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise SlsConfigError(f"retry attempts must be at least 1, got {self.attempts}")
        if self.deadline <= 0 or self.first_answer <= 0 or self.backoff < 0 or self.max_backoff < 0:
            raise SlsConfigError(
                f"retry deadline and first_answer must be positive and backoffs not negative, got "
                f"deadline={self.deadline}, first_answer={self.first_answer}, backoff={self.backoff}, "
                f"max_backoff={self.max_backoff}"
            )


@dataclass(frozen=True)
class Sent:
    """An acknowledged request."""

    request_id: str | None
    sent_bytes: int


class WebTrackingClient:
    """Sends packed requests to one logstore. Safe to share between threads.

    :param target: where to send (see :func:`~sls_provider.core.endpoint.resolve_target`).
    :param compress_type: ``lz4``, ``deflate`` or ``none``.
    :param timeout: seconds to connect, and for each read or write; a whole try (connect, send,
        the complete answer) is abandoned after twice this, whatever the peer does.
    :param verify: verify TLS certificates (``True``), or a CA bundle path.
    :param retry: the :class:`RetryPolicy`.
    :param pool_size: idle keep-alive connections kept (at least the number of sending threads).

    Nothing about one export is kept here: each passes its own controller and retry callback to
    :meth:`send`, so exports sharing a client do not interfere.
    """

    def __init__(
        self,
        target: Target,
        *,
        compress_type: str = "lz4",
        timeout: float = 30.0,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        pool_size: int = 64,
    ) -> None:
        self.target = target
        self.compress_type = compress_type
        self.timeout = timeout
        self.verify = verify
        self.retry = retry or RetryPolicy()
        #: connections are pooled across threads: exports start new sending threads each time
        self._pool = connection_pool(target, timeout, verify, pool_size)
        proxy_auth = getattr(self._pool, "proxy_headers", {}).get("proxy-authorization", "")
        #: masked wherever an answer is quoted (a proxy page can echo the request's headers)
        self._secrets = (proxy_auth.partition(" ")[2],)

    def close(self) -> None:
        """Close the idle keep-alive connections."""
        self._pool.clear()

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

    def post_once(
        self,
        request: Request,
        payload: bytes,
        headers: dict[str, str],
        *,
        until: float | None = None,
        stop: StopSignal | None = None,
    ) -> str | None:
        """One try, abandoned after ``2 * timeout`` (or at ``until``, a ``time.monotonic()`` value,
        if sooner, or a short grace after ``stop`` is set). Returns the request id, or raises a
        classified :class:`SlsServiceError`."""
        limit = 2 * self.timeout
        deadline = time.monotonic() + limit if until is None else min(time.monotonic() + limit, until)
        done = exchange(
            self._pool,
            "POST",
            self.target.track_url,
            body=payload,
            headers=headers,
            deadline=deadline,
            stop=stop,
        )
        attempt = done.attempt
        if done.error is not None:
            if attempt.expired and attempt.sent:
                raise self._abandoned(request, attempt) from done.error
            # Never sent: what stopped the connection (refused, unreachable) is the news, even
            # when the limit came first.
            raise self._no_answer(
                request, done.error, started=attempt.started, sent=attempt.sent
            ) from done.error
        response = done.response
        assert response is not None
        if attempt.expired:
            # The socket was shut down mid-answer: what was read may be a truncated answer.
            raise self._abandoned(request, attempt)
        answer = Answer(response.status, response.headers, response.data)
        if response.status != 200:
            raise classify(answer, self.target, request.topic, request.seq, self._secrets)
        request_id = response.headers.get("x-log-requestid")
        if not request_id or response.data:
            raise not_from_sls(answer, self.target, request.topic, request.seq, self._secrets)
        return request_id

    def _abandoned(self, request: Request, attempt: Try) -> SlsRetryableError:
        return SlsRetryableError(
            f"No complete answer from SLS at {self.target.base_url} for request #{request.seq} "
            f"(topic {request.topic!r}) within the try's limit of {2 * self.timeout:g} s (twice the "
            "timeout), the retry deadline or the time for a first answer: the try was abandoned",
            ambiguous=attempt.sent,
        )

    def _no_answer(
        self, request: Request, err: urllib3.exceptions.HTTPError, *, started: bool, sent: bool
    ) -> SlsRetryableError:
        cause = err.original_error if isinstance(err, urllib3.exceptions.ProxyError) else err
        reason = transport_reason(err, host=self.target.netloc, timeout=self.timeout)
        if (
            not started
            or isinstance(cause, urllib3.exceptions.ConnectTimeoutError)
            or refused_certificate(err)
        ):
            # Refused, unresolvable or timed out while connecting, to the service or to the
            # proxy (NewConnectionError and NameResolutionError are kinds of it), or a failed TLS
            # handshake: nothing reached the service, so a retry cannot duplicate anything.
            return SlsRetryableError(f"Could not connect to SLS at {self.target.base_url}: {reason}")
        # Sent whole, the request may have reached the service: a retry can store its logs twice.
        # Cut while sending, it cannot have been stored.
        return SlsRetryableError(
            f"No answer from SLS for request #{request.seq} (topic {request.topic!r}): {reason}",
            ambiguous=sent,
        )

    def send(
        self,
        request: Request,
        *,
        controller: SendController | None = None,
        on_retry: Callable[[SlsServiceError], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        stop: StopSignal | None = None,
    ) -> Sent:
        """Compress and send ``request``, retrying transient failures; raise the last error if they
        run out, or at once for a final one.

        A refusal for quota (403 quota codes, 429) is not a failure: it slows ``controller`` down and
        is retried for as long as the export makes progress, until nothing at all was acknowledged
        for the controller's ``stall_timeout`` (then :class:`SlsQuotaError`). Other transient errors
        have :attr:`retry`'s attempts and deadline (time spent throttled does not count).

        :param controller: the export's :class:`SendController`, shared by its sending threads
            (paces every attempt); ``None``: one for this request alone.
        :param on_retry: called with the error before each retry (for counting and logging).
        :param sleep: how to wait (tests pass a fake).
        :param stop: the export's stop signal: once set, no try starts, a wait (backoff, pacing,
            throttling) ends at once, and the running try is cut after a short grace; raises
            :class:`SlsStoppedError` (``sent`` says whether a try of this request went out).
        """
        payload = compress(request.body, self.compress_type)
        raw_size = len(request.body)  # paced by: SLS's write quota counts raw bytes, not compressed
        headers = self._headers(raw_size)
        policy = self.retry
        controller = controller or SendController()
        started = time.monotonic()
        throttled = 0.0  # seconds of this request spent refused for quota: not on the deadline
        faults = 0
        throttled_at: float | None = None
        # An endpoint that has never answered this export gets this long from its first try.
        first_answer = max(policy.first_answer, 1.5 * self.timeout)
        tried = False

        def pause(seconds: float) -> None:
            if stop is None:
                sleep(seconds)
            elif stop.wait(seconds):
                raise self._stopped(request, stop, tried)

        while True:
            sent_at = controller.acquire(raw_size, pause)
            if throttled_at is not None:
                throttled += sent_at - throttled_at
                throttled_at = None
            if stop is not None and stop.is_set():
                raise self._stopped(request, stop, tried)
            tried = True
            # A running try is cut at the deadline too (time spent throttled does not count).
            until = started + throttled + policy.deadline
            # acquire() has set first_try (the `or` is for the type checker)
            silent_until = (controller.first_try or sent_at) + first_answer
            if not controller.answered:
                until = min(until, silent_until)
            try:
                request_id = self.post_once(request, payload, headers, until=until, stop=stop)
            except SlsServiceError as error:
                if error.status is not None:
                    controller.on_answer()
                if not isinstance(error, SlsRetryableError):
                    raise
                if stop is not None and stop.is_set():
                    raise self._stopped(request, stop, tried) from error
                now = time.monotonic()
                if not controller.answered and now >= silent_until:
                    raise never_answered(error, self.target, first_answer, faults + 1) from error
                left = policy.deadline - (now - started - throttled)
                # Retry-After never outlasts the deadline (nor is an absurd value obeyed).
                asked = min(error.retry_after or 0.0, max(left, 0.0))
                if is_throttle(error):
                    controller.on_throttle(sent_at, asked, f"{error.status} {error.error_code or '-'}")
                    if controller.stalled():
                        raise controller.quota_error(error) from error
                    if on_retry:
                        on_retry(error)
                    throttled_at = now
                    continue
                faults += 1
                if faults >= policy.attempts or left <= 0:
                    raise
                backoff = random.uniform(0, min(policy.max_backoff, policy.backoff * 2 ** (faults - 1)))
                wait = min(max(asked, backoff), max(left, 0.0))
                if not controller.answered and now + wait >= silent_until:
                    # The next try would start when the endpoint's time to answer is up.
                    raise never_answered(error, self.target, first_answer, faults) from error
                # For the "Retrying:" line: which try failed, and how long until the next.
                error.attempt, error.wait = faults, wait
                if on_retry:
                    on_retry(error)
                pause(wait)
                if time.monotonic() - started - throttled >= policy.deadline:
                    raise  # no time left for a try: the last error says why, not an empty try
                continue
            controller.on_ack(raw_size, sent_at)
            return Sent(request_id=request_id, sent_bytes=len(payload))

    def _stopped(self, request: Request, stop: StopSignal, tried: bool) -> SlsStoppedError:
        error = SlsStoppedError(
            f"Request #{request.seq} (topic {request.topic!r}) was "
            f"{'not tried again' if tried else 'not sent'}: the export is stopping ({stop.reason})"
        )
        error.sent = tried
        return error


def never_answered(error: SlsServiceError, target: Target, seconds: float, tries: int) -> SlsRetryableError:
    """The endpoint answered nothing at all for ``seconds`` after the export's first try: more tries
    would only wait longer. Not ambiguous: nothing shows a working SLS there that could have stored it."""
    return SlsRetryableError(
        f"Nothing answered at {target.base_url} within {seconds:g} s of the export's first try "
        f"({tries} tries of this request): {str(error).rstrip('.')}. Check the endpoint and its port, "
        "and any firewall or proxy in between; for an endpoint that is just slow, raise the timeout "
        "(the first answer is awaited for 1.5 x timeout, at least RetryPolicy.first_answer).",
        status=error.status,
    )
