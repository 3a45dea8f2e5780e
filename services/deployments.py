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
from services.explainer.composer import Explanation, LabelExtraction
from services.explainer.explainer import ExplainerCore
from services.explainer.llm import LLMEngine, start_engine
from services.explainer.vocabulary import load_vocabulary
from services.text import load_model as load_text_model
from services.text.config import TextConfig
from services.visual import load_model as load_visual_model
from services.visual.config import VisualConfig

logger = logging.getLogger(__name__)


class _SerialModel:
    """A loaded, warmed-up clue model run one inference at a time per replica: tflite
    interpreters and ASR are not thread-safe, and on few cores parallel inference in one process
    only adds contention. Requests queue up to `max_ongoing_requests`; more replicas give more
    parallelism."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.model.warmup()
        self._lock = asyncio.Lock()

    def info(self) -> list[ModelInfo]:
        info: list[ModelInfo] = self.model.info
        return info

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            return await asyncio.to_thread(fn, *args, **kwargs)


@serve.deployment(name="AudioClues", max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.5})
class AudioClues(_SerialModel):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(load_audio_model(AudioConfig.model_validate(config)))

    async def analyze(self, clip: AudioClip, transcribe: bool, language: str) -> AudioClueResult:
        result: AudioClueResult = await self._run(
            self.model.analyze, clip, transcribe=transcribe, language=language
        )
        return result


@serve.deployment(name="VisualClues", max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.5})
class VisualClues(_SerialModel):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(load_visual_model(VisualConfig.model_validate(config)))

    async def analyze(self, video: VideoFrames) -> Clue:
        clue: Clue = await self._run(self.model.analyze, video)
        return clue


@serve.deployment(name="TextClues", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.25})
class TextClues(_SerialModel):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(load_text_model(TextConfig.model_validate(config)))

    async def analyze(self, text: str, language: str) -> Clue:
        clue: Clue = await self._run(self.model.analyze, text, language=language)
        return clue


@serve.deployment(name="Explainer", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.25})
class Explainer:
    """Writes the multimodal explanation and the labels. With backend 'vllm' an LLM engine
    (continuous batching across concurrent requests) writes; the composer is the fallback when
    the engine is off, fails to start, fails or times out."""

    async def __init__(self, config: dict[str, Any]) -> None:  # type: ignore[misc]
        self.config = ExplainerConfig.model_validate(config)
        engine: LLMEngine | None = None
        problem = None
        if self.config.backend == "vllm":
            try:
                engine = await start_engine(self.config.llm)
            except Exception as e:  # the service must come up and answer without the LLM
                logger.exception("LLM engine did not start; answers come from the composer")
                problem = f"the engine did not start: {type(e).__name__}: {e}"[:300]
        self.core = ExplainerCore(
            load_vocabulary(self.config.wheel_dir),
            engine,
            engine_problem=problem,
            request_timeout_s=self.config.llm.request_timeout_s,
            max_tokens=self.config.llm.max_tokens,
            disambiguate_text=self.config.disambiguate_text,
            select_labels=self.config.select_labels,
            llm_writes=self.config.llm_writes,
        )

    async def explain_stream(
        self,
        audio: Clue | None,
        visual: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        async for item in self.core.explain_stream(audio, visual, text, transcript):
            yield item

    async def extract_labels(self, text: str) -> LabelExtraction:
        return await self.core.extract(text)

    def info(self) -> list[ModelInfo]:
        return self.core.models

    async def check_health(self) -> None:
        """Serve restarts the replica when the engine dies (the composer cannot be relied on
        to hide a dead engine forever)."""
        if self.core.engine is not None:
            await self.core.engine.check_health()

    def __del__(self) -> None:
        engine = getattr(getattr(self, "core", None), "engine", None)
        if engine is not None:
            engine.shutdown()
