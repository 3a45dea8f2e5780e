"""CRD schemas: a CRD's structural schema as a strict JSON Schema validator; the PodMonitor's.

Kept instead of a library: none that the project can install does this job as strictly (checked
against its registries and kubeconform's source, yannh/kubeconform of 2025-05):
- kubeconform is a Go binary, not on PyPI (`kubeconform`, `kubeconform-binary`: no versions),
  npm (404) or Debian (no package).
- check-jsonschema (PyPI) validates against a JSON Schema it is given: it would still need
  structural_to_jsonschema below.
- kubeconform reads CRDs only through its scripts/openapi2jsonschema.py, a looser translation:
  additionalProperties: false on every object with properties even where
  x-kubernetes-preserve-unknown-fields keeps unknown fields (false errors), the root left open
  unless DENY_ROOT_ADDITIONAL_PROPERTIES is set, `nullable` not applied (its
  allow_null_optional_fields is never called), x-kubernetes-list-type ignored. No kubeconform
  code reads the x-kubernetes-* keys, and neither kubeconform (its one format of its own is
  `duration`) nor its JSON Schema library (santhosh-tekuri/jsonschema v6) has int32/int64
  formats: two containers of one name or an out-of-range int32 would pass. Its -strict flag is
  "disallow additional properties not in schema or duplicated keys" (of the YAML).
Core objects do use a library: kubernetes-validate (objects.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .problems import REPO
from .tools import ToolError

CRD_GROUPS = ("ray.io",)


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
