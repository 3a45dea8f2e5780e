from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MediaKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEDIA_KIND_UNSPECIFIED: _ClassVar[MediaKind]
    MEDIA_KIND_VIDEO: _ClassVar[MediaKind]
    MEDIA_KIND_AUDIO: _ClassVar[MediaKind]
    MEDIA_KIND_IMAGE: _ClassVar[MediaKind]

class Modality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODALITY_UNSPECIFIED: _ClassVar[Modality]
    MODALITY_AUDIO: _ClassVar[Modality]
    MODALITY_VISUAL: _ClassVar[Modality]
    MODALITY_TEXT: _ClassVar[Modality]

class UnavailableKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNAVAILABLE_KIND_UNSPECIFIED: _ClassVar[UnavailableKind]
    UNAVAILABLE_NOT_IN_REQUEST: _ClassVar[UnavailableKind]
    UNAVAILABLE_NOT_APPLICABLE: _ClassVar[UnavailableKind]
    UNAVAILABLE_MODEL_FAILED: _ClassVar[UnavailableKind]
    UNAVAILABLE_TIMED_OUT: _ClassVar[UnavailableKind]
    UNAVAILABLE_UNSUPPORTED_LANGUAGE: _ClassVar[UnavailableKind]
MEDIA_KIND_UNSPECIFIED: MediaKind
MEDIA_KIND_VIDEO: MediaKind
MEDIA_KIND_AUDIO: MediaKind
MEDIA_KIND_IMAGE: MediaKind
MODALITY_UNSPECIFIED: Modality
MODALITY_AUDIO: Modality
MODALITY_VISUAL: Modality
MODALITY_TEXT: Modality
UNAVAILABLE_KIND_UNSPECIFIED: UnavailableKind
UNAVAILABLE_NOT_IN_REQUEST: UnavailableKind
UNAVAILABLE_NOT_APPLICABLE: UnavailableKind
UNAVAILABLE_MODEL_FAILED: UnavailableKind
UNAVAILABLE_TIMED_OUT: UnavailableKind
UNAVAILABLE_UNSUPPORTED_LANGUAGE: UnavailableKind

class AnalyzeRequest(_message.Message):
    __slots__ = ("request_id", "media", "media_kind", "subtitle", "language", "options")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    MEDIA_KIND_FIELD_NUMBER: _ClassVar[int]
    SUBTITLE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    media: bytes
    media_kind: MediaKind
    subtitle: str
    language: str
    options: AnalyzeOptions
    def __init__(self, request_id: _Optional[str] = ..., media: _Optional[bytes] = ..., media_kind: _Optional[_Union[MediaKind, str]] = ..., subtitle: _Optional[str] = ..., language: _Optional[str] = ..., options: _Optional[_Union[AnalyzeOptions, _Mapping]] = ...) -> None: ...

class AnalyzeChunk(_message.Message):
    __slots__ = ("request", "media")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    request: AnalyzeRequest
    media: bytes
    def __init__(self, request: _Optional[_Union[AnalyzeRequest, _Mapping]] = ..., media: _Optional[bytes] = ...) -> None: ...

class AnalyzeOptions(_message.Message):
    __slots__ = ("skip_audio", "skip_visual", "skip_text", "skip_explanation", "segment_s")
    SKIP_AUDIO_FIELD_NUMBER: _ClassVar[int]
    SKIP_VISUAL_FIELD_NUMBER: _ClassVar[int]
    SKIP_TEXT_FIELD_NUMBER: _ClassVar[int]
    SKIP_EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_S_FIELD_NUMBER: _ClassVar[int]
    skip_audio: bool
    skip_visual: bool
    skip_text: bool
    skip_explanation: bool
    segment_s: float
    def __init__(self, skip_audio: _Optional[bool] = ..., skip_visual: _Optional[bool] = ..., skip_text: _Optional[bool] = ..., skip_explanation: _Optional[bool] = ..., segment_s: _Optional[float] = ...) -> None: ...

class TimedObservation(_message.Message):
    __slots__ = ("start_s", "end_s", "text", "emotion_scores")
    class EmotionScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    EMOTION_SCORES_FIELD_NUMBER: _ClassVar[int]
    start_s: float
    end_s: float
    text: str
    emotion_scores: _containers.ScalarMap[str, float]
    def __init__(self, start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., text: _Optional[str] = ..., emotion_scores: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Clue(_message.Message):
    __slots__ = ("modality", "available", "unavailable_reason", "unavailable_kind", "description", "emotion_scores", "valence", "arousal", "observations", "measurements", "model", "language", "persons")
    class EmotionScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class MeasurementsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EMOTION_SCORES_FIELD_NUMBER: _ClassVar[int]
    VALENCE_FIELD_NUMBER: _ClassVar[int]
    AROUSAL_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    modality: Modality
    available: bool
    unavailable_reason: str
    unavailable_kind: UnavailableKind
    description: _containers.RepeatedScalarFieldContainer[str]
    emotion_scores: _containers.ScalarMap[str, float]
    valence: float
    arousal: float
    observations: _containers.RepeatedCompositeFieldContainer[TimedObservation]
    measurements: _containers.ScalarMap[str, float]
    model: ModelInfo
    language: str
    persons: _containers.RepeatedCompositeFieldContainer[Person]
    def __init__(self, modality: _Optional[_Union[Modality, str]] = ..., available: _Optional[bool] = ..., unavailable_reason: _Optional[str] = ..., unavailable_kind: _Optional[_Union[UnavailableKind, str]] = ..., description: _Optional[_Iterable[str]] = ..., emotion_scores: _Optional[_Mapping[str, float]] = ..., valence: _Optional[float] = ..., arousal: _Optional[float] = ..., observations: _Optional[_Iterable[_Union[TimedObservation, _Mapping]]] = ..., measurements: _Optional[_Mapping[str, float]] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., language: _Optional[str] = ..., persons: _Optional[_Iterable[_Union[Person, _Mapping]]] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("person_id", "main_character", "start_s", "end_s", "description", "emotion_scores", "main_character_reason")
    class EmotionScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    MAIN_CHARACTER_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EMOTION_SCORES_FIELD_NUMBER: _ClassVar[int]
    MAIN_CHARACTER_REASON_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    main_character: bool
    start_s: float
    end_s: float
    description: _containers.RepeatedScalarFieldContainer[str]
    emotion_scores: _containers.ScalarMap[str, float]
    main_character_reason: str
    def __init__(self, person_id: _Optional[str] = ..., main_character: _Optional[bool] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., description: _Optional[_Iterable[str]] = ..., emotion_scores: _Optional[_Mapping[str, float]] = ..., main_character_reason: _Optional[str] = ...) -> None: ...

class Clues(_message.Message):
    __slots__ = ("audio", "visual", "text")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    VISUAL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    audio: Clue
    visual: Clue
    text: Clue
    def __init__(self, audio: _Optional[_Union[Clue, _Mapping]] = ..., visual: _Optional[_Union[Clue, _Mapping]] = ..., text: _Optional[_Union[Clue, _Mapping]] = ...) -> None: ...

class Word(_message.Message):
    __slots__ = ("word", "start_s", "end_s", "probability")
    WORD_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    word: str
    start_s: float
    end_s: float
    probability: float
    def __init__(self, word: _Optional[str] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., probability: _Optional[float] = ...) -> None: ...

class Transcript(_message.Message):
    __slots__ = ("text", "language", "words", "source")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    text: str
    language: str
    words: _containers.RepeatedCompositeFieldContainer[Word]
    source: str
    def __init__(self, text: _Optional[str] = ..., language: _Optional[str] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ..., source: _Optional[str] = ...) -> None: ...

class EmotionLabel(_message.Message):
    __slots__ = ("word", "confidence", "wheel_categories", "modalities")
    WORD_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    WHEEL_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    word: str
    confidence: float
    wheel_categories: _containers.RepeatedScalarFieldContainer[str]
    modalities: _containers.RepeatedScalarFieldContainer[Modality]
    def __init__(self, word: _Optional[str] = ..., confidence: _Optional[float] = ..., wheel_categories: _Optional[_Iterable[str]] = ..., modalities: _Optional[_Iterable[_Union[Modality, str]]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("role", "name", "version", "backend")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    role: str
    name: str
    version: str
    backend: str
    def __init__(self, role: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., backend: _Optional[str] = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("stage", "ms")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    ms: float
    def __init__(self, stage: _Optional[str] = ..., ms: _Optional[float] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("index", "start_s", "end_s", "clues", "transcript", "labels", "basic_category", "valence", "arousal", "warnings", "basic_scores")
    class BasicScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    INDEX_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    CLUES_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    BASIC_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    VALENCE_FIELD_NUMBER: _ClassVar[int]
    AROUSAL_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    BASIC_SCORES_FIELD_NUMBER: _ClassVar[int]
    index: int
    start_s: float
    end_s: float
    clues: Clues
    transcript: Transcript
    labels: _containers.RepeatedCompositeFieldContainer[EmotionLabel]
    basic_category: str
    valence: float
    arousal: float
    warnings: _containers.RepeatedScalarFieldContainer[str]
    basic_scores: _containers.ScalarMap[str, float]
    def __init__(self, index: _Optional[int] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., clues: _Optional[_Union[Clues, _Mapping]] = ..., transcript: _Optional[_Union[Transcript, _Mapping]] = ..., labels: _Optional[_Iterable[_Union[EmotionLabel, _Mapping]]] = ..., basic_category: _Optional[str] = ..., valence: _Optional[float] = ..., arousal: _Optional[float] = ..., warnings: _Optional[_Iterable[str]] = ..., basic_scores: _Optional[_Mapping[str, float]] = ...) -> None: ...

class AnalyzeResponse(_message.Message):
    __slots__ = ("request_id", "clues", "transcript", "explanation", "labels", "basic_category", "basic_scores", "valence", "arousal", "timings", "models", "warnings", "media_duration_s", "timeline")
    class BasicScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLUES_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    BASIC_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    BASIC_SCORES_FIELD_NUMBER: _ClassVar[int]
    VALENCE_FIELD_NUMBER: _ClassVar[int]
    AROUSAL_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    clues: Clues
    transcript: Transcript
    explanation: str
    labels: _containers.RepeatedCompositeFieldContainer[EmotionLabel]
    basic_category: str
    basic_scores: _containers.ScalarMap[str, float]
    valence: float
    arousal: float
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    media_duration_s: float
    timeline: _containers.RepeatedCompositeFieldContainer[Segment]
    def __init__(self, request_id: _Optional[str] = ..., clues: _Optional[_Union[Clues, _Mapping]] = ..., transcript: _Optional[_Union[Transcript, _Mapping]] = ..., explanation: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[EmotionLabel, _Mapping]]] = ..., basic_category: _Optional[str] = ..., basic_scores: _Optional[_Mapping[str, float]] = ..., valence: _Optional[float] = ..., arousal: _Optional[float] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., media_duration_s: _Optional[float] = ..., timeline: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ...) -> None: ...

class ExplanationDelta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class LabelsEvent(_message.Message):
    __slots__ = ("labels", "basic_category")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    BASIC_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[EmotionLabel]
    basic_category: str
    def __init__(self, labels: _Optional[_Iterable[_Union[EmotionLabel, _Mapping]]] = ..., basic_category: _Optional[str] = ...) -> None: ...

class AnalyzeEvent(_message.Message):
    __slots__ = ("request_id", "clue", "transcript", "explanation_delta", "labels", "summary", "segment")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLUE_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_DELTA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    clue: Clue
    transcript: Transcript
    explanation_delta: ExplanationDelta
    labels: LabelsEvent
    summary: AnalyzeResponse
    segment: Segment
    def __init__(self, request_id: _Optional[str] = ..., clue: _Optional[_Union[Clue, _Mapping]] = ..., transcript: _Optional[_Union[Transcript, _Mapping]] = ..., explanation_delta: _Optional[_Union[ExplanationDelta, _Mapping]] = ..., labels: _Optional[_Union[LabelsEvent, _Mapping]] = ..., summary: _Optional[_Union[AnalyzeResponse, _Mapping]] = ..., segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class ExtractLabelsRequest(_message.Message):
    __slots__ = ("request_id", "text", "language")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    language: str
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class ExtractLabelsResponse(_message.Message):
    __slots__ = ("request_id", "labels", "timings", "models", "warnings")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    labels: _containers.RepeatedCompositeFieldContainer[EmotionLabel]
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[EmotionLabel, _Mapping]]] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...
