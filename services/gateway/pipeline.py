"""The request pipeline: decode once, run the clue models concurrently, explain, label.

Transport-free: the Ray Serve ingress adapts deployment handles into `Backends`, and tests can
pass plain objects. Events are emitted as each stage completes (for AnalyzeStream).

Long media (longer than GatewayConfig.long_media_s) are decoded as a stream of segments: each
segment gets its own clues and fused labels (a SegmentEvent, an entry of the timeline), the next
one is decoded while this one's audio is analysed, and the explainer runs once on the clues
aggregated over the segments.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

from emer_eval.vocabulary import EmotionVocabulary

from services.common.errors import (
    EmerError,
    InvalidInputError,
    ModelUnavailableError,
    PayloadTooLargeError,
    ReplicaUnavailableError,
)
from services.common.types import (
    SERVER_FAULTS,
    AudioClueResult,
    Clue,
    Modality,
    ModelInfo,
    Transcript,
    Unavailable,
    VideoFrames,
    Word,
)
from services.explainer.composer import (
    Explanation,
    Label,
    aggregate_clues,
    compose,
    derive_labels,
    fuse,
    span,
)
from services.gateway.config import MAX_SEGMENT_S, MIN_SEGMENT_S, GatewayConfig
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
from services.media.decode import DecodedMedia, DecodeOptions, MediaKind, decode_media
from services.media.segments import MediaProbe, MediaSegment, SegmentReader, probe_media

logger = logging.getLogger(__name__)

# The reason given for a modality the request did not carry (or skipped) starts so.
NOT_IN_REQUEST = "not in the request"
SKIPPED = "skipped by the request options"
NO_TEXT = "no subtitle and no audio to transcribe"


def not_in_request(modality: Modality, detail: str) -> Clue:
    """The clue of a modality the request did not carry, or asked to skip."""
    return Clue.unavailable(
        modality, f"{NOT_IN_REQUEST}: {detail}", kind=Unavailable.NOT_IN_REQUEST
    )


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
    if request.segment_s and not MIN_SEGMENT_S <= request.segment_s <= MAX_SEGMENT_S:
        raise InvalidInputError(
            f"options.segment_s is {request.segment_s:g}; use 0 (the server's default) or "
            f"{MIN_SEGMENT_S:g} to {MAX_SEGMENT_S:g} seconds"
        )


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


# When the request being served must be answered (event-loop time), or None (no budget: long
# media, whose stages keep their own timeouts). Set once per request in Pipeline.run; the clue
# and explainer tasks it starts inherit it.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)
# Kept back from the clue models for the explanation: the composer needs no more than this when
# the clues took the rest of the budget.
EXPLAIN_RESERVE_S = 1.0


def _stage_timeout(cap_s: float, reserve_s: float = 0.0) -> float:
    """How long a stage may wait: its own cap, or less when the request's budget ends sooner."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return cap_s
    return max(0.0, min(cap_s, deadline - asyncio.get_running_loop().time() - reserve_s))


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
        _DEADLINE.set(asyncio.get_running_loop().time() + self.config.request_timeout_s)
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
                timings["decode"] = _ms(t0)
                _DEADLINE.set(None)  # many segments: each model call keeps its own timeout
                return await self._run_long(request, request_id, probe, started, timings, send)
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
                clues[Modality.AUDIO] = not_in_request(Modality.AUDIO, SKIPPED)
            elif media is None or media.audio is None:
                # A still image has no sound by nature: not worth a sentence in the answer.
                if media is None or media.kind is MediaKind.IMAGE:
                    clues[Modality.AUDIO] = not_in_request(Modality.AUDIO, "no audio")
                else:
                    clues[Modality.AUDIO] = Clue.unavailable(
                        Modality.AUDIO, "the media has no audio track"
                    )
            else:
                result = await self._timed(
                    "audio",
                    self.backends.audio(media.audio, not subtitle, request.language),
                    timings,
                )
                if isinstance(result, AudioClueResult):
                    clues[Modality.AUDIO] = result.clue
                    warnings.extend(result.warnings)
                    if result.transcript is not None and not subtitle:
                        transcript = result.transcript
                        await send(TranscriptEvent(result.transcript))
                else:
                    clues[Modality.AUDIO] = _failed(Modality.AUDIO, result, warnings)
            await send(ClueEvent(clues[Modality.AUDIO]))

        async def run_visual() -> None:
            if request.skip_visual:
                clues[Modality.VISUAL] = not_in_request(Modality.VISUAL, SKIPPED)
            elif media is None or media.video is None:
                if media is None or media.kind is MediaKind.AUDIO:
                    clues[Modality.VISUAL] = not_in_request(Modality.VISUAL, "no video or image")
                else:
                    clues[Modality.VISUAL] = Clue.unavailable(
                        Modality.VISUAL, "the media has no video"
                    )
            else:
                result = await self._timed("visual", self.backends.visual(media.video), timings)
                if isinstance(result, Clue):
                    clues[Modality.VISUAL] = result
                else:
                    clues[Modality.VISUAL] = _failed(Modality.VISUAL, result, warnings)
            await send(ClueEvent(clues[Modality.VISUAL]))

        async def run_text(after: asyncio.Task[None] | None) -> None:
            if after is not None:
                await after  # the transcript comes from the audio model
            if request.skip_text:
                clues[Modality.TEXT] = not_in_request(Modality.TEXT, SKIPPED)
            elif transcript is None or not transcript.text.strip():
                if media is None or media.audio is None:
                    clues[Modality.TEXT] = not_in_request(Modality.TEXT, NO_TEXT)
                else:
                    clues[Modality.TEXT] = Clue.unavailable(
                        Modality.TEXT, "no subtitle was given and no speech was transcribed"
                    )
            else:
                result = await self._timed(
                    "text",
                    self.backends.text(transcript.text, request.language or transcript.language),
                    timings,
                )
                if isinstance(result, Clue):
                    clues[Modality.TEXT] = result
                else:
                    clues[Modality.TEXT] = _failed(Modality.TEXT, result, warnings)
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
            media_duration_s=duration_s,
            timeline=timeline or [],
        )

    # --- long media: a stream of segments ------------------------------------------------------

    def segment_length(self, request: AnalysisRequest, duration_s: float) -> float:
        """The requested (or configured) segment length, stretched to keep within max_segments."""
        wanted = request.segment_s or self.config.segment_s
        return max(wanted, duration_s / self.config.max_segments)

    async def _run_long(
        self,
        request: AnalysisRequest,
        request_id: str,
        probe: MediaProbe,
        started: float,
        timings: dict[str, float],
        send: Emit,
    ) -> AnalysisResult:
        """Media longer than long_media_s, as a stream of segments: segment k+1 is decoded (in
        a thread) while segment k's audio and text models run, from the moment segment k's
        frames are back from the visual model, so one segment's frames are in memory at a time
        (plus the small audio of the next). Each segment is answered with its own clues and
        fused labels; the whole clip is explained once from the clues aggregated over them."""
        warnings: list[str] = []
        subtitle = request.subtitle.strip()
        segment_s = self.segment_length(request, probe.duration_s)
        if segment_s > (request.segment_s or self.config.segment_s):
            warnings.append(
                f"the media is analysed in segments of {segment_s:.1f} s "
                f"(at most {self.config.max_segments} segments per request)"
            )
        totals: dict[str, float] = {"decode": timings.pop("decode", 0.0)}
        t_clues = time.perf_counter()
        t0 = time.perf_counter()
        reader = await asyncio.to_thread(
            SegmentReader, request.media, request.media_kind, self.decode_options, segment_s, probe
        )
        totals["decode"] += _ms(t0)

        transcript: Transcript | None = None
        text_task: asyncio.Task[object | str] | None = None
        if subtitle:
            transcript = Transcript(
                text=subtitle, language=request.language, words=[], source="subtitle"
            )
            if not request.skip_text:  # the subtitle is the whole clip's: one text clue
                text_task = asyncio.create_task(
                    self._timed("text", self.backends.text(subtitle, request.language), totals)
                )

        def read() -> tuple[MediaSegment | None, float]:
            t = time.perf_counter()
            segment = reader.read()
            return segment, _ms(t)

        timeline: list[SegmentResult] = []
        held: SegmentResult | None = None  # segment 0, sent once a second one exists
        pending: asyncio.Future[tuple[MediaSegment | None, float]] | None = None

        def decode_next() -> None:
            """Start decoding the next segment (in a thread) unless it is already under way."""
            nonlocal pending
            if pending is None:
                pending = asyncio.ensure_future(asyncio.to_thread(read))

        decode_next()
        try:
            while pending is not None:
                segment, ms = await pending
                pending = None
                totals["decode"] += ms
                if segment is None:
                    break
                # The next segment is decoded while this one's audio and text models run, from
                # the moment its frames are done with: one segment's frames in memory at a time.
                result = await self._segment(
                    request, reader.probe, segment, subtitle, totals, decode_next
                )
                del segment
                decode_next()
                timeline.append(result)
                if held is None and len(timeline) == 1:
                    held = result
                    continue
                if held is not None:
                    await send(SegmentEvent(held))
                    held = None
                await send(SegmentEvent(result))
            text_result = await text_task if text_task is not None else None
        except BaseException:
            if text_task is not None:
                text_task.cancel()
            raise
        finally:
            # A read still running in its thread finishes before the containers close.
            if pending is not None:
                pending.add_done_callback(lambda f: f.cancelled() or f.exception())
            asyncio.get_running_loop().run_in_executor(None, reader.close)
        timings["decode"] = round(totals["decode"], 2)
        for stage in ("audio", "visual", "text"):
            if stage in totals:
                timings[stage] = round(totals[stage], 2)
        timings["clues"] = _ms(t_clues)

        if text_task is None:
            text_clue = None
        elif isinstance(text_result, Clue):
            text_clue = text_result
        else:
            text_clue = _failed(Modality.TEXT, text_result, warnings)

        single = len(timeline) == 1
        for seg in timeline:
            where = "" if single else f"segment {seg.index} ({span(seg.start_s, seg.end_s)}): "
            warnings.extend(where + w for w in seg.warnings)
        clues: dict[Modality, Clue] = {}
        for m in (Modality.AUDIO, Modality.VISUAL, Modality.TEXT):
            if m is Modality.TEXT and text_clue is not None:
                clues[m] = text_clue
            elif single:  # media that turned out short: answered as short media are
                clues[m] = timeline[0].clues[m]
            else:
                clues[m] = aggregate_clues(
                    m, [(seg.start_s, seg.end_s, seg.clues[m]) for seg in timeline]
                )
        if transcript is None:
            transcript = _join_transcripts([seg.transcript for seg in timeline], request.language)
        for m in (Modality.AUDIO, Modality.VISUAL, Modality.TEXT):
            await send(ClueEvent(clues[m]))
        if transcript is not None and transcript.source != "subtitle":
            await send(TranscriptEvent(transcript))
        end_s = max([probe.duration_s, *(seg.end_s for seg in timeline)])
        return await self._finish(
            request,
            request_id,
            clues,
            transcript,
            timings,
            warnings,
            send,
            started,
            end_s,
            [] if single else timeline,
        )

    async def _segment(
        self,
        request: AnalysisRequest,
        probe: MediaProbe,
        media: MediaSegment,
        subtitle: str,
        totals: dict[str, float],
        frames_done: Callable[[], None],
    ) -> SegmentResult:
        """One segment: audio (+ASR) and visual clues concurrently, then the text clue on the
        segment's transcript (not with a subtitle: that is analysed once for the whole clip),
        and the composer's fusion. A failed model call makes that clue unavailable.
        `frames_done` is called as soon as the segment's frames are no longer needed (they are
        dropped from `media` then)."""
        timings: dict[str, float] = {}
        warnings = list(media.warnings)
        clues: dict[Modality, Clue] = {}
        transcript: Transcript | None = None
        start = media.start_s

        async def run_audio() -> None:
            nonlocal transcript
            if request.skip_audio:
                clues[Modality.AUDIO] = not_in_request(Modality.AUDIO, SKIPPED)
            elif not probe.has_audio:
                clues[Modality.AUDIO] = Clue.unavailable(
                    Modality.AUDIO, "the media has no audio track"
                )
            elif media.audio is None:
                clues[Modality.AUDIO] = Clue.unavailable(
                    Modality.AUDIO, "no audio could be decoded in this segment"
                )
            else:
                result = await self._timed(
                    "audio",
                    self.backends.audio(media.audio, not subtitle, request.language),
                    timings,
                )
                if isinstance(result, AudioClueResult):
                    clues[Modality.AUDIO] = _shifted(result.clue, start)
                    warnings.extend(result.warnings)
                    if result.transcript is not None and not subtitle:
                        transcript = _shifted_transcript(result.transcript, start)
                else:
                    clues[Modality.AUDIO] = _failed(Modality.AUDIO, result, warnings)

        async def run_visual() -> None:
            try:
                await visual_clue()
            finally:
                media.video = None  # the frames: the largest part of a decoded segment
                frames_done()

        async def visual_clue() -> None:
            if request.skip_visual:
                clues[Modality.VISUAL] = not_in_request(Modality.VISUAL, SKIPPED)
            elif not probe.has_video:
                clues[Modality.VISUAL] = not_in_request(Modality.VISUAL, "no video or image")
            elif media.video is None:
                clues[Modality.VISUAL] = Clue.unavailable(
                    Modality.VISUAL, "no video frames could be decoded in this segment"
                )
            else:
                # The visual model describes its input's beginning, middle and end: give it the
                # segment on its own clock, then put its observations back on the clip's.
                video = VideoFrames(
                    frames=media.video.frames,
                    timestamps=[t - start for t in media.video.timestamps],
                    duration_s=media.duration_s,
                )
                result = await self._timed("visual", self.backends.visual(video), timings)
                del video
                if isinstance(result, Clue):
                    clues[Modality.VISUAL] = _shifted(result, start)
                else:
                    clues[Modality.VISUAL] = _failed(Modality.VISUAL, result, warnings)

        tasks = [asyncio.create_task(run_audio()), asyncio.create_task(run_visual())]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        if request.skip_text:
            clues[Modality.TEXT] = not_in_request(Modality.TEXT, SKIPPED)
        elif subtitle:
            clues[Modality.TEXT] = Clue.unavailable(
                Modality.TEXT, "the subtitle is analysed once, for the whole clip"
            )
        elif transcript is None or not transcript.text.strip():
            if not probe.has_audio:
                clues[Modality.TEXT] = not_in_request(Modality.TEXT, NO_TEXT)
            else:
                clues[Modality.TEXT] = Clue.unavailable(
                    Modality.TEXT, "no subtitle was given and no speech was transcribed"
                )
        else:
            result = await self._timed(
                "text",
                self.backends.text(transcript.text, request.language or transcript.language),
                timings,
            )
            if isinstance(result, Clue):
                clues[Modality.TEXT] = result
            else:
                clues[Modality.TEXT] = _failed(Modality.TEXT, result, warnings)
        for stage, ms in timings.items():
            totals[stage] = totals.get(stage, 0.0) + ms

        present = [clues[Modality.VISUAL], clues[Modality.AUDIO], clues[Modality.TEXT]]
        labels: list[Label] = []
        scores: dict[str, float] = {}
        basic, valence, arousal = "", 0.0, 0.0
        if any(c.available and c.emotion_scores for c in present):
            scores, valence, arousal = fuse(present)
            labels = derive_labels(present, scores, valence, arousal, self.vocabulary)
            basic = max(scores, key=lambda k: scores[k])
        else:
            warnings.append("no clue could be read in this segment")
        return SegmentResult(
            index=media.index,
            start_s=media.start_s,
            end_s=media.end_s,
            clues=clues,
            transcript=transcript,
            labels=labels,
            basic_category=basic,
            basic_scores={e: round(v, 4) for e, v in scores.items()},
            valence=round(valence, 4),
            arousal=round(arousal, 4),
            warnings=list(dict.fromkeys(warnings)),
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
                async with asyncio.timeout(_stage_timeout(self.config.explainer_timeout_s)):
                    async for item in self.backends.explain(*args):
                        if isinstance(item, Explanation):
                            timings["explain"] = _ms(t0)
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
        timings["explain"] = _ms(t0)
        return explanation

    async def _timed(
        self, stage: str, call: Awaitable[object], timings: dict[str, float]
    ) -> object | str:
        """Await a model call; on failure return the reason as a string (the answer goes on)."""
        t0 = time.perf_counter()
        timeout_s = _stage_timeout(self.config.clue_timeout_s, EXPLAIN_RESERVE_S)
        try:
            async with asyncio.timeout(timeout_s):
                return await call
        except TimeoutError:
            return ModelFailure(
                f"the {stage} model did not answer within {timeout_s:.0f} s", Unavailable.TIMED_OUT
            )
        except (InvalidInputError, PayloadTooLargeError) as e:
            return e.message  # the input's fault, as the model saw it
        except EmerError as e:
            return ModelFailure(e.message, Unavailable.MODEL_FAILED)
        except Exception:
            logger.exception("%s model failed", stage)
            return ModelFailure(f"the {stage} model failed", Unavailable.MODEL_FAILED)
        finally:
            timings[stage] = _ms(t0)


class ModelFailure(str):
    """What `Pipeline._timed` returns when a model call failed on our side: the human reason,
    and its kind (MODEL_FAILED or TIMED_OUT) for the clue."""

    kind: Unavailable

    def __new__(cls, message: str, kind: Unavailable) -> ModelFailure:
        failure = super().__new__(cls, message)
        failure.kind = kind
        return failure


def _failed(modality: Modality, reason: object, warnings: list[str]) -> Clue:
    """The clue of a model call that failed (`reason` as `Pipeline._timed` returns it), and the
    warning that tells the client."""
    warnings.append(f"{modality.value} clue unavailable: {reason}")
    if isinstance(reason, ModelFailure):
        return Clue.unavailable(modality, str(reason), kind=reason.kind)
    return Clue.unavailable(modality, str(reason))


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


def _unique(models: list[ModelInfo]) -> list[ModelInfo]:
    return list(dict.fromkeys(models))


def _shifted(clue: Clue, offset_s: float) -> Clue:
    """The clue of a segment with its observation and person times moved onto the whole
    clip's clock (the time words inside sentences stay on the segment's clock)."""
    if not offset_s or not (clue.observations or clue.persons):
        return clue
    return replace(
        clue,
        observations=[
            replace(o, start_s=round(o.start_s + offset_s, 3), end_s=round(o.end_s + offset_s, 3))
            for o in clue.observations
        ],
        persons=[
            replace(p, start_s=round(p.start_s + offset_s, 3), end_s=round(p.end_s + offset_s, 3))
            for p in clue.persons
        ],
    )


def _shifted_transcript(transcript: Transcript, offset_s: float) -> Transcript:
    return replace(
        transcript,
        words=[
            Word(
                w.word, round(w.start_s + offset_s, 3), round(w.end_s + offset_s, 3), w.probability
            )
            for w in transcript.words
        ],
    )


def _join_transcripts(parts: list[Transcript | None], language: str) -> Transcript | None:
    """The segments' ASR transcripts as one (word times are already absolute)."""
    found = [t for t in parts if t is not None]
    if not found:
        return None
    return Transcript(
        text=" ".join(t.text.strip() for t in found if t.text.strip()),
        language=found[0].language or language,
        words=[w for t in found for w in t.words],
        source=found[0].source,
    )


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
