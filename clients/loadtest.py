"""`emer loadtest`: a bounded load generator for EmotionService.Analyze.

    emer --address 127.0.0.1:50051 loadtest --concurrency 8 --duration 30 --out runs/lt1
    emer loadtest --concurrency 8 --duration 30 --rate 2 --mix mix.yaml --out runs/lt2
    emer loadtest --self-test --concurrency 8 --duration 5 --out runs/ceiling

Closed loop by default: `--concurrency` worker threads, each with its own gRPC channel, send
one request after another. With `--rate R` it is open loop: a scheduler releases R requests per
second on a fixed timetable and the workers (still at most `--concurrency` in flight) pick them
up; a release that finds the backlog full is counted as `dropped`. The sync gRPC stubs release
the GIL while they wait, so a thread per channel keeps the generator itself cheap.

Requests that start during `--warmup` are sent but left out of the statistics; the run stops by
itself after warm-up + duration (requests still in flight then are waited for, up to the
per-call deadline). `--self-test` runs the same generator against an in-process no-op
EmotionService on 127.0.0.1 and so measures the generator's own ceiling.

Writes DIR/report.json, DIR/report.md and DIR/latency_over_time.png, DIR/latency_hist.png,
DIR/throughput.png. See docs/loadtest.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import random
import resource
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import yaml
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc

from clients.client import ClientOptions, EmotionClient, media_kind_for

REPO = Path(__file__).resolve().parents[1]
DEMO_INPUTS = REPO / "demo" / "inputs"
STAGES = ("decode", "audio", "visual", "text", "clues", "explain", "total")


# --- request mix ------------------------------------------------------------------------------


@dataclass
class MixEntry:
    name: str
    media: str | None
    subtitle: str
    weight: float
    request: pb.AnalyzeRequest = field(repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "media": self.media,
            "subtitle": self.subtitle,
            "weight": self.weight,
            "media_bytes": len(self.request.media),
        }


def _entry(
    media: str | Path | None, subtitle: str, weight: float, name: str | None = None
) -> MixEntry:
    if weight <= 0 or not math.isfinite(weight):
        raise ValueError(f"mix weight must be positive, got {weight!r}")
    if media is None and not subtitle:
        raise ValueError("a mix entry needs media, a subtitle or both")
    data = Path(media).read_bytes() if media is not None else b""
    kind = media_kind_for(media) if media is not None else pb.MEDIA_KIND_UNSPECIFIED
    request = EmotionClient.request(data, media_kind=kind, subtitle=subtitle)
    label = name or (Path(media).name if media is not None else "text-only")
    return MixEntry(label, str(media) if media is not None else None, subtitle, weight, request)


def default_mix() -> list[MixEntry]:
    """The project's demo inputs: video, audio-only, image-only and a text-only subtitle."""
    return [
        _entry(DEMO_INPUTS / "astronaut-greeting.mp4", "", 0.4, "video"),
        _entry(DEMO_INPUTS / "waited.wav", "", 0.2, "audio-only"),
        _entry(DEMO_INPUTS / "astronaut-portrait.jpg", "", 0.2, "image-only"),
        _entry(None, "I waited for hours and nobody even called me back.", 0.2, "text-only"),
    ]


def load_mix(path: str | Path) -> list[MixEntry]:
    """A YAML or JSON list of {media: path or null, subtitle: str, weight: float, name: str?}.
    Relative media paths are read from the mix file's folder."""
    path = Path(path)
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: expected a non-empty list of mix entries")
    out: list[MixEntry] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: entry {i} is not a mapping")
        media = item.get("media")
        if media is not None:
            media = Path(media) if Path(media).is_absolute() else path.parent / media
        name = item.get("name") or (
            f"{i}:{Path(media).name}" if media is not None else f"{i}:text-only"
        )
        out.append(
            _entry(media, str(item.get("subtitle") or ""), float(item.get("weight", 1.0)), name)
        )
    return out


# --- the no-op target (self-test) -------------------------------------------------------------


class NoopServicer(emotion_pb2_grpc.EmotionServiceServicer):
    """Answers every Analyze at once with an empty response: the cheapest possible target."""

    def Analyze(self, request: pb.AnalyzeRequest, context: Any) -> pb.AnalyzeResponse:
        return pb.AnalyzeResponse(request_id=request.request_id)


@contextmanager
def noop_server(workers: int = 8) -> Iterator[str]:
    """An in-process gRPC server with NoopServicer on 127.0.0.1; yields its address."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        options=[("grpc.max_receive_message_length", 80 * 1024 * 1024)],
    )
    emotion_pb2_grpc.add_EmotionServiceServicer_to_server(NoopServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=1).wait()


# --- the generator ----------------------------------------------------------------------------


@dataclass
class Sample:
    start: float  # seconds since the run began
    latency_ms: float
    status: str  # gRPC status code name, "OK" on success
    entry: int  # index into the mix
    stages: dict[str, float]
    shed: bool = False  # refused at capacity: RESOURCE_EXHAUSTED with a retry pushback


@dataclass
class RunConfig:
    address: str
    concurrency: int
    duration_s: float
    warmup_s: float = 0.0
    rate: float | None = None
    timeout_s: float = 120.0
    seed: int = 0
    # Retries per request by the client's gRPC retry policy; 0 (the default) reports every
    # failed attempt as an error instead of letting retries hide it.
    retries: int = 0


@dataclass
class RunResult:
    config: RunConfig
    mix: list[MixEntry]
    samples: list[Sample]  # started inside the measurement window
    warmup_requests: int
    dropped: int
    cpu_percent: float
    wall_s: float


def _is_shed(error: grpc.RpcError) -> bool:
    """True for load the server shed: RESOURCE_EXHAUSTED with a positive retry pushback (a
    request too large gets "-1", Ray's own back-pressure none)."""
    if not hasattr(error, "code") or error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return False
    # At run time (key, value) tuples, whatever the stubs call them.
    trailers = cast(Sequence[tuple[str, Any]], error.trailing_metadata() or ())  # type: ignore[attr-defined]
    for key, value in trailers:
        if key == "grpc-retry-pushback-ms":
            return str(value).lstrip("-").isdigit() and int(value) > 0
    return False


def run_load(config: RunConfig, mix: list[MixEntry]) -> RunResult:
    """Send the mix at the configured concurrency (and rate) and collect one Sample per request
    that started after warm-up and before warm-up + duration."""
    if config.concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    weights = [m.weight for m in mix]
    lock = threading.Lock()
    samples: list[Sample] = []
    warmup_count = [0]
    dropped = [0]
    stop = threading.Event()
    tickets: queue.Queue[int] = queue.Queue(maxsize=max(1, config.concurrency))
    open_loop = config.rate is not None and config.rate > 0
    total_s = config.warmup_s + config.duration_s
    t0 = time.perf_counter()
    window_start = t0 + config.warmup_s
    window_end = t0 + total_s

    def worker(index: int) -> None:
        rng = random.Random(config.seed * 1000 + index)
        client = EmotionClient(
            ClientOptions(
                address=config.address,
                timeout_s=config.timeout_s,
                max_attempts=1 + config.retries,
            )
        )
        try:
            n = 0
            while True:
                if open_loop:
                    try:
                        tickets.get(timeout=0.05)
                    except queue.Empty:
                        if stop.is_set():
                            return
                        continue
                if time.perf_counter() >= window_end:
                    return
                i = rng.choices(range(len(mix)), weights=weights)[0]
                request = pb.AnalyzeRequest()
                request.CopyFrom(mix[i].request)
                request.request_id = f"lt-{index}-{n}"
                n += 1
                start = time.perf_counter()
                status = "OK"
                shed = False
                stages: dict[str, float] = {}
                try:
                    response = client.analyze(request)
                    stages = {t.stage: t.ms for t in response.timings}
                except grpc.RpcError as e:
                    code = e.code() if hasattr(e, "code") else None
                    status = code.name if code is not None else "UNKNOWN"
                    shed = _is_shed(e)
                end = time.perf_counter()
                with lock:
                    if start < window_start:
                        warmup_count[0] += 1
                    else:
                        samples.append(
                            Sample(
                                start - window_start, (end - start) * 1000, status, i, stages, shed
                            )
                        )
        finally:
            client.close()

    def scheduler() -> None:
        assert config.rate is not None
        k = 0
        while True:
            due = t0 + k / config.rate
            if due >= window_end:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                tickets.put_nowait(k)
            except queue.Full:
                if due >= window_start:
                    with lock:
                        dropped[0] += 1
            k += 1
        stop.set()

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    threads = [
        threading.Thread(target=worker, args=(w,), name=f"loadtest-{w}", daemon=True)
        for w in range(config.concurrency)
    ]
    if open_loop:
        threads.append(threading.Thread(target=scheduler, name="loadtest-sched", daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, window_end - time.perf_counter()) + config.timeout_s + 10)
    wall = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    with lock:
        kept = sorted(samples, key=lambda s: s.start)
    return RunResult(
        config=config,
        mix=mix,
        samples=kept,
        warmup_requests=warmup_count[0],
        dropped=dropped[0],
        cpu_percent=100.0 * cpu / wall if wall > 0 else 0.0,
        wall_s=wall,
    )


# --- statistics and report --------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default); NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 3)


def summarize(result: RunResult, self_test: bool = False) -> dict[str, Any]:
    cfg = result.config
    ok = [s for s in result.samples if s.status == "OK"]
    latencies = [s.latency_ms for s in ok]
    # Throughput: successful answers to requests started in the window, over the time from the
    # window's start until the last of them finished (at least the duration). Slow requests
    # still in flight at the end are waited for, so a run shorter than one latency still counts.
    elapsed = max([cfg.duration_s] + [s.start + s.latency_ms / 1000 for s in result.samples])
    errors: dict[str, int] = {}
    for s in result.samples:
        if s.status != "OK":
            errors[s.status] = errors.get(s.status, 0) + 1
    shed = [s.latency_ms for s in result.samples if s.shed]
    stage_names = [st for st in STAGES if any(st in s.stages for s in ok)]
    stage_names += sorted({k for s in ok for k in s.stages} - set(stage_names))
    stages: dict[str, dict[str, float | None]] = {}
    for st in stage_names:
        vals = [s.stages[st] for s in ok if st in s.stages]
        stages[st] = {
            "p50": _round(percentile(vals, 50)),
            "p90": _round(percentile(vals, 90)),
            "p99": _round(percentile(vals, 99)),
            "mean": _round(sum(vals) / len(vals)),
            "count": len(vals),
        }
    per_entry: dict[str, dict[str, Any]] = {}
    for i, m in enumerate(result.mix):
        lat = [s.latency_ms for s in ok if s.entry == i]
        per_entry[m.name] = {
            "requests": sum(1 for s in result.samples if s.entry == i),
            "p50": _round(percentile(lat, 50)),
            "p99": _round(percentile(lat, 99)),
        }
    throughput = len(ok) / elapsed if elapsed > 0 else 0.0
    report: dict[str, Any] = {
        "target": "self-test (in-process no-op EmotionService)" if self_test else cfg.address,
        "mode": "open-loop" if cfg.rate else "closed-loop",
        "rate_rps": cfg.rate,
        "concurrency": cfg.concurrency,
        "duration_s": cfg.duration_s,
        "elapsed_s": round(elapsed, 3),
        "warmup_s": cfg.warmup_s,
        "requests": len(result.samples),
        "ok": len(ok),
        "warmup_requests": result.warmup_requests,
        "dropped": result.dropped,
        "throughput_rps": round(throughput, 3),
        "offered_rps": round(len(result.samples) / cfg.duration_s, 3),
        "retries": cfg.retries,
        "shed": len(shed),
        "shed_latency_ms": {
            "p50": _round(percentile(shed, 50)),
            "p99": _round(percentile(shed, 99)),
            "max": _round(max(shed)) if shed else None,
        },
        "latency_ms": {
            "p50": _round(percentile(latencies, 50)),
            "p90": _round(percentile(latencies, 90)),
            "p99": _round(percentile(latencies, 99)),
            "mean": _round(sum(latencies) / len(latencies)) if latencies else None,
            "max": _round(max(latencies)) if latencies else None,
        },
        "stages": stages,
        "errors": errors,
        "per_mix_entry": per_entry,
        "mix": [m.describe() for m in result.mix],
        "generator": {
            "threads": cfg.concurrency + (1 if cfg.rate else 0),
            "channels": cfg.concurrency,
            "cpu_percent": round(result.cpu_percent, 1),
            "cpu_count": os.cpu_count(),
            "wall_s": round(result.wall_s, 3),
        },
    }
    if self_test:
        report["generator"]["max_rps"] = round(throughput, 1)
        report["generator"]["note"] = (
            "cpu_percent includes the in-process no-op server, so max_rps is a lower bound "
            "on the generator's own ceiling"
        )
    return report


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.1f}"
    return str(x)


def render_markdown(report: dict[str, Any]) -> str:
    lat = report["latency_ms"]
    gen = report["generator"]
    lines = [
        "# emer loadtest report",
        "",
        f"- target: `{report['target']}`",
        f"- mode: {report['mode']}"
        + (f" at {report['rate_rps']} req/s" if report["rate_rps"] else "")
        + f", concurrency {report['concurrency']}, duration {report['duration_s']} s "
        f"(+ {report['warmup_s']} s warm-up, {report['warmup_requests']} request(s) excluded)",
        f"- requests: {report['requests']} ({report['ok']} ok), dropped by the open-loop "
        f"scheduler: {report['dropped']}",
        f"- **throughput: {report['throughput_rps']:.2f} req/s** (ok answers over "
        f"{report['elapsed_s']} s: the window plus draining the last requests)",
        f"- errors: {report['errors'] or 'none'}"
        + (
            f", of which shed at capacity: {report['shed']} (answered in p50 "
            f"{_fmt(report['shed_latency_ms']['p50'])} ms, p99 "
            f"{_fmt(report['shed_latency_ms']['p99'])} ms)"
            if report["shed"]
            else ""
        )
        + f"; client retries per request: {report['retries']}",
        f"- generator: {gen['cpu_percent']}% CPU (of one core) with {gen['channels']} channel(s)"
        + (f"; self-test ceiling {gen['max_rps']} req/s" if "max_rps" in gen else ""),
        "",
        "## End-to-end latency (client side, ms)",
        "",
        "| p50 | p90 | p99 | mean | max |",
        "|---:|---:|---:|---:|---:|",
        f"| {_fmt(lat['p50'])} | {_fmt(lat['p90'])} | {_fmt(lat['p99'])} | {_fmt(lat['mean'])} "
        f"| {_fmt(lat['max'])} |",
        "",
    ]
    if report["stages"]:
        lines += [
            "## Server stages (from response timings, ms)",
            "",
            "| stage | p50 | p90 | p99 | mean | count |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, st in report["stages"].items():
            lines.append(
                f"| {name} | {_fmt(st['p50'])} | {_fmt(st['p90'])} | {_fmt(st['p99'])} "
                f"| {_fmt(st['mean'])} | {st['count']} |"
            )
        lines.append("")
    lines += [
        "## Mix",
        "",
        "| entry | weight | requests | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in report["mix"]:
        e = report["per_mix_entry"][m["name"]]
        lines.append(
            f"| {m['name']} | {m['weight']} | {e['requests']} | {_fmt(e['p50'])} "
            f"| {_fmt(e['p99'])} |"
        )
    lines += [
        "",
        "Plots: `latency_over_time.png`, `latency_hist.png`, `throughput.png`.",
        "",
    ]
    return "\n".join(lines)


def plot(result: RunResult, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []
    samples = result.samples
    duration = result.config.duration_s

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, m in enumerate(result.mix):
        xs = [s.start for s in samples if s.entry == i and s.status == "OK"]
        ys = [s.latency_ms for s in samples if s.entry == i and s.status == "OK"]
        if xs:
            ax.scatter(xs, ys, s=8, alpha=0.6, label=m.name)
    bad = [s for s in samples if s.status != "OK"]
    if bad:
        ax.scatter(
            [s.start for s in bad], [s.latency_ms for s in bad], s=14, c="red", marker="x",
            label="error",
        )  # fmt: skip
    ax.set_xlabel("request start (s after warm-up)")
    ax.set_ylabel("end-to-end latency (ms)")
    ax.set_title("Latency over time")
    ax.set_xlim(0, max(duration, 1e-3))
    if samples:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "latency_over_time.png", dpi=100)
    plt.close(fig)
    written.append("latency_over_time.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    lat = [s.latency_ms for s in samples if s.status == "OK"]
    if lat:
        ax.hist(lat, bins=min(50, max(5, len(lat) // 5)), color="tab:blue", alpha=0.8)
        for q, style in ((50, "--"), (99, ":")):
            ax.axvline(percentile(lat, q), color="k", linestyle=style, label=f"p{q}")
        ax.legend()
    ax.set_xlabel("end-to-end latency (ms)")
    ax.set_ylabel("requests")
    ax.set_title("Latency histogram")
    fig.tight_layout()
    fig.savefig(out / "latency_hist.png", dpi=100)
    plt.close(fig)
    written.append("latency_hist.png")

    ends = [s.start + s.latency_ms / 1000 for s in samples]
    seconds = max(1, math.ceil(max([duration, *ends])))
    ok_per_s = [0] * seconds
    err_per_s = [0] * seconds
    for s in samples:
        done = int(s.start + s.latency_ms / 1000)
        if 0 <= done < seconds:
            (ok_per_s if s.status == "OK" else err_per_s)[done] += 1
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = list(range(seconds))
    ax.bar(xs, ok_per_s, width=0.9, label="ok", color="tab:green")
    if any(err_per_s):
        ax.bar(xs, err_per_s, width=0.9, bottom=ok_per_s, label="error", color="tab:red")
    ax.axvline(duration, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("second after warm-up (dashed: end of sending)")
    ax.set_ylabel("completed requests")
    ax.set_title("Throughput per second")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=100)
    plt.close(fig)
    written.append("throughput.png")
    return written


def write_report(result: RunResult, out: Path, self_test: bool = False) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    report = summarize(result, self_test=self_test)
    report["plots"] = plot(result, out)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return report


# --- command line -----------------------------------------------------------------------------


def cmd_loadtest(args: argparse.Namespace) -> int:
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0:
        print("--concurrency >= 1, --duration > 0 and --warmup >= 0 are required", file=sys.stderr)
        return 2
    if args.rate is not None and args.rate <= 0:
        print("--rate must be positive", file=sys.stderr)
        return 2
    try:
        mix = load_mix(args.mix) if args.mix else default_mix()
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"bad mix: {e}", file=sys.stderr)
        return 2
    address = args.address or os.environ.get("EMER_ADDRESS", "127.0.0.1:50051")
    timeout = getattr(args, "timeout", None) or 120.0
    out = Path(args.out)

    def run(target: str) -> RunResult:
        return run_load(
            RunConfig(
                address=target,
                concurrency=args.concurrency,
                duration_s=args.duration,
                warmup_s=args.warmup,
                rate=args.rate,
                timeout_s=timeout,
                seed=args.seed,
                retries=args.retries,
            ),
            mix,
        )

    if args.self_test:
        with noop_server(workers=max(4, args.concurrency)) as target:
            result = run(target)
    else:
        result = run(address)
    report = write_report(result, out, self_test=args.self_test)
    lat = report["latency_ms"]
    print(
        f"{report['requests']} request(s), {report['throughput_rps']:.2f} req/s, "
        f"p50 {_fmt(lat['p50'])} ms, p99 {_fmt(lat['p99'])} ms, errors {report['errors'] or 0} "
        f"(shed {report['shed']}), "
        f"generator CPU {report['generator']['cpu_percent']}%  -> {out / 'report.md'}",
        file=sys.stderr,
    )
    return 1 if report["errors"] or not report["ok"] else 0


def register(subparsers: Any) -> None:
    """Add `loadtest` to the `emer` command line's sub-parsers."""
    p = subparsers.add_parser(
        "loadtest", help="bounded load test of Analyze; writes report.json/.md and plots"
    )
    p.add_argument("--concurrency", type=int, default=4, help="workers (max in flight)")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    p.add_argument(
        "--rate", type=float, default=None, help="open loop: requests per second (default: closed)"
    )
    p.add_argument("--mix", help="YAML/JSON list of {media, subtitle, weight} (default: demo)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds excluded from the stats")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the mix choice")
    p.add_argument(
        "--retries",
        type=int,
        default=0,
        choices=range(0, 5),
        help="retries per request by the client's gRPC retry policy (default 0: every failed "
        "attempt is reported as an error)",
    )
    p.add_argument(
        "--self-test",
        action="store_true",
        help="target an in-process no-op EmotionService instead: the generator's own ceiling",
    )
    p.set_defaults(func=cmd_loadtest)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m clients.loadtest ...`) until the CLI wires `register`."""
    parser = argparse.ArgumentParser(prog="emer")
    parser.add_argument("--address")
    parser.add_argument("--timeout", type=float, default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
