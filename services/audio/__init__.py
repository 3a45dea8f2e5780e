"""Audio clue model: prosody (pitch, loudness, rate, pauses, voice quality), speech segments and
an optional transcript with word timings.

`load_model(config)` returns the configured backend: `embedded` (default; CPU, bundled models,
no downloads) or `huggingface` (a transformers audio-classification model for the emotion
scores, imported only when selected).
"""

from __future__ import annotations

from services.audio.config import AudioConfig
from services.common.models import AudioClueModel

__all__ = ["AudioConfig", "load_model"]


def load_model(config: AudioConfig | None = None) -> AudioClueModel:
    """Build the audio clue model the config selects; models load here, not at import."""
    config = config or AudioConfig()
    if config.backend == "huggingface":
        # transformers is heavy: import it only for this backend.
        from services.audio.huggingface import HuggingFaceAudioModel

        return HuggingFaceAudioModel(config)
    from services.audio.embedded import EmbeddedAudioModel

    return EmbeddedAudioModel(config)
