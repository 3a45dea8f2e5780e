"""Typed values that flow between the pipeline stages.

The core never handles protobuf: the gateway converts wire types to these at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

# The basic categories every clue scores. FER2013's names; text and speech labels map onto them.
BASIC_EMOTIONS: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)


class Modality(StrEnum):
    AUDIO = "audio"
    VISUAL = "visual"
    TEXT = "text"


@dataclass(frozen=True)
class ModelInfo:
    role: str  # audio, visual, text, asr, explainer...
    name: str
    version: str
    backend: str  # "embedded", "huggingface", "vllm"...


@dataclass
class Observation:
    """Something seen or heard in one span of the clip."""

    start_s: float
    end_s: float
    text: str
    emotion_scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Word:
    word: str
    start_s: float
    end_s: float
    probability: float


@dataclass
class Transcript:
    text: str
    language: str
    words: list[Word]
    source: str  # "subtitle" or the ASR model name


class Unavailable(StrEnum):
    """Why a clue is missing (`Clue.unavailable_kind`; the wire's `UnavailableKind`)."""

    NOT_IN_REQUEST = "not_in_request"  # no such input in the request, or skipped by its options
    NOT_APPLICABLE = "not_applicable"  # the input holds nothing to read: no face, speech, text
    MODEL_FAILED = "model_failed"
    TIMED_OUT = "timed_out"
    UNSUPPORTED_LANGUAGE = "unsupported_language"


# Ours, not the client's: a request with nothing but these is answered UNAVAILABLE.
SERVER_FAULTS = frozenset({Unavailable.MODEL_FAILED, Unavailable.TIMED_OUT})


@dataclass
class Person:
    """One face track of a video: who was seen when, and what their face showed."""

    person_id: str
    main_character: bool
    start_s: float
    end_s: float
    description: list[str] = field(default_factory=list)
    emotion_scores: dict[str, float] = field(default_factory=dict)
    main_character_reason: str = ""


@dataclass
class Clue:
    """One modality's clue. Scores are keyed by BASIC_EMOTIONS (and may carry more words)."""

    modality: Modality
    available: bool
    unavailable_reason: str = ""
    description: list[str] = field(default_factory=list)
    emotion_scores: dict[str, float] = field(default_factory=dict)
    valence: float = 0.0  # [-1, 1]
    arousal: float = 0.0  # [-1, 1]
    observations: list[Observation] = field(default_factory=list)
    measurements: dict[str, float] = field(default_factory=dict)
    model: ModelInfo | None = None
    language: str = ""  # the language the clue was read in ("" when none applies)
    # Why the clue is missing (an `Unavailable`; "" when the clue is there).
    unavailable_kind: str = ""
    persons: list[Person] = field(default_factory=list)  # visual: one per face track

    @classmethod
    def unavailable(
        cls,
        modality: Modality,
        reason: str,
        model: ModelInfo | None = None,
        kind: str = Unavailable.NOT_APPLICABLE,
    ) -> Clue:
        return cls(
            modality=modality,
            available=False,
            unavailable_reason=reason,
            model=model,
            unavailable_kind=kind,
        )


@dataclass
class AudioClueResult:
    """What an audio clue model returns: the clue plus the transcript when one was asked for."""

    clue: Clue
    transcript: Transcript | None = None
    warnings: list[str] = field(default_factory=list)  # for the response (no transcript: why)


@dataclass
class AudioClip:
    """Mono float32 PCM in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return float(len(self.samples)) / float(self.sample_rate) if self.sample_rate else 0.0


@dataclass
class VideoFrames:
    """RGB uint8 frames (H, W, 3) sampled from the clip, with their timestamps in seconds.

    A still image is one frame at t=0 with duration 0.
    """

    frames: list[np.ndarray]
    timestamps: list[float]
    duration_s: float
