"""Long media as a stream of segments: each segment's clues and fused labels (an entry of the
timeline), and the whole clip's clues aggregated over them for the one explanation.

Segment k+1 is decoded (in a thread) while segment k's audio and text models run, from the
moment segment k's frames are back from the visual model, so one segment's frames are in memory
at a time (plus the small audio of the next).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from emer_eval.vocabulary import EmotionVocabulary

from services.common.types import Clue, Modality, Transcript, VideoFrames, Word
from services.explainer.composer import (
    Label,
    aggregate_clues,
    derive_labels,
    fuse,
    leading_category,
    span,
)
from services.gateway.clue_runner import ClueRunner, elapsed_ms, not_in_request
from services.gateway.config import GatewayConfig
from services.gateway.events import (
    AnalysisRequest,
    ClueEvent,
    Emit,
    SegmentEvent,
    SegmentResult,
    TranscriptEvent,
)
from services.media.decode import DecodeOptions
from services.media.segments import MediaProbe, MediaSegment, SegmentReader


@dataclass
class SegmentedClues:
    """What the segments give the rest of the pipeline: the whole clip's clues and transcript,
    the timeline (empty when the media fit in one segment: answered as short media are)."""

    clues: dict[Modality, Clue]
    transcript: Transcript | None
    timeline: list[SegmentResult]
    warnings: list[str]
    duration_s: float


def segment_length(request: AnalysisRequest, config: GatewayConfig, duration_s: float) -> float:
    """The requested (or configured) segment length, stretched to keep within max_segments."""
    wanted = request.segment_s or config.segment_s
    return max(wanted, duration_s / config.max_segments)


class LongMedia:
    def __init__(
        self,
        runner: ClueRunner,
        config: GatewayConfig,
        vocabulary: EmotionVocabulary | None,
        decode_options: DecodeOptions,
    ) -> None:
        self.runner = runner
        self.config = config
        self.vocabulary = vocabulary
        self.decode_options = decode_options

    async def analyse(
        self,
        request: AnalysisRequest,
        probe: MediaProbe,
        timings: dict[str, float],
        send: Emit,
    ) -> SegmentedClues:
        """Every segment's clues (sent as SegmentEvents), then the whole clip's clues (sent as
        ClueEvents, with the joined transcript). `timings` gets each stage's total."""
        warnings: list[str] = []
        subtitle = request.subtitle.strip()
        segment_s = segment_length(request, self.config, probe.duration_s)
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
        totals["decode"] += elapsed_ms(t0)

        transcript: Transcript | None = None
        text_task: asyncio.Task[Clue] | None = None
        if subtitle:
            transcript = Transcript(
                text=subtitle, language=request.language, words=[], source="subtitle"
            )
            if not request.skip_text:  # the subtitle is the whole clip's: one text clue
                text_task = asyncio.create_task(
                    self.runner.text(request, transcript, probe.has_audio, totals, warnings)
                )

        def read() -> tuple[MediaSegment | None, float]:
            t = time.perf_counter()
            segment = reader.read()
            return segment, elapsed_ms(t)

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
            text_clue = await text_task if text_task is not None else None
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
        timings["clues"] = elapsed_ms(t_clues)

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
            transcript = joined_transcript([seg.transcript for seg in timeline], request.language)
        for m in (Modality.AUDIO, Modality.VISUAL, Modality.TEXT):
            await send(ClueEvent(clues[m]))
        if transcript is not None and transcript.source != "subtitle":
            await send(TranscriptEvent(transcript))
        return SegmentedClues(
            clues=clues,
            transcript=transcript,
            timeline=[] if single else timeline,
            warnings=warnings,
            duration_s=max([probe.duration_s, *(seg.end_s for seg in timeline)]),
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
            absent = Clue.unavailable(
                Modality.AUDIO,
                "no audio could be decoded in this segment"
                if probe.has_audio
                else "the media has no audio track",
            )
            clue, heard = await self.runner.audio(
                request, media.audio, absent, not subtitle, timings, warnings
            )
            clues[Modality.AUDIO] = shifted_clue(clue, start)
            if heard is not None:
                transcript = shifted_transcript(heard, start)

        async def run_visual() -> None:
            try:
                clues[Modality.VISUAL] = await visual_clue()
            finally:
                media.video = None  # the frames: the largest part of a decoded segment
                frames_done()

        async def visual_clue() -> Clue:
            if not probe.has_video:
                absent = not_in_request(Modality.VISUAL, "no video or image")
            else:
                absent = Clue.unavailable(
                    Modality.VISUAL, "no video frames could be decoded in this segment"
                )
            video = None
            if media.video is not None:
                # The visual model describes its input's beginning, middle and end: give it the
                # segment on its own clock, then put its observations back on the clip's.
                video = VideoFrames(
                    frames=media.video.frames,
                    timestamps=[t - start for t in media.video.timestamps],
                    duration_s=media.duration_s,
                )
            clue = await self.runner.visual(request, video, absent, timings, warnings)
            del video
            return shifted_clue(clue, start)

        tasks = [asyncio.create_task(run_audio()), asyncio.create_task(run_visual())]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        if subtitle and not request.skip_text:
            clues[Modality.TEXT] = Clue.unavailable(
                Modality.TEXT, "the subtitle is analysed once, for the whole clip"
            )
        else:
            clues[Modality.TEXT] = await self.runner.text(
                request, transcript, probe.has_audio, timings, warnings
            )
        for stage, ms in timings.items():
            totals[stage] = totals.get(stage, 0.0) + ms

        present = [clues[Modality.VISUAL], clues[Modality.AUDIO], clues[Modality.TEXT]]
        labels: list[Label] = []
        scores: dict[str, float] = {}
        basic, valence, arousal = "", 0.0, 0.0
        if any(c.available and c.emotion_scores for c in present):
            scores, valence, arousal = fuse(present)
            labels = derive_labels(present, scores, valence, arousal, self.vocabulary)
            basic = leading_category(present, scores)
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


def shifted_clue(clue: Clue, offset_s: float) -> Clue:
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


def shifted_transcript(transcript: Transcript, offset_s: float) -> Transcript:
    return replace(
        transcript,
        words=[
            Word(
                w.word, round(w.start_s + offset_s, 3), round(w.end_s + offset_s, 3), w.probability
            )
            for w in transcript.words
        ],
    )


def joined_transcript(parts: list[Transcript | None], language: str) -> Transcript | None:
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
