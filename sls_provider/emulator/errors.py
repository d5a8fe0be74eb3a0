"""The SLS error codes the emulator answers with, and the exception that carries one.

Every code the emulator can answer is named here once; the answer itself (status, JSON body,
``Retry-After``) is built in one place, :func:`sls_provider.emulator.responses.error_response`.
The class is ``EmulatorError``, not ``SlsError``: the provider's own ``SlsError`` is the client's
error hierarchy, and one name for two things made tracebacks ambiguous.
"""

from __future__ import annotations


class ErrorCode:
    """``errorCode`` values, as the service spells them (plain strings, so they compare and
    serialise as themselves; faults may answer any other code a test names)."""

    # The request
    INVALID_REQUEST = "InvalidRequest"  # malformed HTTP
    INVALID_HOST = "InvalidHost"
    MISSING_API_VERSION = "MissingAPIVersion"
    INVALID_API_VERSION = "InvalidAPIVersion"
    MISSING_CONTENT_LENGTH = "MissingContentLength"
    PARAMETER_INVALID = "ParameterInvalid"
    NOT_FOUND = "NotFound"
    # The body
    POST_BODY_INVALID = "PostBodyInvalid"
    POST_BODY_TOO_LARGE = "PostBodyTooLarge"
    POST_BODY_UNCOMPRESS_ERROR = "PostBodyUncompressError"
    MISSING_BODY_RAW_SIZE = "MissingBodyRawSize"
    INVALID_COMPRESS_TYPE = "InvalidCompressType"
    INVALID_ENCODING = "InvalidEncoding"
    INVALID_KEY = "InvalidKey"
    # The resource
    PROJECT_NOT_EXIST = "ProjectNotExist"
    LOGSTORE_NOT_EXIST = "LogStoreNotExist"
    UNAUTHORIZED = "Unauthorized"  # web tracking switched off
    # The service
    WRITE_QUOTA_EXCEED = "WriteQuotaExceed"
    SHARD_WRITE_QUOTA_EXCEED = "ShardWriteQuotaExceed"
    SERVER_BUSY = "ServerBusy"  # the default injected fault
    INTERNAL_SERVER_ERROR = "InternalServerError"


class EmulatorError(Exception):
    """An error answered as SLS does: an HTTP status plus ``{"errorCode", "errorMessage"}``.

    :param status: the HTTP status.
    :param code: the ``errorCode`` (an :class:`ErrorCode` value, or any code a fault names).
    :param message: the ``errorMessage``.
    :param retry_after: seconds for a ``Retry-After`` header (faults only).
    """

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def bad_parameter(cls, message: str) -> EmulatorError:
        """``400 ParameterInvalid``: the most common answer (admin bodies, GetLogs parameters)."""
        return cls(400, ErrorCode.PARAMETER_INVALID, message)

    @classmethod
    def bad_body(cls, message: str) -> EmulatorError:
        """``400 PostBodyInvalid``: the body is not of the documented shape."""
        return cls(400, ErrorCode.POST_BODY_INVALID, message)

    @classmethod
    def too_large(cls, message: str) -> EmulatorError:
        """``400 PostBodyTooLarge``: over a service limit."""
        return cls(400, ErrorCode.POST_BODY_TOO_LARGE, message)
