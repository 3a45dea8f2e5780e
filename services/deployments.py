"""The model deployments: one Ray Serve deployment per model, each scaled on its own.

Replicas, resources, `max_ongoing_requests` and autoscaling come from the Serve config file
(deploy/serve-*.yaml); the defaults here only make a bare `serve.run` sensible on 2 cores.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from services.audio import load_model as load_audio_model
from services.audio.config import AudioConfig
from services.common.types import (
    AudioClip,
    AudioClueResult,
    Clue,
    ModelInfo,
    Transcript,
    VideoFrames,
)
from services.config import ExplainerConfig
from services.explainer.composer import COMPOSER_INFO, Explanation, compose
from services.explainer.vocabulary import load_vocabulary
from services.text import load_model as load_text_model
from services.text.config import TextConfig
from services.visual import load_model as load_visual_model
from services.visual.config import VisualConfig

logger = logging.getLogger(__name__)


class _SerialModel:
    """One inference at a time per replica: tflite interpreters and ASR are not thread-safe,
    and on few cores parallel inference in one process only adds contention. Requests queue
    up to `max_ongoing_requests`; more replicas give more parallelism."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            return await asyncio.to_thread(fn, *args, **kwargs)


@serve.deployment(name="AudioClues", max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.5})
class AudioClues(_SerialModel):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.model = load_audio_model(AudioConfig.model_validate(config))
        self.model.warmup()

    async def analyze(self, clip: AudioClip, transcribe: bool, language: str) -> AudioClueResult:
        result: AudioClueResult = await self._run(
            self.model.analyze, clip, transcribe=transcribe, language=language
        )
        return result

    def info(self) -> list[ModelInfo]:
        return self.model.info

    def check_health(self) -> None:
        """Serve calls this periodically; the model object must still be there."""
        if self.model is None:
            raise RuntimeError("audio model not loaded")


@serve.deployment(name="VisualClues", max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.5})
class VisualClues(_SerialModel):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.model = load_visual_model(VisualConfig.model_validate(config))
        self.model.warmup()

    async def analyze(self, video: VideoFrames) -> Clue:
        clue: Clue = await self._run(self.model.analyze, video)
        return clue

    def info(self) -> list[ModelInfo]:
        return self.model.info

    def check_health(self) -> None:
        if self.model is None:
            raise RuntimeError("visual model not loaded")


@serve.deployment(name="TextClues", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.25})
class TextClues(_SerialModel):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.model = load_text_model(TextConfig.model_validate(config))
        self.model.warmup()

    async def analyze(self, text: str, language: str) -> Clue:
        clue: Clue = await self._run(self.model.analyze, text, language=language)
        return clue

    def info(self) -> list[ModelInfo]:
        return self.model.info

    def check_health(self) -> None:
        if self.model is None:
            raise RuntimeError("text model not loaded")


@serve.deployment(name="Explainer", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.25})
class Explainer:
    """Writes the multimodal explanation and derives labels. Backend 'composer' is the
    deterministic writer; an LLM backend plugs in here with the same streaming interface."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = ExplainerConfig.model_validate(config)
        self.vocabulary = load_vocabulary(self.config.wheel_dir)

    async def explain_stream(
        self,
        audio: Clue | None,
        visual: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        explanation = compose(audio, visual, text, transcript, self.vocabulary)
        for sentence in explanation.sentences:
            yield sentence + " "
        yield explanation

    def info(self) -> list[ModelInfo]:
        return [COMPOSER_INFO]
