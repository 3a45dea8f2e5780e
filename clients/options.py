"""How to reach EmotionService and how to call it: the client's constants and `ClientOptions`
(address, metadata, deadline, TLS, and the channel's gRPC service config with the retry policy
and retry throttling), shared by the sync (`clients.client`) and asyncio (`clients.aio`)
clients."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_APPLICATION",
    "DEFAULT_RETRY_CODES",
    "DEFAULT_TIMEOUT_S",
    "MAX_ATTEMPTS_LIMIT",
    "MAX_MESSAGE_BYTES",
    "NEVER_RETRIED",
    "SERVICE_NAME",
    "ClientOptions",
]

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_APPLICATION = "emer"
DEFAULT_TIMEOUT_S = 120.0
# Media up to the server's default 64 MB limit plus protobuf framing.
MAX_MESSAGE_BYTES = 80 * 1024 * 1024
# UNAVAILABLE: not ready yet or a worker is being replaced; RESOURCE_EXHAUSTED: the server shed
# the request at capacity (it sends a pushback with it; with a too-large request it sends "do
# not retry"). Trying again later may succeed.
DEFAULT_RETRY_CODES: frozenset[grpc.StatusCode] = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
# gRPC caps a retry policy's maxAttempts at 5 (larger values are silently lowered).
MAX_ATTEMPTS_LIMIT = 5
SERVICE_NAME = "emer.v1.EmotionService"
# The request itself is wrong: sending it again cannot help.
NEVER_RETRIED: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.INVALID_ARGUMENT})


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _pem(value: bytes | str | Path | None) -> bytes | None:
    """PEM bytes as given, or read from a file path."""
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


@dataclass
class ClientOptions:
    """How to reach the server and how to call it.

    Attributes:
        address: host:port of the gRPC endpoint.
        application: Ray Serve application name, sent as `application` metadata.
        timeout_s: default deadline per call in seconds (covers all retry attempts).
        token: bearer token, sent as `authorization: Bearer <token>` metadata.
        tls: use a TLS channel (implied by any of the certificate fields below).
        root_certificates: PEM bytes or a file path of the CA(s) to trust; None = system roots.
        certificate_chain: client certificate (PEM bytes or path) for mutual TLS.
        private_key: the client certificate's key (PEM bytes or path) for mutual TLS.
        server_name_override: host name to check the server certificate against (and to send
            as SNI) instead of the one in `address`; for tests and IP-only deployments.
        max_attempts: attempts per call including the first (1 = no retries; at most 5, gRPC's
            own limit).
        initial_backoff_s: the first retry waits a random time up to this; the bound is
            multiplied by `backoff_multiplier` after each retry up to `max_backoff_s` (gRPC's
            retry policy: full jitter). A server's `grpc-retry-pushback-ms` replaces the wait.
        max_backoff_s: longest wait between two attempts.
        backoff_multiplier: growth factor of the wait.
        retry_codes: status codes that are retried. INVALID_ARGUMENT is refused.
        retry_max_tokens, retry_token_ratio: gRPC retry throttling of the channel: every failed
            attempt takes a token, every success gives back `retry_token_ratio`, and no call is
            retried while fewer than half of `retry_max_tokens` are left.
        retry_buffer_bytes: an upload is retried only while what it sent fits in this.
        channel_options: extra `grpc` channel arguments.
    """

    address: str = DEFAULT_ADDRESS
    application: str = DEFAULT_APPLICATION
    timeout_s: float = DEFAULT_TIMEOUT_S
    token: str | None = None
    tls: bool = False
    root_certificates: bytes | str | Path | None = None
    certificate_chain: bytes | str | Path | None = None
    private_key: bytes | str | Path | None = None
    server_name_override: str | None = None
    max_attempts: int = 4
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    backoff_multiplier: float = 2.0
    retry_codes: frozenset[grpc.StatusCode] = field(default=DEFAULT_RETRY_CODES)
    retry_max_tokens: int = 10
    retry_token_ratio: float = 0.1
    retry_buffer_bytes: int = MAX_MESSAGE_BYTES
    channel_options: Sequence[tuple[str, Any]] = ()

    def __post_init__(self) -> None:
        self.retry_codes = frozenset(self.retry_codes)
        refused = self.retry_codes & NEVER_RETRIED
        if refused:
            names = ", ".join(sorted(code.name for code in refused))
            raise ValueError(f"retry_codes must not contain {names}: such requests never succeed")
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(
                f"max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT} (gRPC's cap)"
            )
        if self.initial_backoff_s <= 0 or self.max_backoff_s <= 0 or self.backoff_multiplier <= 0:
            raise ValueError("backoffs and backoff_multiplier must be > 0 (gRPC's retry policy)")
        if not 0 < self.retry_max_tokens <= 1000 or self.retry_token_ratio <= 0:
            raise ValueError("retry_max_tokens must be in (0, 1000] and retry_token_ratio > 0")
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("certificate_chain and private_key go together (mutual TLS)")

    @classmethod
    def from_env(
        cls, address: str | None = None, timeout_s: float | None = None, **overrides: Any
    ) -> ClientOptions:
        """Options from the environment: EMER_ADDRESS, EMER_APPLICATION, EMER_TOKEN, EMER_TLS
        (1/true) and EMER_ROOT_CERTIFICATES (a PEM file). Arguments win over the environment;
        `overrides` sets any other field."""
        root = os.environ.get("EMER_ROOT_CERTIFICATES") or None
        values: dict[str, Any] = {
            "address": address or os.environ.get("EMER_ADDRESS", DEFAULT_ADDRESS),
            "application": os.environ.get("EMER_APPLICATION", DEFAULT_APPLICATION),
            "timeout_s": timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S,
            "token": os.environ.get("EMER_TOKEN") or None,
            "tls": _env_flag("EMER_TLS"),
            "root_certificates": Path(root) if root else None,
        }
        values.update(overrides)
        return cls(**values)

    # --- derived settings shared by the sync and asyncio clients -------------------------------

    @property
    def secure(self) -> bool:
        """True when the channel uses TLS."""
        return bool(self.tls or self.root_certificates or self.certificate_chain)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata sent with every call."""
        items = [("application", self.application)]
        if self.token:
            items.append(("authorization", f"Bearer {self.token}"))
        return tuple(items)

    def service_config(self) -> dict[str, Any]:
        """The channel's gRPC service config: the retry policy for every EmotionService method
        (health checks are not retried) and retry throttling. No retry policy at all when
        `max_attempts` is 1."""
        config: dict[str, Any] = {"methodConfig": [{"name": [{"service": SERVICE_NAME}]}]}
        if self.max_attempts > 1:
            config["methodConfig"][0]["retryPolicy"] = {
                "maxAttempts": self.max_attempts,
                "initialBackoff": f"{self.initial_backoff_s:.3f}s",
                "maxBackoff": f"{self.max_backoff_s:.3f}s",
                "backoffMultiplier": self.backoff_multiplier,
                "retryableStatusCodes": sorted(code.name for code in self.retry_codes),
            }
            config["retryThrottling"] = {
                "maxTokens": int(self.retry_max_tokens),
                "tokenRatio": self.retry_token_ratio,
            }
        return config

    def grpc_channel_options(self) -> list[tuple[str, Any]]:
        """Channel arguments: message size limits, the service config (retries), the TLS name
        override, then `channel_options`."""
        opts: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 1 if self.max_attempts > 1 else 0),
            ("grpc.service_config", json.dumps(self.service_config())),
            # Ours, not one a name resolver (DNS TXT records) might supply.
            ("grpc.service_config_disable_resolution", 1),
            ("grpc.per_rpc_retry_buffer_size", self.retry_buffer_bytes),
        ]
        if self.secure and self.server_name_override:
            opts.append(("grpc.ssl_target_name_override", self.server_name_override))
        opts.extend(self.channel_options)
        return opts

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """TLS credentials built from the certificate fields."""
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.root_certificates),
            private_key=_pem(self.private_key),
            certificate_chain=_pem(self.certificate_chain),
        )
