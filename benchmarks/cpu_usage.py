"""CPU seconds by process between two moments: where a benchmark's CPU time actually went.

On a 2-core machine every throughput figure is a question of who used the cores; the
benchmarks print this next to their numbers so a gap comes with its measured cause.
"""

from __future__ import annotations

import psutil

Snapshot = dict[int, tuple[str, float]]


def _label(p: psutil.Process) -> str:
    """Ray workers retitle themselves (`ray::ServeReplica:emer:Explainer`), vLLM's engine core
    too (`VLLM::EngineCore`); other processes go by name."""
    cmd = p.cmdline() or [p.name()]
    first = cmd[0].split(" ")[0]
    if first.startswith(("ray::", "VLLM")):
        return first[:60]
    return p.name() or "?"


def cpu_snapshot() -> Snapshot:
    """CPU seconds (user + system) so far of every process on the machine."""
    out: Snapshot = {}
    for p in psutil.process_iter():
        try:
            t = p.cpu_times()
            out[p.pid] = (_label(p), t.user + t.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # processes come and go
    return out


def cpu_by_process(before: Snapshot, after: Snapshot, min_s: float = 0.01) -> dict[str, float]:
    """CPU seconds spent between two snapshots, summed by label, largest first. Processes are
    matched by pid (Ray workers and kernel threads change their titles as they work); one that
    started in between counts from zero; one that ended in between is missing (take snapshots
    while the processes of interest are alive)."""
    used: dict[str, float] = {}
    for pid, (label, total) in after.items():
        spent = total - before.get(pid, (label, 0.0))[1]
        if spent >= min_s:
            name = label.split(".")[0] if label.startswith("ray::") else label.split("-")[0]
            used[name] = used.get(name, 0.0) + spent
    return dict(sorted(used.items(), key=lambda kv: -kv[1]))


def format_usage(used: dict[str, float], wall_s: float, top: int = 8) -> str:
    """`total 31.2 cpu-s over 16.0 s (1.95 cores): VLLM::EngineCore 20.1, ...`"""
    total = sum(used.values())
    parts = ", ".join(f"{k} {v:.1f}" for k, v in list(used.items())[:top])
    return f"total {total:.1f} cpu-s over {wall_s:.1f} s ({total / wall_s:.2f} cores): {parts}"
