"""The gateway pipeline with in-process backends: fan-out, ordering, failure isolation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from services.common.errors import InvalidInputError, ModelError, PayloadTooLargeError
from services.common.types import (
    BASIC_EMOTIONS,
    AudioClip,
    AudioClueResult,
    Clue,
    Modality,
    ModelInfo,
    Transcript,
    VideoFrames,
    Word,
)
from services.config import GatewayConfig
from services.explainer.composer import Explanation, compose
from services.gateway.pipeline import (
    AnalysisRequest,
    ClueEvent,
    Event,
    ExplanationDeltaEvent,
    LabelsEvent,
    Pipeline,
    TranscriptEvent,
)
from services.gateway.status import to_status
from services.media.decode import MediaKind


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
