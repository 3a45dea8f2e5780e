"""Overload curve: offered load vs goodput vs shed requests for the default profile.

    scripts/netns-run .venv/bin/python benchmarks/overload_curve.py \
        --rates 0.5 1 2 4 --duration 40 --out benchmarks/results/overload

Starts `emer serve` (deploy/serve-cpu.yaml) unless `--address` names a running one, then runs one
open-loop `emer loadtest` window per offered rate with the default request mix, retries off (so
every refusal is seen), and at most `--concurrency` requests in flight from the generator: far
above the gateway's admission limit, so whatever the server cannot take arrives at it. Per rate
it records goodput (answered requests per second), shed requests per second
(RESOURCE_EXHAUSTED with a retry pushback), other errors, the latency of answers and the
latency of refusals. Writes OUT/overload.json and OUT/overload.png (also copied to
docs/figures/overload.png with `--figure`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from clients.load_mix import default_mix
from clients.load_report import summarize
from clients.loadtest import RunConfig, run_load
from services.local_server import local_server

REPO = Path(__file__).resolve().parents[1]


def sweep(address: str, rates: list[float], args: argparse.Namespace) -> list[dict[str, Any]]:
    mix = default_mix()
    points = []
    for rate in rates:
        config = RunConfig(
            address=address,
            concurrency=args.concurrency,
            duration_s=args.duration,
            warmup_s=args.warmup,
            rate=rate,
            timeout_s=args.timeout,
            seed=int(rate * 100),
        )
        report = summarize(run_load(config, mix))
        other = {k: v for k, v in report["errors"].items() if k != "RESOURCE_EXHAUSTED"}
        point = {
            "offered_rps": rate,
            "sent_rps": report["offered_rps"],
            "requests": report["requests"],
            "ok": report["ok"],
            "goodput_rps": report["throughput_rps"],
            "shed": report["shed"],
            "shed_rps": round(report["shed"] / args.duration, 3),
            "other_errors": other,
            "dropped_by_generator": report["dropped"],
            "latency_ms": report["latency_ms"],
            "shed_latency_ms": report["shed_latency_ms"],
        }
        print(json.dumps(point), flush=True)
        points.append(point)
    return points


def plot(points: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [p["offered_rps"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(offered, offered, ":", color="grey", label="offered")
    left.plot(offered, [p["goodput_rps"] for p in points], "o-", label="goodput (answered)")
    left.plot(offered, [p["shed_rps"] for p in points], "s-", label="shed (RESOURCE_EXHAUSTED)")
    left.set_xlabel("offered load (requests/s)")
    left.set_ylabel("requests/s")
    left.set_title("goodput and shed load")
    left.legend()
    left.grid(alpha=0.3)

    def series(key: str, stat: str) -> list[float]:
        return [p[key][stat] / 1000 if p[key][stat] is not None else float("nan") for p in points]

    right.plot(offered, series("latency_ms", "p50"), "o-", label="answered p50")
    right.plot(offered, series("latency_ms", "p99"), "o--", label="answered p99")
    right.plot(offered, series("shed_latency_ms", "p99"), "s-", label="shed p99")
    right.set_xlabel("offered load (requests/s)")
    right.set_ylabel("latency (s)")
    right.set_title("latency")
    right.legend()
    right.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", help="a running server (default: start one)")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "overload")
    parser.add_argument("--figure", action="store_true", help="also write docs/figures/")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.address:
        points = sweep(args.address, args.rates, args)
    else:
        data = os.environ.get("EMER_DATA", str(REPO.parent / "shared" / "data"))
        log = Path(tempfile.mkdtemp(prefix="emer-overload-")) / "serve.log"
        print(f"starting emer serve (log {log})", file=sys.stderr)
        with local_server(log, env={"EMER_DATA": data}) as address:
            points = sweep(address, args.rates, args)
    result = {
        "profile": "deploy/serve-cpu.yaml",
        "mix": "default (video 0.4, audio 0.2, image 0.2, text 0.2)",
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "generator_concurrency": args.concurrency,
        "timeout_s": args.timeout,
        "cpu_count": os.cpu_count(),
        "points": points,
    }
    (args.out / "overload.json").write_text(json.dumps(result, indent=2) + "\n")
    figure = args.out / "overload.png"
    plot(points, figure, f"default CPU profile, {os.cpu_count()} cores, retries off")
    if args.figure:
        shutil.copy(figure, REPO / "docs" / "figures" / "overload.png")
    print(f"wrote {args.out / 'overload.json'} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
