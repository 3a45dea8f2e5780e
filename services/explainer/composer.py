"""The deterministic explainer: fuses the clues and writes the EMER-style description.

"In the video, ... In the audio, ... In the text, ... Therefore, ...". Labels come from the
fused clue scores refined by valence and arousal. It needs no model, never fails on valid
clues, and stays the fallback when an LLM explainer is off or fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emer_eval.vocabulary import EmotionVocabulary

from services.common.types import (
    BASIC_EMOTIONS,
    Clue,
    Modality,
    ModelInfo,
    Transcript,
    Unavailable,
)
from services.explainer.disambiguation import (
    LexicalReading,
    apply_face_reading,
    apply_reading,
    read_lexical,
    settle_reading,
)

COMPOSER_INFO = ModelInfo(role="explainer", name="emer-composer", version="1", backend="rules")

# How much each modality counts in the fusion. Prosody alone tells arousal better than
# category, so the voice weighs less for categories and more for arousal.
CATEGORY_WEIGHT = {Modality.VISUAL: 1.0, Modality.TEXT: 1.0, Modality.AUDIO: 0.6}
VALENCE_WEIGHT = {Modality.VISUAL: 1.0, Modality.TEXT: 1.0, Modality.AUDIO: 0.4}
AROUSAL_WEIGHT = {Modality.VISUAL: 0.6, Modality.TEXT: 0.4, Modality.AUDIO: 1.0}

# More labels than this dilute the answer (set-level precision counts every word).
MAX_LABELS = 4

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


def leading_category(clues: list[Clue], scores: dict[str, float], lead: str = "") -> str:
    """The basic category to answer with: `lead` when the lexical reading decided it (the words
    carry the feeling when the face and the voice show none), else the best fused score among
    the categories that some clue scores highest. A mix can otherwise crown a category that no
    clue read first, e.g. neutral as the runner-up of both an angry voice and sad words; the
    answer keeps to what a clue said (the fused scores themselves are reported unchanged)."""
    if lead in scores:
        return lead
    tops = {
        max(c.emotion_scores, key=lambda k: c.emotion_scores[k])
        for c in clues
        if c.available and c.emotion_scores
    }
    candidates = [e for e in scores if e in tops] or list(scores)
    return max(candidates, key=lambda e: scores[e])


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
    lead: str = "",
) -> list[Label]:
    top = leading_category(clues, scores, lead)
    top_score = scores[top]
    second, second_score = max(
        ((e, v) for e, v in scores.items() if e != top), key=lambda kv: kv[1]
    )
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


# Basic categories a reading rules out: sarcasm is not joy, teasing is not anger.
_RULED_OUT = {
    "sarcastic": ("happy",),
    "masked": ("happy",),
    "teasing": ("angry", "disgust"),
    "nervous": ("happy",),
}


def _with_reading(
    labels: list[Label],
    reading: LexicalReading,
    clues: list[Clue],
    vocabulary: EmotionVocabulary | None,
) -> list[Label]:
    """The reading's own labels first, then the fused ones it does not rule out."""
    ruled_out = {w for b in _RULED_OUT.get(reading.kind, ()) for w in _refine_all(b)}
    kept = [lab for lab in labels if lab.word not in ruled_out]
    if not reading.labels:
        return kept or labels
    support = [c.modality for c in clues if c.available and c.emotion_scores]
    top = max((lab.confidence for lab in kept), default=0.6)
    front = [
        Label(
            w,
            round(max(top, 0.5) * (1.0 - 0.1 * i), 4),
            support,
            vocabulary.categories(w) if vocabulary else [],
        )
        for i, w in enumerate(reading.labels)
    ]
    kept = [lab for lab in kept if lab.word not in reading.labels]
    return (front + kept)[:MAX_LABELS]


def _read(clue: Clue | None) -> bool:
    return clue is not None and clue.available and bool(clue.emotion_scores)


def _refine_all(category: str) -> set[str]:
    """Every word `_refine` can give for a basic category."""
    return {w for v in (-0.5, 0.0, 0.5) for a in (-0.5, 0.0, 0.5) for w in _refine(category, v, a)}


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
    # The words as they are meant, read with the face and the voice (the EMER lexical clue).
    reading = read_lexical(text, visual, audio)

    def fused(reading: LexicalReading) -> tuple[list[Clue], dict[str, float], float, float]:
        meant = apply_reading(text, reading) if text is not None else None
        face = apply_face_reading(visual, reading) if visual is not None else None
        clues = [c for c in (face, audio, meant) if c is not None]
        return (clues, *fuse(clues))

    clues, scores, valence, arousal = fused(reading)
    basic = leading_category(clues, scores, reading.lead)
    if text is not None:
        settled = settle_reading(reading, basic, text, visual, audio)
        if settled is not reading:
            reading = settled
            clues, scores, valence, arousal = fused(reading)
            basic = leading_category(clues, scores, reading.lead)
    labels = _with_reading(
        derive_labels(clues, scores, valence, arousal, vocabulary, reading.lead),
        reading,
        clues,
        vocabulary,
    )
    sentences = [
        _clue_paragraph("In the video", visual, "no facial clue could be read"),
        _clue_paragraph("In the audio", audio, "no vocal clue could be read"),
    ]
    if text is not None and text.available and transcript is not None and transcript.text:
        quote = transcript.text.strip()
        if len(quote) > 300:
            quote = quote[:297] + "..."
        # In a disagreement the reading replaces the words' own clue; else it follows it.
        said = reading.sentence if reading.disagreement else " ".join(text.description).strip()
        if reading.sentence and not reading.disagreement:
            said = f"{said} {reading.sentence}"
        if quote in said:  # the text clue already quotes the whole line
            sentences.append(f"In the text, {said[0].lower()}{said[1:]}")
        else:
            stop = "" if quote[-1] in ".!?…。！？" else "."  # Chinese stops end a line too
            sentences.append(f'In the text, the person says: "{quote}{stop}" {said}'.strip())
    else:
        sentences.append(_clue_paragraph("In the text", text, "no lexical clue could be read"))
    words = [lab.word for lab in labels]
    tone = "positive" if valence > 0.15 else "negative" if valence < -0.15 else "mixed or neutral"
    energy = "high" if arousal > 0.25 else "low" if arousal < -0.25 else "moderate"
    sources = sorted({m.value for lab in labels for m in lab.modalities})
    basis = f" mainly from the {' and '.join(sources)} clues" if sources else ""
    if reading.disagreement:
        shown = _join([n for c, n in ((visual, "the face"), (audio, "the voice")) if _read(c)])
        conclusion = (
            f"Therefore, the words and {shown} disagree; trusting {shown}, the person most "
            f"likely feels {_join(words)}, with {energy} energy and a {tone} tone overall."
        )
    elif basic == "neutral" and len(words) == 1:
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


# --- long media: one clue per modality from the clues of its segments ---------------------------

# How each modality's clue refers to its source, and nouns for the basic categories.
_SUBJECT = {
    Modality.VISUAL: "the face suggests",
    Modality.AUDIO: "the voice suggests",
    Modality.TEXT: "the words suggest",
}
NOUN = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "no particular emotion",
}
# A segment whose strongest non-neutral score reaches this is a "strong moment".
STRONG_MOMENT = 0.4
MAX_COURSE_RUNS = 8


def clock(seconds: float) -> str:
    """m:ss (h:mm:ss from an hour on)."""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def span(start_s: float, end_s: float) -> str:
    return f"{clock(start_s)}-{clock(end_s)}"


def _length(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}-second"
    minutes = seconds / 60
    return (
        f"{minutes:.0f}-minute" if abs(minutes - round(minutes)) < 0.05 else f"{minutes:.1f}-minute"
    )


def _top(scores: dict[str, float], exclude: str = "") -> tuple[str, float]:
    ranked = sorted(
        ((e, scores.get(e, 0.0)) for e in BASIC_EMOTIONS if e != exclude), key=lambda kv: -kv[1]
    )
    return ranked[0]


def aggregate_clues(modality: Modality, parts: list[tuple[float, float, Clue]]) -> Clue:
    """The clue of a long clip from its segments' clues (start_s, end_s, clue), times absolute.

    Emotion scores, valence, arousal and measurements are means over the segments that could be
    read, weighted by their duration; the description says what dominates, how it changes over
    time and when the strongest moments happen; observations are the segments' own, in time
    order. No segment readable: unavailable, with the segments' reason (their common reason when
    they share one, e.g. "not in the request: ...").
    """
    ok = [(max(b - a, 1e-3), a, b, c) for a, b, c in parts if c.available and c.emotion_scores]
    model = next((c.model for _, _, c in parts if c.model is not None), None)
    if not ok:
        reasons = list(dict.fromkeys(c.unavailable_reason for _, _, c in parts))
        if len(reasons) == 1:
            reason = reasons[0]
        else:
            reason = f"no segment could be analysed ({reasons[0] if reasons else 'no segments'})"
        clue = Clue.unavailable(modality, reason, model=model)
        # Every segment missing for the same kind of reason: so is the clue. Segments that
        # failed on our side or in a language no model reads, mixed: the first of those kinds.
        kinds = {c.unavailable_kind for _, _, c in parts}
        by_nature = {Unavailable.NOT_IN_REQUEST, Unavailable.NOT_APPLICABLE}
        if len(kinds) == 1:
            clue.unavailable_kind = kinds.pop()
        elif parts and not kinds & by_nature:
            clue.unavailable_kind = sorted(kinds)[0]
        return clue
    total = sum(w for w, _, _, _ in ok)
    keys = dict.fromkeys([*BASIC_EMOTIONS, *(k for *_, c in ok for k in c.emotion_scores)])
    scores = {k: sum(w * c.emotion_scores.get(k, 0.0) for w, _, _, c in ok) for k in keys}
    norm = sum(scores.values()) or 1.0
    scores = {k: v / norm for k, v in scores.items()}
    valence = sum(w * c.valence for w, _, _, c in ok) / total
    arousal = sum(w * c.arousal for w, _, _, c in ok) / total
    measurements: dict[str, float] = {}
    for key in dict.fromkeys(k for *_, c in ok for k in c.measurements):
        pairs = [(w, c.measurements[key]) for w, _, _, c in ok if key in c.measurements]
        measurements[key] = round(sum(w * v for w, v in pairs) / sum(w for w, _ in pairs), 4)
    measurements["segments"] = float(len(parts))
    measurements["segments_analysed"] = float(len(ok))

    first, p1 = _top(scores)
    second, p2 = _top(scores, exclude=first)
    summary = (
        f"Over the {_length(parts[-1][1] - parts[0][0])} clip ({len(parts)} segments), "
        f"{_SUBJECT[modality]} mostly {NOUN[first]} ({p1:.2f})"
    )
    if p2 >= 0.15:
        summary += f", followed by {NOUN[second]} ({p2:.2f})"
    description = [summary + "."]
    # The course over time: runs of adjacent segments with the same leading emotion.
    runs: list[tuple[str, float, float]] = []
    for _, a, b, c in ok:
        top = _top(c.emotion_scores)[0]
        if runs and runs[-1][0] == top and abs(runs[-1][2] - a) < 1e-6:
            runs[-1] = (top, runs[-1][1], b)
        else:
            runs.append((top, a, b))
    if len(runs) == 1:
        description.append(f"It suggests {NOUN[runs[0][0]]} throughout.")
    else:
        steps = [f"{ADJECTIVE[e]} ({span(a, b)})" for e, a, b in runs[:MAX_COURSE_RUNS]]
        more = ""
        if len(runs) > MAX_COURSE_RUNS:
            more = f" and {len(runs) - MAX_COURSE_RUNS} more changes"
        description.append(f"Over time it moves from {' to '.join(steps)}{more}.")
    # The strongest moments: the segments with the highest non-neutral score.
    peaks = sorted(
        ((*_top(c.emotion_scores, exclude="neutral"), a, b) for _, a, b, c in ok),
        key=lambda x: -x[1],
    )
    strong = [p for p in peaks if p[1] >= STRONG_MOMENT][:2]
    if strong:
        moments = " and ".join(f"{span(a, b)} ({ADJECTIVE[e]}, {p:.2f})" for e, p, a, b in strong)
        word = "moments are at" if len(strong) > 1 else "moment is at"
        description.append(f"The strongest {word} {moments}.")
    else:
        description.append("No segment shows a strong emotion.")
    missing = [(a, b) for a, b, c in parts if not (c.available and c.emotion_scores)]
    if missing:
        where = ", ".join(span(a, b) for a, b in missing[:4])
        where += ", ..." if len(missing) > 4 else ""
        description.append(
            f"Nothing could be read in {len(missing)} of the {len(parts)} segments ({where})."
        )
    observations = sorted((o for _, _, c in parts for o in c.observations), key=lambda o: o.start_s)
    return Clue(
        modality=modality,
        available=True,
        description=description,
        emotion_scores={k: round(v, 4) for k, v in scores.items()},
        valence=round(max(-1.0, min(1.0, valence)), 4),
        arousal=round(max(-1.0, min(1.0, arousal)), 4),
        observations=observations,
        measurements=measurements,
        model=model,
    )
