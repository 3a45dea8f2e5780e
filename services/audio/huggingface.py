"""Production audio backend: a transformers `audio-classification` model for the emotion scores.

The model is loaded by local folder or hub name (`AudioConfig.model`); its labels are mapped onto
BASIC_EMOTIONS (common sets: IEMOCAP's ang/hap/neu/sad, RAVDESS/CREMA-D/TESS names...). Labels
that map to none are dropped. A dimensional model (labels arousal / valence [/ dominance], e.g.
a wav2vec2 regression head) gives arousal and valence instead, and the categories then come from
prosody. Speech segments, prosodic description, observations and the transcript come from the
embedded analyser, so this backend adds to the embedded one rather than replacing it.

Imported only when `backend: huggingface` is selected (transformers is heavy).
"""

from __future__ import annotations

import logging
import math
import re

import numpy as np
import torch

from services.audio.config import AudioConfig
from services.audio.embedded import ProsodyAnalyzer, build_clue, package_version, vad_asr_info
from services.audio.prosody import SAMPLE_RATE, speech_windows
from services.audio.scoring import CATEGORY_VALENCE, VoiceScores, score
from services.audio.speech import SpeechRecognizer, base_language, listen, model_name
from services.common.types import (
    BASIC_EMOTIONS,
    AudioClip,
    AudioClueResult,
    Clue,
    Modality,
    ModelInfo,
    Observation,
    Transcript,
)

logger = logging.getLogger(__name__)

# Label words (lower case, whole tokens) of common speech-emotion label sets.
LABEL_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(["ang", "anger", "angry", "mad", "annoyed", "irritated"], "angry"),
    **dict.fromkeys(["dis", "disgust", "disgusted", "contempt"], "disgust"),
    **dict.fromkeys(["fea", "fear", "fearful", "scared", "afraid", "anxious"], "fear"),
    **dict.fromkeys(["hap", "happy", "happiness", "joy", "joyful", "exc", "excited"], "happy"),
    **dict.fromkeys(["sad", "sadness", "unhappy"], "sad"),
    **dict.fromkeys(["sur", "surprise", "surprised", "ps"], "surprise"),
    **dict.fromkeys(["neu", "neutral", "calm", "cal", "none"], "neutral"),
}
# Labels of a dimensional (regression) model.
DIMENSIONS = ("arousal", "valence", "dominance")


def map_label(label: str) -> str | None:
    """The basic emotion a classifier label names, or None (e.g. 'LABEL_3', 'frustration').

    Matches whole lower-case words, so '03_angry', 'Angry', 'emotion: hap' and
    'pleasant_surprise' (-> its 'surprise') all map.
    """
    for token in re.findall(r"[a-z]+", label.lower()):
        if token in LABEL_SYNONYMS:
            return LABEL_SYNONYMS[token]
    return None


class HuggingFaceAudioModel:
    """transformers audio classifier + the embedded prosody, VAD and ASR.

    Implements `services.common.models.AudioClueModel`.
    """

    def __init__(self, config: AudioConfig) -> None:
        if not config.model:
            raise ValueError("the huggingface audio backend needs `model` (a folder or hub name)")
        from transformers import pipeline

        self.config = config
        torch.set_num_threads(config.num_threads)
        self.classifier = pipeline(
            "audio-classification",
            model=config.model,
            device=config.device,
            local_files_only=config.local_files_only,
        )
        id2label = self.classifier.model.config.id2label or {}
        labels = [str(v) for v in id2label.values()]
        lowered = {label.lower() for label in labels}
        self.dimensional = "arousal" in lowered and "valence" in lowered
        self.label_map = {label: map_label(label) for label in labels}
        if not self.dimensional and not any(self.label_map.values()):
            raise ValueError(
                f"none of the labels of {config.model} name a basic emotion: {sorted(labels)}"
            )
        dropped = [k for k, v in self.label_map.items() if v is None]
        if dropped and not self.dimensional:
            logger.warning("audio model labels not mapped to a basic emotion: %s", dropped)
        self.name = model_name(config.model)
        self.model_info = ModelInfo(
            role="audio",
            name=self.name,
            version=f"transformers {package_version('transformers')}",
            backend="huggingface",
        )
        self.prosody = ProsodyAnalyzer(config)
        self.asr = SpeechRecognizer(config)

    @property
    def info(self) -> list[ModelInfo]:
        """Classifier, VAD and ASR."""
        return [self.model_info, *vad_asr_info(*self.asr.names)]

    def warmup(self) -> None:
        """pyin, VAD, the classifier and the ASR once each."""
        self.prosody.warmup()
        y = np.zeros(SAMPLE_RATE, dtype=np.float32)
        self._classify(y)
        self.asr.warmup(y)

    def _classify(self, y: np.ndarray) -> dict[str, float]:
        """Raw label -> score of one window of 16 kHz audio."""
        out = self.classifier(
            {"raw": np.ascontiguousarray(y, dtype=np.float32), "sampling_rate": SAMPLE_RATE},
            top_k=None,
            # a regression head's outputs are the values themselves, not logits of classes
            function_to_apply="none" if self.dimensional else "softmax",
        )
        return {str(d["label"]): float(d["score"]) for d in out}

    def scores_from(self, raw: dict[str, float], prosody: VoiceScores) -> VoiceScores:
        """Map the classifier output onto the clue's scores (prosody fills what it lacks)."""
        if self.dimensional:
            dims = {k.lower(): v for k, v in raw.items()}
            # these heads are trained on [0, 1] targets; clip what drifts outside
            arousal = 2.0 * float(np.clip(dims["arousal"], 0.0, 1.0)) - 1.0
            valence = 2.0 * float(np.clip(dims["valence"], 0.0, 1.0)) - 1.0
            return VoiceScores(
                arousal_logit=prosody.arousal_logit,
                arousal=arousal,
                p_high=(arousal + 1.0) / 2.0,
                emotions=prosody.emotions,
                valence=valence,
            )
        emotions = dict.fromkeys(BASIC_EMOTIONS, 0.0)
        for label, value in raw.items():
            basic = self.label_map.get(label)
            if basic is not None:
                emotions[basic] += value
        total = sum(emotions.values())
        if total <= 0:
            return prosody
        emotions = {k: v / total for k, v in emotions.items()}
        valence = sum(emotions[c] * CATEGORY_VALENCE[c] for c in BASIC_EMOTIONS)
        # the classifier gives no arousal: the voice's prosody does
        return VoiceScores(
            arousal_logit=prosody.arousal_logit,
            arousal=prosody.arousal,
            p_high=prosody.p_high,
            emotions=emotions,
            valence=float(np.clip(valence, -1.0, 1.0)),
        )

    def analyze(
        self, clip: AudioClip, *, transcribe: bool, language: str = "en"
    ) -> AudioClueResult:
        """Classifier scores over the speech, prosodic description, optional transcript."""
        y, notes = self.prosody.prepare(clip)
        found = self.prosody.analyze(y)
        if found is None:
            lang = base_language(language)
            empty = Transcript(text="", language=lang, words=[], source=self.asr.english.name)
            return AudioClueResult(
                clue=Clue.unavailable(
                    Modality.AUDIO, "no speech detected in the audio", model=self.model_info
                ),
                transcript=empty if transcribe else None,
            )
        tracks, feats = found
        # classify speech in windows of at most 20 s, weighted by their length
        windows = speech_windows(tracks.segments, max_block_s=20.0)
        totals: dict[str, float] = {}
        window_obs: list[Observation] = []
        weight_sum = 0.0
        for start, end in windows:
            a, b = int(start * SAMPLE_RATE), math.ceil(end * SAMPLE_RATE)
            raw = self._classify(y[a:b])
            weight = max(end - start, 1e-3)
            weight_sum += weight
            for k, v in raw.items():
                totals[k] = totals.get(k, 0.0) + weight * v
            if not self.dimensional and len(windows) > 1:
                s = self.scores_from(raw, score(feats))
                top = max(s.emotions, key=lambda e: s.emotions[e])
                window_obs.append(
                    Observation(
                        start_s=round(start, 2),
                        end_s=round(end, 2),
                        text=f"Speech emotion model: mostly {top} ({s.emotions[top]:.0%}).",
                        emotion_scores=s.emotions,
                    )
                )
        raw_mean = {k: v / weight_sum for k, v in totals.items()}
        scores = self.scores_from(raw_mean, score(feats))
        clue = build_clue(
            tracks, feats, self.config, notes=notes, model=self.model_info, scores=scores
        )
        if not self.dimensional:
            top = max(scores.emotions, key=lambda e: scores.emotions[e])
            # just before the closing "Together this suggests ..." sentence
            at = next(
                (i for i, t in enumerate(clue.description) if t.startswith("Together")),
                len(clue.description),
            )
            clue.description.insert(
                at,
                f"The speech emotion model ({self.name}) hears mostly {top} "
                f"({scores.emotions[top]:.0%}).",
            )
        clue.observations = sorted(
            [*clue.observations, *window_obs], key=lambda o: (o.start_s, o.end_s)
        )
        return listen(self.asr, y, clue, transcribe=transcribe, language=language)
