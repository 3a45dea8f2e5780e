"""What the pipeline takes, gives and streams: the analysis request and result, the stream events
in the order a client sees them, and the `Backends` protocol the pipeline calls the models through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from services.common.types import (
    AudioClip,
    AudioClueResult,
    Clue,
    Modality,
    ModelInfo,
    Transcript,
    VideoFrames,
)
from services.explainer.composer import Explanation, Label
from services.media.decode import MediaKind


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
    segment_s: float = 0.0  # segment length for long media; 0 = GatewayConfig.segment_s


@dataclass
class SegmentResult:
    """The analysis of one time range [start_s, end_s) of long media (times absolute)."""

    index: int
    start_s: float
    end_s: float
    clues: dict[Modality, Clue]
    transcript: Transcript | None  # this range's ASR transcript (None with a subtitle)
    labels: list[Label]  # from the composer's fusion of this range's clues (no LLM)
    basic_category: str  # "" when no clue of this range could be read
    basic_scores: dict[str, float]
    valence: float
    arousal: float
    warnings: list[str] = field(default_factory=list)


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
    timeline: list[SegmentResult] = field(default_factory=list)  # empty for short media


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


@dataclass
class SegmentEvent:
    """Long media: one segment, as soon as it is analysed (before the overall clues)."""

    segment: SegmentResult


Event = ClueEvent | TranscriptEvent | ExplanationDeltaEvent | LabelsEvent | SegmentEvent
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
