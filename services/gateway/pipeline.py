"""The request pipeline: decode once, run the clue models concurrently, explain, label.

Transport-free: the Ray Serve ingress adapts deployment handles into `Backends`, and tests can
pass plain objects. Events are emitted as each stage completes (for AnalyzeStream).

Each clue comes from `ClueRunner` (services/gateway/clue_runner.py), for short media here and
for each segment of long media (longer than GatewayConfig.long_media_s) in
services/gateway/long_media.py; the explainer runs once, on the whole clip's clues.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from emer_eval.vocabulary import EmotionVocabulary

from services.common.errors import (
    EmerError,
    InvalidInputError,
    ModelUnavailableError,
    ReplicaUnavailableError,
)
from services.common.types import (
    SERVER_FAULTS,
    Clue,
    Modality,
    ModelInfo,
    Transcript,
    Unavailable,
)
from services.explainer.composer import Explanation, compose
from services.gateway.clue_runner import (
    DEADLINE,
    ClueRunner,
    elapsed_ms,
    not_in_request,
    stage_timeout,
)
from services.gateway.config import GatewayConfig
from services.gateway.events import (
    AnalysisRequest,
    AnalysisResult,
    Backends,
    ClueEvent,
    Emit,
    Event,
    ExplanationDeltaEvent,
    LabelsEvent,
    SegmentEvent,
    SegmentResult,
    TranscriptEvent,
)
from services.gateway.long_media import LongMedia
from services.gateway.validation import validate
from services.media.decode import DecodedMedia, DecodeOptions, MediaKind, decode_media
from services.media.segments import probe_media

logger = logging.getLogger(__name__)


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
        self.clues = ClueRunner(backends, config)
        self.long_media = LongMedia(self.clues, config, vocabulary, self.decode_options)

    async def run(self, request: AnalysisRequest, emit: Emit | None = None) -> AnalysisResult:
        validate(request, self.config)
        started = time.perf_counter()
        DEADLINE.set(asyncio.get_running_loop().time() + self.config.request_timeout_s)
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
            probe = await asyncio.to_thread(
                probe_media, request.media, request.media_kind, self.decode_options
            )
            if probe is not None and probe.duration_s > self.config.long_media_s:
                timings["decode"] = elapsed_ms(t0)
                DEADLINE.set(None)  # many segments: each model call keeps its own timeout
                long = await self.long_media.analyse(request, probe, timings, send)
                return await self._finish(
                    request,
                    request_id,
                    long.clues,
                    long.transcript,
                    timings,
                    long.warnings,
                    send,
                    started,
                    long.duration_s,
                    long.timeline,
                )
            media = await asyncio.to_thread(
                decode_media, request.media, request.media_kind, self.decode_options
            )
            timings["decode"] = elapsed_ms(t0)
            warnings.extend(media.warnings)

        subtitle = request.subtitle.strip()
        clues: dict[Modality, Clue] = {}
        transcript: Transcript | None = None
        if subtitle:
            transcript = Transcript(
                text=subtitle, language=request.language, words=[], source="subtitle"
            )
        has_audio = media is not None and media.audio is not None

        async def run_audio() -> None:
            nonlocal transcript
            # A still image has no sound by nature: not worth a sentence in the answer.
            if media is None or media.kind is MediaKind.IMAGE:
                absent = not_in_request(Modality.AUDIO, "no audio")
            else:
                absent = Clue.unavailable(Modality.AUDIO, "the media has no audio track")
            clip = media.audio if media is not None else None
            clue, heard = await self.clues.audio(
                request, clip, absent, not subtitle, timings, warnings
            )
            clues[Modality.AUDIO] = clue
            if heard is not None:
                transcript = heard
                await send(TranscriptEvent(heard))
            await send(ClueEvent(clue))

        async def run_visual() -> None:
            if media is None or media.kind is MediaKind.AUDIO:
                absent = not_in_request(Modality.VISUAL, "no video or image")
            else:
                absent = Clue.unavailable(Modality.VISUAL, "the media has no video")
            video = media.video if media is not None else None
            clues[Modality.VISUAL] = await self.clues.visual(
                request, video, absent, timings, warnings
            )
            await send(ClueEvent(clues[Modality.VISUAL]))

        async def run_text(after: asyncio.Task[None] | None) -> None:
            if after is not None:
                await after  # the transcript comes from the audio model
            clues[Modality.TEXT] = await self.clues.text(
                request, transcript, has_audio, timings, warnings
            )
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
        timings["clues"] = elapsed_ms(t_clues)

        return await self._finish(
            request,
            request_id,
            clues,
            transcript,
            timings,
            warnings,
            send,
            started,
            media.duration_s if media else 0.0,
        )

    async def _finish(
        self,
        request: AnalysisRequest,
        request_id: str,
        clues: dict[Modality, Clue],
        transcript: Transcript | None,
        timings: dict[str, float],
        warnings: list[str],
        send: Emit,
        started: float,
        duration_s: float,
        timeline: list[SegmentResult] | None = None,
    ) -> AnalysisResult:
        """The explanation (once, on the whole clip's clues), the labels and the result."""
        if not any(c.available for c in clues.values()):
            reasons = "; ".join(
                f"{m.value}: {c.unavailable_reason}" for m, c in sorted(clues.items()) if c
            )
            if any(c.unavailable_kind in SERVER_FAULTS for c in clues.values()):
                # A model of ours failed where the request had something to read: not the
                # client's fault, and a retry may well succeed.
                raise ModelUnavailableError(
                    f"the models could not read this request right now ({reasons}); retry later"
                )
            raise InvalidInputError(f"nothing in the request could be analysed ({reasons})")

        for modality, clue in sorted(clues.items()):
            # A language no model of the profile reads is said in the warnings too: the client
            # asked for an analysis it did not fully get.
            note = f"{modality.value} clue unavailable: {clue.unavailable_reason}"
            if clue.unavailable_kind == "unsupported_language" and note not in warnings:
                warnings.append(note)
        explanation = await self._explain(request, clues, transcript, timings, warnings, send)
        await send(LabelsEvent(explanation.labels, explanation.basic_category))
        warnings.extend(explanation.warnings)
        timings["total"] = elapsed_ms(started)
        models = [*await self.backends.models(), explanation.model]
        return AnalysisResult(
            request_id=request_id,
            clues=clues,
            transcript=transcript,
            explanation=explanation,
            timings_ms=timings,
            models=_unique(models),
            warnings=list(dict.fromkeys(warnings)),
            media_duration_s=duration_s,
            timeline=timeline or [],
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
            if clue.available or clue.unavailable_kind != Unavailable.NOT_IN_REQUEST
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
                async with asyncio.timeout(stage_timeout(self.config.explainer_timeout_s)):
                    async for item in self.backends.explain(*args):
                        if isinstance(item, Explanation):
                            timings["explain"] = elapsed_ms(t0)
                            return item
                        await send(ExplanationDeltaEvent(item))
                warnings.append("the explainer returned no explanation; used the composer")
            except TimeoutError:
                warnings.append("the explainer timed out; the explanation comes from the composer")
            except ReplicaUnavailableError as e:
                warnings.append(f"{e.message}; the explanation comes from the composer")
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
        timings["explain"] = elapsed_ms(t0)
        return explanation


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
    "SegmentEvent",
    "SegmentResult",
    "TranscriptEvent",
]
