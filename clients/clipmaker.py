"""Build small test/demo clips: a still face image plus a speech track muxed into an MP4.

Used by the demo, the tests and the benchmarks to make video inputs from image + audio files.
"""

from __future__ import annotations

import io
from fractions import Fraction

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
