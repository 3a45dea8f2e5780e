"""The gateway pipeline with in-process backends: fan-out, ordering, failure isolation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from emer_proto import emotion_pb2 as pb
from pydantic import ValidationError

from clients.media_requests import upload_chunks
from services.common.errors import EmerError, InvalidInputError, ModelError, PayloadTooLargeError
from services.common.types import (
    BASIC_EMOTIONS,
    AudioClip,
    AudioClueResult,
    Clue,
    Modality,
    ModelInfo,
    Observation,
    Transcript,
    VideoFrames,
    Word,
)
from services.explainer.composer import Explanation, aggregate_clues, compose
from services.gateway.config import GatewayConfig
from services.gateway.convert import clue_to_proto, request_from_upload
from services.gateway.events import (
    AnalysisRequest,
    ClueEvent,
    Event,
    ExplanationDeltaEvent,
    LabelsEvent,
    SegmentEvent,
    TranscriptEvent,
)
from services.gateway.pipeline import Pipeline
from services.gateway.status import to_status
from services.media.decode import MediaKind
from services.media.segments import SegmentReader


def scores(top: str, p: float = 0.7) -> dict[str, float]:
    rest = (1.0 - p) / (len(BASIC_EMOTIONS) - 1)
    return {e: (p if e == top else rest) for e in BASIC_EMOTIONS}


class RecordingBackends:
    """Backends that record when each call runs; optional failures per stage."""

    def __init__(self, fail: set[str] | None = None, delay_s: float = 0.05) -> None:
        self.fail = fail or set()
        self.delay_s = delay_s
        self.spans: dict[str, tuple[float, float]] = {}
        self.text_input: str | None = None

    async def _span(self, name: str) -> None:
        t0 = time.perf_counter()
        await asyncio.sleep(self.delay_s)
        self.spans[name] = (t0, time.perf_counter())
        if name in self.fail:
            raise RuntimeError(f"{name} exploded")

    async def audio(self, clip: AudioClip, transcribe: bool, language: str) -> AudioClueResult:
        await self._span("audio")
        transcript = None
        if transcribe:
            transcript = Transcript(
                "dogs are sitting by the door", "en", [Word("dogs", 0.1, 0.4, 0.9)], "asr"
            )
        clue = Clue(
            Modality.AUDIO,
            True,
            description=["The voice is loud."],
            emotion_scores=scores("angry", 0.5),
            valence=-0.3,
            arousal=0.8,
        )
        return AudioClueResult(clue, transcript)

    async def visual(self, video: VideoFrames) -> Clue:
        await self._span("visual")
        return Clue(
            Modality.VISUAL,
            True,
            description=["The person frowns."],
            emotion_scores=scores("angry"),
            valence=-0.6,
            arousal=0.5,
        )

    async def text(self, text: str, language: str) -> Clue:
        self.text_input = text
        await self._span("text")
        return Clue(
            Modality.TEXT,
            True,
            description=["The words are hostile."],
            emotion_scores=scores("angry", 0.6),
            valence=-0.7,
            arousal=0.4,
        )

    async def explain(
        self,
        audio: Clue | None,
        visual: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        await self._span("explain")
        ex = compose(audio, visual, text, transcript, None)
        for s in ex.sentences:
            yield s + " "
        yield ex

    async def models(self) -> list[ModelInfo]:
        return [ModelInfo("audio", "fake", "0", "test")]


@pytest.fixture(scope="module")
def media(emer_data: Path) -> bytes:
    from clients.clipmaker import make_clip

    face = next((emer_data / "faces" / "fer2013").glob("angry_*.jpg")).read_bytes()
    speech = (emer_data / "speech" / "ravdess" / "03-01-05-01-02-02-01.wav").read_bytes()
    return make_clip(face, speech)


def run(pipeline: Pipeline, request: AnalysisRequest) -> tuple[object, list[Event]]:
    events: list[Event] = []

    async def emit(e: Event) -> None:
        events.append(e)

    return asyncio.run(pipeline.run(request, emit)), events


def test_clues_run_concurrently_and_stream_in_order(media: bytes) -> None:
    backends = RecordingBackends(delay_s=0.2)
    pipeline = Pipeline(backends, GatewayConfig(), None)
    result, events = run(
        pipeline, AnalysisRequest("r1", media, MediaKind.VIDEO, "You did this again!")
    )
    a, v, t = backends.spans["audio"], backends.spans["visual"], backends.spans["text"]
    # With a subtitle, all three clue calls overlap in time.
    assert v[0] < a[1] and t[0] < a[1] and a[0] < v[1]
    kinds = [type(e) for e in events]
    assert kinds.count(ClueEvent) == 3
    first_delta = kinds.index(ExplanationDeltaEvent)
    assert all(k is ClueEvent for k in kinds[:first_delta])
    assert kinds[-1] is LabelsEvent
    assert result.explanation.text.startswith("In the video")  # type: ignore[attr-defined]
    assert result.explanation.basic_category == "angry"  # type: ignore[attr-defined]
    assert set(result.timings_ms) >= {"decode", "audio", "visual", "text", "explain", "total"}  # type: ignore[attr-defined]
    assert result.timeline == []  # type: ignore[attr-defined]  # short media: no timeline


def test_without_subtitle_text_waits_for_transcript(media: bytes) -> None:
    backends = RecordingBackends()
    result, events = run(
        Pipeline(backends, GatewayConfig(), None), AnalysisRequest("r2", media, None, "")
    )
    assert backends.text_input == "dogs are sitting by the door"
    assert backends.spans["text"][0] >= backends.spans["audio"][1]
    assert any(isinstance(e, TranscriptEvent) for e in events)
    assert result.transcript.source == "asr"  # type: ignore[attr-defined]


def test_failed_model_is_marked_and_answer_goes_on(media: bytes) -> None:
    backends = RecordingBackends(fail={"visual"})
    result, _ = run(
        Pipeline(backends, GatewayConfig(), None), AnalysisRequest("r3", media, None, "hi")
    )
    visual = result.clues[Modality.VISUAL]  # type: ignore[attr-defined]
    assert not visual.available and "failed" in visual.unavailable_reason
    assert result.clues[Modality.AUDIO].available  # type: ignore[attr-defined]
    assert any("visual" in w for w in result.warnings)  # type: ignore[attr-defined]
    assert result.explanation.labels  # type: ignore[attr-defined]


def test_failed_explainer_falls_back_to_composer(media: bytes) -> None:
    backends = RecordingBackends(fail={"explain"})
    result, events = run(
        Pipeline(backends, GatewayConfig(), None), AnalysisRequest("r4", media, None, "hi")
    )
    assert result.explanation.text.startswith("In the video")  # type: ignore[attr-defined]
    assert any("composer" in w for w in result.warnings)  # type: ignore[attr-defined]
    assert any(isinstance(e, ExplanationDeltaEvent) for e in events)


def test_text_only_request() -> None:
    backends = RecordingBackends()
    result, _ = run(
        Pipeline(backends, GatewayConfig(), None), AnalysisRequest("r5", b"", None, "I hate this.")
    )
    assert result.clues[Modality.TEXT].available  # type: ignore[attr-defined]
    assert result.clues[Modality.AUDIO].unavailable_reason == "not in the request: no audio"  # type: ignore[attr-defined]
    assert "audio" not in backends.spans and "visual" not in backends.spans


@pytest.mark.parametrize(
    ("request_", "error", "match"),
    [
        (AnalysisRequest("x", b"", None, ""), InvalidInputError, "neither media nor subtitle"),
        (
            AnalysisRequest("x", b"", MediaKind.VIDEO, "hi"),
            InvalidInputError,
            "media field is empty",
        ),
        (AnalysisRequest("x", b"", None, "a" * 6000), PayloadTooLargeError, "subtitle has 6000"),
        (AnalysisRequest("x", b"x" * 2000, None, ""), PayloadTooLargeError, "limit is 0.0 MB"),
        (
            AnalysisRequest(
                "x", b"", None, "hi", skip_audio=True, skip_visual=True, skip_text=True
            ),
            InvalidInputError,
            "all modalities",
        ),
    ],
)
def test_bad_requests_are_rejected_before_work(
    request_: AnalysisRequest, error: type[Exception], match: str
) -> None:
    backends = RecordingBackends()
    config = GatewayConfig(max_media_bytes=1000 if request_.media else 64 << 20)
    with pytest.raises(error, match=match):
        asyncio.run(Pipeline(backends, config, None).run(request_))
    assert not backends.spans


def test_nothing_analysable_is_invalid_argument() -> None:
    class NoFace(RecordingBackends):
        async def visual(self, video: VideoFrames) -> Clue:
            return Clue.unavailable(Modality.VISUAL, "no face detected in the 1 sampled frames")

    image = np.full((64, 64, 3), 200, np.uint8)
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    with pytest.raises(InvalidInputError, match="no face detected"):
        asyncio.run(
            Pipeline(NoFace(), GatewayConfig(), None).run(
                AnalysisRequest("x", buf.getvalue(), None, "")
            )
        )


def test_status_mapping_never_leaks_tracebacks() -> None:
    assert to_status(InvalidInputError("bad"), "r")[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert to_status(PayloadTooLargeError("big"), "r")[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert to_status(ModelError("model"), "r")[0] == grpc.StatusCode.INTERNAL
    code, message = to_status(ZeroDivisionError("secret detail"), "req-9")
    assert code == grpc.StatusCode.INTERNAL
    assert "req-9" in message and "Traceback" not in message and "secret" not in message


# --- long media: segments ------------------------------------------------------------------------


class SegmentBackends(RecordingBackends):
    """Records every call (inputs and time spans); `fail_visual_call` makes that visual call
    (0-based) fail; visual and audio answers carry observations on their input's clock."""

    def __init__(
        self,
        audio_delay_s: float = 0.02,
        visual_delay_s: float = 0.02,
        fail_visual_call: int | None = None,
    ) -> None:
        super().__init__()
        self.audio_delay_s, self.visual_delay_s = audio_delay_s, visual_delay_s
        self.fail_visual_call = fail_visual_call
        self.audio_calls: list[tuple[float, bool, float, float]] = []  # duration, asr, t0, t1
        self.visual_calls: list[tuple[list[float], float, float, float]] = []
        self.text_calls: list[str] = []
        self.explain_calls: list[tuple[Clue | None, Clue | None, Clue | None]] = []

    async def audio(self, clip: AudioClip, transcribe: bool, language: str) -> AudioClueResult:
        t0 = time.perf_counter()
        await asyncio.sleep(self.audio_delay_s)
        self.audio_calls.append((clip.duration_s, transcribe, t0, time.perf_counter()))
        result = await super().audio(clip, transcribe, language)
        result.clue.observations = [Observation(1.0, 2.0, "Speech.")]
        return result

    async def visual(self, video: VideoFrames) -> Clue:
        t0 = time.perf_counter()
        await asyncio.sleep(self.visual_delay_s)
        call = len(self.visual_calls)
        self.visual_calls.append(
            (list(video.timestamps), video.duration_s, t0, time.perf_counter())
        )
        if call == self.fail_visual_call:
            raise RuntimeError("visual exploded")
        clue = await super().visual(video)
        clue.observations = [Observation(0.0, video.duration_s, "The person frowns.")]
        return clue

    async def text(self, text: str, language: str) -> Clue:
        self.text_calls.append(text)
        return await super().text(text, language)

    async def explain(
        self,
        audio: Clue | None,
        visual: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        self.explain_calls.append((audio, visual, text))
        async for item in super().explain(audio, visual, text, transcript):
            yield item


@pytest.fixture(scope="module")
def long_media(emer_data: Path) -> bytes:
    """47 s of real faces and speech: three segments of 15 s (the 2 s tail joins the last)."""
    from clients.clipmaker import story_clip

    return story_clip(emer_data, seconds=47.0, part_s=10.0)[0]


def test_long_media_answers_one_segment_per_range(long_media: bytes) -> None:
    backends = SegmentBackends()
    result, events = run(
        Pipeline(backends, GatewayConfig(), None), AnalysisRequest("s1", long_media, None, "")
    )
    timeline = result.timeline  # type: ignore[attr-defined]
    ranges = [(s.index, s.start_s, round(s.end_s)) for s in timeline]
    assert ranges == [(0, 0.0, 15), (1, 15.0, 30), (2, 30.0, 47)]
    # One segment event per range, in order, before the overall clues, explanation, labels.
    kinds = [type(e) for e in events]
    assert kinds[:3] == [SegmentEvent] * 3 and kinds.count(SegmentEvent) == 3
    assert [e.segment.index for e in events[:3]] == [0, 1, 2]  # type: ignore[union-attr]
    assert kinds[3:6] == [ClueEvent] * 3 and kinds[6] is TranscriptEvent
    assert kinds[-1] is LabelsEvent
    # Each model saw one segment: audio cut at the boundaries, frames on the segment's clock.
    assert [round(d, 1) for d, _, _, _ in backends.audio_calls] == [15.0, 15.0, 17.0]
    assert all(asr for _, asr, _, _ in backends.audio_calls)
    for stamps, duration, _, _ in backends.visual_calls:
        assert 0.0 <= stamps[0] < 1.0 and stamps[-1] < duration
    assert [round(d) for _, d, _, _ in backends.visual_calls] == [15, 15, 17]
    assert len(backends.text_calls) == 3  # the text clue of each segment's transcript
    for seg in timeline:
        assert all(c.available for c in seg.clues.values())
        assert seg.basic_category == "angry" and seg.labels
        # observations and words back on the clip's clock
        assert seg.clues[Modality.VISUAL].observations[0].start_s == seg.start_s
        assert seg.clues[Modality.AUDIO].observations[0].start_s == seg.start_s + 1.0
        assert seg.transcript is not None and seg.transcript.words[0].start_s == pytest.approx(
            seg.start_s + 0.1
        )
    # The whole clip: aggregated clues, joined transcript, ONE explanation.
    assert len(backends.explain_calls) == 1
    _, visual, _ = backends.explain_calls[0]
    assert visual is not None and visual.measurements["segments"] == 3.0
    assert visual.description[0].startswith("Over the 47-second clip (3 segments)")
    assert [o.start_s for o in visual.observations] == [0.0, 15.0, 30.0]
    transcript = result.transcript  # type: ignore[attr-defined]
    assert [w.start_s for w in transcript.words] == pytest.approx([0.1, 15.1, 30.1])
    assert transcript.text.count("dogs") == 3
    assert result.explanation.basic_category == "angry"  # type: ignore[attr-defined]
    assert result.media_duration_s == pytest.approx(47.0, abs=0.1)  # type: ignore[attr-defined]
    timings = result.timings_ms  # type: ignore[attr-defined]
    assert set(timings) >= {"decode", "audio", "visual", "text", "clues", "explain", "total"}
    assert timings["audio"] >= 3 * 20  # summed over the segments


def test_one_failing_segment_is_isolated(long_media: bytes) -> None:
    backends = SegmentBackends(fail_visual_call=1)
    result, events = run(
        Pipeline(backends, GatewayConfig(), None), AnalysisRequest("s2", long_media, None, "")
    )
    timeline = result.timeline  # type: ignore[attr-defined]
    assert len(timeline) == 3 and sum(isinstance(e, SegmentEvent) for e in events) == 3
    broken = timeline[1].clues[Modality.VISUAL]
    assert not broken.available and "failed" in broken.unavailable_reason
    assert timeline[1].warnings == ["visual clue unavailable: the visual model failed"]
    assert timeline[1].basic_category == "angry"  # from its audio and text clues
    assert timeline[0].clues[Modality.VISUAL].available
    assert timeline[2].clues[Modality.VISUAL].available
    warnings = result.warnings  # type: ignore[attr-defined]
    assert "segment 1 (0:15-0:30): visual clue unavailable: the visual model failed" in warnings
    visual = result.clues[Modality.VISUAL]  # type: ignore[attr-defined]
    assert visual.available and visual.measurements["segments_analysed"] == 2.0
    assert "Nothing could be read in 1 of the 3 segments (0:15-0:30)." in visual.description
    assert len(backends.explain_calls) == 1


def test_subtitle_of_long_media_is_analysed_once(long_media: bytes) -> None:
    backends = SegmentBackends()
    subtitle = "You did this again!"
    result, events = run(
        Pipeline(backends, GatewayConfig(), None),
        AnalysisRequest("s3", long_media, MediaKind.VIDEO, subtitle),
    )
    assert backends.text_calls == [subtitle]
    assert not any(asr for _, asr, _, _ in backends.audio_calls)
    for seg in result.timeline:  # type: ignore[attr-defined]
        assert seg.transcript is None
        assert seg.clues[Modality.TEXT].unavailable_reason == (
            "the subtitle is analysed once, for the whole clip"
        )
    assert result.clues[Modality.TEXT].description == ["The words are hostile."]  # type: ignore[attr-defined]
    assert result.transcript.source == "subtitle"  # type: ignore[attr-defined]
    assert not any(isinstance(e, TranscriptEvent) for e in events)


def test_next_segment_decodes_while_audio_runs_once_frames_are_done(
    long_media: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[float, float]] = []
    original = SegmentReader.read

    def timed_read(self: SegmentReader) -> Any:
        t0 = time.perf_counter()
        segment = original(self)
        reads.append((t0, time.perf_counter()))
        return segment

    monkeypatch.setattr(SegmentReader, "read", timed_read)
    backends = SegmentBackends(audio_delay_s=0.8, visual_delay_s=0.02)
    run(Pipeline(backends, GatewayConfig(), None), AnalysisRequest("s4", long_media, None, ""))
    assert len(reads) == 4  # three segments, then the end
    for k in range(3):
        visual_end = backends.visual_calls[k][3]
        audio_end = backends.audio_calls[k][3]
        next_read_start = reads[k + 1][0]
        # Never two segments' frames at once: segment k+1 is decoded after segment k's frames
        # went to the visual model and came back, yet while segment k's audio is analysed.
        assert next_read_start >= visual_end
        assert next_read_start < audio_end


def test_requested_segment_length(long_media: bytes) -> None:
    pipeline = Pipeline(SegmentBackends(), GatewayConfig(), None)
    ten, _ = run(pipeline, AnalysisRequest("s5", long_media, None, "", segment_s=10.0))
    assert [s.start_s for s in ten.timeline] == [0.0, 10.0, 20.0, 30.0, 40.0]  # type: ignore[attr-defined]
    # One segment of 60 s: long media that end up in one segment are answered as short ones.
    backends = SegmentBackends()
    one, events = run(
        Pipeline(backends, GatewayConfig(), None),
        AnalysisRequest("s6", long_media, None, "", segment_s=60.0),
    )
    assert one.timeline == []  # type: ignore[attr-defined]
    assert not any(isinstance(e, SegmentEvent) for e in events)
    visual = one.clues[Modality.VISUAL]  # type: ignore[attr-defined]
    assert "segments" not in visual.measurements and visual.description[0] == "The person frowns."
    assert len(backends.visual_calls) == 1 and round(backends.visual_calls[0][1]) == 47


def test_max_segments_lengthens_segments(long_media: bytes) -> None:
    config = GatewayConfig(max_segments=2)
    result, _ = run(
        Pipeline(SegmentBackends(), config, None), AnalysisRequest("s7", long_media, None, "")
    )
    assert [s.start_s for s in result.timeline] == [0.0, pytest.approx(23.5, abs=0.1)]  # type: ignore[attr-defined]
    assert any("at most 2 segments" in w for w in result.warnings)  # type: ignore[attr-defined]


@pytest.mark.parametrize("segment_s", [1.0, 4.9, 301.0])
def test_bad_segment_length_is_rejected(long_media: bytes, segment_s: float) -> None:
    with pytest.raises(InvalidInputError, match="segment_s"):
        asyncio.run(
            Pipeline(SegmentBackends(), GatewayConfig(), None).run(
                AnalysisRequest("s8", long_media, None, "", segment_s=segment_s)
            )
        )


def test_long_media_with_nothing_analysable_is_invalid(long_media: bytes) -> None:
    class Nothing(SegmentBackends):
        async def audio(self, clip: AudioClip, transcribe: bool, language: str) -> AudioClueResult:
            return AudioClueResult(Clue.unavailable(Modality.AUDIO, "no speech detected"))

        async def visual(self, video: VideoFrames) -> Clue:
            return Clue.unavailable(Modality.VISUAL, "no face detected")

    with pytest.raises(InvalidInputError, match="no face detected"):
        asyncio.run(
            Pipeline(Nothing(), GatewayConfig(), None).run(
                AnalysisRequest("s9", long_media, None, "")
            )
        )


def test_gateway_config_checks_segment_settings() -> None:
    with pytest.raises(ValidationError, match="long_media_s"):
        GatewayConfig(long_media_s=10.0)
    with pytest.raises(ValidationError):
        GatewayConfig(segment_s=2.0)
    assert GatewayConfig(segment_s=60.0, long_media_s=120.0).segment_s == 60.0


# --- uploads in pieces (AnalyzeUpload) ------------------------------------------------------------


async def _aiter_chunks(chunks: list[pb.AnalyzeChunk]) -> AsyncIterator[pb.AnalyzeChunk]:
    for chunk in chunks:
        yield chunk


def test_upload_pieces_reassemble_the_request(long_media: bytes) -> None:
    options = pb.AnalyzeOptions(skip_text=True, segment_s=20.0)
    original = pb.AnalyzeRequest(
        request_id="u1",
        media=long_media,
        media_kind=pb.MEDIA_KIND_VIDEO,
        subtitle="hello",
        language="en",
        options=options,
    )
    chunks = list(upload_chunks(original, chunk_bytes=100_000))
    assert len(chunks) == 1 + -(-len(long_media) // 100_000)
    assert not chunks[0].request.media and all(not c.HasField("request") for c in chunks[1:])
    request = asyncio.run(request_from_upload(_aiter_chunks(chunks), "u1", 64 << 20))
    assert request.media == long_media
    assert (request.media_kind, request.subtitle, request.segment_s) == (
        MediaKind.VIDEO,
        "hello",
        20.0,
    )
    assert request.skip_text and not request.skip_audio


@pytest.mark.parametrize(
    ("chunks", "error", "match"),
    [
        ([], InvalidInputError, "no message"),
        ([pb.AnalyzeChunk(media=b"abc")], InvalidInputError, "first message"),
        (
            [
                pb.AnalyzeChunk(request=pb.AnalyzeRequest()),
                pb.AnalyzeChunk(request=pb.AnalyzeRequest()),
            ],
            InvalidInputError,
            "only the first",
        ),
        (
            [pb.AnalyzeChunk(request=pb.AnalyzeRequest(media=b"x" * 600))]
            + [pb.AnalyzeChunk(media=b"x" * 600)] * 5,
            PayloadTooLargeError,
            "limit is 0.0 MB",
        ),
    ],
)
def test_bad_uploads_are_refused(
    chunks: list[pb.AnalyzeChunk], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        asyncio.run(request_from_upload(_aiter_chunks(chunks), "u2", 1000))


def test_aggregated_clue_tells_the_course_and_the_strongest_moments() -> None:
    def clue(top: str, p: float, valence: float) -> Clue:
        return Clue(
            Modality.VISUAL,
            True,
            description=["..."],
            emotion_scores=scores(top, p),
            valence=valence,
            arousal=0.2,
            measurements={"face_detect_rate": p},
        )

    parts = [
        (0.0, 15.0, clue("happy", 0.8, 0.6)),
        (15.0, 30.0, clue("happy", 0.6, 0.4)),
        (30.0, 45.0, clue("angry", 0.9, -0.6)),
        (45.0, 50.0, Clue.unavailable(Modality.VISUAL, "no face detected")),
    ]
    agg = aggregate_clues(Modality.VISUAL, parts)
    assert agg.available and agg.valence == pytest.approx((0.6 + 0.4 - 0.6) / 3, abs=1e-3)
    assert agg.emotion_scores["happy"] == pytest.approx((0.8 + 0.6 + 0.1 / 6) / 3, abs=1e-3)
    assert sum(agg.emotion_scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert agg.measurements == {
        "face_detect_rate": pytest.approx(0.7667, abs=1e-3),
        "segments": 4.0,
        "segments_analysed": 3.0,
    }
    assert agg.description == [
        "Over the 50-second clip (4 segments), the face suggests mostly happiness (0.47), "
        "followed by anger (0.33).",
        "Over time it moves from happy (0:00-0:30) to angry (0:30-0:45).",
        "The strongest moments are at 0:30-0:45 (angry, 0.90) and 0:00-0:15 (happy, 0.80).",
        "Nothing could be read in 1 of the 4 segments (0:45-0:50).",
    ]
    # No segment readable: unavailable, with the segments' common reason.
    none = aggregate_clues(Modality.AUDIO, [(0.0, 15.0, Clue.unavailable(Modality.AUDIO, "x"))] * 2)
    assert not none.available and none.unavailable_reason == "x"


def test_segment_clue_times_move_onto_the_clip_clock() -> None:
    from services.common.types import Observation, Person
    from services.gateway.long_media import shifted_clue as _shifted

    clue = Clue(
        modality=Modality.VISUAL,
        available=True,
        observations=[Observation(start_s=0.5, end_s=1.0, text="a smile")],
        persons=[Person("person-1", True, 0.2, 9.8), Person("person-2", False, 3.0, 4.5)],
    )
    moved = _shifted(clue, 30.0)
    assert [(o.start_s, o.end_s) for o in moved.observations] == [(30.5, 31.0)]
    assert [(p.person_id, p.start_s, p.end_s) for p in moved.persons] == [
        ("person-1", 30.2, 39.8),
        ("person-2", 33.0, 34.5),
    ]
    assert clue.persons[0].start_s == 0.2  # the segment's own clue is left as it was


def test_all_models_failing_is_our_fault_not_the_clients(media: bytes) -> None:
    # Every model that could read this clip fails: the client did nothing wrong, so the status
    # is UNAVAILABLE (retryable), not INVALID_ARGUMENT.
    backends = RecordingBackends(fail={"audio", "visual", "text"})
    with pytest.raises(EmerError) as caught:
        run(Pipeline(backends, GatewayConfig(), None), AnalysisRequest("r6", media, None, "hi"))
    code, message = to_status(caught.value, "r6")
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "audio model failed" in message and "retry" in message


class UnreadableTextBackends(RecordingBackends):
    async def text(self, text: str, language: str) -> Clue:
        return Clue.unavailable(
            Modality.TEXT, f"language {language!r} is not supported", kind="unsupported_language"
        )


def test_nothing_readable_in_the_request_is_the_clients_fault() -> None:
    request = AnalysisRequest("r7", b"", None, "bonjour", language="xx")
    with pytest.raises(EmerError) as caught:
        run(Pipeline(UnreadableTextBackends(), GatewayConfig(), None), request)
    code, message = to_status(caught.value, "r7")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not supported" in message


def test_unsupported_language_is_said_in_the_warnings(media: bytes) -> None:
    request = AnalysisRequest("r8", media, None, "bonjour tout le monde", language="xx")
    result, _ = run(Pipeline(UnreadableTextBackends(), GatewayConfig(), None), request)
    text = result.clues[Modality.TEXT]  # type: ignore[attr-defined]
    assert not text.available and text.unavailable_kind == "unsupported_language"
    assert "text clue unavailable: language 'xx' is not supported" in result.warnings  # type: ignore[attr-defined]
    assert result.clues[Modality.AUDIO].available  # type: ignore[attr-defined]


class HangingVisual(RecordingBackends):
    """A visual model that never answers, and an explainer that would take a minute."""

    async def visual(self, video: object) -> Clue:  # type: ignore[override]
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def explain(
        self,
        audio: Clue | None,
        visual: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        await asyncio.sleep(60)
        yield "never"


def test_a_hung_model_costs_the_request_its_budget_not_more(media: bytes) -> None:
    pipeline = Pipeline(HangingVisual(), GatewayConfig(request_timeout_s=3.0), None)
    t0 = time.monotonic()
    result, _ = run(pipeline, AnalysisRequest("r1", media, None, "I am so angry right now."))
    elapsed = time.monotonic() - t0
    assert elapsed < 4.0, elapsed  # 3 s budget (decoding included), not 60 s timeouts
    visual = result.clues[Modality.VISUAL]  # type: ignore[attr-defined]
    assert not visual.available and visual.unavailable_kind == "timed_out"
    warnings = " ".join(result.warnings)  # type: ignore[attr-defined]
    assert "visual model did not answer within 2 s" in warnings
    assert "the explainer timed out; the explanation comes from the composer" in warnings
    assert result.explanation.text  # type: ignore[attr-defined]


def test_why_a_clue_is_missing_travels_as_a_kind(media: bytes) -> None:
    # Text only: audio and visual are not in the request; the kind says so on the wire.
    result, _ = run(
        Pipeline(RecordingBackends(), GatewayConfig(), None),
        AnalysisRequest("k1", b"", None, "I hate this."),
    )
    wire = {m: clue_to_proto(c) for m, c in result.clues.items()}  # type: ignore[attr-defined]
    assert wire[Modality.AUDIO].unavailable_kind == pb.UNAVAILABLE_NOT_IN_REQUEST
    assert wire[Modality.VISUAL].unavailable_kind == pb.UNAVAILABLE_NOT_IN_REQUEST
    assert wire[Modality.TEXT].available
    assert wire[Modality.TEXT].unavailable_kind == pb.UNAVAILABLE_KIND_UNSPECIFIED
    # One model fails on a clip: its clue says it was ours, the others answer.
    result, _ = run(
        Pipeline(RecordingBackends(fail={"visual"}), GatewayConfig(), None),
        AnalysisRequest("k2", media, None, "hi"),
    )
    visual = clue_to_proto(result.clues[Modality.VISUAL])  # type: ignore[attr-defined]
    assert visual.unavailable_kind == pb.UNAVAILABLE_MODEL_FAILED
    assert visual.unavailable_reason == "the visual model failed"
    # A clip with audio but nothing said: the text clue is missing by nature, not by request.
    assert clue_to_proto(Clue.unavailable(Modality.TEXT, "no speech")).unavailable_kind == (
        pb.UNAVAILABLE_NOT_APPLICABLE
    )
