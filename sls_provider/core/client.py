"""HTTP for PutWebTracking: pooled keep-alive connections (urllib3), errors classified, retries.

urllib3 directly rather than requests: requests re-reads the proxy settings from the environment on
every call, which was over half of the client's CPU per request (cProfile, 123 requests of 3 MiB).
The environment is read once per client instead, with requests' own helpers, so proxies and CA
bundles behave as they would with requests.

What is retried follows docs/protocol.md: connection errors and timeouts, 429, 5xx, and 403 quota codes;
anything else is final at the first answer. Refusals for quota (429, 403 quota codes) are throttling,
not failure: they slow the export's :class:`~sls_provider.core.congestion.SendController` down and
are retried while the export makes progress. Other transient errors are retried with exponential
backoff and full jitter, bounded by attempts and a deadline; ``Retry-After`` is honoured up to the
deadline.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import certifi
import requests
import urllib3

from sls_provider.core.compress import compress
from sls_provider.core.congestion import SendController
from sls_provider.core.endpoint import Target
from sls_provider.core.errors import (
    SlsConfigError,
    SlsQuotaError,
    SlsRequestError,
    SlsRetryableError,
    SlsServiceError,
    SlsStoppedError,
)
from sls_provider.core.pack import Request
from sls_provider.core.reasons import (
    describe_answer,
    first_bytes,
    mask,
    refused_certificate,
    sls_error_body,
    status_words,
    transport_reason,
)
from sls_provider.core.stop import StopSignal
from sls_provider.core.trydeadline import Try, watch_pool

log = logging.getLogger(__name__)

__all__ = [
    "API_VERSION",
    "QUOTA_CODES",
    "Answer",
    "RetryPolicy",
    "Sent",
    "WebTrackingClient",
    "classify",
    "connection_pool",
    "error_body",
]

API_VERSION = "0.6.0"
QUOTA_CODES = frozenset({"WriteQuotaExceed", "ShardWriteQuotaExceed", "ExceedQuota"})
#: What SLS gives a shard (its soft write quota): 5 MB/s of raw (uncompressed) data when the
#: logstore has an index, 10 when it has none (help.aliyun.com/zh/sls/product-overview/data-read-and-write).
SHARD_BYTES_PER_SECOND = 5 * 1024 * 1024
#: A ``Retry-After`` over this many seconds is not meant seriously: treated as absent.
MAX_RETRY_AFTER = 86_400.0


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


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, as much of it as error handling needs (read from the urllib3 response).

    :param status: the status code.
    :param headers: the headers (a case-insensitive mapping).
    :param body: the body bytes.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


def error_body(body: bytes, secrets: Iterable[str | None] = ()) -> tuple[str | None, str | None]:
    """``errorCode`` and ``errorMessage`` (``secrets`` masked) of an SLS error answer; ``(None,
    None)`` for any other body, which is never quoted (see :mod:`~sls_provider.core.reasons`)."""
    fields = sls_error_body(body)
    if fields is None:
        return None, None
    code, message = fields
    return code, (mask(message, secrets) if message is not None else None)


def what_came_back(answer: Answer, secrets: Iterable[str | None] = ()) -> str:
    """``SLS answered 403 Unauthorized: ...`` for an SLS error; status and content type otherwise."""
    code, message = error_body(answer.body, secrets)
    if code is not None or message is not None:
        return f"SLS answered {answer.status} {code or '-'}: {message or '(no message)'}"
    if not answer.body:
        return f"SLS answered {status_words(answer.status)} (no body)"
    return (
        f"Got {describe_answer(answer.status, answer.headers, answer.body)}, not an SLS error "
        "(not quoted: it may come from a proxy or gateway)"
    )


def classify(
    answer: Answer, target: Target, topic: str, seq: int, secrets: Iterable[str | None] = ()
) -> SlsServiceError:
    """Turn a non-200 answer into the right error, naming everything needed to act on it.

    :param secrets: texts to mask wherever the answer is quoted.
    """
    code, message = error_body(answer.body, secrets)
    status = answer.status
    request_id = answer.headers.get("x-log-requestid")
    retry_after = _retry_after(answer.headers.get("Retry-After"))
    retryable = status == 429 or status >= 500 or (status == 403 and code in QUOTA_CODES)
    text = (
        f"{what_came_back(answer, secrets)} "
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


def not_from_sls(
    answer: Answer, target: Target, topic: str, seq: int, secrets: Iterable[str | None] = ()
) -> SlsRequestError:
    """A 200 that is not PutWebTracking's acknowledgement (SLS answers with an empty body and an
    ``x-log-requestid``): a proxy, captive portal or wrong endpoint answered. Final, since asking
    again gets the same page, and ambiguous, since a proxy may have forwarded the request before
    answering for itself."""
    request_id = answer.headers.get("x-log-requestid")
    missing = [] if request_id else ["no x-log-requestid header"]
    if answer.body:
        missing.append(f"a body starting {first_bytes(answer.body, secrets)!r}")
    return SlsRequestError(
        f"Got {describe_answer(answer.status, answer.headers, answer.body)} with "
        f"{' and '.join(missing)}: not an acknowledgement from SLS, so request #{seq} (topic {topic!r}) "
        f"is not counted as delivered. Something other than SLS answered at {target.base_url} "
        "(a proxy, a captive portal, or the wrong endpoint): check the endpoint and the proxy settings.",
        status=answer.status,
        request_id=request_id,
        ambiguous=True,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from SLS, so fall back to our own backoff
    # inf, nan or days: not a wait anyone means; our own backoff instead (inf crashed the sleep).
    return seconds if seconds is not None and seconds <= MAX_RETRY_AFTER else None


def connection_pool(target: Target, timeout: float, verify: bool | str, size: int) -> urllib3.PoolManager:
    """Keep-alive connections to ``target``. The environment is read once, here, the way requests
    reads it on every call: ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` (host names, IPs,
    CIDR ranges) for the proxy, ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` for the CA bundle."""
    options: dict = {
        "num_pools": 1,
        "maxsize": size,
        "retries": False,  # send() retries, knowing which errors are safe to repeat
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
    }
    if target.scheme == "https":
        if verify is False:
            options["cert_reqs"] = "CERT_NONE"
        else:
            ca = verify if isinstance(verify, str) else _environ_ca_bundle()
            options["ca_cert_dir" if os.path.isdir(ca) else "ca_certs"] = ca
    proxies = requests.utils.get_environ_proxies(target.base_url)
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy:
        return watch_pool(urllib3.PoolManager(**options))
    proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
    user, password = requests.utils.get_auth_from_url(proxy)
    if user:
        # urllib3 ignores credentials in the proxy URL: send them as requests does.
        options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}")
        proxy = urllib3.util.parse_url(proxy)._replace(auth=None).url
    return watch_pool(urllib3.ProxyManager(proxy, **options))


def _environ_ca_bundle() -> str:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


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
        with Try(deadline, stop) as attempt:
            try:
                response = self._pool.urlopen(
                    "POST", self.target.track_url, body=payload, headers=headers, preload_content=True
                )
            except urllib3.exceptions.HTTPError as err:
                if attempt.expired and attempt.sent:
                    raise self._abandoned(request, attempt) from err
                # Never sent: what stopped the connection (refused, unreachable) is the news, even
                # when the limit came first.
                raise self._no_answer(request, err, started=attempt.started, sent=attempt.sent) from err
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
            if not controller.answered:
                until = min(until, (controller.first_try or sent_at) + first_answer)
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
                silent_until = (controller.first_try or sent_at) + first_answer
                if not controller.answered and now >= silent_until:
                    raise never_answered(error, self.target, first_answer, faults + 1) from error
                left = policy.deadline - (now - started - throttled)
                # Retry-After never outlasts the deadline (nor is an absurd value obeyed).
                asked = min(error.retry_after or 0.0, max(left, 0.0))
                if is_throttle(error):
                    controller.on_throttle(sent_at, asked, f"{error.status} {error.error_code or '-'}")
                    if controller.stalled():
                        raise quota_error(error, controller) from error
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


def is_throttle(error: SlsServiceError) -> bool:
    """A refusal for quota: 429, or 403 with a quota code."""
    return error.status == 429 or (error.status == 403 and error.error_code in QUOTA_CODES)


def quota_error(error: SlsServiceError, controller: SendController) -> SlsQuotaError:
    """The export gave up: say that the quota is the limit, what it achieved and what it would need."""
    achieved = controller.achieved()
    demand = max(controller.demand, controller.peak(), achieved)
    seconds = controller.now() - controller.started
    if controller.acked_bytes:
        # The controller counts raw bytes, as the quota does.
        shards = max(2, math.ceil(demand / SHARD_BYTES_PER_SECOND))
        plain = max(2, math.ceil(demand / (2 * SHARD_BYTES_PER_SECOND)))
        need = (
            f"It achieved {_mb(achieved)}/s of raw data ({_mb(controller.acked_bytes)} in {seconds:,.0f} s) "
            f"and tried up to {_mb(demand)}/s; a shard takes about 5 MB/s of raw (uncompressed) data "
            f"with an index (10 without) and 500 writes/s, so this export alone would need roughly "
            f"{shards} shard(s) ({plain} without an index). Split the logstore's shards, run fewer "
            "exports at once on it, or raise stall_timeout."
        )
    else:
        need = (
            "No write of this export was accepted at all: the quota admits nothing (check the "
            "logstore's shards, the project's write quota, and other writers of this logstore)."
        )
    # What the service said, in its words: a 429 Throttled is not a quota code, a 403 quota code is.
    said = ", ".join(f"{answer} x{n:,}" for answer, n in sorted(controller.throttle_answers.items()))
    return SlsQuotaError(
        f"SLS refused every write of this export for {controller.stall_timeout:,.0f} s, answering "
        f"{said or error.status}: the logstore's write quota is the limit, not this export. {need} "
        f"Last answer: {error}",
        status=error.status,
        error_code=error.error_code,
        error_message=error.error_message,
        request_id=error.request_id,
        retry_after=error.retry_after,
    )


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.2f} MB"
