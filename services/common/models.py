"""The small interfaces every clue model implements, one per modality.

A backend is chosen by config (`backend: embedded | huggingface`); each modality package has
`load_model(config) -> <Modality>ClueModel`. The embedded backends need no downloads.
"""

from __future__ import annotations

from typing import Protocol

from services.common.types import AudioClip, AudioClueResult, Clue, ModelInfo, VideoFrames


class AudioClueModel(Protocol):
    @property
    def info(self) -> list[ModelInfo]:
        """Every model this backend runs (prosody, VAD, ASR...)."""
        ...

    def warmup(self) -> None:
        """Run once at replica start so the first request is not slow (pyin, ASR...)."""
        ...

    def analyze(
        self, clip: AudioClip, *, transcribe: bool, language: str = "en"
    ) -> AudioClueResult:
        """Describe the voice. `transcribe` asks for a transcript with word timings."""
        ...


class VisualClueModel(Protocol):
    @property
    def info(self) -> list[ModelInfo]: ...

    def warmup(self) -> None: ...

    def analyze(self, video: VideoFrames) -> Clue:
        """Describe face, expression and movement over the sampled frames."""
        ...


class TextClueModel(Protocol):
    @property
    def info(self) -> list[ModelInfo]: ...

    def warmup(self) -> None: ...

    def analyze(self, text: str, *, language: str = "en") -> Clue:
        """Emotion scores, valence and arousal of what is said."""
        ...
