"""The deterministic explainer: fuses the clues and writes the EMER-style description.

"In the video, ... In the audio, ... In the text, ... Therefore, ...". Labels come from the
fused clue scores refined by valence and arousal. It needs no model, never fails on valid
clues, and stays the fallback when an LLM explainer is off or fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.types import BASIC_EMOTIONS, Clue, Modality, ModelInfo, Transcript
from services.explainer.vocabulary import EmotionVocabulary

COMPOSER_INFO = ModelInfo(role="explainer", name="emer-composer", version="1", backend="rules")

# How much each modality counts in the fusion. Prosody alone tells arousal better than
# category, so the voice weighs less for categories and more for arousal.
CATEGORY_WEIGHT = {Modality.VISUAL: 1.0, Modality.TEXT: 1.0, Modality.AUDIO: 0.6}
VALENCE_WEIGHT = {Modality.VISUAL: 1.0, Modality.TEXT: 1.0, Modality.AUDIO: 0.4}
AROUSAL_WEIGHT = {Modality.VISUAL: 0.6, Modality.TEXT: 0.4, Modality.AUDIO: 1.0}

# Plain adjective for each basic category, as the EMER descriptions phrase it.
ADJECTIVE = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "fearful",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "neutral": "neutral",
}


@dataclass
class Label:
    word: str
    confidence: float
    modalities: list[Modality]
    wheel_categories: list[str] = field(default_factory=list)


@dataclass
class LabelExtraction:
    """Labels read from a description (the ExtractLabels RPC)."""

    labels: list[Label]
    models: list[ModelInfo]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Explanation:
    text: str
    sentences: list[str]
    labels: list[Label]
    basic_category: str
    basic_scores: dict[str, float]
    valence: float
    arousal: float
    model: ModelInfo = COMPOSER_INFO
    warnings: list[str] = field(default_factory=list)


def _confidence(clue: Clue) -> float:
    """Peaked score distributions count more than flat ones."""
    peak = max((clue.emotion_scores.get(e, 0.0) for e in BASIC_EMOTIONS), default=0.0)
    return 0.5 + peak


def fuse(clues: list[Clue]) -> tuple[dict[str, float], float, float]:
    """Weighted mix of the available clues: basic scores (sum 1), valence, arousal."""
    available = [c for c in clues if c.available and c.emotion_scores]
    scores = dict.fromkeys(BASIC_EMOTIONS, 0.0)
    if not available:
        scores["neutral"] = 1.0
        return scores, 0.0, 0.0
    total = 0.0
    for clue in available:
        w = CATEGORY_WEIGHT[clue.modality] * _confidence(clue)
        total += w
        for e in BASIC_EMOTIONS:
            scores[e] += w * clue.emotion_scores.get(e, 0.0)
    scores = {e: s / total for e, s in scores.items()}

    def mix(weights: dict[Modality, float], attr: str) -> float:
        num = sum(weights[c.modality] * getattr(c, attr) for c in available)
        den = sum(weights[c.modality] for c in available)
        return max(-1.0, min(1.0, num / den))

    return scores, mix(VALENCE_WEIGHT, "valence"), mix(AROUSAL_WEIGHT, "arousal")


def _refine(category: str, valence: float, arousal: float) -> list[str]:
    """Open-vocabulary words for a basic category, nuanced by valence and arousal."""
    if category == "happy":
        if arousal > 0.35:
            return ["happy", "excited"]
        return ["happy", "relaxed"] if arousal < -0.2 else ["happy"]
    if category == "angry":
        return ["angry"] if arousal > 0.2 else ["annoyed", "angry"]
    if category == "sad":
        return ["sad", "upset"] if arousal > 0.3 else ["sad"]
    if category == "fear":
        return ["fearful", "nervous"] if arousal > 0.2 else ["worried"]
    if category == "surprise":
        if valence > 0.25:
            return ["surprised", "amazed"]
        return ["surprised", "shocked"] if valence < -0.25 else ["surprised"]
    if category == "disgust":
        return ["disgusted"]
    return ["calm"] if arousal < -0.3 else ["neutral"]


def derive_labels(
    clues: list[Clue],
    scores: dict[str, float],
    valence: float,
    arousal: float,
    vocabulary: EmotionVocabulary | None,
) -> list[Label]:
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    (top, top_score), (second, second_score) = ranked[0], ranked[1]
    chosen = [(top, top_score)]
    # A clear second emotion (not neutral) is part of the answer: mixed feelings are common.
    if second != "neutral" and second_score >= 0.22 and second_score >= 0.5 * top_score:
        chosen.append((second, second_score))
    if top == "neutral" and second_score >= 0.3:
        chosen.append((second, second_score))
    labels: list[Label] = []
    seen: set[str] = set()
    for category, score in chosen:
        support = [
            c.modality
            for c in clues
            if c.available
            and c.emotion_scores
            and (
                c.emotion_scores.get(category, 0.0) >= 0.2
                or max(c.emotion_scores, key=lambda k: c.emotion_scores[k]) == category
            )
        ]
        for rank, word in enumerate(_refine(category, valence, arousal)):
            if word in seen:
                continue
            seen.add(word)
            cats = vocabulary.categories(word) if vocabulary else []
            labels.append(Label(word, round(score * (1.0 - 0.2 * rank), 4), support, cats))
    if len(chosen) == 2 and {chosen[0][0], chosen[1][0]} == {"angry", "sad"}:
        labels.append(
            Label(
                "frustrated",
                round(min(s for _, s in chosen), 4),
                [],
                vocabulary.categories("frustrated") if vocabulary else [],
            )
        )
    return labels


def _clue_paragraph(intro: str, clue: Clue | None, missing: str) -> str:
    if clue is None:
        return ""
    if not clue.available:
        return f"{intro}, {missing} ({clue.unavailable_reason})."
    body = " ".join(s.strip() for s in clue.description if s.strip())
    if not body:
        return ""
    return f"{intro}, {body[0].lower()}{body[1:]}"


def compose(
    audio: Clue | None,
    visual: Clue | None,
    text: Clue | None,
    transcript: Transcript | None,
    vocabulary: EmotionVocabulary | None,
) -> Explanation:
    """Fuse the clues and write the description. Missing clues (None) were not requested."""
    clues = [c for c in (visual, audio, text) if c is not None]
    scores, valence, arousal = fuse(clues)
    labels = derive_labels(clues, scores, valence, arousal, vocabulary)
    sentences = [
        _clue_paragraph("In the video", visual, "no facial clue could be read"),
        _clue_paragraph("In the audio", audio, "no vocal clue could be read"),
    ]
    if text is not None and text.available and transcript is not None and transcript.text:
        quote = transcript.text.strip()
        if len(quote) > 300:
            quote = quote[:297] + "..."
        said = " ".join(text.description).strip()
        if quote in said:  # the text clue already quotes the whole line
            sentences.append(_clue_paragraph("In the text", text, ""))
        else:
            stop = "" if quote[-1] in ".!?…" else "."
            sentences.append(f'In the text, the person says: "{quote}{stop}" {said}'.strip())
    else:
        sentences.append(_clue_paragraph("In the text", text, "no lexical clue could be read"))
    basic = max(scores, key=lambda k: scores[k])
    words = [lab.word for lab in labels]
    tone = "positive" if valence > 0.15 else "negative" if valence < -0.15 else "mixed or neutral"
    energy = "high" if arousal > 0.25 else "low" if arousal < -0.25 else "moderate"
    sources = sorted({m.value for lab in labels for m in lab.modalities})
    basis = f" mainly from the {' and '.join(sources)} clues" if sources else ""
    if basic == "neutral" and len(words) == 1:
        conclusion = (
            "Therefore, the person shows no strong emotion; they appear "
            f"{words[0]}, with {energy} energy and a {tone} tone."
        )
    else:
        conclusion = (
            f"Therefore, judging{basis}, the person most likely feels {_join(words)}, "
            f"with {energy} energy and a {tone} tone overall."
        )
    sentences = [s for s in sentences if s] + [conclusion]
    return Explanation(
        text=" ".join(sentences),
        sentences=sentences,
        labels=labels,
        basic_category=basic,
        basic_scores={e: round(v, 4) for e, v in scores.items()},
        valence=round(valence, 4),
        arousal=round(arousal, 4),
        warnings=[]
        if vocabulary
        else ["emotion wheel not configured: labels carry no wheel categories"],
    )


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
