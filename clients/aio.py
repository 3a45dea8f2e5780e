"""asyncio client for EmotionService (grpc.aio), the twin of `clients.client.EmotionClient`.

Same options, metadata, deadlines and retry policy (see `clients.options` and
`clients.client`); every method is a coroutine except `analyze_stream`, an async iterator over
`AnalyzeEvent`s::

    async with AsyncEmotionClient(ClientOptions.from_env()) as client:
        response = await client.analyze_file("clip.mp4")
        async for event in client.analyze_stream(client.request(subtitle="Wow!")):
            ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.media_requests import (
    UPLOAD_CHUNK_BYTES,
    build_request,
    file_request,
    upload_chunks,
    wants_upload,
)
from clients.options import ClientOptions

__all__ = ["AsyncEmotionClient"]


_T = TypeVar("_T")
_M = TypeVar("_M")


async def _aiter(items: Iterator[_M]) -> AsyncIterator[_M]:
    for item in items:
        yield item


class AsyncEmotionClient:
    """asyncio client for EmotionService. Create it inside a running event loop (its channel
    belongs to that loop); use `async with` or `await close()`."""

    def __init__(self, options: ClientOptions | None = None) -> None:
        self.options = options or ClientOptions.from_env()
        channel_options = self.options.grpc_channel_options()
        if self.options.secure:
            self.channel = grpc.aio.secure_channel(
                self.options.address, self.options.channel_credentials(), options=channel_options
            )
        else:
            self.channel = grpc.aio.insecure_channel(self.options.address, options=channel_options)
        self.stub = emotion_pb2_grpc.EmotionServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = self.options.metadata()

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self.channel.close(None)

    async def __aenter__(self) -> AsyncEmotionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    request = staticmethod(build_request)

    async def _unary(
        self, method: Callable[..., Awaitable[_T]], request: Any, timeout_s: float | None
    ) -> _T:
        """Call a unary method under one deadline (gRPC retries within it, per the policy)."""
        return await method(
            request, timeout=timeout_s or self.options.timeout_s, metadata=self.metadata
        )

    async def analyze(
        self, request: pb.AnalyzeRequest, timeout_s: float | None = None
    ) -> pb.AnalyzeResponse:
        """Analyse one clip and answer once (raises `grpc.aio.AioRpcError` on failure)."""
        response: pb.AnalyzeResponse = await self._unary(self.stub.Analyze, request, timeout_s)
        return response

    async def analyze_upload(
        self,
        request: pb.AnalyzeRequest,
        timeout_s: float | None = None,
        chunk_bytes: int = UPLOAD_CHUNK_BYTES,
    ) -> pb.AnalyzeResponse:
        """`analyze` for large media, sent in pieces (AnalyzeUpload); see the blocking client."""

        async def call(_: object, **kwargs: Any) -> pb.AnalyzeResponse:
            response: pb.AnalyzeResponse = await self.stub.AnalyzeUpload(
                _aiter(upload_chunks(request, chunk_bytes)), **kwargs
            )
            return response

        return await self._unary(call, None, timeout_s)

    async def analyze_file(
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
        """Read a media file, guess its kind from the name and analyse it; `upload` as in the
        blocking client (None = in pieces when larger than UPLOAD_THRESHOLD_BYTES)."""
        request = await asyncio.to_thread(
            file_request,
            path,
            subtitle=subtitle,
            request_id=request_id,
            language=language,
            options=options,
        )
        if upload or (upload is None and wants_upload(request)):
            return await self.analyze_upload(request, timeout_s=timeout_s)
        return await self.analyze(request, timeout_s=timeout_s)

    def analyze_stream(
        self, request: pb.AnalyzeRequest, timeout_s: float | None = None
    ) -> AsyncIterator[pb.AnalyzeEvent]:
        """Stream the analysis events. Retried (per the policy) only until the first event
        arrives; leaving the `async for` early cancels the call."""
        return self._stream(lambda **kw: self.stub.AnalyzeStream(request, **kw), timeout_s)

    def analyze_upload_stream(
        self,
        request: pb.AnalyzeRequest,
        timeout_s: float | None = None,
        chunk_bytes: int = UPLOAD_CHUNK_BYTES,
    ) -> AsyncIterator[pb.AnalyzeEvent]:
        """`analyze_stream` for large media, uploaded in pieces (AnalyzeUploadStream)."""
        return self._stream(
            lambda **kw: self.stub.AnalyzeUploadStream(
                _aiter(upload_chunks(request, chunk_bytes)), **kw
            ),
            timeout_s,
        )

    async def _stream(
        self, start: Callable[..., Any], timeout_s: float | None
    ) -> AsyncIterator[pb.AnalyzeEvent]:
        call = start(timeout=timeout_s or self.options.timeout_s, metadata=self.metadata)
        try:
            async for event in call:
                yield event
        finally:
            call.cancel()

    async def extract_labels(
        self, text: str, request_id: str = "", timeout_s: float | None = None, language: str = ""
    ) -> pb.ExtractLabelsResponse:
        """The clearly identifiable emotional states in an EMER-style description."""
        response: pb.ExtractLabelsResponse = await self._unary(
            self.stub.ExtractLabels,
            pb.ExtractLabelsRequest(request_id=request_id, text=text, language=language),
            timeout_s,
        )
        return response

    async def health(self, timeout_s: float = 10.0, service: str = "") -> bool:
        """True when the service answers SERVING (False on any error; not retried)."""
        try:
            reply = await self.health_stub.Check(
                health_pb2.HealthCheckRequest(service=service),
                timeout=timeout_s,
                metadata=self.metadata,
            )
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
