"""Application configuration: the `args:` of the Serve config's application.

Per-deployment replicas, resources, `max_ongoing_requests` and autoscaling live in the Serve
config's `deployments:` list (Serve applies them); these models hold what the code needs. Each
part's config sits with its code (`services/<part>/config.py`); this module only puts them
together.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.audio.config import AudioConfig
from services.explainer.config import ExplainerConfig
from services.gateway.config import GatewayConfig
from services.text.config import TextConfig
from services.visual.config import VisualConfig


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audio: AudioConfig = Field(default_factory=AudioConfig, description="Audio clue model.")
    visual: VisualConfig = Field(default_factory=VisualConfig, description="Visual clue model.")
    text: TextConfig = Field(default_factory=TextConfig, description="Text clue model.")
    explainer: ExplainerConfig = Field(default_factory=ExplainerConfig, description="Explainer.")
    gateway: GatewayConfig = Field(default_factory=GatewayConfig, description="Ingress limits.")

    @classmethod
    def from_args(cls, args: dict[str, Any] | None) -> AppConfig:
        try:
            return cls.model_validate(args or {})
        except ValidationError as e:
            raise ValueError(f"invalid emer-serve application args: {e}") from e
