"""Python client for EmotionService: the blocking `EmotionClient` (used by the `emer` command line).

The asyncio twin, `AsyncEmotionClient`, lives in `clients.aio` and shares `ClientOptions` and
the retry policy (`clients.options`), the request building (`clients.media_requests`) and
`Analysis` (`clients.results`).

Every call:
- carries Ray Serve's `application` metadata (Ray Serve routes by it when several applications
  share a cluster) and, when a token is set, `authorization: Bearer <token>`;
- has one deadline (`timeout_s`, default `ClientOptions.timeout_s`) that covers all its attempts;
- is retried by gRPC itself, from the retry policy and retry throttling of the channel's
  service config (`ClientOptions.service_config`): exponential backoff with jitter on the status
  codes in `ClientOptions.retry_codes` (UNAVAILABLE: not ready or restarting; RESOURCE_EXHAUSTED:
  the server shed the request because it is at capacity), at most `max_attempts` times, never on
  INVALID_ARGUMENT, and not at all when the server says so (`grpc-retry-pushback-ms: -1`, sent
  with a request too large to ever succeed) or when too many recent calls failed (throttling:
  an overloaded server is not sent every call several times). A server's pushback also sets the
  wait. gRPC retries a stream only until the server has answered anything, and an upload only
  while what it sent fits `retry_buffer_bytes`.

RPC methods return the protobuf messages; `Analysis` is a small typed view of an
`AnalyzeResponse` (and `TimelineSegment` of one segment of a long clip's timeline).

This module is the documented entry point (README.md, docs/api.md:
`from clients.client import Analysis, ClientOptions, EmotionClient`), so it re-exports the
public names that moved to `clients.options`, `clients.results` and `clients.media_requests`
(`__all__` below is the same list as before the split).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Names in `__all__` are re-exported: `from clients.client import ...` of them is the documented
# public API (README.md, docs/api.md) and keeps working after the split. The project's own code
# imports them from the modules that define them.
from clients.media_requests import (
    UPLOAD_CHUNK_BYTES,
    UPLOAD_THRESHOLD_BYTES,
    build_request,
    file_request,
    media_kind_for,
    upload_chunks,
    wants_upload,
)
from clients.options import (
    DEFAULT_ADDRESS,
    DEFAULT_APPLICATION,
    DEFAULT_RETRY_CODES,
    MAX_MESSAGE_BYTES,
    ClientOptions,
)
from clients.results import Analysis, TimelineSegment

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_APPLICATION",
    "DEFAULT_RETRY_CODES",
    "MAX_MESSAGE_BYTES",
    "UPLOAD_CHUNK_BYTES",
    "UPLOAD_THRESHOLD_BYTES",
    "Analysis",
    "ClientOptions",
    "EmotionClient",
    "TimelineSegment",
    "media_kind_for",
    "status_code_of",
    "upload_chunks",
]


_T = TypeVar("_T")


def status_code_of(error: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of an RPC error (None for anything else)."""
    code = getattr(error, "code", None)
    if not callable(code):
        return None
    try:
        value = code()
    except Exception:
        return None
    return value if isinstance(value, grpc.StatusCode) else None


class EmotionClient:
    """Blocking client for EmotionService (thread-safe: one channel, shared by threads).

    Use as a context manager (`with EmotionClient(...) as client:`) or call `close()`.
    """

    def __init__(self, options: ClientOptions | None = None) -> None:
        self.options = options or ClientOptions.from_env()
        channel_options = self.options.grpc_channel_options()
        if self.options.secure:
            self.channel = grpc.secure_channel(
                self.options.address, self.options.channel_credentials(), options=channel_options
            )
        else:
            self.channel = grpc.insecure_channel(self.options.address, options=channel_options)
        self.stub = emotion_pb2_grpc.EmotionServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = self.options.metadata()

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self.channel.close()

    def __enter__(self) -> EmotionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def request(
        media: bytes = b"",
        *,
        media_kind: int = pb.MEDIA_KIND_UNSPECIFIED,
        subtitle: str = "",
        request_id: str = "",
        language: str = "",
        options: pb.AnalyzeOptions | None = None,
    ) -> pb.AnalyzeRequest:
        """An `AnalyzeRequest` from its parts (see `build_request`)."""
        return build_request(
            media,
            media_kind=media_kind,
            subtitle=subtitle,
            request_id=request_id,
            language=language,
            options=options,
        )

    # --- calls ----------------------------------------------------------------------------------

    def _unary(self, method: Callable[..., _T], request: Any, timeout_s: float | None) -> _T:
        """Call a unary method under one deadline (gRPC retries within it, per the policy)."""
        return method(request, timeout=timeout_s or self.options.timeout_s, metadata=self.metadata)

    def analyze(
        self, request: pb.AnalyzeRequest, timeout_s: float | None = None
    ) -> pb.AnalyzeResponse:
        """Analyse one clip and answer once.

        Raises:
            grpc.RpcError: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, UNAVAILABLE
                (after the retries), FAILED_PRECONDITION or INTERNAL.
        """
        response: pb.AnalyzeResponse = self._unary(self.stub.Analyze, request, timeout_s)
        return response

    def analyze_upload(
        self,
        request: pb.AnalyzeRequest,
        timeout_s: float | None = None,
        chunk_bytes: int = UPLOAD_CHUNK_BYTES,
    ) -> pb.AnalyzeResponse:
        """`analyze` for large media: the request goes up in pieces (AnalyzeUpload), so no
        server hop holds more than a piece of it except the gateway, which holds it once. Same
        answer, errors and retries as `analyze` (a retry sends the whole upload again, from gRPC's
        retry buffer)."""

        def call(_: object, **kwargs: Any) -> pb.AnalyzeResponse:
            response: pb.AnalyzeResponse = self.stub.AnalyzeUpload(
                upload_chunks(request, chunk_bytes), **kwargs
            )
            return response

        return self._unary(call, None, timeout_s)

    def analyze_file(
        self,
        path: str | Path,
        *,
        subtitle: str = "",
        request_id: str = "",
        language: str = "",
        options: pb.AnalyzeOptions | None = None,
        timeout_s: float | None = None,
        upload: bool | None = None,
    ) -> pb.AnalyzeResponse:
        """Read a media file, guess its kind from the name and analyse it (see `analyze`).
        `upload`: send it in pieces (`analyze_upload`); None = when it is larger than
        UPLOAD_THRESHOLD_BYTES."""
        request = file_request(
            path, subtitle=subtitle, request_id=request_id, language=language, options=options
        )
        if upload or (upload is None and wants_upload(request)):
            return self.analyze_upload(request, timeout_s=timeout_s)
        return self.analyze(request, timeout_s=timeout_s)

    def analyze_stream(
        self, request: pb.AnalyzeRequest, timeout_s: float | None = None
    ) -> Iterator[pb.AnalyzeEvent]:
        """Stream the analysis: clues as they complete, explanation deltas, labels, then the
        summary (for long media, a segment event per segment first). Retried (per the policy)
        only until the server has answered anything; closing the generator early cancels the
        call."""
        return self._stream(lambda **kw: self.stub.AnalyzeStream(request, **kw), timeout_s)

    def analyze_upload_stream(
        self,
        request: pb.AnalyzeRequest,
        timeout_s: float | None = None,
        chunk_bytes: int = UPLOAD_CHUNK_BYTES,
    ) -> Iterator[pb.AnalyzeEvent]:
        """`analyze_stream` for large media, uploaded in pieces (AnalyzeUploadStream)."""
        return self._stream(
            lambda **kw: self.stub.AnalyzeUploadStream(upload_chunks(request, chunk_bytes), **kw),
            timeout_s,
        )

    def _stream(
        self, start: Callable[..., Any], timeout_s: float | None
    ) -> Iterator[pb.AnalyzeEvent]:
        call = start(timeout=timeout_s or self.options.timeout_s, metadata=self.metadata)
        try:
            yield from call
        finally:
            call.cancel()  # a no-op once the stream has ended

    def extract_labels(
        self, text: str, request_id: str = "", timeout_s: float | None = None, language: str = ""
    ) -> pb.ExtractLabelsResponse:
        """The clearly identifiable emotional states in an EMER-style description."""
        response: pb.ExtractLabelsResponse = self._unary(
            self.stub.ExtractLabels,
            pb.ExtractLabelsRequest(request_id=request_id, text=text, language=language),
            timeout_s,
        )
        return response

    def health(self, timeout_s: float = 10.0, service: str = "") -> bool:
        """True when the service answers SERVING (False on any error; not retried)."""
        try:
            reply = self.health_stub.Check(
                health_pb2.HealthCheckRequest(service=service),
                timeout=timeout_s,
                metadata=self.metadata,
            )
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
