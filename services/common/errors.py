"""Domain errors. The gateway maps each to a gRPC status in exactly one place
(services/gateway/status.py); nothing else decides status codes."""

from __future__ import annotations


class EmerError(Exception):
    """Base class: `message` is shown to the client as the status details, so keep it human."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(EmerError):
    """The client's request is wrong: corrupt/empty/unsupported media, bad field combinations."""


class PayloadTooLargeError(EmerError):
    """The request exceeds a configured size limit (media bytes, subtitle length, duration).
    Sent again it fails again: its status tells gRPC clients not to retry."""


class UnauthenticatedError(EmerError):
    """The call carries no accepted bearer token (the server has a token file)."""


class OverloadedError(EmerError):
    """The service cannot take more work right now; the client may retry after
    `retry_after_s` (sent as gRPC's retry pushback)."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelUnavailableError(EmerError):
    """Every model that could read the request failed or timed out: ours, and worth a retry."""


class ReplicaUnavailableError(ModelUnavailableError):
    """A model deployment has no replica that can answer now (one died and is being replaced)."""


class DeadlineError(EmerError):
    """The request ran out of time."""


class NotConfiguredError(EmerError):
    """The server lacks something the request needs (e.g. the emotion vocabulary files)."""


class ModelError(EmerError):
    """A model failed on valid input (our fault, not the client's)."""
