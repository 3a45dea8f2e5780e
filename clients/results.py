"""Typed, read-only views of EmotionService answers: `Analysis` of an `AnalyzeResponse` and
`TimelineSegment` of one segment of a long clip's timeline (the protobuf messages stay inside
them)."""

from __future__ import annotations

from dataclasses import dataclass

from emer_proto import emotion_pb2 as pb

__all__ = ["Analysis", "TimelineSegment"]


class _Reading:
    """What an answer and a timeline segment both carry: labels, basic category and scores,
    valence/arousal, transcript, warnings and the three clues."""

    @property
    def _message(self) -> pb.AnalyzeResponse | pb.Segment:
        raise NotImplementedError

    @property
    def labels(self) -> list[str]:
        """Open-vocabulary emotion words, most confident first (as the server orders them)."""
        return [label.word for label in self._message.labels]

    @property
    def label_confidences(self) -> dict[str, float]:
        """Emotion word -> confidence."""
        return {label.word: label.confidence for label in self._message.labels}

    @property
    def basic_category(self) -> str:
        """One of the seven basic categories ("" for a segment of which no clue could be read)."""
        return self._message.basic_category

    @property
    def basic_scores(self) -> dict[str, float]:
        return dict(self._message.basic_scores)

    @property
    def valence(self) -> float:
        return self._message.valence

    @property
    def arousal(self) -> float:
        return self._message.arousal

    @property
    def transcript(self) -> str:
        return self._message.transcript.text

    @property
    def warnings(self) -> list[str]:
        return list(self._message.warnings)

    def clue(self, modality: str | int) -> pb.Clue:
        """The clue of one modality: "audio", "visual", "text" or a `pb.Modality` value. For a
        long clip's answer, the clue aggregated over its segments."""
        return _clue_of(self._message.clues, modality)

    def available_clues(self) -> dict[str, pb.Clue]:
        """Modality name -> clue, for the modalities the server could analyse."""
        return _available(self._message.clues)


@dataclass(frozen=True)
class Analysis(_Reading):
    """A typed view of an `AnalyzeResponse` (the message itself stays in `response`)."""

    response: pb.AnalyzeResponse

    @classmethod
    def of(cls, response: pb.AnalyzeResponse) -> Analysis:
        """Wrap a response (from `analyze`, `analyze_file` or a stream's summary event)."""
        return cls(response)

    @property
    def _message(self) -> pb.AnalyzeResponse:
        return self.response

    @property
    def request_id(self) -> str:
        return self.response.request_id

    @property
    def explanation(self) -> str:
        return self.response.explanation

    @property
    def timings_ms(self) -> dict[str, float]:
        """Stage -> wall time in milliseconds."""
        return {t.stage: t.ms for t in self.response.timings}

    @property
    def media_duration_s(self) -> float:
        return self.response.media_duration_s

    @property
    def timeline(self) -> list[TimelineSegment]:
        """Long media: the segments in time order (empty for short media)."""
        return [TimelineSegment(seg) for seg in self.response.timeline]


@dataclass(frozen=True)
class TimelineSegment(_Reading):
    """A typed view of one `pb.Segment` of a long clip's timeline (times in seconds from the
    start of the media; the message itself stays in `segment`)."""

    segment: pb.Segment

    @property
    def _message(self) -> pb.Segment:
        return self.segment

    @property
    def index(self) -> int:
        return self.segment.index

    @property
    def start_s(self) -> float:
        return self.segment.start_s

    @property
    def end_s(self) -> float:
        return self.segment.end_s

    @property
    def duration_s(self) -> float:
        return self.segment.end_s - self.segment.start_s


def _clue_of(clues: pb.Clues, modality: str | int) -> pb.Clue:
    if isinstance(modality, int):
        name = pb.Modality.Name(modality).removeprefix("MODALITY_").lower()  # type: ignore[arg-type]
    else:
        name = modality.lower()
    if name not in ("audio", "visual", "text"):
        raise ValueError(f"unknown modality {modality!r} (audio, visual or text)")
    clue: pb.Clue = getattr(clues, name)
    return clue


def _available(clues: pb.Clues) -> dict[str, pb.Clue]:
    return {
        name: clue
        for name in ("audio", "visual", "text")
        if (clue := getattr(clues, name)).available
    }
