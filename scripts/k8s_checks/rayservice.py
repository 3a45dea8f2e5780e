"""Cluster consistency: the RayService's head and worker groups can run its Serve config."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from .problems import Problem, fmt_path
from .render import SERVE_CONFIG_KEY, Manifest
from .serve_config import check_serve_config

GPU_RESOURCE = "nvidia.com/gpu"
GRPC_PORT_NAME = "serve-grpc"
HTTP_PORT_NAME = "serve"
METRICS_PORT_NAME = "metrics"
# RayService.spec.upgradeStrategy.type: the CRD has no enum, KubeRay's webhook knows these.
UPGRADE_TYPES = ("NewCluster", "NewClusterWithIncrementalUpgrade", "None")


def quantity(value: Any) -> float:
    """A Kubernetes CPU or count quantity ("4", "500m", 2) as a number."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


@dataclass
class Group:
    name: str
    path: list[str | int]
    container: dict[str, Any]
    start_params: dict[str, Any]

    def cpus(self) -> float:
        if "num-cpus" in self.start_params:
            return quantity(self.start_params["num-cpus"])
        res = self.container.get("resources", {})
        return quantity(res.get("limits", {}).get("cpu", res.get("requests", {}).get("cpu", 0)))

    def gpus(self) -> float:
        if "num-gpus" in self.start_params:
            return quantity(self.start_params["num-gpus"])
        return quantity(self.container.get("resources", {}).get("limits", {}).get(GPU_RESOURCE, 0))

    def ports(self) -> dict[str, int]:
        return {
            p["name"]: p["containerPort"] for p in self.container.get("ports", []) if "name" in p
        }


def cluster_groups(rayservice: dict[str, Any]) -> tuple[Group, list[Group]]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    base: list[str | int] = ["spec", "rayClusterConfig"]
    head = cluster["headGroupSpec"]
    # KubeRay treats the first container of a pod template as the Ray container.
    head_group = Group(
        "head",
        [*base, "headGroupSpec"],
        head["template"]["spec"]["containers"][0],
        head.get("rayStartParams", {}),
    )
    workers = [
        Group(
            g["groupName"],
            [*base, "workerGroupSpecs", i],
            g["template"]["spec"]["containers"][0],
            g.get("rayStartParams", {}),
        )
        for i, g in enumerate(cluster.get("workerGroupSpecs", []))
    ]
    return head_group, workers


def check_rayservice(m: Manifest, serve_file: str, gpu_overlay: bool) -> list[Problem]:
    """The Serve config, and that the cluster around it can run it as the config says."""
    import ray

    from services.app import DEPLOYMENT_NAMES
    from services.gateway.ingress import EmotionGateway
    from services.resource_plan import Plan

    problems: list[Problem] = []

    def problem(path: Sequence[str | int], message: str) -> None:
        in_serve_config = list(path[:2]) == ["spec", SERVE_CONFIG_KEY]
        file = serve_file if in_serve_config else m.origin
        problems.append(Problem(file, m.name, fmt_path(path), message))

    spec = m.obj.get("spec", {})
    text = spec.get(SERVE_CONFIG_KEY)
    if not isinstance(text, str) or not text.strip():
        problem(["spec", SERVE_CONFIG_KEY], "missing: the overlay must supply the Serve config")
        return problems
    serve_problems, serve = check_serve_config(text, serve_file, m.name)
    problems += serve_problems
    try:
        head, workers = cluster_groups(m.obj)
    except (KeyError, IndexError, TypeError) as e:
        problem(["spec", "rayClusterConfig"], f"incomplete cluster spec ({e!r})")
        return problems

    cluster_path: list[str | int] = ["spec", "rayClusterConfig"]
    ray_version = spec["rayClusterConfig"].get("rayVersion")
    if ray_version != ray.__version__:
        problem(
            [*cluster_path, "rayVersion"],
            f"{ray_version!r}, but the image has Ray {ray.__version__}",
        )
    upgrade = spec.get("upgradeStrategy", {}).get("type")
    if upgrade is not None and upgrade not in UPGRADE_TYPES:
        problem(["spec", "upgradeStrategy", "type"], f"{upgrade!r} is not one of {UPGRADE_TYPES}")
    if str(head.start_params.get("num-cpus")) != "0":
        problem(
            [*head.path, "rayStartParams", "num-cpus"],
            'must be "0": replicas belong on workers, the head runs GCS and the Serve controller',
        )
    if str(head.start_params.get("include-dashboard", "true")).lower() == "false":
        problem(
            [*head.path, "rayStartParams", "include-dashboard"],
            "KubeRay deploys serveConfigV2 through the dashboard: keep it on",
        )
    for g in [head, *workers]:
        ports = g.ports()
        where = [*g.path, "template", "spec", "containers", 0, "ports"]
        if METRICS_PORT_NAME not in ports:
            problem(where, f"no port named {METRICS_PORT_NAME!r} (Ray's metrics, scraped by name)")
        elif "metrics-export-port" in g.start_params and str(
            g.start_params["metrics-export-port"]
        ) != str(ports[METRICS_PORT_NAME]):
            problem(
                [*g.path, "rayStartParams", "metrics-export-port"],
                f"differs from the {METRICS_PORT_NAME!r} container port {ports[METRICS_PORT_NAME]}",
            )
    for g in workers:
        i = g.path[-1]
        group = spec["rayClusterConfig"]["workerGroupSpecs"][i]
        lo, hi = group.get("minReplicas", 0), group.get("maxReplicas", 0)
        n = group.get("replicas", lo)
        if all(isinstance(v, int) for v in (lo, hi, n)) and not lo <= n <= hi:
            problem([*g.path, "replicas"], f"{n} is outside minReplicas..maxReplicas ({lo}..{hi})")
        res = g.container.get("resources", {})
        requests, limits = res.get("requests", {}), res.get("limits", {})
        if (GPU_RESOURCE in requests or GPU_RESOURCE in limits) and str(
            requests.get(GPU_RESOURCE)
        ) != str(limits.get(GPU_RESOURCE)):
            problem(
                [*g.path, "template", "spec", "containers", 0, "resources"],
                f"{GPU_RESOURCE} requests must equal limits",
            )
    if serve is None:
        return problems

    serve_path: list[str | int] = ["spec", SERVE_CONFIG_KEY]
    head_ports = head.ports()
    head_ports_path = [*head.path, "template", "spec", "containers", 0, "ports"]
    for name, port in ((GRPC_PORT_NAME, serve.grpc_port), (HTTP_PORT_NAME, serve.http_port)):
        if head_ports.get(name) != port:
            problem(
                head_ports_path,
                f"needs port {name!r} = {port} (Serve's port; KubeRay builds the serve Service "
                "from the head's serve/serve-* ports)",
            )
    service_ports = {
        p.get("name"): p.get("port")
        for p in spec.get("serveService", {}).get("spec", {}).get("ports", [])
    }
    if service_ports.get(GRPC_PORT_NAME) != serve.grpc_port:
        problem(
            ["spec", "serveService", "spec", "ports"],
            f"needs port {GRPC_PORT_NAME!r} = {serve.grpc_port} for gRPC clients",
        )
    if spec.get("excludeHeadPodFromServeSvc") and serve.proxy_location in ("HeadOnly", "Disabled"):
        problem(
            [*serve_path, "proxy_location"],
            f"{serve.proxy_location} with excludeHeadPodFromServeSvc leaves no proxy to serve",
        )
    for g in workers:
        container_path = [*g.path, "template", "spec", "containers", 0]
        if g.ports().get(GRPC_PORT_NAME) != serve.grpc_port:
            problem(
                [*container_path, "ports"], f"needs port {GRPC_PORT_NAME!r} = {serve.grpc_port}"
            )
        probe = g.container.get("readinessProbe", {})
        if probe.get("grpc", {}).get("port") != serve.grpc_port:
            problem(
                [*container_path, "readinessProbe"],
                f"must be a grpc probe on {serve.grpc_port} (readiness = gRPC health of the app)",
            )

    # Each deployment must fit some worker group, or its replicas stay pending forever.
    # serve.deployment turns the class into a Deployment; the stubs do not show it.
    ingress = typing.cast(Any, EmotionGateway).name
    models = [n for n in DEPLOYMENT_NAMES if n != ingress]
    for r in serve.replicas:
        name, cpus, gpus, at = r.deployment, r.cpus, r.gpus, [*serve_path, *r.path]
        if not any(cpus <= g.cpus() and gpus <= g.gpus() for g in workers):
            offered = ", ".join(f"{g.name}: {g.cpus():g} CPU {g.gpus():g} GPU" for g in workers)
            needed = f"num_cpus={cpus:g}" + (f", num_gpus={gpus:g}" if gpus else "")
            hint = (
                f" (no worker group requests {GPU_RESOURCE})"
                if gpus and not any(g.gpus() for g in workers)
                else ""
            )
            problem(at, f"{name} needs {needed}; no worker group offers it ({offered}){hint}")
        if gpu_overlay and name in models and gpus <= 0:
            problem(at, f"{name} must request num_gpus in the GPU overlay")
    if gpu_overlay and not any(g.gpus() for g in workers):
        problem([*cluster_path, "workerGroupSpecs"], f"no worker group requests {GPU_RESOURCE}")

    # The resource plan (services/resource_plan.py): at every deployment's max_replicas, plus
    # one restart of the largest replica, the workers the cluster can have must hold them all,
    # or a replica that dies under load may never be placed again.
    autoscaler = bool(spec["rayClusterConfig"].get("enableInTreeAutoscaling"))
    groups = spec["rayClusterConfig"].get("workerGroupSpecs", [])
    pods = [
        int(group.get("maxReplicas" if autoscaler else "replicas", group.get("replicas", 1)))
        for group in groups
    ]
    cpus = sum(g.cpus() * n for g, n in zip(workers, pods, strict=True))
    gpus = sum(g.gpus() * n for g, n in zip(workers, pods, strict=True))
    raw_serve = yaml.safe_load(text)
    plan = Plan.from_config(raw_serve)
    for message in plan.problems(cpus, gpus):
        pods_word = "maxReplicas" if autoscaler else "replicas"
        problem([*serve_path, "applications"], f"{message} (workers at {pods_word})")
    gpu_workers = [(g, group) for g, group in zip(workers, groups, strict=True) if g.gpus()]
    for i, app in enumerate(raw_serve.get("applications") or []):
        for where, message in llm_fit_problems(app, gpu_workers):
            problem([*serve_path, "applications", i, *where], message)
    return problems


GPU_MEMORY_ANNOTATION = "emer.dev/gpu-memory-gib"


def llm_fit_problems(
    app: dict[str, Any], gpu_workers: list[tuple[Group, dict[str, Any]]]
) -> list[tuple[list[str | int], str]]:
    """The vLLM explainer on a GPU must fit the share its profile gives it
    (services/explainer/gpu_sizing.py), on the GPU its worker group is sized for."""
    from services.config import AppConfig
    from services.explainer.gpu_sizing import KNOWN_LLMS, fit, gpu_memory_of

    try:
        config = AppConfig.model_validate(app.get("args") or {})
    except ValidationError:
        return []  # reported by check_serve_config
    explainer = next(
        (d for d in app.get("deployments") or [] if d.get("name") == "Explainer"), None
    )
    options = (explainer or {}).get("ray_actor_options") or {}
    if (
        config.explainer.backend != "vllm"
        or not float(options.get("num_gpus", 0))
        or not gpu_workers
    ):
        return []
    llm = config.explainer.llm
    at: list[str | int] = ["args", "explainer", "llm"]
    found: list[tuple[list[str | int], str]] = []
    share = float(options["num_gpus"])
    if llm.gpu_memory_utilization > share + 1e-9:
        found.append(
            (
                [*at, "gpu_memory_utilization"],
                f"{llm.gpu_memory_utilization:g} of the GPU's memory, but the Explainer's num_gpus "
                f"is {share:g}: Ray packs the other replicas into the rest",
            )
        )
    spec = KNOWN_LLMS.get(llm.model or "")
    if spec is None:
        found.append(
            (
                [*at, "model"],
                f"{llm.model!r} cannot be sized offline: add its checkpoint size and KV bytes per "
                "token to services/explainer/gpu_sizing.py KNOWN_LLMS",
            )
        )
        return found
    for g, group in gpu_workers:
        template = group["template"]
        selector = template.get("spec", {}).get("nodeSelector") or {}
        memory = gpu_memory_of(selector)
        annotated = (template.get("metadata", {}).get("annotations") or {}).get(
            GPU_MEMORY_ANNOTATION
        )
        if memory is None and annotated is not None:
            memory = quantity(annotated)
        if memory is None:
            found.append(
                (
                    [*at, "model"],
                    f"worker group {g.name} does not say which GPU it is for: add a nodeSelector "
                    f"on a known GPU label or the annotation {GPU_MEMORY_ANNOTATION}",
                )
            )
            continue
        sized = fit(spec, memory, llm.gpu_memory_utilization, llm.max_model_len, llm.enforce_eager)
        if not sized.fits:
            found.append(
                (
                    [*at, "gpu_memory_utilization"],
                    f"{llm.model} does not fit on group {g.name}'s {memory:g} GiB GPU: "
                    f"{sized.describe()}; vLLM would fail to start and the composer would write "
                    "every explanation",
                )
            )
    return found
