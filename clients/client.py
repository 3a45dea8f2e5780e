"""Python client for EmotionService: the blocking `EmotionClient` (used by the `emer` command line).

The asyncio twin, `AsyncEmotionClient`, lives in `clients.aio` and shares `ClientOptions`,
`Analysis` and the retry policy defined here.

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
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

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

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_APPLICATION = "emer"
DEFAULT_TIMEOUT_S = 120.0
# Media up to the server's default 64 MB limit plus protobuf framing.
MAX_MESSAGE_BYTES = 80 * 1024 * 1024
# Media larger than this goes up in pieces (AnalyzeUpload) from `analyze_file` and the CLI: a
# one-message request costs the server several copies of it (gRPC proxy and gateway).
UPLOAD_THRESHOLD_BYTES = 4 * 1024 * 1024
# Size of the pieces of an upload. Under Ray's 100 KiB limit for objects passed inline, each
# piece travels from the proxy to the gateway inside the call's reply instead of through the
# shared-memory object store, whose pages would add to both processes' memory (measured:
# benchmarks/long_video_memory.py; 35 MB go up in about 1 s on one machine).
UPLOAD_CHUNK_BYTES = 64 * 1024
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

_SUFFIX_KIND = {
    **dict.fromkeys((".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v"), pb.MEDIA_KIND_VIDEO),
    **dict.fromkeys(
        (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus"), pb.MEDIA_KIND_AUDIO
    ),
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"), pb.MEDIA_KIND_IMAGE),
}

_T = TypeVar("_T")


def media_kind_for(path: str | Path) -> int:
    """Guess the media kind from a file name (UNSPECIFIED lets the server sniff)."""
    return _SUFFIX_KIND.get(Path(path).suffix.lower(), pb.MEDIA_KIND_UNSPECIFIED)


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


class _Reading:
    """What an answer and a timeline segment both carry: labels, basic category and scores,
    valence/arousal, transcript, warnings and the three clues."""

    @property
    def _message(self) -> pb.AnalyzeResponse | pb.Segment:
        raise NotImplementedError

    @property
    def labels(self) -> list[str]:
        """Open-vocabulary emotion words, most confident first (as the server orders them)."""
        return [label.word for label in self._message.labels]

    @property
    def label_confidences(self) -> dict[str, float]:
        """Emotion word -> confidence."""
        return {label.word: label.confidence for label in self._message.labels}

    @property
    def basic_category(self) -> str:
        """One of the seven basic categories ("" for a segment of which no clue could be read)."""
        return self._message.basic_category

    @property
    def basic_scores(self) -> dict[str, float]:
        return dict(self._message.basic_scores)

    @property
    def valence(self) -> float:
        return self._message.valence

    @property
    def arousal(self) -> float:
        return self._message.arousal

    @property
    def transcript(self) -> str:
        return self._message.transcript.text

    @property
    def warnings(self) -> list[str]:
        return list(self._message.warnings)

    def clue(self, modality: str | int) -> pb.Clue:
        """The clue of one modality: "audio", "visual", "text" or a `pb.Modality` value. For a
        long clip's answer, the clue aggregated over its segments."""
        return _clue_of(self._message.clues, modality)

    def available_clues(self) -> dict[str, pb.Clue]:
        """Modality name -> clue, for the modalities the server could analyse."""
        return _available(self._message.clues)


@dataclass(frozen=True)
class Analysis(_Reading):
    """A typed view of an `AnalyzeResponse` (the message itself stays in `response`)."""

    response: pb.AnalyzeResponse

    @classmethod
    def of(cls, response: pb.AnalyzeResponse) -> Analysis:
        """Wrap a response (from `analyze`, `analyze_file` or a stream's summary event)."""
        return cls(response)

    @property
    def _message(self) -> pb.AnalyzeResponse:
        return self.response

    @property
    def request_id(self) -> str:
        return self.response.request_id

    @property
    def explanation(self) -> str:
        return self.response.explanation

    @property
    def timings_ms(self) -> dict[str, float]:
        """Stage -> wall time in milliseconds."""
        return {t.stage: t.ms for t in self.response.timings}

    @property
    def media_duration_s(self) -> float:
        return self.response.media_duration_s

    @property
    def timeline(self) -> list[TimelineSegment]:
        """Long media: the segments in time order (empty for short media)."""
        return [TimelineSegment(seg) for seg in self.response.timeline]


@dataclass(frozen=True)
class TimelineSegment(_Reading):
    """A typed view of one `pb.Segment` of a long clip's timeline (times in seconds from the
    start of the media; the message itself stays in `segment`)."""

    segment: pb.Segment

    @property
    def _message(self) -> pb.Segment:
        return self.segment

    @property
    def index(self) -> int:
        return self.segment.index

    @property
    def start_s(self) -> float:
        return self.segment.start_s

    @property
    def end_s(self) -> float:
        return self.segment.end_s

    @property
    def duration_s(self) -> float:
        return self.segment.end_s - self.segment.start_s


def _clue_of(clues: pb.Clues, modality: str | int) -> pb.Clue:
    if isinstance(modality, int):
        name = pb.Modality.Name(modality).removeprefix("MODALITY_").lower()  # type: ignore[arg-type]
    else:
        name = modality.lower()
    if name not in ("audio", "visual", "text"):
        raise ValueError(f"unknown modality {modality!r} (audio, visual or text)")
    clue: pb.Clue = getattr(clues, name)
    return clue


def _available(clues: pb.Clues) -> dict[str, pb.Clue]:
    return {
        name: clue
        for name in ("audio", "visual", "text")
        if (clue := getattr(clues, name)).available
    }


def build_request(
    media: bytes = b"",
    *,
    media_kind: int = pb.MEDIA_KIND_UNSPECIFIED,
    subtitle: str = "",
    request_id: str = "",
    language: str = "",
    options: pb.AnalyzeOptions | None = None,
) -> pb.AnalyzeRequest:
    """An `AnalyzeRequest` from its parts."""
    request = pb.AnalyzeRequest(
        request_id=request_id,
        media=media,
        media_kind=media_kind,  # type: ignore[arg-type]
        subtitle=subtitle,
        language=language,
    )
    if options is not None:
        request.options.CopyFrom(options)
    return request


def upload_chunks(
    request: pb.AnalyzeRequest, chunk_bytes: int = UPLOAD_CHUNK_BYTES
) -> Iterator[pb.AnalyzeChunk]:
    """The messages of an upload (AnalyzeUpload): the request without its media, then the
    media in pieces of `chunk_bytes`."""
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be at least 1")
    head = pb.AnalyzeRequest()
    head.CopyFrom(request)
    head.ClearField("media")
    yield pb.AnalyzeChunk(request=head)
    media = memoryview(request.media)
    for start in range(0, len(media), chunk_bytes):
        yield pb.AnalyzeChunk(media=bytes(media[start : start + chunk_bytes]))


def wants_upload(request: pb.AnalyzeRequest) -> bool:
    """True when the request's media is large enough to be sent in pieces."""
    return len(request.media) > UPLOAD_THRESHOLD_BYTES


def file_request(
    path: str | Path,
    *,
    subtitle: str = "",
    request_id: str = "",
    language: str = "",
    options: pb.AnalyzeOptions | None = None,
) -> pb.AnalyzeRequest:
    """An `AnalyzeRequest` for a media file, its kind guessed from the file name."""
    return build_request(
        Path(path).read_bytes(),
        media_kind=media_kind_for(path),
        subtitle=subtitle,
        request_id=request_id,
        language=language,
        options=options,
    )


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
