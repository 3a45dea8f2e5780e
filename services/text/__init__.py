"""Text clue model: what the words of a subtitle or ASR transcript say about emotion.

`load_model(config)` returns the configured backend: `embedded` (default; CPU, MiniLM emotion
prototypes + cue words + VADER, no downloads) or `huggingface` (a transformers text-classification
model by local path or Hub name, imported only when selected).
"""

from __future__ import annotations

from services.common.models import TextClueModel
from services.text.config import TextConfig

__all__ = ["TextConfig", "load_model"]


def load_model(config: TextConfig | None = None) -> TextClueModel:
    """Build the text clue model the config selects; models load here, not at import."""
    config = config or TextConfig()
    if config.backend == "huggingface":
        # transformers pipelines are heavy: import them only for this backend.
        from services.text.huggingface import HuggingFaceTextModel

        return HuggingFaceTextModel(config)
    from services.text.embedded import EmbeddedTextModel

    return EmbeddedTextModel(config)
