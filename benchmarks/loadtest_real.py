"""Start the real service (`emer serve`, deploy/serve-cpu.yaml) and run `emer loadtest` against it.

    scripts/netns-run .venv/bin/python benchmarks/loadtest_real.py --concurrency 8 --duration 30 \
        --out benchmarks/results/loadtest-c8

Extra arguments are passed to `emer loadtest` (e.g. --rate 2 --mix mix.yaml --warmup 10).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from clients.loadtest import cmd_loadtest, register
from services.local_server import local_server

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(prog="loadtest_real")
    parser.add_argument("--address")
    parser.add_argument("--timeout", type=float, default=None)
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["loadtest", *sys.argv[1:]])
    data = os.environ.get("EMER_DATA", str(REPO.parent / "shared" / "data"))
    log = Path(tempfile.mkdtemp(prefix="emer-loadtest-")) / "serve.log"
    print(f"starting emer serve (log {log})", file=sys.stderr)
    with local_server(log, env={"EMER_DATA": data}) as address:
        args.address = address
        return cmd_loadtest(args)


if __name__ == "__main__":
    sys.exit(main())
