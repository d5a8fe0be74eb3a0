"""HTTP for PutWebTracking: pooled keep-alive connections (urllib3), errors classified, retries.

urllib3 directly rather than requests: requests re-reads the proxy settings from the environment on
every call, which was over half of the client's CPU per request (cProfile, 123 requests of 3 MiB).
The environment is read once per client instead, with requests' own helpers, so proxies and CA
bundles behave as they would with requests.

What is retried follows PROTOCOL.md: connection errors and timeouts, 429, 5xx, and 403 quota codes;
anything else is final at the first answer. Refusals for quota (429, 403 quota codes) are throttling,
not failure: they slow the export's :class:`~sls_provider.core.congestion.SendController` down and
are retried while the export makes progress. Other transient errors are retried with exponential
backoff and full jitter, bounded by attempts and a deadline; ``Retry-After`` is honoured up to the
deadline.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import certifi
import requests
import urllib3

from sls_provider.core.compress import compress
from sls_provider.core.congestion import SendController
from sls_provider.core.endpoint import Target
from sls_provider.core.errors import SlsQuotaError, SlsRequestError, SlsRetryableError, SlsServiceError
from sls_provider.core.pack import Request
from sls_provider.core.ratelimit import RateLimiter

log = logging.getLogger(__name__)

API_VERSION = "0.6.0"
QUOTA_CODES = frozenset({"WriteQuotaExceed", "ShardWriteQuotaExceed", "ExceedQuota"})
#: What SLS gives a shard (its soft write quota): about 5 MB/s of compressed bodies.
SHARD_BYTES_PER_SECOND = 5e6
#: A ``Retry-After`` over this many seconds is not meant seriously: treated as absent.
MAX_RETRY_AFTER = 86_400.0


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


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, as much of it as error handling needs (from either HTTP library).

    :param status: the status code.
    :param headers: the headers (a case-insensitive mapping).
    :param body: the body bytes.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


def error_body(body: bytes) -> tuple[str | None, str | None]:
    """``errorCode`` and ``errorMessage`` of an SLS error answer (the start of the text if not JSON)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None, body[:200].decode("utf-8", "replace") or None
    if isinstance(payload, dict):
        return payload.get("errorCode"), payload.get("errorMessage")
    return None, None


def classify(answer: Answer, target: Target, topic: str, seq: int) -> SlsServiceError:
    """Turn a non-200 answer into the right error, naming everything needed to act on it."""
    code, message = error_body(answer.body)
    status = answer.status
    request_id = answer.headers.get("x-log-requestid")
    retry_after = _retry_after(answer.headers.get("Retry-After"))
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
        seconds = max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from SLS, so fall back to our own backoff
    # inf, nan or days: not a wait anyone means; our own backoff instead (inf crashed the sleep).
    return seconds if seconds is not None and seconds <= MAX_RETRY_AFTER else None


def _pool(target: Target, timeout: float, verify: bool | str, size: int) -> urllib3.PoolManager:
    """Keep-alive connections to ``target``. The environment is read once, here, the way requests
    reads it on every call: ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` (host names, IPs,
    CIDR ranges) for the proxy, ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` for the CA bundle."""
    options: dict = {
        "num_pools": 1,
        "maxsize": size,
        "retries": False,  # tenacity retries, knowing which errors are safe to repeat
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
        return urllib3.PoolManager(**options)
    proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
    user, password = requests.utils.get_auth_from_url(proxy)
    if user:
        # urllib3 ignores credentials in the proxy URL: send them as requests does.
        options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}")
        proxy = urllib3.util.parse_url(proxy)._replace(auth=None).url
    return urllib3.ProxyManager(proxy, **options)


def _environ_ca_bundle() -> str:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


class WebTrackingClient:
    """Sends packed requests to one logstore. Safe to share between threads.

    :param target: where to send (see :func:`~sls_provider.core.endpoint.resolve_target`).
    :param compress_type: ``lz4``, ``deflate`` or ``none``.
    :param timeout: seconds to connect and to wait for an answer.
    :param verify: verify TLS certificates (``True``), or a CA bundle path.
    :param retry: the :class:`RetryPolicy`.
    :param pool_size: idle keep-alive connections kept (at least the number of sending threads).
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
        pool_size: int = 64,
    ) -> None:
        self.target = target
        self.compress_type = compress_type
        self.timeout = timeout
        self.verify = verify
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        #: paces every attempt if set; exports no longer set it: each paces its own requests with the
        #: ``controller`` passed to :meth:`send`, so exports sharing this client do not interfere
        self.rate_limiter: RateLimiter | None = None
        #: connections are pooled across threads: exports start new sending threads each time
        self._pool = _pool(target, timeout, verify, pool_size)

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

    def post_once(self, request: Request, payload: bytes, headers: dict[str, str]) -> str | None:
        """One try. Returns the request id, or raises a classified :class:`SlsServiceError`."""
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(len(payload))
        try:
            response = self._pool.urlopen(
                "POST", self.target.track_url, body=payload, headers=headers, preload_content=True
            )
        except urllib3.exceptions.HTTPError as err:
            cause = err.original_error if isinstance(err, urllib3.exceptions.ProxyError) else err
            if isinstance(cause, urllib3.exceptions.ConnectTimeoutError):
                # Refused, unresolvable or timed out while connecting, to the service or to the
                # proxy (NewConnectionError and NameResolutionError are kinds of it): nothing
                # reached the service, so a retry cannot duplicate anything.
                raise SlsRetryableError(
                    f"Could not connect to SLS at {self.target.base_url}: {type(err).__name__}: {err}"
                ) from err
            # The request may have reached the service: a retry can store its logs twice.
            raise SlsRetryableError(
                f"No answer from SLS for request #{request.seq} (topic {request.topic!r}): "
                f"{type(err).__name__}: {err}",
                ambiguous=True,
            ) from err
        if response.status == 200:
            return response.headers.get("x-log-requestid")
        answer = Answer(response.status, response.headers, response.data)
        raise classify(answer, self.target, request.topic, request.seq)

    def send(
        self,
        request: Request,
        *,
        controller: SendController | None = None,
        on_retry: Callable[[SlsServiceError], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Sent:
        """Compress and send ``request``, retrying transient failures; raise the last error if they
        run out, or at once for a final one.

        A refusal for quota (403 quota codes, 429) is not a failure: it slows ``controller`` down and
        is retried for as long as the export makes progress, until nothing at all was acknowledged
        for the controller's ``stall_timeout`` (then :class:`SlsQuotaError`). Other transient errors
        have :attr:`retry`'s attempts and deadline (time spent throttled does not count).

        :param controller: the export's :class:`SendController`, shared by its sending threads
            (paces every attempt); ``None``: one for this request alone.
        :param on_retry: called with the error before each retry (default: the client's ``on_retry``).
        :param sleep: how to wait (tests pass a fake).
        """
        payload = compress(request.body, self.compress_type)
        headers = self._headers(len(request.body))
        policy = self.retry
        controller = controller or SendController()
        notify = on_retry or self.on_retry
        started = time.monotonic()
        throttled = 0.0  # seconds of this request spent refused for quota: not on the deadline
        faults = attempts = 0
        throttled_at: float | None = None
        while True:
            sent_at = controller.acquire(len(payload), sleep)
            if throttled_at is not None:
                throttled += sent_at - throttled_at
                throttled_at = None
            attempts += 1
            try:
                request_id = self.post_once(request, payload, headers)
            except SlsRetryableError as error:
                now = time.monotonic()
                left = policy.deadline - (now - started - throttled)
                # Retry-After never outlasts the deadline (nor is an absurd value obeyed).
                asked = min(error.retry_after or 0.0, max(left, 0.0))
                if is_throttle(error):
                    controller.on_throttle(sent_at, asked)
                    if controller.stalled():
                        raise quota_error(error, controller) from error
                    if notify:
                        notify(error)
                    throttled_at = now
                    continue
                faults += 1
                if faults >= policy.attempts or left <= 0:
                    raise
                backoff = random.uniform(0, min(policy.max_backoff, policy.backoff * 2 ** (faults - 1)))
                if notify:
                    notify(error)
                sleep(min(max(asked, backoff), max(left, 0.0)))
                continue
            controller.on_ack(len(payload), sent_at)
            return Sent(request_id=request_id, sent_bytes=len(payload), attempts=attempts)


def is_throttle(error: SlsServiceError) -> bool:
    """A refusal for quota: 429, or 403 with a quota code."""
    return error.status == 429 or (error.status == 403 and error.error_code in QUOTA_CODES)


def quota_error(error: SlsServiceError, controller: SendController) -> SlsQuotaError:
    """The export gave up: say that the quota is the limit, what it achieved and what it would need."""
    achieved = controller.achieved()
    demand = max(controller.demand, controller.peak(), achieved)
    seconds = controller.now() - controller.started
    if controller.acked_bytes:
        shards = max(2, math.ceil(demand / SHARD_BYTES_PER_SECOND))
        need = (
            f"It achieved {_mb(achieved)}/s ({_mb(controller.acked_bytes)} in {seconds:,.0f} s) and tried "
            f"up to {_mb(demand)}/s; a shard takes about 5 MB/s and 500 writes/s, so this export "
            f"alone would need roughly {shards} shard(s). Split the logstore's shards, run fewer "
            "exports at once on it, or raise stall_timeout."
        )
    else:
        need = (
            "No write of this export was accepted at all: the quota admits nothing (check the "
            "logstore's shards, the project's write quota, and other writers of this logstore)."
        )
    return SlsQuotaError(
        f"SLS refused every write of this export for {controller.stall_timeout:,.0f} s as over its "
        f"write quota: the logstore's write quota is the limit, not this export. {need} Last answer: "
        f"{error}",
        status=error.status,
        error_code=error.error_code,
        error_message=error.error_message,
        request_id=error.request_id,
        retry_after=error.retry_after,
    )


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.2f} MB"
