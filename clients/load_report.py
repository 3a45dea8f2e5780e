"""The report of an `emer loadtest` run: its statistics (`summarize`: throughput, latency and
server-stage percentiles, errors and shed load, per mix entry), the Markdown report, the plots
and `write_report`, which writes them all to the output folder."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Only for annotations: the runner imports this module to write its report.
    from clients.loadtest import RunResult

__all__ = ["STAGES", "percentile", "plot", "render_markdown", "summarize", "write_report"]

STAGES = ("decode", "audio", "visual", "text", "clues", "explain", "total")


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
