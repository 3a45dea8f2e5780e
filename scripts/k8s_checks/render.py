"""Rendering: `kubectl kustomize` an overlay into Manifests that name their source file."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .problems import display

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
SERVE_CONFIG_KEY = "serveConfigV2"


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
