"""Peak memory of the service for a 10-second clip and for a 3-minute clip.

Issue 4's bound: peak service memory for a 3-minute clip is at most 1.5x that for a 10-second
clip. For each clip this starts the real service afresh (`emer serve`, deploy/serve-cpu.yaml,
via services.local_server), records every service process's peak resident memory once it is
healthy, sends the clip once (Analyze, full analysis with the LLM explanation), records the peaks
again (VmHWM in /proc/<pid>/status: the high-water mark of the resident set since the process
started) and stops the service. Processes are found among this script's descendants by their
Ray titles (`ray::ServeReplica:emer:AudioClues`, `ray::ProxyActor`...); a process started by a
replica (vLLM's engine core) counts for that replica. "other" is the rest (raylet, GCS, Serve
controller, the `emer serve` driver, idle workers).

The clips (clients.clipmaker.story_clip) show real FER2013 faces and play real RAVDESS speech
from $EMER_DATA, the emotion changing every 30 s; per-frame grain (`--noise`, default 4 grey
levels) brings the MP4 to a camera's bitrate (about 1.5 Mbit/s: ~2 MB for 10 s, ~35 MB for
3 min), so that the payload itself weighs what it would in production.

    scripts/netns-run .venv/bin/python benchmarks/long_video_memory.py [--rpc auto] [--json F]

`--rpc auto` (default) sends each clip as the client library and `emer analyze` do: one
Analyze message up to 4 MiB (the 10-second clip), AnalyzeUpload in 64 KiB pieces above (the
3-minute clip). `--rpc unary` sends both with Analyze, to show what a one-message request of
35 MB costs the proxy and the gateway.

The "total" row sums the processes' peaks (an upper bound of the peak of the sum). The
Explainer's memory is dominated by the LLM's KV cache, whatever the clip; the bound is checked
for the processes that handle media (gateway, proxy, AudioClues, VisualClues, TextClues), for
their sum and for the total.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil
from emer_proto import emotion_pb2 as pb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clients.client import EmotionClient  # noqa: E402
from clients.clipmaker import story_clip  # noqa: E402
from clients.media_requests import UPLOAD_CHUNK_BYTES, wants_upload  # noqa: E402
from clients.options import ClientOptions  # noqa: E402
from services.local_server import local_server  # noqa: E402

# Ray process title fragment -> row name.
ROLES = {
    "ServeReplica:emer:EmotionGateway": "gateway",
    "ProxyActor": "proxy",
    "ServeReplica:emer:AudioClues": "AudioClues",
    "ServeReplica:emer:VisualClues": "VisualClues",
    "ServeReplica:emer:TextClues": "TextClues",
    "ServeReplica:emer:Explainer": "Explainer",
}
MEDIA_ROLES = ("gateway", "proxy", "AudioClues", "VisualClues", "TextClues")
ROWS = (*MEDIA_ROLES, "Explainer", "other")
BOUND = 1.5


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", REPO.parent / "shared" / "data")).resolve()


def _title(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def _role(proc: psutil.Process) -> str:
    """The row of a process: its own Ray title, else that of the replica that started it."""
    current: psutil.Process | None = proc
    while current is not None:
        title = _title(current)
        for fragment, role in ROLES.items():
            if fragment in title:
                return role
        try:
            current = current.parent()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return "other"
    return "other"


def _status_kib(pid: int, *keys: str) -> dict[str, int]:
    """Fields of /proc/<pid>/status in KiB (VmHWM, RssAnon, RssShmem...)."""
    found: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in keys:
                found[key] = int(line.split()[1])
    except OSError:
        pass
    return found


def _hwm_kib(pid: int) -> int | None:
    return _status_kib(pid, "VmHWM").get("VmHWM")


class SplitSampler(threading.Thread):
    """Samples each row's resident memory split into private (RssAnon) and shared (RssShmem:
    Ray's object store pages the process touched) while a request runs; keeps the maxima."""

    def __init__(self, period_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.period_s = period_s
        self.stop = threading.Event()
        self.peak: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.procs = [(p, _role(p)) for p in psutil.Process().children(recursive=True)]

    def run(self) -> None:
        while not self.stop.wait(self.period_s):
            now: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
            for proc, role in self.procs:
                for key, kib in _status_kib(proc.pid, "RssAnon", "RssShmem").items():
                    now[role][key] += kib / 1024
            for role, values in now.items():
                for key, mib in values.items():
                    self.peak[role][key] = max(self.peak[role][key], mib)


def peaks_mib() -> tuple[dict[str, float], dict[str, int]]:
    """Row -> summed VmHWM (MiB) of the service processes (this script's descendants), and the
    number of processes per row."""
    total: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for proc in psutil.Process().children(recursive=True):
        kib = _hwm_kib(proc.pid)
        if kib is None:
            continue
        role = _role(proc)
        total[role] += kib / 1024
        count[role] += 1
    return dict(total), dict(count)


def measure(
    clip: bytes, label: str, rpc: str, log_dir: Path, timeout_s: float, chunk_bytes: int
) -> dict[str, Any]:
    """Start a fresh service, send `clip` once, return the peaks before and after.
    `rpc`: "unary" (Analyze), "upload" (AnalyzeUpload, in pieces of `chunk_bytes`) or "auto"
    (what the client library and `emer analyze` do: upload above UPLOAD_THRESHOLD_BYTES)."""
    env = {"EMER_DATA": str(data_root())}
    t_start = time.perf_counter()
    with local_server(log_dir / f"serve-{label}.log", env=env) as address:
        started_s = time.perf_counter() - t_start
        time.sleep(5)  # let start-up work (autoscaler, metrics pushers) settle
        before, _ = peaks_mib()
        request = pb.AnalyzeRequest(media=clip, media_kind=pb.MEDIA_KIND_VIDEO)
        upload = rpc == "upload" or (rpc == "auto" and wants_upload(request))
        sampler = SplitSampler()
        sampler.start()
        t0 = time.perf_counter()
        with EmotionClient(ClientOptions(address=address, timeout_s=timeout_s)) as client:
            response = (
                client.analyze_upload(request, chunk_bytes=chunk_bytes)
                if upload
                else client.analyze(request)
            )
        seconds = time.perf_counter() - t0
        time.sleep(1)
        sampler.stop.set()
        sampler.join()
        after, count = peaks_mib()
    return {
        "label": label,
        "rpc": f"AnalyzeUpload ({chunk_bytes // 1024} KiB pieces)" if upload else "Analyze",
        "start_s": round(started_s, 1),
        "clip_bytes": len(clip),
        "media_duration_s": response.media_duration_s,
        "segments": len(response.timeline),
        "seconds": round(seconds, 1),
        "timings_ms": {t.stage: t.ms for t in response.timings},
        "basic_category": response.basic_category,
        "timeline": [(s.start_s, s.end_s, s.basic_category) for s in response.timeline],
        "explainer": [m.name for m in response.models if m.role == "explainer"],
        "warnings": list(response.warnings),
        "peak_after_start_mib": before,
        "peak_mib": after,
        "split_mib": {role: dict(v) for role, v in sampler.peak.items()},
        "processes": count,
    }


def table(short: dict[str, Any], long: dict[str, Any]) -> tuple[str, bool]:
    """The markdown table and whether the bound holds where it must."""
    s, lg = short["peak_mib"], long["peak_mib"]
    lines = [
        f"| process | peak after start-up (MiB) | peak, {short['label']} clip (MiB) | "
        f"peak, {long['label']} clip (MiB) | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    ok = True

    def row(name: str, a: float, b: float, start: float, checked: bool) -> None:
        nonlocal ok
        ratio = b / a if a else float("nan")
        mark = ""
        if checked:
            mark = " ✓" if ratio <= BOUND else " ✗"
            ok = ok and ratio <= BOUND
        lines.append(f"| {name} | {start:.0f} | {a:.0f} | {b:.0f} | {ratio:.2f}{mark} |")

    start = long["peak_after_start_mib"]
    for name in ROWS:
        row(name, s.get(name, 0.0), lg.get(name, 0.0), start.get(name, 0.0), name in MEDIA_ROLES)
    media = [sum(x.get(n, 0.0) for n in MEDIA_ROLES) for x in (s, lg, start)]
    row("media processes (sum)", media[0], media[1], media[2], True)
    totals = [sum(x.values()) for x in (s, lg, start)]
    row("total", totals[0], totals[1], totals[2], True)
    return "\n".join(lines), ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short-s", type=float, default=10.0)
    parser.add_argument("--long-s", type=float, default=180.0)
    parser.add_argument("--noise", type=float, default=4.0, help="per-frame grain (grey levels)")
    parser.add_argument("--timeout", type=float, default=900.0, help="per request, seconds")
    parser.add_argument(
        "--rpc",
        choices=("auto", "unary", "upload"),
        default="auto",
        help="auto: as the client library (Analyze up to 4 MiB, AnalyzeUpload above)",
    )
    parser.add_argument(
        "--chunk-kib", type=int, default=UPLOAD_CHUNK_BYTES // 1024, help="upload piece size"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    data = data_root()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (args.short_s, args.long_s):
            clip, _ = story_clip(data, seconds=seconds, noise=args.noise)
            label = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
            print(f"{label}: {len(clip) / 1e6:.1f} MB, starting a fresh service...", flush=True)
            results.append(
                measure(clip, label, args.rpc, Path(tmp), args.timeout, args.chunk_kib * 1024)
            )
            r = results[-1]
            transfer = r["seconds"] - r["timings_ms"].get("total", 0.0) / 1000
            print(
                f"  service up in {r['start_s']} s; {r['rpc']} answered in {r['seconds']} s "
                f"(of which ~{transfer:.1f} s outside the pipeline: transfer, upload), "
                f"{r['segments']} segments, timings {r['timings_ms']}",
                flush=True,
            )
    text, ok = table(results[0], results[1])
    print()
    procs = results[1]["processes"]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs; processes: {procs}")
    for r in results:
        print(
            f"- {r['label']}: {r['clip_bytes'] / 1e6:.1f} MB sent with {r['rpc']}, "
            f"{r['media_duration_s']:.1f} s of media, {r['segments']} segments, answered in "
            f"{r['seconds']} s; basic category {r['basic_category']}, "
            f"explainer {r['explainer']}"
        )
        if r["timeline"]:
            print("  timeline: " + ", ".join(f"{a:.0f}-{b:.0f} {c}" for a, b, c in r["timeline"]))
        for w in r["warnings"]:
            print(f"  warning: {w}")
    print()
    print(text)
    print()
    print("Largest private (RssAnon) and shared (RssShmem, Ray object store) resident memory")
    print("sampled every 0.2 s during the request (MiB):")
    print()
    print("| process | " + " | ".join(f"{r['label']} anon / shm" for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for name in MEDIA_ROLES:
        cells = []
        for r in results:
            split = r["split_mib"].get(name, {})
            cells.append(f"{split.get('RssAnon', 0):.0f} / {split.get('RssShmem', 0):.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print(f"bound ({BOUND}x) {'holds' if ok else 'DOES NOT HOLD'} where it is checked (✓/✗)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
