"""Build test/demo clips: still face images plus speech tracks muxed into an MP4.

Used by the demo, the tests and the benchmarks to make video inputs from image + audio files:
`make_clip` (one face, one speech file) and `make_sequence_clip` (long clips whose face and
voice change over time, part after part).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image


def load_audio(data: bytes, rate: int = 16_000) -> np.ndarray:
    """Decode any audio file to mono float32 at `rate`."""
    out: list[np.ndarray] = []
    with av.open(io.BytesIO(data), mode="r") as container:
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            out.extend(f.to_ndarray()[0] for f in resampler.resample(frame))
        out.extend(f.to_ndarray()[0] for f in resampler.resample(None))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def make_clip(
    image: bytes | Image.Image,
    audio: bytes | None,
    *,
    size: tuple[int, int] = (640, 480),
    fps: int = 10,
    duration_s: float | None = None,
    face_scale: float = 0.6,
    motion: bool = True,
) -> bytes:
    """Return MP4 bytes: `image` centred on a grey canvas (gently moving when `motion`),
    with `audio` (any format PyAV reads) as an AAC track. Duration follows the audio."""
    img = image if isinstance(image, Image.Image) else Image.open(io.BytesIO(image))
    img = img.convert("RGB")
    samples = load_audio(audio, 16_000) if audio else np.zeros(0, np.float32)
    if duration_s is None:
        duration_s = max(1.0, len(samples) / 16_000)
    width, height = size
    side = int(min(width, height) * face_scale)
    face = np.asarray(img.resize((side, side), Image.Resampling.BICUBIC))
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.bit_rate = 1_500_000
        as_ = out.add_stream("aac", rate=16_000) if samples.size else None
        if as_ is not None:
            as_.layout = "mono"
        n = round(duration_s * fps)
        for i in range(n):
            canvas = np.full((height, width, 3), 128, np.uint8)
            dx = int(20 * np.sin(2 * np.pi * i / max(n, 1))) if motion else 0
            y0 = (height - side) // 2
            x0 = (width - side) // 2 + dx
            canvas[y0 : y0 + side, x0 : x0 + side] = face
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if as_ is not None:
            chunk = 1024
            for start in range(0, len(samples), chunk):
                part = samples[start : start + chunk][None, :]
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(part), format="fltp", layout="mono"
                )
                af.sample_rate = 16_000
                af.pts = start
                af.time_base = Fraction(1, 16_000)
                out.mux(as_.encode(af))
            out.mux(as_.encode(None))
    return buf.getvalue()


@dataclass(frozen=True)
class ClipPart:
    """One stretch of a sequence clip: `image` on screen for `duration_s`, with the `speech`
    files (any format PyAV reads) played one after the other, `gap_s` of silence between them,
    from the start of the part and again from the first file until the part is full (a file
    that would overrun the part's end is cut there)."""

    image: bytes | Image.Image
    speech: Sequence[bytes]
    duration_s: float
    gap_s: float = 0.6


def _part_audio(part: ClipPart, rate: int) -> np.ndarray:
    n = round(part.duration_s * rate)
    out = np.zeros(n, np.float32)
    voices = [load_audio(s, rate) for s in part.speech]
    voices = [v for v in voices if v.size]
    pos = 0
    while voices and pos < n:
        for v in voices:
            if pos >= n:
                break
            take = min(len(v), n - pos)
            out[pos : pos + take] = v[:take]
            pos += take + round(part.gap_s * rate)
    return out


def make_sequence_clip(
    parts: Sequence[ClipPart],
    *,
    size: tuple[int, int] = (640, 480),
    fps: int = 10,
    face_scale: float = 0.6,
    bit_rate: int = 1_500_000,
    noise: float = 0.0,
    seed: int = 0,
) -> bytes:
    """Return MP4 bytes (mpeg4 video, AAC audio, interleaved as cameras write them) that show
    the parts one after the other: a long clip whose content (face, voice) changes over time.
    Frames are generated and encoded one at a time; only the audio track is held whole.

    `noise`: standard deviation (grey levels) of per-frame sensor-like noise; a still face
    compresses to almost nothing, noise brings the file to a camera's size (about `bit_rate`)."""
    rate = 16_000
    width, height = size
    side = int(min(width, height) * face_scale)
    faces = []
    for part in parts:
        img = (
            part.image
            if isinstance(part.image, Image.Image)
            else Image.open(io.BytesIO(part.image))
        )
        faces.append(np.asarray(img.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)))
    samples = np.concatenate([_part_audio(p, rate) for p in parts]) if parts else np.zeros(0)
    starts = np.cumsum([0.0, *(p.duration_s for p in parts)])
    n = round(float(starts[-1]) * fps)
    rng = np.random.default_rng(seed)
    # A few noise planes, cycled: cheap to add, and longer than a GOP so the encoder pays for it.
    grains = (
        [rng.normal(0.0, noise, (height, width, 1)).astype(np.float32) for _ in range(17)]
        if noise > 0
        else []
    )
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.bit_rate = bit_rate
        as_ = out.add_stream("aac", rate=rate)
        as_.layout = "mono"
        chunk = 1024
        audio_pos = 0

        def mux_audio_until(t: float | None) -> None:
            nonlocal audio_pos
            stop = len(samples) if t is None else min(len(samples), round(t * rate))
            while audio_pos < stop:
                part_ = samples[audio_pos : audio_pos + chunk][None, :].astype(np.float32)
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(part_), format="fltp", layout="mono"
                )
                af.sample_rate = rate
                af.pts = audio_pos
                af.time_base = Fraction(1, rate)
                out.mux(as_.encode(af))
                audio_pos += chunk

        for i in range(n):
            t = i / fps
            k = min(int(np.searchsorted(starts, t, side="right")) - 1, len(parts) - 1)
            canvas = np.full((height, width, 3), 128, np.uint8)
            dx = int(20 * np.sin(2 * np.pi * i / (4 * fps)))  # a slow sway, period 4 s
            y0 = (height - side) // 2
            x0 = (width - side) // 2 + dx
            canvas[y0 : y0 + side, x0 : x0 + side] = faces[k]
            if grains:
                canvas = np.clip(canvas + grains[i % len(grains)], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
            mux_audio_until((i + 1) / fps)
        out.mux(vs.encode(None))
        mux_audio_until(None)
        out.mux(as_.encode(None))
    return buf.getvalue()


# A "story" built from the shared evaluation data ($EMER_DATA, see its README): a FER2013 face
# and RAVDESS utterances of the same emotion (the strong-intensity ones where RAVDESS has them),
# changing every part. The faces are among those the embedded visual model reads as their label
# when shown alone in this kind of clip; the long-media test and benchmark use this story.
# (emotion, face image, RAVDESS emotion code)
STORY: tuple[tuple[str, str, str], ...] = (
    ("happy", "happy_PrivateTest_15989691.jpg", "03"),
    ("angry", "angry_PrivateTest_86017870.jpg", "05"),
    ("neutral", "neutral_PrivateTest_78090705.jpg", "01"),
    ("surprise", "surprise_PrivateTest_34468339.jpg", "08"),
    ("happy", "happy_PrivateTest_76073861.jpg", "03"),
    ("angry", "angry_PrivateTest_10131363.jpg", "05"),
)


def _story_speech(data: Path, code: str, count: int = 3) -> list[bytes]:
    """RAVDESS utterances of one emotion code, strong intensity first."""
    files = sorted(
        (data / "speech" / "ravdess").glob(f"03-01-{code}-*.wav"),
        key=lambda p: (p.name.split("-")[3] != "02", p.name),
    )
    return [p.read_bytes() for p in files[:count]]


def story_clip(
    data: Path, seconds: float = 180.0, part_s: float = 30.0, **options: Any
) -> tuple[bytes, list[tuple[float, float, str]]]:
    """A `seconds`-long MP4 of the STORY (parts of `part_s`, cycled) from the data folder
    `data`, and its schedule [(start_s, end_s, emotion)]. `options` go to make_sequence_clip."""
    parts: list[ClipPart] = []
    schedule: list[tuple[float, float, str]] = []
    t = 0.0
    while t < seconds - 1e-6:
        emotion, face, code = STORY[len(parts) % len(STORY)]
        length = min(part_s, seconds - t)
        image = (data / "faces" / "fer2013" / face).read_bytes()
        parts.append(ClipPart(image, _story_speech(data, code), length))
        schedule.append((t, t + length, emotion))
        t += length
    return make_sequence_clip(parts, **options), schedule
