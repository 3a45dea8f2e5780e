"""The request pipeline: decode once, run the clue models concurrently, explain, label.

Transport-free: the Ray Serve ingress adapts deployment handles into `Backends`, and tests can
pass plain objects. Events are emitted as each stage completes (for AnalyzeStream).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from services.common.errors import EmerError, InvalidInputError, PayloadTooLargeError
from services.common.types import (
    AudioClip,
    AudioClueResult,
    Clue,
    Modality,
    ModelInfo,
    Transcript,
    VideoFrames,
)
from services.config import GatewayConfig
from services.explainer.composer import Explanation, Label, compose
from services.explainer.vocabulary import EmotionVocabulary
from services.media.decode import DecodedMedia, DecodeOptions, MediaKind, decode_media

logger = logging.getLogger(__name__)

# Prefix of the reason given for a modality the request did not carry (or skipped).
NOT_IN_REQUEST = "not in the request"


@dataclass
class AnalysisRequest:
    request_id: str
    media: bytes
    media_kind: MediaKind | None
    subtitle: str
    language: str = "en"
    skip_audio: bool = False
    skip_visual: bool = False
    skip_text: bool = False
    skip_explanation: bool = False


@dataclass
class AnalysisResult:
    request_id: str
    clues: dict[Modality, Clue]
    transcript: Transcript | None
    explanation: Explanation
    timings_ms: dict[str, float]
    models: list[ModelInfo]
    warnings: list[str]
    media_duration_s: float


# Stream events, in the order a client sees them.
@dataclass
class ClueEvent:
    clue: Clue


@dataclass
class TranscriptEvent:
    transcript: Transcript


@dataclass
class ExplanationDeltaEvent:
    text: str


@dataclass
class LabelsEvent:
    labels: list[Label]
    basic_category: str


Event = ClueEvent | TranscriptEvent | ExplanationDeltaEvent | LabelsEvent
Emit = Callable[[Event], Awaitable[None]]


class Backends(Protocol):
    """What the pipeline needs from the model deployments."""

    async def audio(self, clip: AudioClip, transcribe: bool, language: str) -> AudioClueResult: ...

    async def visual(self, video: VideoFrames) -> Clue: ...

    async def text(self, text: str, language: str) -> Clue: ...

    def explain(
        self,
        audio: Clue | None,
        visual: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        """Yields explanation text deltas, then the final Explanation."""
        ...

    async def models(self) -> list[ModelInfo]: ...


def validate(request: AnalysisRequest, config: GatewayConfig) -> None:
    """Reject wrong field combinations and oversize payloads before any work is done."""
    if len(request.media) > config.max_media_bytes:
        raise PayloadTooLargeError(
            f"the media is {len(request.media) / 1e6:.1f} MB; "
            f"the limit is {config.max_media_bytes / 1e6:.1f} MB"
        )
    if len(request.subtitle) > config.max_subtitle_chars:
        raise PayloadTooLargeError(
            f"the subtitle has {len(request.subtitle)} characters; "
            f"the limit is {config.max_subtitle_chars}"
        )
    if not request.media and not request.subtitle.strip():
        raise InvalidInputError("the request has neither media nor subtitle: send at least one")
    if request.media_kind is not None and not request.media:
        raise InvalidInputError("media_kind is set but the media field is empty")
    if "\x00" in request.subtitle:
        raise InvalidInputError("the subtitle contains NUL characters")
    if request.skip_audio and request.skip_visual and request.skip_text:
        raise InvalidInputError("all modalities are skipped: nothing to analyse")


def validate_extraction_text(text: str, config: GatewayConfig) -> str:
    """The description an ExtractLabels request carries, stripped and checked."""
    if len(text) > config.max_description_chars:
        raise PayloadTooLargeError(
            f"the text has {len(text)} characters; the limit is {config.max_description_chars}"
        )
    if "\x00" in text:
        raise InvalidInputError("the text contains NUL characters")
    if not text.strip():
        raise InvalidInputError("the text is empty")
    return text.strip()


class Pipeline:
    def __init__(
        self,
        backends: Backends,
        config: GatewayConfig,
        vocabulary: EmotionVocabulary | None,
    ) -> None:
        self.backends = backends
        self.config = config
        self.vocabulary = vocabulary
        self.decode_options = DecodeOptions(
            frame_rate=config.frame_rate,
            max_frames=config.max_frames,
            max_side=config.max_frame_side,
            max_duration_s=config.max_duration_s,
        )

    async def run(self, request: AnalysisRequest, emit: Emit | None = None) -> AnalysisResult:
        validate(request, self.config)
        started = time.perf_counter()
        request_id = request.request_id or uuid.uuid4().hex
        timings: dict[str, float] = {}
        warnings: list[str] = []

        async def send(event: Event) -> None:
            if emit is not None:
                await emit(event)

        media: DecodedMedia | None = None
        if request.media:
            t0 = time.perf_counter()
            # Decoding is CPU work: keep the event loop free for other requests.
            media = await asyncio.to_thread(
                decode_media, request.media, request.media_kind, self.decode_options
            )
            timings["decode"] = _ms(t0)
            warnings.extend(media.warnings)

        subtitle = request.subtitle.strip()
        clues: dict[Modality, Clue] = {}
        transcript: Transcript | None = None
        if subtitle:
            transcript = Transcript(
                text=subtitle, language=request.language, words=[], source="subtitle"
            )

        async def run_audio() -> None:
            nonlocal transcript
            if request.skip_audio:
                clues[Modality.AUDIO] = Clue.unavailable(
                    Modality.AUDIO, f"{NOT_IN_REQUEST}: skipped by the request options"
                )
            elif media is None or media.audio is None:
                # A still image has no sound by nature: not worth a sentence in the answer.
                why = (
                    f"{NOT_IN_REQUEST}: no audio"
                    if media is None or media.kind is MediaKind.IMAGE
                    else "the media has no audio track"
                )
                clues[Modality.AUDIO] = Clue.unavailable(Modality.AUDIO, why)
            else:
                result = await self._timed(
                    "audio",
                    self.backends.audio(media.audio, not subtitle, request.language),
                    timings,
                )
                if isinstance(result, AudioClueResult):
                    clues[Modality.AUDIO] = result.clue
                    if result.transcript is not None and not subtitle:
                        transcript = result.transcript
                        await send(TranscriptEvent(result.transcript))
                else:
                    clues[Modality.AUDIO] = Clue.unavailable(Modality.AUDIO, str(result))
                    warnings.append(f"audio clue unavailable: {result}")
            await send(ClueEvent(clues[Modality.AUDIO]))

        async def run_visual() -> None:
            if request.skip_visual:
                clues[Modality.VISUAL] = Clue.unavailable(
                    Modality.VISUAL, f"{NOT_IN_REQUEST}: skipped by the request options"
                )
            elif media is None or media.video is None:
                why = (
                    f"{NOT_IN_REQUEST}: no video or image"
                    if media is None or media.kind is MediaKind.AUDIO
                    else "the media has no video"
                )
                clues[Modality.VISUAL] = Clue.unavailable(Modality.VISUAL, why)
            else:
                result = await self._timed("visual", self.backends.visual(media.video), timings)
                if isinstance(result, Clue):
                    clues[Modality.VISUAL] = result
                else:
                    clues[Modality.VISUAL] = Clue.unavailable(Modality.VISUAL, str(result))
                    warnings.append(f"visual clue unavailable: {result}")
            await send(ClueEvent(clues[Modality.VISUAL]))

        async def run_text(after: asyncio.Task[None] | None) -> None:
            if after is not None:
                await after  # the transcript comes from the audio model
            if request.skip_text:
                clues[Modality.TEXT] = Clue.unavailable(
                    Modality.TEXT, f"{NOT_IN_REQUEST}: skipped by the request options"
                )
            elif transcript is None or not transcript.text.strip():
                if media is None or media.audio is None:
                    why = f"{NOT_IN_REQUEST}: no subtitle and no audio to transcribe"
                else:
                    why = "no subtitle was given and no speech was transcribed"
                clues[Modality.TEXT] = Clue.unavailable(Modality.TEXT, why)
            else:
                result = await self._timed(
                    "text", self.backends.text(transcript.text, request.language), timings
                )
                if isinstance(result, Clue):
                    clues[Modality.TEXT] = result
                else:
                    clues[Modality.TEXT] = Clue.unavailable(Modality.TEXT, str(result))
                    warnings.append(f"text clue unavailable: {result}")
            await send(ClueEvent(clues[Modality.TEXT]))

        t_clues = time.perf_counter()
        audio_task = asyncio.create_task(run_audio())
        visual_task = asyncio.create_task(run_visual())
        text_task = asyncio.create_task(run_text(None if subtitle else audio_task))
        try:
            await asyncio.gather(audio_task, visual_task, text_task)
        except BaseException:
            for task in (audio_task, visual_task, text_task):
                task.cancel()
            raise
        timings["clues"] = _ms(t_clues)

        if not any(c.available for c in clues.values()):
            reasons = "; ".join(
                f"{m.value}: {c.unavailable_reason}" for m, c in sorted(clues.items()) if c
            )
            raise InvalidInputError(f"nothing in the request could be analysed ({reasons})")

        explanation = await self._explain(request, clues, transcript, timings, warnings, send)
        await send(LabelsEvent(explanation.labels, explanation.basic_category))
        warnings.extend(explanation.warnings)
        timings["total"] = _ms(started)
        models = [*await self.backends.models(), explanation.model]
        return AnalysisResult(
            request_id=request_id,
            clues=clues,
            transcript=transcript,
            explanation=explanation,
            timings_ms=timings,
            models=_unique(models),
            warnings=list(dict.fromkeys(warnings)),
            media_duration_s=media.duration_s if media else 0.0,
        )

    async def _explain(
        self,
        request: AnalysisRequest,
        clues: dict[Modality, Clue],
        transcript: Transcript | None,
        timings: dict[str, float],
        warnings: list[str],
        send: Emit,
    ) -> Explanation:
        # Modalities the request did not carry are left out of the explanation altogether.
        present = {
            m: clue
            for m, clue in clues.items()
            if clue.available or not clue.unavailable_reason.startswith(NOT_IN_REQUEST)
        }
        args = (
            present.get(Modality.AUDIO),
            present.get(Modality.VISUAL),
            present.get(Modality.TEXT),
            transcript,
        )
        t0 = time.perf_counter()
        if not request.skip_explanation:
            try:
                async with asyncio.timeout(self.config.explainer_timeout_s):
                    async for item in self.backends.explain(*args):
                        if isinstance(item, Explanation):
                            timings["explain"] = _ms(t0)
                            return item
                        await send(ExplanationDeltaEvent(item))
                warnings.append("the explainer returned no explanation; used the composer")
            except TimeoutError:
                warnings.append("the explainer timed out; the explanation comes from the composer")
            except EmerError:
                raise
            except Exception:
                logger.exception("explainer failed")
                warnings.append("the explainer failed; the explanation comes from the composer")
        explanation = compose(*args, vocabulary=self.vocabulary)
        if request.skip_explanation:
            explanation.text, explanation.sentences = "", []
        else:
            for sentence in explanation.sentences:
                await send(ExplanationDeltaEvent(sentence + " "))
        timings["explain"] = _ms(t0)
        return explanation

    async def _timed(
        self, stage: str, call: Awaitable[object], timings: dict[str, float]
    ) -> object | str:
        """Await a model call; on failure return the reason as a string (the answer goes on)."""
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.clue_timeout_s):
                return await call
        except TimeoutError:
            return f"the {stage} model did not answer within {self.config.clue_timeout_s:.0f} s"
        except EmerError as e:
            return e.message
        except Exception:
            logger.exception("%s model failed", stage)
            return f"the {stage} model failed"
        finally:
            timings[stage] = _ms(t0)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


def _unique(models: list[ModelInfo]) -> list[ModelInfo]:
    return list(dict.fromkeys(models))


__all__ = [
    "AnalysisRequest",
    "AnalysisResult",
    "Backends",
    "ClueEvent",
    "Event",
    "ExplanationDeltaEvent",
    "LabelsEvent",
    "Pipeline",
    "TranscriptEvent",
]
