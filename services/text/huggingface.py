"""Production text backend: any transformers `text-classification` emotion model.

Loads a model by local folder or Hub name (e.g. `j-hartmann/emotion-english-distilroberta-base`
with Ekman-7 labels, or `SamLowe/roberta-base-go_emotions` with the 28 GoEmotions labels), maps its
labels onto BASIC_EMOTIONS and adds VADER valence. Imported only when `backend: huggingface`.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from services.common.types import BASIC_EMOTIONS, Clue, Modality, ModelInfo, Observation
from services.text.config import TextConfig
from services.text.embedded import VADER_VALENCE_SHARE, WHOLE_TEXT_WEIGHT
from services.text.features import (
    TextFeatures,
    describe,
    intensity_arousal,
    split_sentences,
    text_features,
)
from services.text.prototypes import language_supported

logger = logging.getLogger(__name__)

# Label name (lower case) -> basic category. GoEmotions' 28 labels follow the GoEmotions paper's
# own Ekman grouping; the rest covers Ekman-style and common emotion-dataset names.
LABEL_TO_BASIC: dict[str, str] = {
    # GoEmotions 28
    "admiration": "happy",
    "amusement": "happy",
    "anger": "angry",
    "annoyance": "angry",
    "approval": "happy",
    "caring": "happy",
    "confusion": "surprise",
    "curiosity": "surprise",
    "desire": "happy",
    "disappointment": "sad",
    "disapproval": "angry",
    "disgust": "disgust",
    "embarrassment": "sad",
    "excitement": "happy",
    "fear": "fear",
    "gratitude": "happy",
    "grief": "sad",
    "joy": "happy",
    "love": "happy",
    "nervousness": "fear",
    "optimism": "happy",
    "pride": "happy",
    "realization": "surprise",
    "relief": "happy",
    "remorse": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "neutral": "neutral",
    # Ekman / FER-style names and common variants
    "angry": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "sad": "sad",
    "surprised": "surprise",
    "calm": "neutral",
    "none": "neutral",
    "no emotion": "neutral",
}
# The noun a description uses when the model's own label is a basic name ("angry" -> "anger").
_BASIC_NOUN = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "joy",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
# Circumplex placement of each basic category, used to mix valence/arousal from the scores.
BASIC_VALENCE = {
    "angry": -0.7,
    "disgust": -0.7,
    "fear": -0.65,
    "happy": 0.8,
    "sad": -0.7,
    "surprise": 0.1,
    "neutral": 0.0,
}
BASIC_AROUSAL = {
    "angry": 0.8,
    "disgust": 0.35,
    "fear": 0.7,
    "happy": 0.5,
    "sad": -0.4,
    "surprise": 0.75,
    "neutral": -0.35,
}


def map_labels(id2label: dict[int, str]) -> dict[str, str]:
    """Model label -> basic category for every label we know; raises when none is known."""
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for label in id2label.values():
        basic = LABEL_TO_BASIC.get(str(label).strip().lower())
        if basic is None:
            unknown.append(str(label))
        else:
            mapping[str(label)] = basic
    if not mapping:
        raise ValueError(
            f"none of the model's labels {sorted(map(str, id2label.values()))} is an emotion name "
            f"this backend knows (GoEmotions-28 or Ekman-7 names)"
        )
    if unknown:
        logger.warning("text model labels ignored (not emotion names we map): %s", unknown)
    return mapping


def basic_scores(
    predictions: Sequence[dict[str, Any]], mapping: dict[str, str]
) -> tuple[np.ndarray, dict[str, str]]:
    """One input's [{label, score}] -> (probabilities over BASIC_EMOTIONS, best label per basic).

    Scores of labels that share a category add up (softmax models: disjoint probabilities;
    sigmoid multi-label models: evidence), then the seven are renormalised to sum to 1.
    """
    totals = np.zeros(len(BASIC_EMOTIONS))
    best: dict[str, tuple[float, str]] = {}
    for item in predictions:
        label = str(item["label"])
        basic = mapping.get(label)
        if basic is None:
            continue
        score = float(item["score"])
        totals[BASIC_EMOTIONS.index(basic)] += score
        if score > best.get(basic, (-1.0, ""))[0]:
            best[basic] = (score, label)
    if totals.sum() <= 0:
        totals[BASIC_EMOTIONS.index("neutral")] = 1.0
    words = {}
    for b in BASIC_EMOTIONS:
        label = best.get(b, (0.0, b))[1].lower()
        words[b] = _BASIC_NOUN.get(label, label)
    return totals / totals.sum(), words


class HuggingFaceTextModel:
    """Text clue from a transformers sequence-classification model (GPU or CPU)."""

    def __init__(self, config: TextConfig) -> None:
        if not config.model:
            raise ValueError("text backend 'huggingface' needs `model` (a local path or Hub name)")
        self.config = config
        import torch
        from transformers import (
            AutoModelForSequenceClassification,
            AutoTokenizer,
            pipeline,
        )
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        tokenizer = AutoTokenizer.from_pretrained(
            config.model, local_files_only=config.local_files_only
        )
        model = AutoModelForSequenceClassification.from_pretrained(
            config.model, local_files_only=config.local_files_only
        )
        model.eval()
        self._mapping = map_labels(dict(model.config.id2label))
        self._pipe = pipeline(
            "text-classification",
            model=model,
            tokenizer=tokenizer,
            top_k=None,
            device=config.device,
        )
        self._vader = SentimentIntensityAnalyzer()
        revision = getattr(model.config, "_commit_hash", None) or "local"
        self._info = [
            ModelInfo(
                role="text",
                name=config.model,
                version=f"{revision}; transformers {importlib.metadata.version('transformers')}",
                backend="huggingface",
            ),
            ModelInfo(
                role="text-valence",
                name="VADER",
                version=importlib.metadata.version("vaderSentiment"),
                backend="huggingface",
            ),
        ]

    @property
    def info(self) -> list[ModelInfo]:
        """The classifier and VADER."""
        return list(self._info)

    def warmup(self) -> None:
        """One call so the first request does not pay for lazy initialisation."""
        self.analyze("Thanks, that's great news! I was worried it would not work.")

    def _classify(self, units: list[str]) -> list[list[dict[str, Any]]]:
        out: Any = self._pipe(
            units,
            batch_size=self.config.batch_size,
            truncation=True,
            max_length=self.config.max_length,
        )
        # A single input may come back unwrapped.
        if out and isinstance(out[0], dict):
            out = [out]
        return [list(o) for o in out]

    # Per-unit predictions do not depend on the other inputs of a call (float model; padding is
    # masked), so requests can share one classifier call: see analyze_batch().
    joint_batches = True

    def analyze(self, text: str, *, language: str = "en") -> Clue:
        """Emotion scores, valence, arousal and a description of what the words say."""
        planned = self._plan(text, language)
        if isinstance(planned, Clue):
            return planned
        return self._clue(planned, self._classify(planned[2]))

    def analyze_batch(self, items: Sequence[tuple[str, str]]) -> list[Clue]:
        """analyze() of each (text, language), in order, with one classifier call for the units
        (whole texts and sentences) of all of them; the pipeline runs `batch_size` units per
        forward pass. Any failure fails the whole call (callers that need per-request isolation
        retry the items one by one)."""
        plans = [self._plan(text, language) for text, language in items]
        units = [u for p in plans if not isinstance(p, Clue) for u in p[2]]
        predictions = self._classify(units) if units else []
        if len(predictions) != len(units):
            raise RuntimeError(f"{len(predictions)} predictions for {len(units)} texts")
        clues: list[Clue] = []
        row = 0
        for planned in plans:
            if isinstance(planned, Clue):
                clues.append(planned)
                continue
            n = len(planned[2])
            clues.append(self._clue(planned, predictions[row : row + n]))
            row += n
        return clues

    def _plan(self, text: str, language: str) -> Clue | tuple[list[str], list[str], list[str]]:
        """(sentences, kept sentences, units) of a text, or the unavailable clue."""
        if not text or not text.strip():
            return Clue.unavailable(Modality.TEXT, "no text", model=self._info[0])
        if not language_supported(language, self.config.languages):
            return Clue.unavailable(
                Modality.TEXT,
                f"the text model {self.config.model} is configured for "
                f"{self.config.languages}; got language '{language}'",
                model=self._info[0],
            )
        text = text.strip()
        sentences = split_sentences(text)
        kept = sentences[: self.config.max_sentences]
        units = [text, *kept] if len(kept) > 1 else [text]
        return sentences, kept, units

    def _clue(
        self,
        planned: tuple[list[str], list[str], list[str]],
        predictions: Sequence[list[dict[str, Any]]],
    ) -> Clue:
        """The clue of one text from the classifier's predictions for its units."""
        sentences, kept, units = planned
        text = units[0]
        readings = [basic_scores(p, self._mapping) for p in predictions]
        probs_rows = np.stack([r[0] for r in readings])
        if len(units) > 1:
            mean_sentences = probs_rows[1:].mean(axis=0)
            probs = WHOLE_TEXT_WEIGHT * probs_rows[0] + (1 - WHOLE_TEXT_WEIGHT) * mean_sentences
        else:
            probs = probs_rows[0]
        probs = probs / probs.sum()
        scores = {b: float(probs[i]) for i, b in enumerate(BASIC_EMOTIONS)}

        sentence_rows = list(range(1, len(units))) if len(units) > 1 else [0]
        # The sentence that shows each category most (the whole text when there is one).
        best_rows = probs_rows[sentence_rows].argmax(axis=0)
        evidence = {
            b: units[sentence_rows[int(best_rows[i])]] for i, b in enumerate(BASIC_EMOTIONS)
        }
        whole: TextFeatures = text_features(text, self._vader, None)
        words = readings[0][1]
        mix_valence = sum(scores[b] * BASIC_VALENCE[b] for b in BASIC_EMOTIONS)
        mix_arousal = sum(scores[b] * BASIC_AROUSAL[b] for b in BASIC_EMOTIONS)
        valence = VADER_VALENCE_SHARE * whole.compound + (1 - VADER_VALENCE_SHARE) * mix_valence
        arousal = mix_arousal + intensity_arousal(whole, len(kept))
        observations = [
            Observation(
                start_s=0.0,
                end_s=0.0,
                text=units[r],
                emotion_scores={b: float(probs_rows[r, i]) for i, b in enumerate(BASIC_EMOTIONS)},
            )
            for r in sentence_rows
        ]
        return Clue(
            modality=Modality.TEXT,
            available=True,
            description=describe(scores, words, evidence, whole, len(kept)),
            emotion_scores=scores,
            valence=float(np.clip(valence, -1.0, 1.0)),
            arousal=float(np.clip(arousal, -1.0, 1.0)),
            observations=observations,
            measurements={
                "vader_compound": whole.compound,
                "vader_positive": float(whole.vader.get("pos", 0.0)),
                "vader_negative": float(whole.vader.get("neg", 0.0)),
                "vader_neutral": float(whole.vader.get("neu", 0.0)),
                "sentence_count": float(len(sentences)),
                "sentences_analysed": float(len(kept)),
                "word_count": float(whole.words),
                "exclamation_count": float(whole.exclamations),
                "question": float(whole.question),
                "capitalised_words": float(whole.caps_words),
                "intensifier_count": float(whole.intensifiers),
            },
            model=self._info[0],
        )
