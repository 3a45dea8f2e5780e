"""Per-stage and end-to-end latency of the service for a 4-second clip, at concurrency 1.

Starts the real service (`emer serve`, deploy/serve-cpu.yaml), sends the same 4-second clip
(a FER2013 face + a RAVDESS utterance padded to 4 s) N times one after another, and reports
p50/p90 of each stage from the response timings and the client-side round trip. Then the same
number of AnalyzeStream requests: when the first explanation words arrive and when the stream
ends, as a streaming client sees them.

    scripts/netns-run .venv/bin/python benchmarks/latency.py --requests 20 [--config FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from emer_proto import emotion_pb2 as pb

from clients.client import EmotionClient
from clients.clipmaker import load_audio, make_clip
from clients.options import ClientOptions
from services.local_server import local_server

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", REPO.parent / "shared" / "data"))


def four_second_clip(data: Path) -> bytes:
    face = (data / "faces" / "fer2013").glob("happy_*.jpg").__next__().read_bytes()
    speech = load_audio((data / "speech" / "ravdess" / "03-01-03-01-01-01-09.wav").read_bytes())
    speech = np.pad(speech, (0, max(0, 64_000 - len(speech))))[:64_000]
    wav = io.BytesIO()
    sf.write(wav, speech, 16_000, format="WAV")
    return make_clip(face, wav.getvalue(), duration_s=4.0)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument(
        "--config", type=Path, help="Serve config to run (default deploy/serve-cpu.yaml)"
    )
    args = parser.parse_args()

    clip = four_second_clip(data_root())
    request = pb.AnalyzeRequest(media=clip, media_kind=pb.MEDIA_KIND_VIDEO)
    stages: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        local_server(Path(tmp) / "serve.log", config=args.config) as address,
        EmotionClient(ClientOptions(address=address, timeout_s=120)) as client,
    ):
        for _ in range(args.warmup):
            client.analyze(request)
        for _ in range(args.requests):
            t0 = time.perf_counter()
            resp = client.analyze(request)
            stages.setdefault("client round trip", []).append((time.perf_counter() - t0) * 1e3)
            for t in resp.timings:
                stages.setdefault(t.stage, []).append(t.ms)
        for _ in range(args.requests):
            t0 = time.perf_counter()
            first: float | None = None
            for event in client.analyze_stream(request):
                if first is None and event.WhichOneof("event") == "explanation_delta":
                    first = (time.perf_counter() - t0) * 1e3
            stages.setdefault("stream: end", []).append((time.perf_counter() - t0) * 1e3)
            if first is not None:
                stages.setdefault("stream: first explanation words", []).append(first)
    order = [
        "decode",
        "audio",
        "visual",
        "text",
        "clues",
        "explain",
        "total",
        "client round trip",
        "stream: first explanation words",
        "stream: end",
    ]
    rows = {
        s: {"p50_ms": round(percentile(v, 50), 1), "p90_ms": round(percentile(v, 90), 1)}
        for s in order
        if (v := stages.get(s))
    }
    print(
        f"4-second clip, {args.requests} sequential requests, {platform.node()} "
        f"({os.cpu_count()} CPUs)\n"
    )
    print("| stage | p50 ms | p90 ms |\n|---|---|---|")
    for stage, r in rows.items():
        print(f"| {stage} | {r['p50_ms']:.0f} | {r['p90_ms']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
