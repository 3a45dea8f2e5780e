"""Soak: a closed loop of video requests at the default profile's saturating concurrency for a
long time, watching every process of the service for leaks.

    scripts/netns-run .venv/bin/python -m benchmarks.soak --address 127.0.0.1:50051 --minutes 10

Needs a running `emer serve` on loopback started from this machine. Every `--sample` seconds it
records, for each process of the service (Ray's workers and daemons, the vLLM engine
processes, the `emer serve` driver), its resident memory, open file descriptors and threads.
It reports per process: memory growth in MB per minute (least-squares slope over the samples
after the first minute, which is warm-up: caches, the allocator and the LLM's KV blocks fill
there) and the change in descriptors and threads from the first to the last sample; and the
requests: answered, degraded, errors by status. Exit status 1 when a request failed with
anything but a shed-load status (RESOURCE_EXHAUSTED, UNAVAILABLE) or a process grew by more
than --max-growth MB per minute.
Figures: docs/performance.md#soak-10-minutes-at-the-saturating-rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from benchmarks.fault_injection import DEFAULT_MEDIA, Load

SHED = ("RESOURCE_EXHAUSTED", "UNAVAILABLE")
NAMES = ("ray::", "VLLM::", "raylet", "gcs_server", "emer serve", "dashboard", "log_monitor")


@dataclass
class Track:
    name: str
    samples: list[tuple[float, float, int, int]] = field(default_factory=list)  # t, MB, fds, thr


def service_processes() -> dict[int, str]:
    found = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(n in cmd for n in NAMES) and "soak.py" not in cmd:
            found[proc.pid] = (
                cmd.split(" ")[0][:60] if cmd.startswith(("ray::", "VLLM")) else cmd[:60]
            )
    return found


def sample(tracks: dict[int, Track], t: float) -> None:
    for pid, name in service_processes().items():
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                mb = proc.memory_info().rss / 1e6
                fds = proc.num_fds()
                threads = proc.num_threads()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        tracks.setdefault(pid, Track(name)).samples.append((t, mb, fds, threads))


def slope_mb_per_min(points: list[tuple[float, float, int, int]]) -> float:
    if len(points) < 2:
        return 0.0
    ts = [p[0] / 60.0 for p in points]
    ms = [p[1] for p in points]
    mt, mm = statistics.fmean(ts), statistics.fmean(ms)
    var = sum((x - mt) ** 2 for x in ts)
    return sum((x - mt) * (y - mm) for x, y in zip(ts, ms, strict=True)) / var if var else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--concurrency", type=int, default=4, help="saturates 2 cores")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--max-growth", type=float, default=5.0, help="MB per minute")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    load = Load(args.address, args.media, args.concurrency, args.deadline)
    tracks: dict[int, Track] = {}
    t0 = time.monotonic()
    load.start(t0)
    try:
        while (now := time.monotonic() - t0) < args.minutes * 60:
            sample(tracks, now)
            time.sleep(args.sample)
        sample(tracks, time.monotonic() - t0)
    finally:
        load.stop()

    outcomes = load.outcomes
    codes: dict[str, int] = {}
    for o in outcomes:
        codes[o.code] = codes.get(o.code, 0) + 1
    minutes = (time.monotonic() - t0) / 60
    ok = codes.get("OK", 0)
    print(
        f"{len(outcomes)} requests in {minutes:.1f} min ({ok / (minutes * 60):.2f} answered/s): "
        + ", ".join(f"{k} {v}" for k, v in sorted(codes.items()))
        + f"; {sum(1 for o in outcomes if o.degraded)} degraded; p50 "
        f"{statistics.median(o.elapsed_s for o in outcomes):.1f} s"
    )
    print(
        "| process | MB first -> last | MB/min after minute 1 | fds first -> last "
        "| threads first -> last |"
    )
    print("|---|---|---|---|---|")
    problems = []
    for track in sorted(tracks.values(), key=lambda tr: -tr.samples[-1][1]):
        first, last = track.samples[0], track.samples[-1]
        warm = [s for s in track.samples if s[0] >= 60.0]
        growth = slope_mb_per_min(warm)
        print(
            f"| {track.name} | {first[1]:.0f} -> {last[1]:.0f} | {growth:+.2f} | "
            f"{first[2]} -> {last[2]} | {first[3]} -> {last[3]} |"
        )
        if growth > args.max_growth and len(warm) >= 3:
            problems.append(f"{track.name} grows {growth:.1f} MB/min")
    errors = {k: v for k, v in codes.items() if k != "OK" and k not in SHED}
    if errors:
        problems.append(f"errors other than shed load: {errors}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "codes": codes,
                    "tracks": {str(pid): [tr.name, tr.samples] for pid, tr in tracks.items()},
                },
                indent=1,
            )
        )
    for p in problems:
        print("PROBLEM", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
