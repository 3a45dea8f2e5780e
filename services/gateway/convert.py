"""Conversion between protobuf wire types and the pipeline's typed values (the edge)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

from emer_proto import emotion_pb2 as pb

from services.common.errors import InvalidInputError, PayloadTooLargeError
from services.common.types import (
    Clue,
    Modality,
    ModelInfo,
    Observation,
    Person,
    Transcript,
    Unavailable,
)
from services.explainer.composer import Label
from services.gateway.events import (
    AnalysisRequest,
    AnalysisResult,
    ClueEvent,
    Event,
    ExplanationDeltaEvent,
    LabelsEvent,
    SegmentEvent,
    SegmentResult,
    TranscriptEvent,
)
from services.media.decode import MediaKind

_KIND = {
    pb.MEDIA_KIND_UNSPECIFIED: None,
    pb.MEDIA_KIND_VIDEO: MediaKind.VIDEO,
    pb.MEDIA_KIND_AUDIO: MediaKind.AUDIO,
    pb.MEDIA_KIND_IMAGE: MediaKind.IMAGE,
}
_MODALITY = {
    Modality.AUDIO: pb.MODALITY_AUDIO,
    Modality.VISUAL: pb.MODALITY_VISUAL,
    Modality.TEXT: pb.MODALITY_TEXT,
}


def request_from_proto(msg: pb.AnalyzeRequest, request_id: str) -> AnalysisRequest:
    if msg.media_kind not in _KIND:
        raise InvalidInputError(f"unknown media_kind {msg.media_kind}")
    opts = msg.options
    return AnalysisRequest(
        request_id=request_id,
        media=msg.media,
        media_kind=_KIND[msg.media_kind],
        subtitle=msg.subtitle,
        language=msg.language.strip(),  # empty: the audio and text models find it out
        skip_audio=opts.skip_audio,
        skip_visual=opts.skip_visual,
        skip_text=opts.skip_text,
        skip_explanation=opts.skip_explanation,
        segment_s=opts.segment_s,
    )


async def request_from_upload(
    chunks: AsyncIterator[pb.AnalyzeChunk], request_id: str, max_media_bytes: int
) -> AnalysisRequest:
    """Assemble an upload (AnalyzeUpload): the first message's request, its media followed by
    every message's piece. The media is held once (pieces are copied in as they arrive and
    dropped); more than `max_media_bytes` is refused as soon as it is passed."""
    head: pb.AnalyzeRequest | None = None
    buffer = io.BytesIO()
    async for chunk in chunks:
        if head is None:
            if not chunk.HasField("request"):
                raise InvalidInputError("the first message of an upload must carry `request`")
            head = chunk.request
            buffer.write(head.media)
            head.ClearField("media")
        elif chunk.HasField("request"):
            raise InvalidInputError("only the first message of an upload may carry `request`")
        buffer.write(chunk.media)
        if buffer.tell() > max_media_bytes:
            raise PayloadTooLargeError(
                f"the media is more than {buffer.tell() / 1e6:.1f} MB; "
                f"the limit is {max_media_bytes / 1e6:.1f} MB"
            )
    if head is None:
        raise InvalidInputError("the upload holds no message")
    request = request_from_proto(head, request_id)
    request.media = buffer.getvalue()
    return request


def model_to_proto(info: ModelInfo) -> pb.ModelInfo:
    return pb.ModelInfo(role=info.role, name=info.name, version=info.version, backend=info.backend)


def _observation(o: Observation) -> pb.TimedObservation:
    return pb.TimedObservation(
        start_s=o.start_s, end_s=o.end_s, text=o.text, emotion_scores=o.emotion_scores
    )


def _person(p: Person) -> pb.Person:
    return pb.Person(
        person_id=p.person_id,
        main_character=p.main_character,
        start_s=p.start_s,
        end_s=p.end_s,
        description=p.description,
        emotion_scores={k: float(v) for k, v in p.emotion_scores.items()},
        main_character_reason=p.main_character_reason,
    )


_UNAVAILABLE: dict[str, pb.UnavailableKind.ValueType] = {
    Unavailable.NOT_IN_REQUEST: pb.UNAVAILABLE_NOT_IN_REQUEST,
    Unavailable.NOT_APPLICABLE: pb.UNAVAILABLE_NOT_APPLICABLE,
    Unavailable.MODEL_FAILED: pb.UNAVAILABLE_MODEL_FAILED,
    Unavailable.TIMED_OUT: pb.UNAVAILABLE_TIMED_OUT,
    Unavailable.UNSUPPORTED_LANGUAGE: pb.UNAVAILABLE_UNSUPPORTED_LANGUAGE,
}


def clue_to_proto(clue: Clue) -> pb.Clue:
    msg = pb.Clue(
        modality=_MODALITY[clue.modality],
        available=clue.available,
        unavailable_reason=clue.unavailable_reason,
        unavailable_kind=pb.UNAVAILABLE_KIND_UNSPECIFIED
        if clue.available
        else _UNAVAILABLE.get(clue.unavailable_kind, pb.UNAVAILABLE_NOT_APPLICABLE),
        description=clue.description,
        emotion_scores={k: float(v) for k, v in clue.emotion_scores.items()},
        valence=clue.valence,
        arousal=clue.arousal,
        observations=[_observation(o) for o in clue.observations],
        measurements={k: float(v) for k, v in clue.measurements.items()},
        language=clue.language,
        persons=[_person(p) for p in clue.persons],
    )
    if clue.model is not None:
        msg.model.CopyFrom(model_to_proto(clue.model))
    return msg


def transcript_to_proto(t: Transcript) -> pb.Transcript:
    return pb.Transcript(
        text=t.text,
        language=t.language,
        source=t.source,
        words=[
            pb.Word(word=w.word, start_s=w.start_s, end_s=w.end_s, probability=w.probability)
            for w in t.words
        ],
    )


def label_to_proto(label: Label) -> pb.EmotionLabel:
    return pb.EmotionLabel(
        word=label.word,
        confidence=label.confidence,
        wheel_categories=label.wheel_categories,
        modalities=[_MODALITY[m] for m in label.modalities],
    )


def _clues_to_proto(clues: dict[Modality, Clue], msg: pb.Clues) -> None:
    msg.audio.CopyFrom(clue_to_proto(clues[Modality.AUDIO]))
    msg.visual.CopyFrom(clue_to_proto(clues[Modality.VISUAL]))
    msg.text.CopyFrom(clue_to_proto(clues[Modality.TEXT]))


def segment_to_proto(segment: SegmentResult) -> pb.Segment:
    msg = pb.Segment(
        index=segment.index,
        start_s=segment.start_s,
        end_s=segment.end_s,
        labels=[label_to_proto(lab) for lab in segment.labels],
        basic_category=segment.basic_category,
        basic_scores=segment.basic_scores,
        valence=segment.valence,
        arousal=segment.arousal,
        warnings=segment.warnings,
    )
    _clues_to_proto(segment.clues, msg.clues)
    if segment.transcript is not None:
        msg.transcript.CopyFrom(transcript_to_proto(segment.transcript))
    return msg


def response_to_proto(result: AnalysisResult) -> pb.AnalyzeResponse:
    ex = result.explanation
    msg = pb.AnalyzeResponse(
        request_id=result.request_id,
        explanation=ex.text,
        labels=[label_to_proto(lab) for lab in ex.labels],
        basic_category=ex.basic_category,
        basic_scores=ex.basic_scores,
        valence=ex.valence,
        arousal=ex.arousal,
        timings=[pb.StageTiming(stage=k, ms=v) for k, v in result.timings_ms.items()],
        models=[model_to_proto(m) for m in result.models],
        warnings=result.warnings,
        media_duration_s=result.media_duration_s,
        timeline=[segment_to_proto(seg) for seg in result.timeline],
    )
    _clues_to_proto(result.clues, msg.clues)
    if result.transcript is not None:
        msg.transcript.CopyFrom(transcript_to_proto(result.transcript))
    return msg


def event_to_proto(request_id: str, event: Event) -> pb.AnalyzeEvent:
    if isinstance(event, ClueEvent):
        return pb.AnalyzeEvent(request_id=request_id, clue=clue_to_proto(event.clue))
    if isinstance(event, TranscriptEvent):
        return pb.AnalyzeEvent(
            request_id=request_id, transcript=transcript_to_proto(event.transcript)
        )
    if isinstance(event, ExplanationDeltaEvent):
        return pb.AnalyzeEvent(
            request_id=request_id, explanation_delta=pb.ExplanationDelta(text=event.text)
        )
    if isinstance(event, LabelsEvent):
        return pb.AnalyzeEvent(
            request_id=request_id,
            labels=pb.LabelsEvent(
                labels=[label_to_proto(lab) for lab in event.labels],
                basic_category=event.basic_category,
            ),
        )
    if isinstance(event, SegmentEvent):
        return pb.AnalyzeEvent(request_id=request_id, segment=segment_to_proto(event.segment))
    raise TypeError(f"unknown event {event!r}")
