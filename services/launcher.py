"""Start a local Ray instance and deploy a Serve config file (what `emer serve` runs).

On a cluster, KubeRay deploys the same config through the dashboard; this is the one-machine
path. Blocks until SIGINT/SIGTERM, then shuts Serve and Ray down.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from emer_eval.vocabulary import default_data_dir

from services.audio.jit_cache import warm_jit_cache
from services.gateway.auth import TOKEN_FILE_ENV, read_tokens, token_file
from services.resource_plan import Plan

logger = logging.getLogger(__name__)

# Printed once every deployment of the app is up (the Explainer's LLM engine included: health
# SERVING alone does not wait for it). scripts/demo.sh and services.local_server wait for it.
READY_LINE = "emer-serve is serving gRPC"
DEFAULT_METRICS_PORT = 8080  # Ray's Prometheus export port (`emer serve --metrics-port`)
# Shipped inside the package (services/profiles; deploy/serve-*.yaml link to them), so an
# installed server runs from any directory.
PROFILES = Path(__file__).resolve().parent / "profiles"
DEFAULT_CONFIG = PROFILES / "serve-cpu.yaml"
# Everything a replica needs to run offline and politely on few cores.
WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",
}


def load_config(path: Path, grpc_port: int | None = None) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    if grpc_port is not None:
        config.setdefault("grpc_options", {})["port"] = grpc_port
    return config


def serve_forever(
    config_path: Path = DEFAULT_CONFIG,
    *,
    grpc_port: int | None = None,
    dashboard: bool = False,
    metrics_port: int | None = None,
    ready_timeout_s: float = 600.0,
    stop: threading.Event | None = None,
) -> None:
    import ray
    from ray import serve
    from ray.serve.config import gRPCOptions
    from ray.serve.schema import ServeDeploySchema

    if metrics_port is None:
        metrics_port = int(os.environ.get("EMER_METRICS_PORT", DEFAULT_METRICS_PORT))
    raw = load_config(config_path, grpc_port)
    schema = ServeDeploySchema.model_validate(raw)
    env = {k: os.environ.get(k, v) for k, v in WORKER_ENV.items()}
    auth = auth_summary(raw)  # a bad token file stops here, before Ray starts
    if any(d.name == "AudioClues" for app in schema.applications for d in app.deployments):
        warm_jit_cache()  # a poisoned numba cache would crash every AudioClues replica
    for key in ("EMER_DATA", "EMER_MODELS", TOKEN_FILE_ENV):
        if key in os.environ:
            env[key] = os.environ[key]
    # Replicas do not share the driver's working directory: the data folder's default goes to
    # them as an absolute path.
    default_data = default_data_dir().resolve()
    if "EMER_DATA" not in env and default_data.is_dir():
        env["EMER_DATA"] = str(default_data)
    ray.init(
        namespace="serve",
        include_dashboard=dashboard,
        runtime_env={"env_vars": env},
        log_to_driver=os.environ.get("EMER_RAY_LOGS", "0") == "1",
        # Prometheus scrapes /metrics here: ray_serve_* and the ray_emer_* series.
        _metrics_export_port=metrics_port,
    )
    resources = ray.cluster_resources()
    plan = Plan.from_config(raw).summary(resources.get("CPU", 0.0), resources.get("GPU", 0.0))
    print(plan, flush=True)  # before the models load: a plan that does not fit is said at once
    serve.start(
        proxy_location=schema.proxy_location,
        http_options=schema.http_options.model_dump(),
        grpc_options=gRPCOptions(**schema.grpc_options.model_dump()),
    )
    # Serve's public API has no "deploy this config file" call: the CLI (`serve run
    # config.yaml`) uses the controller client the same way. Ray is pinned in pyproject.
    client = serve.context._get_global_client()
    if client is None:
        raise RuntimeError("Serve did not start")
    client.deploy_apps(schema, _blocking=False)
    _wait_running(schema, ready_timeout_s)
    port = schema.grpc_options.port
    print(
        f"{READY_LINE} on 127.0.0.1:{port}, Prometheus metrics on "
        f"http://127.0.0.1:{metrics_port}/metrics (Ctrl-C stops)",
        flush=True,
    )
    print(auth, flush=True)

    stop = stop or threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        print("stopping emer-serve", flush=True)
        serve.shutdown()
        ray.shutdown()


def auth_summary(config: dict[str, Any]) -> str:
    """One line for the operator: which token file guards the service, or that none does."""
    files = {
        str(path)
        for app in config.get("applications", [])
        if (
            path := token_file(
                ((app.get("args") or {}).get("gateway") or {}).get("auth_token_file")
            )
        )
    }
    if not files:
        return (
            "authentication: OFF (no EMER_AUTH_TOKEN_FILE or gateway.auth_token_file): anyone "
            "who reaches the port can call the models"
        )
    counts = [f"{path} ({len(read_tokens(Path(path)))} tokens)" for path in sorted(files)]
    return "authentication: bearer tokens from " + ", ".join(counts)


def _wait_running(schema: Any, timeout_s: float) -> None:
    from ray import serve

    names = [app.name for app in schema.applications]
    deadline = time.monotonic() + timeout_s
    while True:
        status = serve.status()
        states = {n: status.applications.get(n) for n in names}
        if all(s is not None and s.status == "RUNNING" for s in states.values()):
            return
        failed = {n: s for n, s in states.items() if s is not None and s.status == "DEPLOY_FAILED"}
        if failed:
            details = "; ".join(f"{n}: {s.message}" for n, s in failed.items())
            raise RuntimeError(f"deployment failed: {details}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"applications not running after {timeout_s:.0f} s: {states}")
        time.sleep(1.0)
