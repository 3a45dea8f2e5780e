"""Building `AnalyzeRequest`s: from their parts or from a media file (its kind guessed from the
file name), and sending large media in pieces (the messages of an AnalyzeUpload)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emer_proto import emotion_pb2 as pb

__all__ = [
    "UPLOAD_CHUNK_BYTES",
    "UPLOAD_THRESHOLD_BYTES",
    "build_request",
    "file_request",
    "media_kind_for",
    "upload_chunks",
    "wants_upload",
]

# Media larger than this goes up in pieces (AnalyzeUpload) from `analyze_file` and the CLI: a
# one-message request costs the server several copies of it (gRPC proxy and gateway).
UPLOAD_THRESHOLD_BYTES = 4 * 1024 * 1024
# Size of the pieces of an upload. Under Ray's 100 KiB limit for objects passed inline, each
# piece travels from the proxy to the gateway inside the call's reply instead of through the
# shared-memory object store, whose pages would add to both processes' memory (measured:
# benchmarks/long_video_memory.py; 35 MB go up in about 1 s on one machine).
UPLOAD_CHUNK_BYTES = 64 * 1024

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
