"""The model deployments: one Ray Serve deployment per model, each scaled on its own.

Replicas, resources, `max_ongoing_requests` and autoscaling come from the Serve config file
(deploy/serve-*.yaml); the defaults here only make a bare `serve.run` sensible on 2 cores. The
clue deployments batch concurrent requests (`_BatchedModel`; settings in each model config's
`batching:` block).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from services.audio import load_model as load_audio_model
from services.audio.config import AudioConfig
from services.common import prometheus as metrics
from services.common.batching import BatchingConfig
from services.common.types import (
    AudioClip,
    AudioClueResult,
    Clue,
    ModelInfo,
    Transcript,
    VideoFrames,
)
from services.explainer.composer import Explanation, LabelExtraction
from services.explainer.config import ExplainerConfig
from services.explainer.explainer import ExplainerCore
from services.explainer.llm import LLMEngine
from services.explainer.vllm_engine import start_engine
from services.text import load_model as load_text_model
from services.text.config import TextConfig
from services.visual import load_model as load_visual_model
from services.visual.config import VisualConfig

logger = logging.getLogger(__name__)


class _BatchedModel:
    """A loaded, warmed-up clue model whose replica batches concurrent requests.

    Requests go through Serve's `@serve.batch` queue: a batch takes up to `max_batch_size`
    requests (waiting at most `batch_wait_timeout_s` for more), and one batch at a time runs in a
    worker thread (`max_concurrent_batches=1`: tflite interpreters and CTranslate2 are not
    thread-safe, and on few cores parallel inference in one process only adds contention; more
    replicas give more parallelism).

    Inside a batch, a model with a joint path (`_analyze_together`: the text model's one encoder
    call) reads all items at once; otherwise, or when the joint call fails or answers the wrong
    number of items, the items run one after another. Every item's exception is caught and
    becomes that item's answer, so exactly one answer reaches each request and an error fails
    only the request that caused it (an exception escaping a batch function would fail every
    request of the batch).

    Each request carries its own answer future, which the batch sets as soon as that item is done
    (the batch function itself returns one None per request to Serve). Items run one after
    another therefore do not wait for the rest of their batch, and an item whose caller has gone
    (cancelled, timed out) is skipped.

    The batching wrapper is made per instance rather than with `@serve.batch` on the class: a
    class-level queue is shared by every instance in the process and bound to the event loop that
    first used it; here each instance has its own queue and the settings of its own config.
    """

    def __init__(self, model: Any, batching: BatchingConfig) -> None:
        self.model = model
        self.model.warmup()
        self.batching = batching
        self._running_since: float | None = None  # monotonic start of the model call running now
        self._submit = serve.batch(
            max_batch_size=batching.max_batch_size,
            batch_wait_timeout_s=batching.batch_wait_timeout_s,
            max_concurrent_batches=1,
        )(self._analyze_batch)

    def info(self) -> list[ModelInfo]:
        info: list[ModelInfo] = self.model.info
        return info

    async def _call(self, item: tuple[Any, ...]) -> Any:
        """Queue one request's arguments; return its own result or raise its own error."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queued = asyncio.ensure_future(self._submit((item, answer)))
        queued.add_done_callback(_retrieve)
        try:
            await asyncio.wait((answer, queued), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # this caller was cancelled: its item is skipped if still pending
            answer.cancel()
            queued.cancel()
            raise
        if not answer.done():  # the batch ended without answering: Serve's error, if any
            queued.result()
            raise RuntimeError("the batch ended without an answer for this request")
        value = answer.result()
        if isinstance(value, Exception):
            raise value
        return value

    async def _analyze_batch(
        self, requests: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]
    ) -> list[None]:
        """The `@serve.batch` function: answers each request through its own future."""
        waiting = [(item, answer) for item, answer in requests if not answer.done()]
        together = None
        if len(waiting) > 1:
            together = await self._in_thread(self._together, [i for i, _ in waiting])
        if together is not None:
            for (_, answer), value in zip(waiting, together, strict=True):
                _answer(answer, value)
        else:
            for item, answer in waiting:
                if not answer.done():  # its caller may have gone while earlier items ran
                    _answer(answer, await self._in_thread(self._analyze_one, item))
        return [None] * len(requests)

    async def _in_thread(self, fn: Any, arg: Any) -> Any:
        """Run one model call in a worker thread, timed for `check_health`."""
        self._running_since = time.monotonic()
        try:
            return await asyncio.to_thread(fn, arg)
        finally:
            self._running_since = None

    def check_health(self) -> None:
        """Serve's health check: a model call stuck past `stalled_after_s` fails it, so Serve
        replaces the replica. (A dead or stopped process fails it by not answering.)"""
        since = self._running_since
        if since is not None and time.monotonic() - since > self.batching.stalled_after_s:
            raise RuntimeError(
                f"{type(self).__name__}: a model call has run for {time.monotonic() - since:.0f} s "
                f"(stalled_after_s {self.batching.stalled_after_s:g}); replacing the replica"
            )

    def _analyze_one(self, item: tuple[Any, ...]) -> Any:
        """One request's result, or the exception it raised (as the value, not raised)."""
        try:
            return self._infer(*item)
        except Exception as e:
            logger.warning("%s: one request failed: %r", type(self).__name__, e)
            return e

    def _together(self, items: list[tuple[Any, ...]]) -> list[Any] | None:
        """`_analyze_together`, or None (one by one) when it fails or miscounts."""
        try:
            results = self._analyze_together(items)
        except Exception as e:
            logger.warning(
                "%s: joint batch of %d failed (%r); one by one", type(self).__name__, len(items), e
            )
            return None
        if results is not None and len(results) != len(items):
            logger.error(
                "%s: joint batch gave %d results for %d requests; one by one",
                type(self).__name__,
                len(results),
                len(items),
            )
            return None
        return results

    def _analyze_together(self, items: list[tuple[Any, ...]]) -> list[Any] | None:
        """Every item's result from one joint model call, or None where the model has no joint
        path (the items then run one by one)."""
        return None

    def _infer(self, *args: Any) -> Any:
        raise NotImplementedError


def _answer(answer: asyncio.Future[Any], value: Any) -> None:
    if not answer.done():
        answer.set_result(value)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Marks a finished queue call's error as seen: `_call` may have returned without it."""
    if not task.cancelled():
        task.exception()


@serve.deployment(name="AudioClues", max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.3})
class AudioClues(_BatchedModel):
    def __init__(self, config: dict[str, Any]) -> None:
        audio = AudioConfig.model_validate(config)
        super().__init__(load_audio_model(audio), audio.batching)

    async def analyze(self, clip: AudioClip, transcribe: bool, language: str) -> AudioClueResult:
        result: AudioClueResult = await self._call((clip, transcribe, language))
        return result

    def _infer(self, clip: AudioClip, transcribe: bool, language: str) -> AudioClueResult:
        result: AudioClueResult = self.model.analyze(clip, transcribe=transcribe, language=language)
        return result


@serve.deployment(name="VisualClues", max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.3})
class VisualClues(_BatchedModel):
    def __init__(self, config: dict[str, Any]) -> None:
        visual = VisualConfig.model_validate(config)
        super().__init__(load_visual_model(visual), visual.batching)

    async def analyze(self, video: VideoFrames) -> Clue:
        clue: Clue = await self._call((video,))
        return clue

    def _infer(self, video: VideoFrames) -> Clue:
        clue: Clue = self.model.analyze(video)
        return clue


@serve.deployment(name="TextClues", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.1})
class TextClues(_BatchedModel):
    def __init__(self, config: dict[str, Any]) -> None:
        text = TextConfig.model_validate(config)
        super().__init__(load_text_model(text), text.batching)

    async def analyze(self, text: str, language: str) -> Clue:
        clue: Clue = await self._call((text, language))
        return clue

    def _infer(self, text: str, language: str) -> Clue:
        clue: Clue = self.model.analyze(text, language=language)
        return clue

    def _analyze_together(self, items: list[tuple[Any, ...]]) -> list[Any] | None:
        """The model's analyze_batch (one encoder or classifier call for every text) where its
        results do not depend on the batch (`joint_batches`)."""
        if not getattr(self.model, "joint_batches", False):
            return None
        clues: list[Clue] = self.model.analyze_batch(items)
        return clues


@serve.deployment(name="Explainer", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.2})
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
                logger.exception(
                    "LLM ENGINE DID NOT START: every explanation will come from the composer "
                    "(metric ray_emer_llm_engine_up 0, health service 'Explainer' NOT_SERVING)"
                )
                problem = f"the engine did not start: {type(e).__name__}: {e}"[:300]
            name = (
                engine.info.name if engine else (self.config.llm.model or self.config.llm.embedded)
            )
            metrics.record_engine(name, engine is not None)
        self.core = ExplainerCore.from_config(self.config, engine, problem)

    async def explain_stream(
        self,
        audio: Clue | None,
        visual: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        async for item in self.core.explain_stream(audio, visual, text, transcript):
            yield item

    async def extract_labels(self, text: str, language: str = "") -> LabelExtraction:
        return await self.core.extract(text, language)

    def info(self) -> list[ModelInfo]:
        return self.core.models

    def writes_as_configured(self) -> bool:
        """False when the configured LLM is not running (it failed to start) and the composer
        writes every explanation: the gateway's health detail for 'Explainer'."""
        return self.config.backend != "vllm" or self.core.engine is not None

    async def check_health(self) -> None:
        """Serve restarts the replica when the engine dies (the composer cannot be relied on
        to hide a dead engine forever)."""
        if self.core.engine is not None:
            await self.core.engine.check_health()

    def __del__(self) -> None:
        engine = getattr(getattr(self, "core", None), "engine", None)
        if engine is not None:
            engine.shutdown()
