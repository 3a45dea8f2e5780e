"""Visual clue model: face expression, landmark cues and head movement over the sampled frames.

`load_model(config)` returns the configured backend: `embedded` (default; CPU, bundled models,
no downloads) or `huggingface` (a transformers image classifier for the expression, imported
only when selected).
"""

from __future__ import annotations

from services.common.models import VisualClueModel
from services.visual.config import VisualConfig

__all__ = ["VisualConfig", "load_model"]


def load_model(config: VisualConfig | None = None) -> VisualClueModel:
    """Build the visual clue model the config selects; models load here, not at import."""
    config = config or VisualConfig()
    if config.backend == "huggingface":
        # torch and transformers are heavy: import them only for this backend.
        from services.visual.huggingface import HuggingFaceVisualModel

        return HuggingFaceVisualModel(config)
    from services.visual.embedded import EmbeddedVisualModel

    return EmbeddedVisualModel(config)
