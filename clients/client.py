"""A small synchronous client for EmotionService (used by the `emer` command line)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_APPLICATION = "emer"
# Media up to the server's default 64 MB limit plus protobuf framing.
MAX_MESSAGE_BYTES = 80 * 1024 * 1024

_SUFFIX_KIND = {
    **dict.fromkeys((".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v"), pb.MEDIA_KIND_VIDEO),
    **dict.fromkeys(
        (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus"), pb.MEDIA_KIND_AUDIO
    ),
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"), pb.MEDIA_KIND_IMAGE),
}


def media_kind_for(path: str | Path) -> int:
    """Guess the media kind from a file name (UNSPECIFIED lets the server sniff)."""
    return _SUFFIX_KIND.get(Path(path).suffix.lower(), pb.MEDIA_KIND_UNSPECIFIED)


@dataclass
class ClientOptions:
    address: str = DEFAULT_ADDRESS
    application: str = DEFAULT_APPLICATION
    timeout_s: float = 120.0

    @classmethod
    def from_env(cls, address: str | None = None, timeout_s: float | None = None) -> ClientOptions:
        return cls(
            address=address or os.environ.get("EMER_ADDRESS", DEFAULT_ADDRESS),
            application=os.environ.get("EMER_APPLICATION", DEFAULT_APPLICATION),
            timeout_s=timeout_s if timeout_s is not None else 120.0,
        )


class EmotionClient:
    """Blocking client. Sends Ray Serve's `application` metadata so it works when several
    applications share the cluster."""

    def __init__(self, options: ClientOptions | None = None) -> None:
        self.options = options or ClientOptions.from_env()
        self.channel = grpc.insecure_channel(
            self.options.address,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.stub = emotion_pb2_grpc.EmotionServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = (("application", self.options.application),)

    def close(self) -> None:
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
    ) -> pb.AnalyzeRequest:
        return pb.AnalyzeRequest(
            request_id=request_id,
            media=media,
            media_kind=media_kind,
            subtitle=subtitle,  # type: ignore[arg-type]
        )

    def analyze(
        self, request: pb.AnalyzeRequest, timeout_s: float | None = None
    ) -> pb.AnalyzeResponse:
        response: pb.AnalyzeResponse = self.stub.Analyze(
            request, timeout=timeout_s or self.options.timeout_s, metadata=self.metadata
        )
        return response

    def analyze_stream(
        self, request: pb.AnalyzeRequest, timeout_s: float | None = None
    ) -> Iterator[pb.AnalyzeEvent]:
        yield from self.stub.AnalyzeStream(
            request, timeout=timeout_s or self.options.timeout_s, metadata=self.metadata
        )

    def extract_labels(
        self, text: str, request_id: str = "", timeout_s: float | None = None
    ) -> pb.ExtractLabelsResponse:
        response: pb.ExtractLabelsResponse = self.stub.ExtractLabels(
            pb.ExtractLabelsRequest(request_id=request_id, text=text),
            timeout=timeout_s or self.options.timeout_s,
            metadata=self.metadata,
        )
        return response

    def health(self, timeout_s: float = 10.0) -> bool:
        """True when the service answers SERVING."""
        try:
            reply = self.health_stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s, metadata=self.metadata
            )
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
