"""The service's performance ratios on this machine, all measured within one run.

1. Starts the real service (`emer serve`, deploy/serve-cpu.yaml: the embedded clue models and
   the SmolLM2 explainer on vLLM) and sends 4-second video clips (real FER2013 faces with real
   RAVDESS speech, no subtitle: the transcript comes from ASR, as in the research scripts).
   - concurrency 1, one request after another: per request,
     fan-out ratio = client round trip / (decode + critical clue path + explain), where the
     critical clue path is max(audio + text, visual) because without a subtitle the text clue
     waits for the ASR transcript (the labels are made inside the explain stage);
     ingress overhead = client round trip - (decode + critical clue path + explain).
   - closed-loop throughput for `--duration` seconds at concurrency 1 and at concurrency 8.
2. Stops the service and runs the sequential baseline in this process: the same models (same
   configs), the same clips, one clip at a time, one model after another (decode, audio + ASR,
   visual, text, the explainer with the same vLLM engine and prompts), like the reference
   research scripts.
3. Prints the ratios against their targets, and where the CPU time went in each throughput
   phase (every process on the machine, `benchmarks/cpu_usage.py`).

    scripts/netns-run .venv/bin/python benchmarks/perf_ratios.py [--duration 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml
from cpu_usage import cpu_by_process, cpu_snapshot, format_usage
from emer_proto import emotion_pb2 as pb

from clients.client import EmotionClient
from clients.clipmaker import load_audio, make_clip
from clients.options import ClientOptions
from services.local_server import local_server

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "serve-cpu.yaml"
CLIP_S = 4.0


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", REPO.parent / "shared" / "data"))


def make_clips(data: Path, n: int) -> list[bytes]:
    """n different 4-second clips: FER2013 faces and RAVDESS utterances of several emotions."""
    faces = sorted((data / "faces" / "fer2013").glob("*.jpg"))
    speech = sorted((data / "speech" / "ravdess").glob("*.wav"))
    if not faces or not speech:
        raise SystemExit(f"no FER2013 faces or RAVDESS speech under {data} (set EMER_DATA)")
    rng = np.random.default_rng(0)
    clips = []
    for _ in range(n):
        face = faces[int(rng.integers(len(faces)))].read_bytes()
        y = load_audio(speech[int(rng.integers(len(speech)))].read_bytes())
        samples = int(CLIP_S * 16_000)
        y = np.pad(y, (0, max(0, samples - len(y))))[:samples]
        wav = io.BytesIO()
        sf.write(wav, y, 16_000, format="WAV")
        clips.append(make_clip(face, wav.getvalue(), duration_s=CLIP_S))
    return clips


def request(clip: bytes) -> pb.AnalyzeRequest:
    return pb.AnalyzeRequest(media=clip, media_kind=pb.MEDIA_KIND_VIDEO)


def model_path_ms(timings: dict[str, float]) -> float:
    """decode + critical clue path + explain, from the stage times the service reports."""
    clues = max(timings.get("audio", 0.0) + timings.get("text", 0.0), timings.get("visual", 0.0))
    return timings.get("decode", 0.0) + clues + timings.get("explain", 0.0)


def latency_phase(address: str, clips: list[bytes], n: int) -> dict[str, Any]:
    fanout, overhead, rtts = [], [], []
    with EmotionClient(ClientOptions(address=address, timeout_s=300)) as client:
        for i in range(n):
            t0 = time.perf_counter()
            resp = client.analyze(request(clips[i % len(clips)]))
            rtt = (time.perf_counter() - t0) * 1e3
            timings = {t.stage: t.ms for t in resp.timings}
            path = model_path_ms(timings)
            rtts.append(rtt)
            fanout.append(rtt / path)
            overhead.append(rtt - path)
    return {
        "requests": n,
        "round_trip_p50_ms": float(np.median(rtts)),
        "fanout_ratio_p50": float(np.median(fanout)),
        "ingress_overhead_p50_ms": float(np.median(overhead)),
        "ingress_overhead_p90_ms": float(np.percentile(overhead, 90)),
    }


def throughput_phase(
    address: str, clips: list[bytes], concurrency: int, duration_s: float
) -> dict[str, Any]:
    """Closed loop: `concurrency` workers send back to back; requests that finish inside the
    window count (the window starts after every worker's first answer: no cold start)."""
    done: list[tuple[float, float]] = []  # (finish time, latency s)
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    started = threading.Barrier(concurrency + 1)

    def worker(k: int) -> None:
        with EmotionClient(ClientOptions(address=address, timeout_s=300)) as client:
            client.analyze(request(clips[k % len(clips)]))  # warm this worker's channel
            started.wait()
            i = k
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    client.analyze(request(clips[i % len(clips)]))
                    with lock:
                        done.append((time.perf_counter(), time.perf_counter() - t0))
                except Exception as e:  # counted, reported
                    with lock:
                        errors.append(type(e).__name__)
                i += concurrency

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    started.wait()
    before, t_start = cpu_snapshot(), time.perf_counter()
    time.sleep(duration_s)
    t_end, after = time.perf_counter(), cpu_snapshot()
    stop.set()
    for t in threads:
        t.join()
    inside = [lat for fin, lat in done if fin <= t_end]
    wall = t_end - t_start
    used = cpu_by_process(before, after)
    return {
        "concurrency": concurrency,
        "requests": len(inside),
        "errors": len(errors),
        "throughput_rps": len(inside) / wall,
        "latency_p50_s": float(np.median(inside)) if inside else float("nan"),
        "cpu_s_per_request": sum(used.values()) / max(1, len(inside)),
        "cpu": format_usage(used, wall),
    }


async def sequential_baseline(
    app: dict[str, Any], clips: list[bytes], n: int
) -> tuple[dict[str, Any], str]:
    """The same models in this process, one clip at a time, one model after another."""
    from services.audio import load_model as load_audio
    from services.audio.config import AudioConfig
    from services.explainer.composer import Explanation
    from services.explainer.config import ExplainerConfig
    from services.explainer.explainer import ExplainerCore
    from services.explainer.vllm_engine import start_engine
    from services.gateway.config import GatewayConfig
    from services.media.decode import DecodeOptions, decode_media
    from services.text import load_model as load_text
    from services.text.config import TextConfig
    from services.visual import load_model as load_visual
    from services.visual.config import VisualConfig

    audio = load_audio(AudioConfig.model_validate(app.get("audio", {})))
    visual = load_visual(VisualConfig.model_validate(app.get("visual", {})))
    text = load_text(TextConfig.model_validate(app.get("text", {})))
    for model in (audio, visual, text):
        model.warmup()
    ex_config = ExplainerConfig.model_validate(app.get("explainer", {}))
    engine = await start_engine(ex_config.llm)
    core = ExplainerCore.from_config(ex_config, engine)
    gw = GatewayConfig.model_validate(app.get("gateway", {}))
    options = DecodeOptions(
        frame_rate=gw.frame_rate,
        max_frames=gw.max_frames,
        max_side=gw.max_frame_side,
        max_duration_s=gw.max_duration_s,
    )

    async def one(clip: bytes) -> Explanation:
        media = decode_media(clip, None, options)
        assert media.audio is not None and media.video is not None
        a = audio.analyze(media.audio, transcribe=True, language="en")
        v = visual.analyze(media.video)
        assert a.transcript is not None, "the baseline clips have speech"
        t = text.analyze(a.transcript.text, language="en")
        result = None
        async for item in core.explain_stream(a.clue, v, t, a.transcript):
            if isinstance(item, Explanation):
                result = item
        assert result is not None
        return result

    try:
        await one(clips[0])  # warm-up
        before, t0 = cpu_snapshot(), time.perf_counter()
        for i in range(n):
            await one(clips[i % len(clips)])
        wall = time.perf_counter() - t0
        used = cpu_by_process(before, cpu_snapshot())
    finally:
        engine.shutdown()
    return (
        {
            "clips": n,
            "throughput_rps": n / wall,
            "latency_mean_s": wall / n,
            "cpu_s_per_request": sum(used.values()) / n,
        },
        format_usage(used, wall),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per throughput phase")
    parser.add_argument("--latency-requests", type=int, default=20)
    parser.add_argument("--baseline-clips", type=int, default=12)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument(
        "--config",
        type=Path,
        default=CONFIG,
        help="Serve config (both the service and the baseline)",
    )
    args = parser.parse_args()

    clips = make_clips(data_root(), 16)
    app: dict[str, Any] = yaml.safe_load(args.config.read_text())["applications"][0]["args"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        local_server(Path(tmp) / "serve.log", config=args.config) as address,
    ):
        latency_phase(address, clips, 3)  # warm-up
        latency = latency_phase(address, clips, args.latency_requests)
        c1 = throughput_phase(address, clips, 1, args.duration)
        c8 = throughput_phase(address, clips, 8, args.duration)
    baseline, baseline_cpu = asyncio.run(sequential_baseline(app, clips, args.baseline_clips))

    ratios = {
        "fanout_ratio": (latency["fanout_ratio_p50"], "<= 1.15"),
        "c8_over_c1_throughput": (c8["throughput_rps"] / c1["throughput_rps"], ">= 3"),
        "ingress_overhead_p50_ms": (latency["ingress_overhead_p50_ms"], "<= 25"),
        "service_c8_over_sequential": (c8["throughput_rps"] / baseline["throughput_rps"], ">= 3"),
    }
    print(f"4-second video clips, no subtitle, {os.cpu_count()} CPUs, {args.config}\n")
    print("| ratio | value | target |\n|---|---|---|")
    for name, (value, target) in ratios.items():
        print(f"| {name} | {value:.2f} | {target} |")
    print("\n| phase | requests | errors | req/s | p50 s | CPU s per request |")
    print("|---|---|---|---|---|---|")
    for label, r in (("service c=1", c1), ("service c=8", c8)):
        print(
            f"| {label} | {r['requests']} | {r['errors']} | {r['throughput_rps']:.3f} | "
            f"{r['latency_p50_s']:.2f} | {r['cpu_s_per_request']:.2f} |"
        )
    print(
        f"| sequential baseline | {baseline['clips']} | 0 | {baseline['throughput_rps']:.3f} | "
        f"{baseline['latency_mean_s']:.2f} (mean) | {baseline['cpu_s_per_request']:.2f} |"
    )
    print(
        f"\nconcurrency 1 latency ({latency['requests']} requests): round trip p50 "
        f"{latency['round_trip_p50_ms']:.0f} ms, ingress overhead p50 "
        f"{latency['ingress_overhead_p50_ms']:.1f} ms / "
        f"p90 {latency['ingress_overhead_p90_ms']:.1f} ms"
    )
    print("\nwhere the CPU went (cpu-s by process over each throughput window):")
    print(f"- service c=1: {c1['cpu']}")
    print(f"- service c=8: {c8['cpu']}")
    print(f"- sequential baseline: {baseline_cpu}")
    if args.json:
        out = {
            "ratios": {k: v for k, (v, _) in ratios.items()},
            "latency": latency,
            "service_c1": c1,
            "service_c8": c8,
            "sequential": baseline,
        }
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
