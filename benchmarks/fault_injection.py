"""Kill (or stop) each deployment's replica in turn under a closed loop of requests; report
recovery times and what every request got.

    scripts/netns-run .venv/bin/python benchmarks/fault_injection.py --address 127.0.0.1:50051

Needs a running service on loopback started from this machine (`emer serve`): replicas are
found by their process titles (`ray::ServeReplica:<app>:<Deployment>`), killed with SIGKILL
("kill") or frozen with SIGSTOP ("hang": a replica that stops answering, health checks
included). For each fault it measures the seconds from the fault until the deployment has a new
replica process and the service's gRPC health is SERVING again. Requests use raw stubs (no
client retries), so every status is the server's own. tests/integration/test_faults.py runs it
with assertions; docs/deploy.md#recovery-from-faults has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
import psutil
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = REPO / "demo" / "inputs" / "astronaut-greeting.mp4"
DEPLOYMENTS = ("AudioClues", "VisualClues", "TextClues", "Explainer", "EmotionGateway")
# What a status sent to a client must never contain: Ray's ids, class names and tracebacks.
INTERNALS = re.compile(
    r"Traceback|ActorID|actor_id|ActorDiedError|RayActorError|RayTaskError|ServeReplica|"
    r"ray\.|\b[0-9a-f]{24,}\b|File \""
)


@dataclass
class Outcome:
    started_s: float  # since the run began
    elapsed_s: float
    code: str
    details: str = ""
    degraded: bool = False  # answered, with at least one clue or the LLM missing


@dataclass
class Fault:
    deployment: str
    kind: str  # "kill" or "hang"
    at_s: float  # since the run began
    old_pids: list[int] = field(default_factory=list)
    new_pids: list[int] = field(default_factory=list)
    recovered_s: float | None = None  # fault -> new replica and SERVING; None: not within limit
    # fault -> the deployment's own health (e.g. Check(service="Explainer"): its LLM writes
    # again) SERVING and as many initialised replicas as before; None: not within the limit.
    back_s: float | None = None
    not_serving_s: float = 0.0  # how long the service's health said anything but SERVING


def replica_pids(deployment: str, app: str = "emer", ready: bool = False) -> list[int]:
    """PIDs of the live replica processes of `deployment` (Ray sets their titles); `ready`:
    only those done initialising (a starting one is titled "...initialize_and_get_metadata")."""
    title = f"ray::ServeReplica:{app}:{deployment}"
    pids = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if not cmd.startswith(title) or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if ready and "initialize_and_get_metadata" in cmd:
            continue
        pids.append(proc.pid)
    return sorted(pids)


def serving(channel: grpc.Channel, service: str = "", timeout_s: float = 5.0) -> bool:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    except grpc.RpcError:
        return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


class Load:
    """A closed loop of Analyze requests from `concurrency` threads until stopped."""

    def __init__(self, address: str, media: Path, concurrency: int, deadline_s: float) -> None:
        self.address, self.deadline_s = address, deadline_s
        suffix = media.suffix.lower()
        kind = (
            pb.MEDIA_KIND_VIDEO
            if suffix in (".mp4", ".mkv", ".webm", ".mov")
            else (pb.MEDIA_KIND_AUDIO)
        )
        self.request = pb.AnalyzeRequest(media=media.read_bytes(), media_kind=kind)
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._threads = [
            threading.Thread(target=self._loop, daemon=True) for _ in range(concurrency)
        ]

    def start(self, t0: float) -> None:
        self._t0 = t0
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.deadline_s + 10)

    def _loop(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = emotion_pb2_grpc.EmotionServiceStub(channel)
            while not self._stop.is_set():
                t = time.monotonic()
                try:
                    answer = stub.Analyze(self.request, timeout=self.deadline_s)
                    degraded = any("unavailable" in w or "composer" in w for w in answer.warnings)
                    outcome = Outcome(t - self._t0, time.monotonic() - t, "OK", degraded=degraded)
                except grpc.RpcError as e:
                    outcome = Outcome(
                        t - self._t0, time.monotonic() - t, e.code().name, e.details() or ""
                    )
                    time.sleep(0.5)  # a client would back off; keeps a failing loop from spinning
                with self._lock:
                    self.outcomes.append(outcome)


def inject(
    channel: grpc.Channel,
    deployment: str,
    kind: str,
    t0: float,
    limit_s: float,
    wait_back_s: float = 60.0,
) -> Fault:
    """One fault; returns once the service is SERVING with a new replica and the deployment's
    own health is SERVING, or after limit_s (+ wait_back_s for the latter)."""
    old = replica_pids(deployment)
    if not old:
        raise RuntimeError(f"no running replica of {deployment}")
    fault = Fault(deployment, kind, time.monotonic() - t0, old_pids=old)
    victim = old[0]
    os.kill(victim, signal.SIGSTOP if kind == "hang" else signal.SIGKILL)
    own = "" if deployment == "EmotionGateway" else deployment
    start = time.monotonic()
    not_serving_since: float | None = None
    while time.monotonic() - start < limit_s + wait_back_s:
        now_serving = serving(channel)
        now = time.monotonic()
        if not now_serving and not_serving_since is None:
            not_serving_since = now
        if now_serving and not_serving_since is not None:
            fault.not_serving_s += now - not_serving_since
            not_serving_since = None
        if fault.recovered_s is None and now_serving:
            fresh = [p for p in replica_pids(deployment) if p not in old]
            if fresh:
                fault.new_pids = fresh
                fault.recovered_s = round(now - start, 1)
        if (
            fault.recovered_s is not None
            and fault.back_s is None
            and len([p for p in replica_pids(deployment, ready=True) if p != victim]) >= len(old)
            and serving(channel, own)
        ):
            fault.back_s = round(time.monotonic() - start, 1)
        if fault.back_s is not None:
            break
        if fault.recovered_s is not None and now - start > fault.recovered_s + wait_back_s:
            break
        time.sleep(0.5)
    if not_serving_since is not None:
        fault.not_serving_s += time.monotonic() - not_serving_since
    fault.not_serving_s = round(fault.not_serving_s, 1)
    if kind == "hang" and psutil.pid_exists(victim):  # never leave a frozen process behind
        os.kill(victim, signal.SIGKILL)
    return fault


def run(
    address: str,
    faults: list[tuple[str, str]],
    *,
    media: Path = DEFAULT_MEDIA,
    concurrency: int = 4,
    deadline_s: float = 60.0,
    settle_s: float = 10.0,
    limit_s: float = 60.0,
    wait_back_s: float = 60.0,
) -> dict[str, object]:
    """The whole experiment; returns what happened (see `report`)."""
    t0 = time.monotonic()
    with grpc.insecure_channel(address) as channel:
        if not serving(channel, timeout_s=10.0):
            raise RuntimeError(f"{address} is not SERVING before the first fault")
        load = Load(address, media, concurrency, deadline_s)
        load.start(t0)
        done: list[Fault] = []
        try:
            for deployment, kind in faults:
                time.sleep(settle_s)  # requests in flight on every deployment
                done.append(inject(channel, deployment, kind, t0, limit_s, wait_back_s))
            time.sleep(settle_s)
        finally:
            load.stop()
    return {
        "concurrency": concurrency,
        "deadline_s": deadline_s,
        "faults": [asdict(f) for f in done],
        "outcomes": [asdict(o) for o in load.outcomes],
    }


def problems(result: dict[str, object], limit_s: float = 60.0) -> list[str]:
    """What the issue's bar forbids: a slow recovery, a request past its deadline, a status
    other than OK / UNAVAILABLE / shed load (RESOURCE_EXHAUSTED "at capacity": the adaptive
    admission limit may fall below the load's concurrency on a slow machine while replicas
    restart), internals in a status message."""
    found = []
    deadline = float(result["deadline_s"])  # type: ignore[arg-type]
    for f in result["faults"]:  # type: ignore[attr-defined]
        if f["recovered_s"] is None or f["recovered_s"] > limit_s:
            found.append(f"{f['kind']} {f['deployment']}: not recovered within {limit_s:g} s")
    for o in result["outcomes"]:  # type: ignore[attr-defined]
        where = f"request at {o['started_s']:.1f} s ({o['code']}, {o['elapsed_s']:.1f} s)"
        shed = o["code"] == "RESOURCE_EXHAUSTED" and "at capacity" in o["details"]
        if o["code"] not in ("OK", "UNAVAILABLE") and not shed:
            found.append(f"{where}: {o['details']!r}")
        elif o["elapsed_s"] > deadline:
            found.append(f"{where}: outlived its {deadline:g} s deadline")
        if (o["code"] == "UNAVAILABLE" or shed) and (
            INTERNALS.search(o["details"]) or not o["details"]
        ):
            found.append(f"{where}: status message not for humans: {o['details']!r}")
    return found


def report(result: dict[str, object]) -> str:
    lines = [
        "| fault | SERVING, replacement started (s) | replacement ready, own health SERVING (s) "
        "| service not SERVING (s) |",
        "|---|---|---|---|",
    ]

    def secs(value: float | None) -> str:
        return "not within limit" if value is None else f"{value:.1f}"

    for f in result["faults"]:  # type: ignore[attr-defined]
        lines.append(
            f"| {f['kind']} {f['deployment']} | {secs(f['recovered_s'])} | {secs(f['back_s'])} "
            f"| {f['not_serving_s']:.1f} |"
        )
    outcomes = result["outcomes"]
    codes: dict[str, int] = {}
    for o in outcomes:  # type: ignore[attr-defined]
        codes[o["code"]] = codes.get(o["code"], 0) + 1
    degraded = len([o for o in outcomes if o["degraded"]])  # type: ignore[attr-defined]
    times = [o["elapsed_s"] for o in outcomes]  # type: ignore[attr-defined]
    lines.append("")
    lines.append(
        f"{len(outcomes)} requests: "  # type: ignore[arg-type]
        + ", ".join(f"{k} {v}" for k, v in sorted(codes.items()))
        + f"; {degraded} answered degraded; latency p50 {statistics.median(times):.1f} s, "
        f"max {max(times):.1f} s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=60.0, help="each request's deadline")
    parser.add_argument("--limit", type=float, default=60.0, help="allowed recovery time")
    parser.add_argument("--settle", type=float, default=10.0, help="load before each fault")
    parser.add_argument(
        "--wait-back",
        type=float,
        default=60.0,
        help="after recovery, how long more to wait for the deployment's own health (the "
        "Explainer's LLM engine); 0 = go on to the next fault",
    )
    parser.add_argument(
        "--faults",
        default=",".join([f"kill:{d}" for d in DEPLOYMENTS] + ["hang:VisualClues"]),
        help="comma-separated KIND:Deployment, KIND kill or hang",
    )
    parser.add_argument("--json", type=Path, help="write every fault and outcome here")
    args = parser.parse_args(argv)
    faults = [(d, k) for k, d in (f.split(":", 1) for f in args.faults.split(","))]
    result = run(
        args.address,
        faults,
        media=args.media,
        concurrency=args.concurrency,
        deadline_s=args.deadline,
        settle_s=args.settle,
        limit_s=args.limit,
        wait_back_s=args.wait_back,
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(report(result))
    found = problems(result, args.limit)
    for line in found:
        print("PROBLEM", line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
