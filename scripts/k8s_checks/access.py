"""What reaches the Ray pods: PodMonitor scraping, the TLS Ingress, the auth token file."""

from __future__ import annotations

import posixpath
from typing import Any

from .problems import Problem, fmt_path
from .rayservice import GRPC_PORT_NAME, Group, cluster_groups
from .render import Manifest


def check_podmonitors(manifests: list[Manifest]) -> list[Problem]:
    """Every PodMonitor must select the Ray pods and scrape a port they name."""
    problems: list[Problem] = []
    pods = []  # (RayService, group, pod template)
    for rs in (m for m in manifests if m.kind == "RayService"):
        head, workers = cluster_groups(rs.obj)
        pods += [(rs, g, _template(rs.obj, g)) for g in (head, *workers)]
    for pm in (m for m in manifests if m.kind == "PodMonitor"):
        spec = pm.obj.get("spec", {})
        selector = spec.get("selector", {}).get("matchLabels", {})
        for rs, g, template in pods:
            labels = template.get("metadata", {}).get("labels", {})
            if any(labels.get(k) != v for k, v in selector.items()):
                message = f"does not select the {g.name} pods of {rs.name} (labels {labels})"
                problems.append(Problem(pm.origin, pm.name, "spec.selector.matchLabels", message))
            for i, endpoint in enumerate(spec.get("podMetricsEndpoints", [])):
                if endpoint.get("port") not in g.ports():
                    path = fmt_path(["spec", "podMetricsEndpoints", i, "port"])
                    message = f"{endpoint.get('port')!r} is not a port of the {g.name} pods"
                    problems.append(Problem(pm.origin, pm.name, path, message))
    return problems


def check_tls(manifests: list[Manifest]) -> list[Problem]:
    """Clients reach the service over TLS: an Ingress terminates it (Ray's gRPC proxy has
    none) for every host it serves, speaks gRPC to the backend, and routes to the serve
    Service's gRPC port."""
    problems: list[Problem] = []
    services = {}  # serve Service name -> its gRPC port
    for rs in (m for m in manifests if m.kind == "RayService"):
        spec = rs.obj.get("spec", {}).get("serveService", {})
        name = spec.get("metadata", {}).get("name", f"{rs.name}-serve-svc")
        for port in spec.get("spec", {}).get("ports", []):
            if port.get("name") == GRPC_PORT_NAME:
                services[name] = port
    ingresses = [m for m in manifests if m.kind == "Ingress"]
    if not ingresses:
        return [
            Problem("deploy/k8s", "", "", "no Ingress: clients would reach Ray's plaintext proxy")
        ]
    for ing in ingresses:
        spec = ing.obj.get("spec", {})
        annotations = ing.obj.get("metadata", {}).get("annotations") or {}
        if annotations.get("nginx.ingress.kubernetes.io/backend-protocol") != "GRPC":
            problems.append(
                Problem(
                    ing.origin,
                    ing.name,
                    "metadata.annotations",
                    'needs nginx.ingress.kubernetes.io/backend-protocol: "GRPC" (Ray\'s proxy '
                    "speaks gRPC over plaintext HTTP/2)",
                )
            )
        covered = {
            h
            for entry in spec.get("tls", [])
            if entry.get("secretName")
            for h in entry.get("hosts", [])
        }
        for i, rule in enumerate(spec.get("rules", [])):
            host = rule.get("host")
            if host not in covered:
                problems.append(
                    Problem(
                        ing.origin,
                        ing.name,
                        fmt_path(["spec", "rules", i, "host"]),
                        f"{host!r} has no tls entry with a secretName (plaintext to clients)",
                    )
                )
            for j, path in enumerate(rule.get("http", {}).get("paths", [])):
                backend = path.get("backend", {}).get("service", {})
                port = backend.get("port", {})
                target = services.get(backend.get("name"))
                ok = target is not None and (
                    port.get("name") == GRPC_PORT_NAME or port.get("number") == target.get("port")
                )
                if not ok:
                    where = fmt_path(["spec", "rules", i, "http", "paths", j, "backend"])
                    message = (
                        f"must route to the serve Service's {GRPC_PORT_NAME!r} port "
                        f"({sorted(services)})"
                    )
                    problems.append(Problem(ing.origin, ing.name, where, message))
    return problems


def check_auth(manifests: list[Manifest]) -> list[Problem]:
    """Every Ray pod can run the gateway, so each must name the token file (EMER_AUTH_TOKEN_FILE)
    and mount its folder from a Secret of the overlay: a pod without it would serve anyone."""
    problems: list[Problem] = []
    secrets = {m.obj.get("metadata", {}).get("name") for m in manifests if m.kind == "Secret"}
    for rs in (m for m in manifests if m.kind == "RayService"):
        head, workers = cluster_groups(rs.obj)
        for g in (head, *workers):
            message = _token_file_problem(g, _template(rs.obj, g), secrets)
            if message:
                at = fmt_path([*g.path, "template", "spec", "containers", 0])
                problems.append(Problem(rs.origin, rs.name, at, f"{g.name} pods: {message}"))
    return problems


def _token_file_problem(g: Group, template: dict[str, Any], secrets: set[Any]) -> str | None:
    from services.gateway.auth import TOKEN_FILE_ENV

    env = {e.get("name"): e.get("value") for e in g.container.get("env") or []}
    path = env.get(TOKEN_FILE_ENV)
    if not path:
        return f"no {TOKEN_FILE_ENV}: the gateway would accept every caller"
    folder = posixpath.dirname(path)
    mounts = {v.get("mountPath"): v.get("name") for v in g.container.get("volumeMounts") or []}
    volumes = {v.get("name"): v for v in template["spec"].get("volumes") or []}
    secret = volumes.get(mounts.get(folder), {}).get("secret", {}).get("secretName")
    if secret is None:
        return f"{TOKEN_FILE_ENV}={path} but {folder} is not mounted from a Secret"
    if secret not in secrets:
        return f"the token file's Secret {secret!r} is not part of the overlay"
    return None


def _template(rayservice: dict[str, Any], g: Group) -> dict[str, Any]:
    node: Any = rayservice
    for part in g.path:
        node = node[part]
    return dict(node["template"])
