"""Decode a request's media once: sampled RGB frames and 16 kHz mono audio.

PyAV (bundled FFmpeg) reads video and audio; Pillow reads still images. Every failure becomes
an InvalidInputError with a message a person understands: the gateway maps it to a status.
Short media are decoded whole here (`decode_media`); long media are probed and decoded as a
stream of segments by `services.media.segments`, never holding more than one segment decoded.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from enum import StrEnum

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from services.common.errors import InvalidInputError, PayloadTooLargeError
from services.common.types import AudioClip, VideoFrames

logger = logging.getLogger(__name__)

AUDIO_RATE = 16_000
# Pillow's decompression-bomb guard: refuse images above this many pixels.
MAX_IMAGE_PIXELS = 50_000_000


class MediaKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"


@dataclass(frozen=True)
class DecodeOptions:
    frame_rate: float = 5.0  # frames sampled per second of video
    max_frames: int = 32  # spread evenly over the clip when it is longer
    max_side: int = 640  # frames are downscaled so their longer side is at most this
    max_duration_s: float = 600.0


@dataclass
class DecodedMedia:
    kind: MediaKind
    video: VideoFrames | None
    audio: AudioClip | None
    duration_s: float
    warnings: list[str] = field(default_factory=list)


# Magic numbers of still-image formats Pillow reads; everything else goes to FFmpeg.
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"RIFF")


def looks_like_image(data: bytes) -> bool:
    if data[:4] == b"RIFF":  # RIFF is WAV/AVI as well as WebP
        return data[8:12] == b"WEBP"
    return data.startswith(_IMAGE_MAGIC)


def decode_media(data: bytes, kind_hint: MediaKind | None, options: DecodeOptions) -> DecodedMedia:
    """Decode `data`; `kind_hint` (from the request) is checked against what the bytes hold."""
    if not data:
        raise InvalidInputError("the media field is empty")
    if kind_hint is MediaKind.IMAGE or (kind_hint is None and looks_like_image(data)):
        return _decode_image(data, options)
    decoded = _decode_av(data, options)
    if kind_hint is MediaKind.VIDEO and decoded.video is None:
        raise InvalidInputError("media_kind is VIDEO but the file has no video stream")
    if kind_hint is MediaKind.AUDIO and decoded.audio is None:
        raise InvalidInputError("media_kind is AUDIO but the file has no audio stream")
    if kind_hint is MediaKind.AUDIO:
        # An audio file with cover art is still an audio request.
        decoded.video, decoded.kind = None, MediaKind.AUDIO
    return decoded


def _decode_image(data: bytes, options: DecodeOptions) -> DecodedMedia:
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise PayloadTooLargeError(
                    f"the image is {img.width}x{img.height} pixels; "
                    f"the limit is {MAX_IMAGE_PIXELS:,} pixels"
                )
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InvalidInputError(f"could not decode the image: {e}") from e
    rgb.thumbnail((options.max_side * 2, options.max_side * 2))
    frame = np.asarray(rgb, dtype=np.uint8)
    return DecodedMedia(
        kind=MediaKind.IMAGE,
        video=VideoFrames(frames=[frame], timestamps=[0.0], duration_s=0.0),
        audio=None,
        duration_s=0.0,
    )


def frame_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    # Even sizes keep FFmpeg's scaler happy with subsampled pixel formats.
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


# Sample rates real audio uses (8 kHz telephone to 384 kHz studio). A header claiming 1 GHz made
# the resampler spend 16 s of CPU on a 128-byte file (found by scripts/fuzz_requests.py).
MIN_AUDIO_RATE, MAX_AUDIO_RATE = 1000, 384_000


def check_decodable(stream: av.stream.Stream, what: str) -> None:
    # A stream in a codec FFmpeg does not know has no codec context; PyAV then raises
    # AttributeError on its first property (found by scripts/fuzz_requests.py: a WAV whose
    # format tag names no codec).
    if stream.codec_context is None:
        raise InvalidInputError(f"the {what} stream is in a codec this server cannot decode")


def check_audio_rate(stream: av.audio.stream.AudioStream) -> None:
    rate = stream.rate or 0
    if rate and not MIN_AUDIO_RATE <= rate <= MAX_AUDIO_RATE:
        raise InvalidInputError(
            f"the audio stream declares {rate} samples per second, which no real recording has"
        )


def mono_samples(frame: av.AudioFrame) -> np.ndarray:
    """The float samples of a resampled mono fltp frame, read within its buffer.

    PyAV's `to_ndarray` trusts the frame's sample count; on a corrupt stream FFmpeg can hand
    back a frame whose plane is shorter, and reading it crashed the process (found by
    scripts/fuzz_requests.py). `np.frombuffer` with a count refuses a short buffer instead."""
    plane = frame.planes[0]
    if plane.buffer_size < frame.samples * 4:
        raise ValueError("an audio frame is shorter than it declares")
    return np.frombuffer(memoryview(plane), dtype=np.float32, count=frame.samples).copy()


def _decode_av(data: bytes, options: DecodeOptions) -> DecodedMedia:
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, UnicodeDecodeError) as e:
        raise InvalidInputError(
            "could not read the media: not a recognised video, audio or image format"
        ) from e
    with container:
        vstream = container.streams.video[0] if container.streams.video else None
        astream = container.streams.audio[0] if container.streams.audio else None
        if vstream is None and astream is None:
            raise InvalidInputError("the media has no audio or video stream")
        if vstream is not None:
            check_decodable(vstream, "video")
        if astream is not None:
            check_decodable(astream, "audio")
            check_audio_rate(astream)
        declared = float(container.duration / av.time_base) if container.duration else 0.0
        if declared > options.max_duration_s:
            raise PayloadTooLargeError(
                f"the media lasts {declared:.0f} s; the limit is {options.max_duration_s:.0f} s"
            )
        # With an unknown length, sample at frame_rate and thin out evenly at the end.
        step = 1.0 / options.frame_rate
        if declared > 0 and declared * options.frame_rate > options.max_frames:
            step = declared / options.max_frames
        frames: list[np.ndarray] = []
        stamps: list[float] = []
        chunks: list[np.ndarray] = []
        warnings: list[str] = []
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
        next_t = 0.0
        last_t = 0.0
        streams = [s for s in (vstream, astream) if s is not None]
        if vstream is not None:
            vstream.thread_type = "AUTO"
        try:
            for packet in container.demux(streams):
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                        continue  # subtitles and data
                    t = float(frame.time) if frame.time is not None else last_t
                    last_t = max(last_t, t)
                    if last_t > options.max_duration_s:
                        raise PayloadTooLargeError(
                            f"the media is longer than the {options.max_duration_s:.0f} s limit"
                        )
                    if isinstance(frame, av.VideoFrame):
                        if t + 1e-6 >= next_t:
                            w, h = frame_size(frame.width, frame.height, options.max_side)
                            frames.append(frame.to_ndarray(format="rgb24", width=w, height=h))
                            stamps.append(t)
                            next_t = t + step
                    elif isinstance(frame, av.AudioFrame):
                        for out in resampler.resample(frame):
                            chunks.append(mono_samples(out))
            for out in resampler.resample(None):
                chunks.append(mono_samples(out))
        except PayloadTooLargeError:
            raise
        except (av.FFmpegError, ValueError) as e:
            # Truncated or partly corrupt files: keep what decoded, tell the client.
            if not frames and not chunks:
                raise InvalidInputError(f"the media could not be decoded: {e}") from e
            warnings.append(f"the media is damaged; analysed the first {last_t:.1f} s only")
            logger.info("partial decode: %s", e)
    if vstream is not None and not frames and astream is None:
        raise InvalidInputError("the video stream holds no decodable frames")
    audio = None
    if astream is not None and chunks:
        samples = np.concatenate(chunks).astype(np.float32, copy=False)
        if samples.size:
            audio = AudioClip(samples=samples, sample_rate=AUDIO_RATE)
    if astream is not None and audio is None:
        warnings.append("the audio stream holds no decodable samples")
    duration = max(declared, last_t, audio.duration_s if audio else 0.0)
    if len(frames) > options.max_frames:
        keep = np.linspace(0, len(frames) - 1, options.max_frames).round().astype(int)
        frames = [frames[i] for i in keep]
        stamps = [stamps[i] for i in keep]
    video = VideoFrames(frames=frames, timestamps=stamps, duration_s=duration) if frames else None
    if video is None and audio is None:
        raise InvalidInputError("the media holds no decodable audio or video")
    kind = MediaKind.VIDEO if video is not None else MediaKind.AUDIO
    return DecodedMedia(kind=kind, video=video, audio=audio, duration_s=duration, warnings=warnings)
