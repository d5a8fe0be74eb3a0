"""What came back from SLS, in one place: an answer's error fields quoted safely, and the one rule
deciding whether it may be retried, for the data client and the management client alike.

What is retried follows docs/protocol.md: 429, 5xx, and 403 with a quota code; anything else is final
at the first answer. Transport errors (no answer) are the clients' to judge: only they know whether
the request went out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sls_provider.core.endpoint import Target
from sls_provider.core.errors import SlsRequestError, SlsRetryableError, SlsServiceError
from sls_provider.core.reasons import describe_answer, first_bytes, mask, sls_error_body, status_words

__all__ = ["QUOTA_CODES", "Answer", "classify", "error_body", "is_retryable", "is_throttle", "what_came_back"]

QUOTA_CODES = frozenset({"WriteQuotaExceed", "ShardWriteQuotaExceed", "ExceedQuota"})
#: A ``Retry-After`` over this many seconds is not meant seriously: treated as absent.
MAX_RETRY_AFTER = 86_400.0


def is_retryable(status: int, code: str | None) -> bool:
    """The one rule: may asking again succeed? Throttling (429, 403 with a quota code) and server
    errors (5xx) may; any other answer is final."""
    return status == 429 or status >= 500 or (status == 403 and code in QUOTA_CODES)


def is_throttle(error: SlsServiceError) -> bool:
    """A refusal for quota: 429, or 403 with a quota code."""
    return error.status == 429 or (error.status == 403 and error.error_code in QUOTA_CODES)


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
    retryable = is_retryable(status, code)
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
