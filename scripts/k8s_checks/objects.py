"""Object validation: each rendered object against its schema; committed Secret values."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

from .crd_schema import CRD_GROUPS, CUSTOM_SCHEMAS, crd_file_for, crd_validator
from .problems import Problem, fmt_path
from .render import Manifest
from .tools import KUBERNETES_VERSION


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
