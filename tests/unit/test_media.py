"""Media decoding on real files and on broken input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clients.clipmaker import make_clip
from services.common.errors import InvalidInputError, PayloadTooLargeError
from services.media.decode import DecodeOptions, MediaKind, decode_media

OPTS = DecodeOptions()


@pytest.fixture(scope="module")
def face_bytes(emer_data: Path) -> bytes:
    return next((emer_data / "faces" / "fer2013").glob("happy_*.jpg")).read_bytes()


@pytest.fixture(scope="module")
def speech_bytes(emer_data: Path) -> bytes:
    return (emer_data / "speech" / "ravdess" / "03-01-05-01-02-02-01.wav").read_bytes()


@pytest.fixture(scope="module")
def clip_bytes(face_bytes: bytes, speech_bytes: bytes) -> bytes:
    return make_clip(face_bytes, speech_bytes)


def test_image_decodes_to_one_frame(face_bytes: bytes) -> None:
    media = decode_media(face_bytes, None, OPTS)
    assert media.kind is MediaKind.IMAGE
    assert media.video is not None and len(media.video.frames) == 1
    assert media.video.frames[0].shape == (48, 48, 3)
    assert media.audio is None


def test_wav_decodes_to_16k_mono(speech_bytes: bytes) -> None:
    media = decode_media(speech_bytes, None, OPTS)
    assert media.kind is MediaKind.AUDIO and media.video is None
    assert media.audio is not None and media.audio.sample_rate == 16_000
    # labels.csv gives this RAVDESS clip's duration at 48 kHz
    assert media.audio.duration_s == pytest.approx(3.737, abs=0.05)
    assert media.audio.samples.ndim == 1 and abs(media.audio.samples).max() <= 1.0


def test_video_gives_frames_at_5fps_and_audio(clip_bytes: bytes) -> None:
    media = decode_media(clip_bytes, MediaKind.VIDEO, OPTS)
    assert media.kind is MediaKind.VIDEO
    assert media.video is not None and media.audio is not None
    # 3.7 s at 5 fps
    assert 17 <= len(media.video.frames) <= 20
    assert media.video.frames[0].shape == (480, 640, 3)
    assert media.video.timestamps == sorted(media.video.timestamps)
    assert media.audio.duration_s == pytest.approx(3.74, abs=0.15)


def test_long_video_is_thinned_to_max_frames(clip_bytes: bytes) -> None:
    media = decode_media(clip_bytes, None, DecodeOptions(frame_rate=10, max_frames=8))
    assert media.video is not None and len(media.video.frames) == 8


@pytest.mark.parametrize(
    "data",
    [
        os.urandom(10_000),
        b"%PDF-1.4 not a media file",
        b"\x00" * 1000,
        b"RIFF\x10\x00\x00\x00WAVEfmt ",
    ],
)
def test_garbage_is_invalid_argument(data: bytes) -> None:
    with pytest.raises(InvalidInputError):
        decode_media(data, None, OPTS)


def test_empty_media_is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        decode_media(b"", None, OPTS)


def test_truncated_video_is_invalid_or_partial(clip_bytes: bytes) -> None:
    try:
        media = decode_media(clip_bytes[: len(clip_bytes) // 3], None, OPTS)
    except InvalidInputError:
        return
    assert media.warnings  # whatever was decoded comes with a warning


def test_truncated_image_is_invalid(face_bytes: bytes) -> None:
    with pytest.raises(InvalidInputError):
        decode_media(face_bytes[:40], MediaKind.IMAGE, OPTS)


def test_audio_declared_as_video_is_rejected(speech_bytes: bytes) -> None:
    with pytest.raises(InvalidInputError, match="no video stream"):
        decode_media(speech_bytes, MediaKind.VIDEO, OPTS)


def test_too_long_media_is_resource_exhausted(clip_bytes: bytes) -> None:
    with pytest.raises(PayloadTooLargeError):
        decode_media(clip_bytes, None, DecodeOptions(max_duration_s=1.0))
