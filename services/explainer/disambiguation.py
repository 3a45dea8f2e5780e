"""The EMER lexical clue: the words read in the light of the face and the voice.

The paper's point is that the words alone mislead: "You're so annoying!" said with a smile and
a laughing voice is teasing, and "Thanks, that's just great." said with a frown and a tense
voice is sarcasm. This stage compares the polarity of the words as they read (the text clue's
`surface_valence`) with what the face and the voice show, and names the reading:

- `consistent`: the words and the nonverbal clues agree (or the nonverbal ones show nothing);
- `sarcastic`: positive words, hostile face/voice (anger, disgust) -> annoyed, sarcastic;
- `masked`: positive words, sad or fearful face/voice -> the cheer is put on (polite masking);
- `teasing`: hostile words, smiling face or cheerful voice -> playful, amused;
- `nervous`: worried or sad words with a smile -> nervous laughter;
- `text_only`: no face or voice to compare with: the text clue's own reading stands (it already
  reads sarcasm, hostile thanks and reproach markers: services/text/pragmatics.py).

Two rules settle what the summary leaves open. A face and a voice that show no marked emotion
do not contradict emotional words ("neutral" there is the absence of an expression): the words
carry the feeling and lead the answer (`LexicalReading.lead`). And once fusion has answered
(`settle_reading`), positive words under an answer of distress or hostility are called put on or
sarcastic even when the face and the voice together stayed under the bar, because one clear clue
(a fearful voice over a blank face) carried the answer.

Done by rules, not by the LLM: the embedded models (135M-1.5B) do not follow a disagreement
between clues reliably (measured: docs/explanations.md). The face counts more than the voice,
whose valence the embedded audio model reads poorly (its arousal it reads well). The reading
changes the text clue's scores before fusion, adds its labels and gives the description its
"In the text, ..." sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from services.common.types import Clue

# Weights of the face and the voice in the nonverbal summary.
FACE_WEIGHT = 1.0
VOICE_WEIGHT = 0.5
# A polarity counts once its valence passes this (valences are in [-1, 1]).
POLARITY_MARGIN = 0.2
# A nonverbal emotion counts as shown from this (weighted) score on.
SHOWN = 0.35
# How much of the words' surface emotion moves to the reading the face and voice give.
SHIFT = 0.8

HOSTILE = ("angry", "disgust")
DISTRESS = ("sad", "fear")


@dataclass(frozen=True)
class Nonverbal:
    """What the face and the voice show together."""

    valence: float
    happy: float
    hostile: float
    distress: float
    face: Clue | None
    voice: Clue | None

    @property
    def present(self) -> bool:
        return self.face is not None or self.voice is not None

    @property
    def polarity(self) -> str:
        if not self.present:
            return "absent"
        if self.valence <= -POLARITY_MARGIN or (
            max(self.hostile, self.distress) >= SHOWN
            and max(self.hostile, self.distress) > self.happy
        ):
            return "negative"
        if self.valence >= POLARITY_MARGIN and self.happy >= SHOWN:
            return "positive"
        return "neutral"


@dataclass(frozen=True)
class LexicalReading:
    """How the words are meant, and what follows for the description and the labels."""

    kind: str  # consistent | sarcastic | masked | teasing | nervous | text_only | none
    surface: str  # positive | negative | neutral: the words as they read
    nonverbal: str  # positive | negative | neutral | absent
    sentence: str  # the lexical clue as the description says it ("" = the text clue's own)
    labels: list[str] = field(default_factory=list)  # labels this reading names first
    text_scores: dict[str, float] = field(default_factory=dict)  # the text clue, as meant
    face_scores: dict[str, float] = field(default_factory=dict)  # the face, as meant ({} = as is)
    # The basic category the answer leads with when the reading decides it ("" = fusion does).
    lead: str = ""

    @property
    def disagreement(self) -> bool:
        return self.kind in ("sarcastic", "masked", "teasing", "nervous")


def _usable(clue: Clue | None) -> Clue | None:
    return clue if clue is not None and clue.available and clue.emotion_scores else None


def nonverbal_summary(visual: Clue | None, audio: Clue | None) -> Nonverbal:
    face, voice = _usable(visual), _usable(audio)
    parts = [(c, w) for c, w in ((face, FACE_WEIGHT), (voice, VOICE_WEIGHT)) if c is not None]
    total = sum(w for _, w in parts) or 1.0

    def mean(get: Callable[[Clue], float]) -> float:
        return sum(w * float(get(c)) for c, w in parts) / total

    return Nonverbal(
        valence=mean(lambda c: c.valence),
        happy=mean(lambda c: c.emotion_scores.get("happy", 0.0)),
        hostile=mean(lambda c: sum(c.emotion_scores.get(e, 0.0) for e in HOSTILE)),
        distress=mean(lambda c: sum(c.emotion_scores.get(e, 0.0) for e in DISTRESS)),
        face=face,
        voice=voice,
    )


def surface_polarity(text: Clue) -> str:
    """The polarity of the words as they read, before any sarcasm/reproach reading."""
    valence = text.measurements.get("surface_valence", text.valence)
    scores = text.emotion_scores
    top = max(scores, key=lambda k: scores[k]) if scores else "neutral"
    if valence >= POLARITY_MARGIN or (top == "happy" and scores[top] >= 0.4 and valence > 0):
        return "positive"
    negative = sum(scores.get(e, 0.0) for e in (*HOSTILE, *DISTRESS))
    if valence <= -POLARITY_MARGIN or (top in (*HOSTILE, *DISTRESS) and scores[top] >= 0.4):
        return "negative"
    if negative >= 0.5 and scores.get("happy", 0.0) < 0.15:
        return "negative"
    return "neutral"


def _face_phrase(face: Clue | None, reading: str) -> str:
    if face is None:
        return ""
    top = max(face.emotion_scores, key=lambda k: face.emotion_scores[k])
    if reading in ("teasing", "nervous"):
        return "the smile" if face.emotion_scores.get("happy", 0.0) >= SHOWN else ""
    return {
        "angry": "the frown",
        "disgust": "the disgusted expression",
        "sad": "the sad face",
        "fear": "the fearful face",
        "neutral": "the unsmiling face",
        "surprise": "the tense face",
    }.get(top, "")


def _voice_phrase(voice: Clue | None, reading: str) -> str:
    if voice is None:
        return ""
    scores = voice.emotion_scores
    if reading in ("teasing",):
        return "the cheerful voice" if scores.get("happy", 0.0) >= 0.25 else "the light voice"
    if voice.arousal > 0.25:
        return "the tense voice" if reading != "nervous" else "the tense, high voice"
    if voice.arousal < -0.25:
        return "the flat, subdued voice"
    return "the voice"


def _and(*phrases: str) -> str:
    kept = [p for p in phrases if p]
    return " and ".join(kept)


def _suggest(cues: str) -> str:
    """'the frown suggests', 'the frown and the tense voice suggest'."""
    return f"{cues} suggest" if " and " in cues else f"{cues} suggests"


def _moved(
    scores: dict[str, float], source: tuple[str, ...], targets: dict[str, float]
) -> dict[str, float]:
    """The text scores with SHIFT of the `source` categories' mass moved to `targets`."""
    out = dict(scores)
    moved = 0.0
    for category in source:
        share = SHIFT * out.get(category, 0.0)
        out[category] = out.get(category, 0.0) - share
        moved += share
    for category, weight in targets.items():
        out[category] = out.get(category, 0.0) + weight * moved
    total = sum(out.values()) or 1.0
    return {k: v / total for k, v in out.items()}


def _nonverbal_arousal(nv: Nonverbal) -> float:
    """The voice tells arousal best; without it the face stands in."""
    if nv.voice is not None:
        return nv.voice.arousal
    return nv.face.arousal if nv.face is not None else 0.0


def read_lexical(text: Clue | None, visual: Clue | None, audio: Clue | None) -> LexicalReading:
    """The reading of the words given the face and the voice (see the module docstring)."""
    nv = nonverbal_summary(visual, audio)
    if text is None or not text.available or not text.emotion_scores:
        return LexicalReading("none", "neutral", nv.polarity, "")
    surface = surface_polarity(text)
    polarity = nv.polarity
    scores = text.emotion_scores
    ironic_words = text.measurements.get("sarcasm_markers", 0.0) > 0
    masking_words = text.measurements.get("masking_markers", 0.0) > 0
    marked = _marker_labels(text)
    if polarity == "absent":
        return LexicalReading(
            "text_only", surface, polarity, "", labels=marked, text_scores=dict(scores)
        )
    top = max(scores, key=lambda k: scores[k])
    smiling = nv.face is not None and nv.face.emotion_scores.get("happy", 0.0) >= SHOWN
    # Worried words with a smile: nervous laughter. The face decides (a fearful voice is part
    # of it), and the smile, not the words, is what is reinterpreted.
    if top == "fear" and scores[top] >= 0.4 and smiling:
        cues = _and(_face_phrase(nv.face, "nervous"), _voice_phrase(nv.voice, "nervous"))
        return LexicalReading(
            "nervous",
            surface,
            polarity,
            f"The words show worry, and {cues} {'read' if ' and ' in cues else 'reads'} as "
            "nervous rather than happy.",
            labels=["nervous", "embarrassed"],
            text_scores=dict(scores),
            face_scores=_moved(nv.face.emotion_scores, ("happy",), {"fear": 1.0})
            if nv.face is not None
            else {},
        )
    if ironic_words and polarity == "positive":
        cues = _and(_face_phrase(nv.face, "teasing"), _voice_phrase(nv.voice, "teasing"))
        return LexicalReading(
            "teasing",
            surface,
            polarity,
            f"The words sound sarcastic, but {_suggest(cues or 'the cheerful manner')} it is said "
            "in good humour.",
            labels=["sarcastic", "amused"],
            text_scores=_moved(scores, HOSTILE, {"happy": 1.0}),
        )
    # Cheerful or reassuring words over a sad or afraid, subdued face and voice: polite masking.
    # Positive words over a tense (high-arousal) or hostile face and voice: sarcasm.
    distressed = nv.distress > nv.hostile and _nonverbal_arousal(nv) < 0.3
    if (
        (surface == "positive" or masking_words)
        and polarity == "negative"
        and (distressed or (masking_words and not ironic_words))
    ):
        return _masked(surface, polarity, nv, scores, masking_words)
    if surface == "positive" and polarity == "negative":
        return _sarcastic(surface, polarity, nv, scores)
    if surface == "negative" and polarity == "positive" and not ironic_words:
        cues = _and(_face_phrase(nv.face, "teasing"), _voice_phrase(nv.voice, "teasing"))
        return LexicalReading(
            "teasing",
            surface,
            polarity,
            f"The words are negative on the surface, but {_suggest(cues or 'the cheerful manner')} "
            "they are said in a playful, teasing way, not in anger.",
            labels=["playful", "amused"],
            text_scores=_moved(scores, (*HOSTILE, "sad"), {"happy": 1.0}),
        )
    agree = (surface == polarity and surface != "neutral") or (
        ironic_words and polarity == "negative"
    )
    sentence = ""
    labels = marked if agree or polarity == "neutral" else []
    if (
        polarity == "neutral"
        and surface != "neutral"
        and top != "neutral"
        and scores[top] >= SHOWN
        and not any(_marked(c) for c in (nv.face, nv.voice))
    ):
        # A face and a voice that show nothing do not contradict the words: "neutral" there is
        # the absence of a marked expression, not a competing emotion, so the words carry the
        # feeling (fusion would otherwise crown the confident neutral face).
        shown_by = _and(*(n for c, n in ((nv.face, "the face"), (nv.voice, "the voice")) if c))
        verb = "show" if " and " in shown_by else "shows"
        sentence = (
            f"{shown_by[0].upper()}{shown_by[1:]} {verb} no marked emotion, so the words carry "
            "the feeling."
        )
        return LexicalReading(
            "consistent",
            surface,
            polarity,
            sentence,
            labels=labels,
            text_scores=dict(scores),
            lead=top,
        )
    if agree:
        # Only the modalities that agree on their own (a smiling face can outweigh a flat voice).
        agreeing = [
            name
            for name, clue in (("face", nv.face), ("voice", nv.voice))
            if clue is not None and _polarity_of(clue.valence) == polarity
        ]
        if agreeing:
            verb = "agree" if len(agreeing) == 2 else "agrees"
            sentence = f"The {' and the '.join(agreeing)} {verb} with this reading of the words."
    return LexicalReading(
        "consistent", surface, polarity, sentence, labels=labels, text_scores=dict(scores)
    )


def _masked(
    surface: str, polarity: str, nv: Nonverbal, scores: dict[str, float], reassuring: bool
) -> LexicalReading:
    cues = _and(_face_phrase(nv.face, "masked"), _voice_phrase(nv.voice, "masked"))
    return LexicalReading(
        "masked",
        surface,
        polarity,
        f"The words sound {'reassuring' if reassuring else 'positive'}, but "
        f"{_suggest(cues)} the calm is put on: the person is politely hiding how they feel."
        if reassuring
        else f"The words are positive on the surface, but {_suggest(cues)} the cheer is put "
        "on: the person is politely hiding how they feel.",
        text_scores=_moved(scores, ("happy", "neutral"), {_top_nonverbal(nv): 1.0}),
    )


def _sarcastic(
    surface: str, polarity: str, nv: Nonverbal, scores: dict[str, float]
) -> LexicalReading:
    cues = _and(_face_phrase(nv.face, "sarcastic"), _voice_phrase(nv.voice, "sarcastic"))
    return LexicalReading(
        "sarcastic",
        surface,
        polarity,
        f"The words are positive on the surface, but {_suggest(cues)} they are meant "
        "sarcastically, not as praise or thanks.",
        labels=["annoyed", "sarcastic"],
        text_scores=_moved(scores, ("happy",), {"angry": 0.75, "disgust": 0.25}),
    )


def _marked(clue: Clue | None) -> bool:
    """The clue shows an emotion: its top category is not neutral and counts as shown."""
    if clue is None:
        return False
    top = max(clue.emotion_scores, key=lambda k: clue.emotion_scores[k])
    return top != "neutral" and clue.emotion_scores[top] >= SHOWN


def settle_reading(
    reading: LexicalReading, answer: str, text: Clue, visual: Clue | None, audio: Clue | None
) -> LexicalReading:
    """The reading once fusion has answered. Positive words under an answer of distress or
    hostility are a disagreement even when the face and the voice together did not pass the
    bar of `read_lexical` (one clear clue can carry the answer, e.g. a fearful voice over a
    blank face): the description must say the words are not taken at their word."""
    if reading.kind != "consistent" or reading.surface != "positive" or reading.lead:
        return reading
    nv = nonverbal_summary(visual, audio)
    if answer in DISTRESS:
        masking_words = text.measurements.get("masking_markers", 0.0) > 0
        return _masked(reading.surface, reading.nonverbal, nv, text.emotion_scores, masking_words)
    if answer in HOSTILE:
        return _sarcastic(reading.surface, reading.nonverbal, nv, text.emotion_scores)
    return reading


def _polarity_of(valence: float) -> str:
    if valence >= POLARITY_MARGIN:
        return "positive"
    return "negative" if valence <= -POLARITY_MARGIN else "neutral"


def _top_nonverbal(nv: Nonverbal) -> str:
    """The negative category the face and the voice show most (for masked words)."""
    totals: dict[str, float] = {}
    for clue, weight in ((nv.face, FACE_WEIGHT), (nv.voice, VOICE_WEIGHT)):
        if clue is None:
            continue
        for category in (*HOSTILE, *DISTRESS):
            totals[category] = totals.get(category, 0.0) + weight * clue.emotion_scores.get(
                category, 0.0
            )
    return max(totals, key=lambda k: totals[k]) if totals else "sad"


def _marker_labels(text: Clue) -> list[str]:
    """Labels the text clue's own sarcasm/reproach markers name (services/text/pragmatics.py)."""
    if text.measurements.get("sarcasm_markers", 0.0) > 0:
        return ["annoyed", "sarcastic"]
    if text.measurements.get("reproach_markers", 0.0) > 0:
        return ["hurt", "betrayed"]
    return []


def apply_face_reading(visual: Clue, reading: LexicalReading) -> Clue:
    """The face as it is meant (a nervous smile is not joy), for fusion."""
    if not reading.face_scores:
        return visual
    return replace(visual, emotion_scores=reading.face_scores, valence=min(visual.valence, 0.0))


def apply_reading(text: Clue, reading: LexicalReading) -> Clue:
    """The text clue as it is meant: its scores replaced by the reading's, for fusion."""
    if not reading.text_scores or reading.text_scores == text.emotion_scores:
        return text
    valence = text.valence
    if reading.kind in ("sarcastic", "masked"):
        valence = -abs(valence) if reading.kind == "sarcastic" else 0.0
    elif reading.kind == "teasing":
        valence = abs(valence) * 0.5
    return replace(text, emotion_scores=reading.text_scores, valence=valence)
