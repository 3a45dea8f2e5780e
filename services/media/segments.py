"""Long media: probe the container (`probe_media`), then decode it as a stream of segments
(`SegmentReader`), never holding more than one segment decoded. The per-stream checks and
conversions are the whole-media decoder's (`services.media.decode`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import av
import numpy as np

from services.common.errors import InvalidInputError, PayloadTooLargeError
from services.common.types import AudioClip, VideoFrames
from services.media.decode import (
    AUDIO_RATE,
    DecodeOptions,
    MediaKind,
    check_audio_rate,
    check_decodable,
    frame_size,
    looks_like_image,
    mono_samples,
)

logger = logging.getLogger(__name__)

# Long media: audio frames that start this much later than the samples so far leave a gap.
AUDIO_GAP_S = 0.25


@dataclass(frozen=True)
class MediaProbe:
    """What the container says about audio/video media before anything is decoded."""

    duration_s: float
    declared: bool  # False: measured from the packet timestamps (the container has no length)
    has_video: bool  # a real video stream (an audio file's cover picture does not count)
    has_audio: bool


@dataclass
class MediaSegment:
    """One decoded time range [start_s, end_s) of long media.

    Timestamps are absolute (seconds from the start of the media); `audio` holds the 16 kHz mono
    samples of this range only, `video` at most `DecodeOptions.max_frames` frames sampled in it.
    """

    index: int
    start_s: float
    end_s: float
    kind: MediaKind
    video: VideoFrames | None
    audio: AudioClip | None
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _is_attached_picture(stream: av.video.stream.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def probe_media(
    data: bytes, kind_hint: MediaKind | None, options: DecodeOptions
) -> MediaProbe | None:
    """Duration and streams of audio/video `data`, decoding nothing.

    The duration is the container's declared one, or (when it declares none) the end of the last
    packet, found by demuxing without decoding. None for images and for data PyAV cannot read:
    `decode_media` then gives its usual answer or error. Raises PayloadTooLargeError when the
    media is longer than `options.max_duration_s`, InvalidInputError when its first audio or
    video stream is in a codec FFmpeg does not know.
    """
    if not data or kind_hint is MediaKind.IMAGE or (kind_hint is None and looks_like_image(data)):
        return None
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, UnicodeDecodeError):
        return None
    with container:
        videos = [s for s in container.streams.video if not _is_attached_picture(s)]
        audios = list(container.streams.audio)
        if not container.streams.video and not audios:
            return None
        for first, what in ((videos[:1], "video"), (audios[:1], "audio")):
            for stream in first:
                check_decodable(stream, what)
        declared = float(container.duration / av.time_base) if container.duration else 0.0
        duration = declared
        if declared <= 0:
            streams = [*videos[:1], *audios[:1]]
            try:
                for packet in container.demux(streams):
                    if packet.pts is None or packet.time_base is None:
                        continue
                    end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    duration = max(duration, end)
                    if duration > options.max_duration_s:
                        break
            except (av.FFmpegError, ValueError):
                pass  # damaged: the decoder reports it; the length read so far stands
    if duration > options.max_duration_s:
        raise PayloadTooLargeError(
            f"the media lasts {duration:.0f} s; the limit is {options.max_duration_s:.0f} s"
        )
    return MediaProbe(
        duration_s=duration,
        declared=declared > 0,
        has_video=bool(videos) and kind_hint is not MediaKind.AUDIO,
        has_audio=bool(audios),
    )


def segment_bounds(duration_s: float, segment_s: float) -> list[tuple[float, float]]:
    """[start, end) ranges of `segment_s` seconds from 0; a last piece shorter than half a segment
    joins the one before it (a 181 s clip in 15 s segments ends with one 16 s segment)."""
    if duration_s <= 0 or segment_s <= 0:
        return [(0.0, max(duration_s, 0.0))]
    n = max(1, int(duration_s // segment_s))
    if duration_s - n * segment_s >= segment_s / 2:
        n += 1
    bounds = [(k * segment_s, (k + 1) * segment_s) for k in range(n)]
    bounds[-1] = (bounds[-1][0], duration_s)
    return bounds


class _StreamReader:
    """One stream of the media, demuxed from its own container so that badly interleaved files
    (all video first, then all audio) never make one stream wait in memory for the other."""

    def __init__(self, data: bytes, name: str, options: DecodeOptions) -> None:
        self.name = name
        self.options = options
        self.container = av.open(io.BytesIO(data), mode="r")
        self.done = False
        self.damaged = ""  # the decoder's error, when the stream ended on one
        self.last_t = 0.0
        self.notes: list[str] = []  # warnings for the segment being read

    def close(self) -> None:
        self.container.close()

    @property
    def exhausted(self) -> bool:
        """Nothing more to hand out."""
        return self.done

    def _fail(self, error: Exception) -> None:
        self.done = True
        self.damaged = str(error)
        logger.info("partial decode of the %s stream: %s", self.name, error)

    def _check_length(self, t: float) -> None:
        if t > self.options.max_duration_s:
            raise PayloadTooLargeError(
                f"the media is longer than the {self.options.max_duration_s:.0f} s limit"
            )


class _VideoReader(_StreamReader):
    def __init__(self, data: bytes, options: DecodeOptions) -> None:
        super().__init__(data, "video", options)
        stream = next(s for s in self.container.streams.video if not _is_attached_picture(s))
        stream.thread_type = "AUTO"
        self._frames = self._decode(stream)
        self._ahead: av.VideoFrame | None = None  # the first frame of the next segment

    def _decode(self, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        for packet in self.container.demux(stream):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    yield frame

    @property
    def exhausted(self) -> bool:
        return self.done and self._ahead is None

    def _next(self) -> av.VideoFrame | None:
        if self._ahead is not None:
            frame, self._ahead = self._ahead, None
            return frame
        if self.done:
            return None
        try:
            return next(self._frames)
        except StopIteration:
            self.done = True
        except (av.FFmpegError, ValueError) as e:
            self._fail(e)
        return None

    def take(self, start: float, end: float, length: float) -> tuple[list[np.ndarray], list[float]]:
        """Frames with start <= t < end, sampled as `decode_media` samples a clip of `length`."""
        opts = self.options
        step = 1.0 / opts.frame_rate
        if length > 0 and length * opts.frame_rate > opts.max_frames:
            step = length / opts.max_frames
        frames: list[np.ndarray] = []
        stamps: list[float] = []
        next_t = start
        while (frame := self._next()) is not None:
            t = float(frame.time) if frame.time is not None else self.last_t
            if t >= end:
                self._ahead = frame
                break
            self.last_t = max(self.last_t, t)
            self._check_length(self.last_t)
            if t + 1e-6 >= next_t:
                w, h = frame_size(frame.width, frame.height, opts.max_side)
                frames.append(frame.to_ndarray(format="rgb24", width=w, height=h))
                stamps.append(t)
                next_t = t + step
        if len(frames) > opts.max_frames:
            keep = np.linspace(0, len(frames) - 1, opts.max_frames).round().astype(int)
            frames = [frames[i] for i in keep]
            stamps = [stamps[i] for i in keep]
        return frames, stamps


class _AudioReader(_StreamReader):
    def __init__(self, data: bytes, options: DecodeOptions) -> None:
        super().__init__(data, "audio", options)
        stream = self.container.streams.audio[0]
        check_audio_rate(stream)
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
        self._frames = self._decode(stream)
        self._buffer: list[np.ndarray] = []  # resampled, not yet handed out
        self._buffered = 0
        self.handed_out = 0  # samples given to earlier segments

    def _decode(self, stream: av.audio.stream.AudioStream) -> Iterator[av.AudioFrame]:
        for packet in self.container.demux(stream):
            for frame in packet.decode():
                if isinstance(frame, av.AudioFrame):
                    yield frame

    @property
    def exhausted(self) -> bool:
        return self.done and self._buffered == 0

    def _pull(self) -> None:
        """Decode one more frame into the buffer (or mark the stream done)."""
        out: list[av.AudioFrame] = []
        try:
            frame = next(self._frames)
            clock = (self.handed_out + self._buffered) / AUDIO_RATE
            if frame.time is not None and frame.time - clock > AUDIO_GAP_S:
                # Lost or damaged packets: silence keeps what follows at its true time.
                gap = np.zeros(round((frame.time - clock) * AUDIO_RATE), np.float32)
                self._buffer.append(gap)
                self._buffered += gap.size
                self.notes.append(
                    f"the audio has a gap of {gap.size / AUDIO_RATE:.1f} s at {clock:.1f} s "
                    "(missing or damaged data), filled with silence"
                )
            out = self._resampler.resample(frame)
        except StopIteration:
            self.done = True
        except (av.FFmpegError, ValueError) as e:
            self._fail(e)
        if self.done:
            with contextlib.suppress(av.FFmpegError, ValueError):
                out = [*out, *self._resampler.resample(None)]
        for chunk in out:
            try:
                samples = mono_samples(chunk)
            except ValueError as e:
                self._fail(e)
                break
            self._buffer.append(samples)
            self._buffered += len(samples)
        total = self.handed_out + self._buffered
        self.last_t = total / AUDIO_RATE
        self._check_length(self.last_t)

    def take(self, end: float) -> np.ndarray:
        """The samples up to time `end` (absolute; inf = to the end of the stream)."""
        target = round(end * AUDIO_RATE) if np.isfinite(end) else None
        while not self.done and (target is None or self.handed_out + self._buffered < target):
            self._pull()
        samples = (
            np.concatenate(self._buffer).astype(np.float32, copy=False)
            if self._buffer
            else np.zeros(0, np.float32)
        )
        cut = (
            len(samples) if target is None else max(0, min(len(samples), target - self.handed_out))
        )
        rest = samples[cut:]
        self._buffer = [rest.copy()] if rest.size else []
        self._buffered = int(rest.size)
        self.handed_out += cut
        return samples[:cut]


class SegmentReader:
    """Long audio/video media decoded one segment at a time.

    Each `read()` decodes the next segment (None after the last one); only the current segment's
    sampled frames and samples are held, plus one frame of look-ahead. Frames are sampled per
    segment with the `DecodeOptions` rules (frame_rate, at most max_frames spread over the
    segment, max_side); audio is 16 kHz mono. Errors follow `decode_media`: a damaged stream
    ends where it broke, with a warning on that segment (the other stream goes on); nothing
    decodable at all is an InvalidInputError; media longer than max_duration_s a
    PayloadTooLargeError. `read()` and `close()` may be called from any thread, one at a time
    (`close()` waits for a `read()` in progress); `close()` when done.
    """

    def __init__(
        self,
        data: bytes,
        kind_hint: MediaKind | None,
        options: DecodeOptions,
        segment_s: float,
        probe: MediaProbe | None = None,
    ) -> None:
        if not data:
            raise InvalidInputError("the media field is empty")
        probe = probe or probe_media(data, kind_hint, options)
        if probe is None:
            raise InvalidInputError(
                "could not read the media: not a recognised video or audio format"
            )
        if not probe.has_video and not probe.has_audio:
            raise InvalidInputError("the media has no audio or video stream")
        if kind_hint is MediaKind.VIDEO and not probe.has_video:
            raise InvalidInputError("media_kind is VIDEO but the file has no video stream")
        if kind_hint is MediaKind.AUDIO and not probe.has_audio:
            raise InvalidInputError("media_kind is AUDIO but the file has no audio stream")
        self.probe = probe
        self.options = options
        self.kind = MediaKind.VIDEO if probe.has_video else MediaKind.AUDIO
        self.bounds = segment_bounds(probe.duration_s, segment_s)
        self._next_index = 0
        self._samples_total = 0
        self._lock = threading.Lock()
        self._closed = False
        self.video: _VideoReader | None = None
        self.audio: _AudioReader | None = None
        try:
            self.video = _VideoReader(data, options) if probe.has_video else None
            self.audio = _AudioReader(data, options) if probe.has_audio else None
        except (av.FFmpegError, ValueError, StopIteration) as e:
            self.close()
            raise InvalidInputError(f"the media could not be decoded: {e}") from e

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for reader in (self.video, self.audio):
                if reader is not None:
                    reader.close()

    def _readers(self) -> list[_StreamReader]:
        return [r for r in (self.video, self.audio) if r is not None]

    def _exhausted(self) -> bool:
        return all(r.exhausted for r in self._readers())

    def read(self) -> MediaSegment | None:
        """The next segment, or None after the last one (or once closed)."""
        with self._lock:
            if self._closed:
                return None
            return self._read()

    def _read(self) -> MediaSegment | None:
        k = self._next_index
        if k >= len(self.bounds) or (k > 0 and self._exhausted()):
            return None
        self._next_index += 1
        start, planned_end = self.bounds[k]
        last = k == len(self.bounds) - 1
        # The last segment takes whatever follows, should the media run past its stated length.
        end = float("inf") if last else planned_end
        warnings: list[str] = []
        before = {r.name: r.damaged for r in self._readers()}
        frames: list[np.ndarray] = []
        stamps: list[float] = []
        if self.video is not None:
            frames, stamps = self.video.take(start, end, planned_end - start)
        samples = self.audio.take(end) if self.audio is not None else np.zeros(0, np.float32)
        self._samples_total += int(samples.size)
        for r in self._readers():
            warnings.extend(r.notes)
            r.notes.clear()
            if r.damaged and not before[r.name]:
                warnings.append(
                    f"the media is damaged: its {r.name} stream could be decoded up to "
                    f"{r.last_t:.1f} s only"
                )
        seg_end = planned_end
        if last:
            seg_end = max(planned_end, *(r.last_t for r in self._readers()))
        if k == 0 and not frames and not samples.size and self._exhausted():
            damage = "; ".join(r.damaged for r in self._readers() if r.damaged)
            if damage:
                raise InvalidInputError(f"the media could not be decoded: {damage}")
            if self.audio is None:
                raise InvalidInputError("the video stream holds no decodable frames")
            raise InvalidInputError("the media holds no decodable audio or video")
        if self._exhausted() and self.audio is not None and self._samples_total == 0:
            warnings.append("the audio stream holds no decodable samples")
        if self._exhausted():
            reached = max(r.last_t for r in self._readers())
            if reached < self.probe.duration_s - max(2.0, planned_end - start):
                warnings.append(
                    f"the media ends at {reached:.1f} s although it declares "
                    f"{self.probe.duration_s:.1f} s; analysed the first {reached:.1f} s only"
                )
        video = (
            VideoFrames(frames=frames, timestamps=stamps, duration_s=seg_end - start)
            if frames
            else None
        )
        audio = AudioClip(samples=samples, sample_rate=AUDIO_RATE) if samples.size else None
        return MediaSegment(
            index=k,
            start_s=start,
            end_s=seg_end,
            kind=self.kind,
            video=video,
            audio=audio,
            warnings=warnings,
        )

    def __iter__(self) -> Iterator[MediaSegment]:
        while (segment := self.read()) is not None:
            yield segment
