"""How a line is meant, beyond the polarity of its words: sarcasm, reproach, hostile thanks.

Word-level sentiment (VADER, cue words, sentence prototypes) reads "Oh great, another meeting
that could have been an email." as joy, "How could you do this to me? I trusted you." as a
curious, positive question, and "Thanks for ruining my evening." as gratitude. English marks
these readings with conventional constructions, which this module finds:

- **sarcasm**: a praise interjection followed by a complaint ("oh great, another ..."), fixed
  sarcastic phrases ("just what I needed", "yeah, right", "thanks a lot", "what could possibly go
  wrong"), and praise next to a complaint in the same sentence ("lovely, stuck in traffic again");
- **hostile praise**: thanks or praise whose object is a harm ("thanks for ruining", "great job
  breaking it");
- **reproach**: questions that blame rather than ask ("how could you", "why would you do that",
  "what were you thinking") and appeals to broken trust ("I trusted you", "you promised").

The patterns are about the language, never about particular test sentences. They only say the
surface polarity is unreliable and how the line is most likely meant; the explainer weighs that
against the face and the voice (services/explainer/disambiguation.py), which decide when they
are there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Praise and delight words whose sarcastic use is conventional.
_PRAISE = (
    r"great|wonderful|perfect|fantastic|brilliant|lovely|terrific|super|awesome|nice|marvell?ous|"
    r"splendid|fabulous|excellent|amazing|delightful|joy|fun|cool|sweet"
)
# What a complaint about a situation sounds like: repetition, obligation, delay and breakage.
_COMPLAINT = (
    r"another|again|as usual|of course|could have been|stuck|delayed|cancel+ed|broke|broken|"
    r"crashed|traffic|overtime|more work|more meetings"
)
# Harms that thanks or praise can be aimed at ("thanks for ruining my day").
_HARM = (
    r"ruin|break|broke|destroy|forget|forgot|ignor|lie|lied|lying|waste|wasting|mess|screw|"
    r"fail|embarrass|humiliat|abandon|ditch|spoil|wreck|blew it|left me|nothing|"
    r"making me wait|letting me down|let me down"
)

_SARCASM_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        # "Oh great, another meeting ...", "Wow, perfect, it's raining again.", "Oh good, more
        # homework."
        (
            "a praise word followed by a complaint",
            rf"\b(?:oh|ah|wow|well|yeah|yay|gee|just)\W+(?:{_PRAISE}|good)"
            rf"(?:\W+more\b|\b[^.!?]*?\b(?:{_COMPLAINT})\b)",
        ),
        (
            "'just what I needed'",
            r"\b(?:just|exactly) what i (?:needed|wanted|was hoping for|asked for)\b",
        ),
        ("'yeah, right'", r"\byeah,? right\b|\bas if\b(?! i)|\bsure you (?:are|do|did|will)\b"),
        (
            "'thanks a lot'",
            r"\bthanks (?:a lot|a bunch|so much) for nothing\b|\bthanks for nothing\b",
        ),
        ("'what a surprise'", r"\b(?:what a|big) surprise\b|\bhow (?:original|shocking)\b"),
        ("'what could possibly go wrong'", r"\bwhat could possibly go wrong\b"),
        ("'said no one ever'", r"\bsaid no one ever\b"),
        (
            "'I just love it when'",
            rf"\bi (?:just )?love (?:it )?(?:when|how)\b[^.!?]*\b(?:{_COMPLAINT})\b",
        ),
        ("'great, just great'", rf"\b(?:{_PRAISE}),? just (?:{_PRAISE})\b"),
        (
            "praise next to a complaint",
            rf"^\W*(?:{_PRAISE})\W+[^.!?]*?\b(?:{_COMPLAINT})\b",
        ),
    )
)
_HOSTILE_PRAISE = re.compile(
    r"\b(?:thanks|thank you|great job|good job|nice job|well done|congratulations|congrats|bravo|"
    r"way to go|nice going|nice work)\b[^.!?]{0,30}?\b(?:for |on )?(?:" + _HARM + r")\w*",
    re.IGNORECASE,
)
_REPROACH_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("'how could you'", r"\bhow (?:could|can|dare) you\b"),
        (
            "'why would you ...'",
            r"\bwhy (?:would|did|do|must|should) you (?:always |even |ever |just )?"
            r"(?:do|say|lie|tell|treat|leave|hurt|ignore|go behind|betray|keep|make)\b",
        ),
        ("'what were you thinking'", r"\bwhat (?:were|was) (?:you|he|she) thinking\b"),
        (
            "an appeal to broken trust",
            r"\bi (?:trusted|believed|counted on|relied on|depended on|believed in) "
            r"(?:you|him|her)\b|"
            r"\byou (?:promised|swore|lied)\b|\bafter (?:all|everything) (?:i(?:'ve)?|we(?:'ve)?) "
            r"(?:did|done|do|been through)\b",
        ),
    )
)


# Reassurances that often cover the opposite ("I'm fine", "it doesn't matter"): on their own
# they change nothing; with a sad or afraid face and voice the explainer reads them as masking.
_MASKING = re.compile(
    r"\b(?:i'm|i am) (?:fine|okay|ok|alright|all right)\b|"
    r"\bit'?s (?:fine|okay|ok|alright|all right)\b|\b(?:it )?doesn't matter\b|\bno problem\b|"
    r"\bdon't worry about me\b|\bnever mind\b|"
    r"\bno big deal\b|\bwhatever you (?:want|say)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Pragmatics:
    """What the constructions of a text say about how it is meant."""

    sarcasm: list[str] = field(default_factory=list)  # names of the sarcasm markers found
    hostile_praise: list[str] = field(default_factory=list)  # the phrases found
    reproach: list[str] = field(default_factory=list)  # names of the reproach markers found
    masking: list[str] = field(default_factory=list)  # reassurances found ("I'm fine")

    @property
    def ironic(self) -> bool:
        """Positive words most likely meant negatively (sarcasm or hostile thanks/praise)."""
        return bool(self.sarcasm or self.hostile_praise)

    @property
    def surface_unreliable(self) -> bool:
        """The polarity of the words is not how the line is meant."""
        return self.ironic or bool(self.reproach)


def read_pragmatics(text: str) -> Pragmatics:
    """The sarcasm, hostile-praise and reproach markers of `text` (English)."""
    normal = text.replace("\u2019", "'").replace("\u2018", "'")
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", normal) if s.strip()] or [normal]
    sarcasm = list(
        dict.fromkeys(
            name for name, p in _SARCASM_PATTERNS for s in sentences if p.search(s.strip())
        )
    )
    hostile = list(dict.fromkeys(m.group(0) for m in _HOSTILE_PRAISE.finditer(normal)))
    reproach = list(dict.fromkeys(name for name, p in _REPROACH_PATTERNS if p.search(normal)))
    masking = list(dict.fromkeys(m.group(0).lower() for m in _MASKING.finditer(normal)))
    return Pragmatics(sarcasm=sarcasm, hostile_praise=hostile, reproach=reproach, masking=masking)


# How much of the positive reading moves to the negative one when the constructions say the
# line is not meant as it reads. Not all of it: a marker can misfire on a genuinely happy line
# ("Oh great, another win!"), and the face and the voice get the last word in the explainer.
IRONY_SHIFT = 0.8
# The construction itself is the emotional signal: a flat reading ("neutral") of a sarcastic
# line or a reproach gives way too, by this share.
NEUTRAL_SHIFT = 0.5
# Sarcasm is mostly annoyance, partly contempt; a reproach is hurt as much as anger.
_IRONY_TARGETS = {"angry": 0.75, "disgust": 0.25}
_REPROACH_TARGETS = {"angry": 0.5, "sad": 0.5}


@dataclass(frozen=True)
class PragmaticReading:
    scores: dict[str, float]
    valence: float
    sentence: str  # what the description says about it


def apply_pragmatics(
    prag: Pragmatics, scores: dict[str, float], valence: float, quoted: str
) -> PragmaticReading | None:
    """The scores and valence of a text read as it is meant, or None when it reads as it says.

    `quoted` is the short quotation the description uses.
    """
    if not prag.surface_unreliable:
        return None
    out = dict(scores)
    # Both positive readings give way: sarcasm feigns surprise as readily as delight ("what a
    # surprise, you're late again", "wow, amazing").
    moved = IRONY_SHIFT * (out.get("happy", 0.0) + out.get("surprise", 0.0))
    out["happy"] = out.get("happy", 0.0) * (1 - IRONY_SHIFT)
    out["surprise"] = out.get("surprise", 0.0) * (1 - IRONY_SHIFT)
    if prag.ironic:
        targets = _IRONY_TARGETS
        marker = prag.sarcasm[0] if prag.sarcasm else f"'{prag.hostile_praise[0].lower()}'"
        sentence = (
            f"The words are positive on the surface ('{quoted}'), but {marker} usually marks "
            "sarcasm, so they most likely express annoyance; the surface tone is unreliable."
        )
        # Positive words meant negatively: the more glowing, the more cutting.
        new_valence = -max(0.25, 0.5 * abs(valence))
    else:
        targets = _REPROACH_TARGETS
        sentence = (
            f"The words reproach someone ('{quoted}'): {prag.reproach[0]} blames rather than "
            "asks, which expresses hurt and anger; the surface tone is unreliable."
        )
        new_valence = min(valence, -0.35)
    flat = NEUTRAL_SHIFT * out.get("neutral", 0.0)
    out["neutral"] = out.get("neutral", 0.0) - flat
    moved += flat
    for category, share in targets.items():
        out[category] = out.get(category, 0.0) + share * moved
    total = sum(out.values()) or 1.0
    return PragmaticReading(
        scores={k: v / total for k, v in out.items()},
        valence=max(-1.0, min(1.0, new_valence)),
        sentence=sentence,
    )
