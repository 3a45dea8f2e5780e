"""The Serve config: serveConfigV2 against Ray's schema, keys Ray would ignore, our rules."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .problems import Problem, fmt_path
from .render import SERVE_CONFIG_KEY

# Installing at run time defeats images built ahead (and fails on offline clusters).
RUNTIME_INSTALL_KEYS = ("pip", "conda", "uv", "working_dir", "py_modules")


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

    from clients.options import DEFAULT_APPLICATION
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
