"""A bounded coverage-guided fuzz run (scripts/fuzz_requests.py, atheris) over request parsing,
conversion, validation and media decoding: no input may raise anything but the errors the
gateway turns into a client status, or take longer than 20 s."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_minute_of_fuzzing_finds_no_crash_and_no_hang(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "fuzz_requests.py"),
            "-max_total_time=45",
            "-timeout=20",
            "-print_final_stats=1",
        ],
        cwd=tmp_path,  # libFuzzer writes crash-* / timeout-* files here
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = sorted(
        p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))
    )
    assert run.returncode == 0 and not found, (found, run.stderr[-4000:])
    runs = [
        line
        for line in run.stderr.splitlines()
        if line.startswith("stat::number_of_executed_units")
    ]
    assert runs and int(runs[0].split(":")[-1]) > 500, run.stderr[-2000:]  # it really ran
