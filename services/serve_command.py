"""`emer-serve`: start a local Ray instance and deploy a Serve config (the server's command).

`emer serve ...` in the full install runs this too; the client distribution has no server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.launcher import DEFAULT_CONFIG, serve_forever


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emer-serve", description="start local Ray and the application; blocks"
    )
    parser.add_argument("--config", help=f"Serve config file (default {DEFAULT_CONFIG.name})")
    parser.add_argument("--port", type=int, default=None, help="override the gRPC port")
    parser.add_argument("--dashboard", action="store_true", help="also start the Ray dashboard")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus metrics export port (default $EMER_METRICS_PORT or 8080)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    serve_forever(
        Path(args.config) if args.config else DEFAULT_CONFIG,
        grpc_port=args.port,
        dashboard=args.dashboard,
        metrics_port=args.metrics_port,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
