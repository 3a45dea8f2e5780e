"""Start `emer-serve` as a child process and wait until it is healthy (tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from clients.client import EmotionClient
from clients.options import ClientOptions
from services.launcher import READY_LINE

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_server(
    log_path: Path,
    *,
    config: Path | None = None,
    env: Mapping[str, str | None] | None = None,
    start_timeout_s: float = 600.0,
    metrics_port: int | None = None,
    command: list[str] | None = None,
    cwd: Path = REPO,
) -> Iterator[str]:
    """Yields the address of a healthy local server; stops it (SIGINT, then kill) on exit.

    `env`: variables to set over this process's (None removes one). `metrics_port`: Ray's
    Prometheus export port (default: a free one, so servers started one after another never
    race for a port the previous Ray may still hold). `command`: the server's command (default:
    this checkout's, with this interpreter), e.g. an installed `emer-serve`; `cwd` where it runs."""
    port = free_port()
    cmd = command or [sys.executable, "-m", "services.serve_command"]
    cmd = [*cmd, "--port", str(port)]
    cmd += ["--metrics-port", str(metrics_port if metrics_port is not None else free_port())]
    if config is not None:
        cmd += ["--config", str(config)]
    with log_path.open("w") as log:
        merged = {**os.environ, **(env or {})}
        environment = {k: v for k, v in merged.items() if v is not None}
        proc = subprocess.Popen(cmd, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    try:
        with EmotionClient(ClientOptions(address=address)) as client:
            deadline = time.monotonic() + start_timeout_s
            # Every deployment up (READY_LINE), and SERVING through the proxy.
            while READY_LINE not in log_path.read_text() or not client.health(timeout_s=5):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"emer serve exited with {proc.returncode}:\n{log_path.read_text()[-5000:]}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"emer serve not healthy after {start_timeout_s:.0f} s:\n"
                        f"{log_path.read_text()[-5000:]}"
                    )
                time.sleep(2)
        yield address
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
