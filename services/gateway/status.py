"""The one place where errors become gRPC status codes.

Client faults say so (INVALID_ARGUMENT, RESOURCE_EXHAUSTED for a request over a size limit);
our faults say INTERNAL with a request id to find the logs, never a traceback. Load we shed is
RESOURCE_EXHAUSTED too (as Ray's own back-pressure), told apart by gRPC's retry pushback: a
wait in milliseconds for shed load, "-1" (never retry) for a request too large to ever pass.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from services.common.errors import (
    DeadlineError,
    EmerError,
    InvalidInputError,
    ModelError,
    ModelUnavailableError,
    NotConfiguredError,
    OverloadedError,
    PayloadTooLargeError,
    UnauthenticatedError,
)

logger = logging.getLogger(__name__)

_CODES: dict[type[EmerError], grpc.StatusCode] = {
    InvalidInputError: grpc.StatusCode.INVALID_ARGUMENT,
    PayloadTooLargeError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    OverloadedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ModelUnavailableError: grpc.StatusCode.UNAVAILABLE,
    DeadlineError: grpc.StatusCode.DEADLINE_EXCEEDED,
    NotConfiguredError: grpc.StatusCode.FAILED_PRECONDITION,
    ModelError: grpc.StatusCode.INTERNAL,
}


# gRPC's retry pushback trailer (gRFC A6): clients with a retry policy wait this many
# milliseconds before retrying, and do not retry at all when it is negative.
PUSHBACK_KEY = "grpc-retry-pushback-ms"


def pushback_ms(error: BaseException) -> str | None:
    """The retry pushback to send with `error`'s status, or None for the client's own policy."""
    if isinstance(error, OverloadedError):
        return str(max(1, round(error.retry_after_s * 1000)))
    if isinstance(error, PayloadTooLargeError):
        return "-1"
    return None


def to_status(error: BaseException, request_id: str) -> tuple[grpc.StatusCode, str]:
    """Status code and human message for `error`."""
    if isinstance(error, EmerError):
        for cls in type(error).__mro__:
            if cls in _CODES:
                return _CODES[cls], error.message
        return grpc.StatusCode.INTERNAL, error.message
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the request ran out of time"
    logger.error("request %s failed", request_id, exc_info=error)
    return (
        grpc.StatusCode.INTERNAL,
        f"internal error while serving request {request_id}; see server logs",
    )
