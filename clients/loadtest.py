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

The request mix is in `clients.load_mix`, the statistics, report and plots in
`clients.load_report`; this module runs the load (and the no-op target of `--self-test`) and is
the command line.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import yaml
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc

from clients.client import EmotionClient
from clients.load_mix import MixEntry, default_mix, load_mix
from clients.load_report import _fmt, write_report
from clients.options import ClientOptions

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
