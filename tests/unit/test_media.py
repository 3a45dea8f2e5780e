"""Media decoding on real files and on broken input."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf

from clients.clipmaker import load_audio, make_clip, story_clip
from services.common.errors import InvalidInputError, PayloadTooLargeError
from services.media.decode import DecodeOptions, MediaKind, decode_media
from services.media.segments import SegmentReader, probe_media, segment_bounds

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


# --- long media: probe and segment stream -------------------------------------------------------


@pytest.fixture(scope="module")
def story(emer_data: Path) -> tuple[bytes, list[tuple[float, float, str]]]:
    """47 s of real faces and speech (five parts of 10 s, the last 7 s) as one MP4."""
    return story_clip(emer_data, seconds=47.0, part_s=10.0)


def remux_live_mkv(data: bytes) -> bytes:
    """The same streams in a Matroska file written as a live stream: it declares no duration."""
    buf = io.BytesIO()
    with (
        av.open(io.BytesIO(data), "r") as src,
        av.open(buf, "w", format="matroska", options={"live": "1"}) as dst,
    ):
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            dst.mux(packet)
    return buf.getvalue()


def read_all(
    data: bytes,
    options: DecodeOptions = OPTS,
    segment_s: float = 15.0,
    kind: MediaKind | None = None,
) -> list[Any]:
    with SegmentReader(data, kind, options, segment_s) as reader:
        return list(reader)


@pytest.mark.parametrize(
    ("duration", "segment", "expected"),
    [
        (180.0, 15.0, [(k * 15.0, (k + 1) * 15.0) for k in range(12)]),
        # a last piece under half a segment joins the one before; from half a segment on it is
        # a segment of its own
        (47.0, 15.0, [(0.0, 15.0), (15.0, 30.0), (30.0, 47.0)]),
        (38.0, 15.0, [(0.0, 15.0), (15.0, 30.0), (30.0, 38.0)]),
        (10.0, 15.0, [(0.0, 10.0)]),
    ],
)
def test_segment_bounds_are_contiguous_multiples(
    duration: float, segment: float, expected: list[tuple[float, float]]
) -> None:
    assert segment_bounds(duration, segment) == expected


def test_probe_reads_declared_or_measured_duration(
    story: tuple[bytes, list[Any]], face_bytes: bytes, speech_bytes: bytes
) -> None:
    clip, _ = story
    probe = probe_media(clip, None, OPTS)
    assert probe is not None and probe.declared
    assert probe.duration_s == pytest.approx(47.0, abs=0.1)
    assert probe.has_video and probe.has_audio
    # A live Matroska file declares no length: it is measured from its packets.
    live = probe_media(remux_live_mkv(clip), None, OPTS)
    assert live is not None and not live.declared
    assert live.duration_s == pytest.approx(47.0, abs=0.2)
    # An audio hint drops the video; images and unreadable bytes are not probed.
    hinted = probe_media(clip, MediaKind.AUDIO, OPTS)
    assert hinted is not None and not hinted.has_video
    assert probe_media(face_bytes, None, OPTS) is None
    assert probe_media(os.urandom(5000), None, OPTS) is None
    wav = probe_media(speech_bytes, None, OPTS)
    assert wav is not None and not wav.has_video
    with pytest.raises(PayloadTooLargeError, match="limit is 30 s"):
        probe_media(clip, None, DecodeOptions(max_duration_s=30.0))


def test_segments_cover_the_media_with_absolute_times(story: tuple[bytes, list[Any]]) -> None:
    clip, _ = story
    segments = read_all(clip)
    assert [(s.index, s.start_s) for s in segments] == [(0, 0.0), (1, 15.0), (2, 30.0)]
    assert [s.end_s for s in segments[:2]] == [15.0, 30.0]
    assert segments[-1].end_s == pytest.approx(47.0, abs=0.1)  # the 2 s tail joined segment 2
    for seg in segments:
        assert seg.kind is MediaKind.VIDEO and not seg.warnings
        assert seg.video is not None and seg.audio is not None
        stamps = seg.video.timestamps
        assert stamps == sorted(stamps)
        assert seg.start_s <= stamps[0] < seg.start_s + 1.0  # absolute, from the segment start
        assert stamps[-1] < seg.end_s and stamps[-1] > seg.end_s - 1.5  # spread to its end
        # The clip runs at 10 fps: 5 fps would be 75 frames; max_frames (32) bounds them.
        assert 25 <= len(seg.video.frames) <= OPTS.max_frames
        assert seg.video.frames[0].shape == (480, 640, 3)
        assert seg.video.duration_s == pytest.approx(seg.end_s - seg.start_s)
        assert seg.audio.sample_rate == 16_000
    # Audio is cut exactly at the boundaries: 15 s, 15 s, then the rest.
    assert [len(s.audio.samples) for s in segments[:2]] == [240_000, 240_000]
    assert segments[-1].audio.duration_s == pytest.approx(17.0, abs=0.1)


def test_segment_audio_joins_into_the_whole_file_audio(story: tuple[bytes, list[Any]]) -> None:
    clip, _ = story
    whole = decode_media(clip, None, OPTS)
    joined = np.concatenate([s.audio.samples for s in read_all(clip)])
    assert whole.audio is not None
    np.testing.assert_array_equal(joined, whole.audio.samples)


def test_frames_per_segment_follow_the_decode_options(story: tuple[bytes, list[Any]]) -> None:
    clip, _ = story
    options = DecodeOptions(frame_rate=5.0, max_frames=8, max_side=320)
    for seg in read_all(clip, options, segment_s=10.0):
        assert seg.video is not None
        assert len(seg.video.frames) <= 8
        assert seg.video.frames[0].shape == (240, 320, 3)
        # 8 frames spread over the segment, not bunched at its start
        assert seg.video.timestamps[-1] - seg.video.timestamps[0] >= 0.7 * seg.duration_s
    # A short segment keeps the frame rate: 5 fps over 7 s (the 40-47 s tail of 10 s segments)
    last = read_all(clip, DecodeOptions(max_frames=100), segment_s=10.0)[-1]
    assert last.start_s == 40.0 and last.video is not None
    assert 34 <= len(last.video.frames) <= 36


def test_unknown_length_media_streams_the_same(story: tuple[bytes, list[Any]]) -> None:
    clip, _ = story
    segments = read_all(remux_live_mkv(clip))
    assert [s.start_s for s in segments] == [0.0, 15.0, 30.0]
    assert segments[-1].end_s == pytest.approx(47.0, abs=0.2)
    assert all(s.video is not None and s.audio is not None for s in segments)


def test_damaged_middle_keeps_audio_on_time_with_a_warning(story: tuple[bytes, list[Any]]) -> None:
    data = bytearray(remux_live_mkv(story[0]))
    cut = len(data) // 2
    data[cut : cut + 20_000] = bytes(20_000)  # about 2 s of packets lost mid-file
    segments = read_all(bytes(data))
    assert len(segments) == 3
    warned = [s for s in segments if s.warnings]
    assert len(warned) == 1 and "gap" in warned[0].warnings[0]
    assert 15.0 <= warned[0].start_s <= 30.0
    # The lost stretch is silence: later audio keeps its time, segments keep their length.
    assert [len(s.audio.samples) for s in segments[:2]] == [240_000, 240_000]
    assert segments[-1].audio.duration_s == pytest.approx(17.0, abs=0.2)


def test_truncated_long_media_ends_early_or_is_invalid(story: tuple[bytes, list[Any]]) -> None:
    live = remux_live_mkv(story[0])
    segments = read_all(live[: len(live) * 6 // 10])
    assert 2 <= len(segments) <= 3
    assert segments[-1].end_s < 40.0
    # An MP4 cut short loses its index (written at the end): nothing can be read.
    with pytest.raises(InvalidInputError):
        SegmentReader(story[0][: len(story[0]) // 2], None, OPTS, 15.0)


def test_segment_reader_hints_and_audio_only(
    story: tuple[bytes, list[Any]], speech_bytes: bytes
) -> None:
    clip, _ = story
    segments = read_all(clip, kind=MediaKind.AUDIO)
    assert all(s.kind is MediaKind.AUDIO and s.video is None for s in segments)
    with pytest.raises(InvalidInputError, match="no video stream"):
        SegmentReader(speech_bytes, MediaKind.VIDEO, OPTS, 15.0)
    # A long recording without video: audio segments only
    voice = load_audio(speech_bytes)
    wav = io.BytesIO()
    sf.write(wav, np.tile(voice, 12), 16_000, format="WAV")
    audio_only = read_all(wav.getvalue())
    assert len(audio_only) == 3 and all(s.video is None for s in audio_only)
    assert sum(len(s.audio.samples) for s in audio_only) == 12 * len(voice)
    with pytest.raises(PayloadTooLargeError):
        SegmentReader(clip, None, DecodeOptions(max_duration_s=20.0), 15.0)


def test_reader_read_after_close_is_safe(story: tuple[bytes, list[Any]]) -> None:
    clip, _ = story
    reader = SegmentReader(clip, None, OPTS, 15.0)
    first = reader.read()
    assert first is not None and first.index == 0
    reader.close()
    assert reader.read() is None  # closed: no more segments, no error
    reader.close()  # twice is fine


# Inputs scripts/fuzz_requests.py found (docs/api.md#fuzzing).
FUZZ_DATA = Path(__file__).resolve().parents[1] / "data" / "fuzz"


def test_a_corrupt_audio_frame_is_refused_not_a_crash() -> None:
    # The demo video with mutated bytes: an audio frame shorter than it declares made PyAV's
    # to_ndarray read past its buffer (a segfault that would take the gateway replica down).
    data = (FUZZ_DATA / "short-audio-frame.mp4").read_bytes()
    # Before the fix this process died here; now what decoded is kept and the damage is said.
    media = decode_media(data, None, DecodeOptions(max_frames=8))
    assert media.video is not None and media.warnings


def test_an_audio_stream_in_no_known_codec_is_refused_not_a_crash() -> None:
    import struct

    # The fuzzer's WAV: format tag 0x0100 names no codec, so the stream has no codec context
    # and PyAV raised AttributeError (a traceback to the client) on its sample rate.
    pcm = b"\x01\x02" * 64
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 0x0100, 1, 16000, 32000, 2, 16)
        + b"data"
        + struct.pack("<I", len(pcm))
    )
    with pytest.raises(InvalidInputError, match="codec this server cannot decode"):
        decode_media(header + pcm, None, DecodeOptions())


def test_an_absurd_sample_rate_is_refused_at_once() -> None:
    import struct
    import time

    rate = 1_048_576_256  # what the fuzzer's 128-byte WAV claimed: 16 s of resampling
    pcm = b"\x01\x02" * 16
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", len(pcm))
    )
    t0 = time.monotonic()
    with pytest.raises(InvalidInputError, match="samples per second"):
        decode_media(header + pcm, None, DecodeOptions())
    assert time.monotonic() - t0 < 2.0
