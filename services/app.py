"""Application builder, referenced from Serve config files as `services.app:build_app`.

applications:
  - name: emer
    import_path: services.app:build_app
    args: {audio: {...}, visual: {...}, text: {...}, explainer: {...}, gateway: {...}}
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from services.config import AppConfig
from services.deployments import AudioClues, Explainer, TextClues, VisualClues
from services.gateway.ingress import EmotionGateway

# Deployment names, as the Serve config files and KubeRay manifests must spell them.
DEPLOYMENT_NAMES = ("EmotionGateway", "AudioClues", "VisualClues", "TextClues", "Explainer")

# The servicer functions Ray's gRPC proxy registers (grpc_options.grpc_servicer_functions).
GRPC_SERVICER_FUNCTIONS = [
    "services.gateway.proxy_hooks.add_EmotionServiceServicer_to_server",
    "services.gateway.proxy_hooks.add_HealthServicer_to_server",
]


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Validate `args` into AppConfig and wire the five deployments together."""
    config = AppConfig.from_args(args)
    # serve.deployment adds .bind at run time; the type stubs do not show it.
    return EmotionGateway.bind(  # type: ignore[attr-defined]
        AudioClues.bind(config.audio.model_dump()),  # type: ignore[attr-defined]
        VisualClues.bind(config.visual.model_dump()),  # type: ignore[attr-defined]
        TextClues.bind(config.text.model_dump()),  # type: ignore[attr-defined]
        Explainer.bind(config.explainer.model_dump()),  # type: ignore[attr-defined]
        config.gateway.model_dump(),
        config.explainer.model_dump(),
    )
