"""Surface reading of a text: sentences, tokens, negation, cue words, VADER features, and the
words the text clue uses for tone and intensity."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common.types import BASIC_EMOTIONS

logger = logging.getLogger(__name__)

NEUTRAL = "neutral"
_CUE_BASICS = ("angry", "disgust", "fear", "happy", "sad", "surprise")

# Words that negate a cue when they come at most NEGATION_WINDOW tokens before it (without a
# punctuation mark in between: "No, I love it" is not a negated "love").
NEGATION_WINDOW = 3
_NEGATORS = frozenset(
    {
        "not", "no", "never", "nobody", "nothing", "neither", "nor", "hardly", "without",
        "cannot", "dont", "cant", "wont", "didnt", "doesnt", "isnt", "wasnt", "arent", "werent",
        "aint", "couldnt", "wouldnt", "shouldnt",
    }
)  # fmt: skip
_INTENSIFIERS = frozenset(
    {
        "very", "so", "really", "extremely", "totally", "absolutely", "super", "incredibly",
        "completely", "utterly", "fucking", "freaking", "insanely", "seriously", "literally",
    }
)  # fmt: skip
# Words, sentence punctuation (it stops a negation's reach) and single emoji (cue words too).
_TOKEN_RE = re.compile(r"[a-z0-9']+|[?!.,;:]|[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_PUNCT = frozenset("?!.,;:")
# Sentence ends: . ! ? … (optionally followed by closing quotes/brackets) then whitespace, or a line
# break. Abbreviations ("Dr. Smith") split too; harmless for scoring, the whole text still counts.
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\n+")
_CAPS_WORD_RE = re.compile(r"\b[A-Z]{2,}\b")
_WORD_RE = re.compile(r"\b\w+\b")


def split_sentences(text: str) -> list[str]:
    """Split a subtitle or transcript into sentences (line breaks also separate)."""
    parts = [p.strip() for p in _SENTENCE_SPLIT_RE.split(text) if p and p.strip()]
    return parts or ([text.strip()] if text.strip() else [])


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text.lower().replace("’", "'").replace("‘", "'"))


def _is_negator(token: str) -> bool:
    return token in _NEGATORS or token.endswith("n't")


def quote(text: str, limit: int = 80) -> str:
    """A short quotation of `text` for a description sentence."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + "…"


class CueMatcher:
    """Finds explicit emotion words, with negation, in one pass of a regex per category."""

    def __init__(self, cues: Mapping[str, Sequence[str]]) -> None:
        self._patterns: dict[str, re.Pattern[str]] = {}
        for basic, words in cues.items():
            if basic not in _CUE_BASICS:
                raise ValueError(f"cue category {basic!r} is not one of {_CUE_BASICS}")
            alternatives = []
            for word in words:
                star = word.endswith("*")
                body = " ".join(re.escape(t) for t in _tokens(word.rstrip("*")))
                if not body:
                    continue
                alternatives.append(body + ("[a-z0-9']*" if star else ""))
            # Longest first so "oh my god" wins over a shorter overlapping cue.
            alternatives.sort(key=len, reverse=True)
            # Token boundaries are single spaces in the joined token string.
            self._patterns[basic] = re.compile(
                r"(?<![^ ])(?:" + "|".join(alternatives) + r")(?![^ ])"
            )

    def find(self, text: str) -> tuple[dict[str, list[str]], list[str]]:
        """Return ({category: cue phrases found, not negated}, [negated positive phrases])."""
        tokens = _tokens(text)
        joined = " ".join(tokens)
        found: dict[str, list[str]] = {b: [] for b in self._patterns}
        negated_positive: list[str] = []
        for basic, pattern in self._patterns.items():
            for match in pattern.finditer(joined):
                index = joined.count(" ", 0, match.start())
                negator = None
                for back in range(index - 1, max(-1, index - 1 - NEGATION_WINDOW), -1):
                    if tokens[back] in _PUNCT:
                        break
                    if _is_negator(tokens[back]):
                        negator = back
                        break
                if negator is None:
                    found[basic].append(match.group(0))
                elif basic == "happy":
                    negated_positive.append(" ".join(tokens[negator:index]) + " " + match.group(0))
                # A negated negative cue ("not angry", "don't worry") simply does not count.
        return found, negated_positive


@dataclass
class TextFeatures:
    """Surface measurements of one text unit (the whole text or one sentence)."""

    vader: dict[str, float]
    cues: dict[str, list[str]]
    negated_positive: list[str]
    question: bool
    exclamations: int
    words: int
    caps_words: int
    intensifiers: int

    @property
    def compound(self) -> float:
        return float(self.vader.get("compound", 0.0))


def text_features(text: str, vader: Any, cues: CueMatcher | None) -> TextFeatures:
    """VADER scores, cue words and punctuation/capitals/intensifier counts of `text`."""
    found, negated = cues.find(text) if cues is not None else ({}, [])
    words = _WORD_RE.findall(text)
    return TextFeatures(
        vader=dict(vader.polarity_scores(text)),
        cues=found,
        negated_positive=negated,
        question="?" in text,
        exclamations=text.count("!"),
        words=len(words),
        caps_words=len(_CAPS_WORD_RE.findall(text)),
        intensifiers=sum(1 for t in _tokens(text) if t in _INTENSIFIERS),
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    out: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return out


def tone_word(compound: float) -> str:
    """VADER compound -> the words used in descriptions."""
    if compound >= 0.5:
        return "clearly positive"
    if compound >= 0.05:
        return "positive"
    if compound <= -0.5:
        return "clearly negative"
    if compound <= -0.05:
        return "negative"
    return "neutral"


def intensity_arousal(features: TextFeatures, sentences: int) -> float:
    """Arousal added by how the text is written: '!', CAPITALS and intensifiers (0 to ~0.6)."""
    sentences = max(sentences, 1)
    exclaim = min(1.0, features.exclamations / sentences)
    caps = min(1.0, 3.0 * features.caps_words / max(features.words, 1))
    intens = min(1.0, features.intensifiers / 3.0)
    return 0.3 * exclaim + 0.2 * caps + 0.1 * intens


def describe(
    scores: dict[str, float],
    nuance: dict[str, str],
    evidence: dict[str, str],
    whole: TextFeatures,
    sentences: int,
) -> list[str]:
    """Plain sentences a person understands, e.g.
    "The words express frustration ('I can't believe you did that'); the tone of the text is
    negative."

    `nuance` maps a basic category to the finer word that fits best, `evidence` to the sentence
    that shows it most.
    """
    ranked = sorted(BASIC_EMOTIONS, key=lambda b: scores[b], reverse=True)
    top = ranked[0]
    p = scores[top]
    tone = tone_word(whole.compound)
    vader = whole.vader
    if vader.get("pos", 0.0) >= 0.2 and vader.get("neg", 0.0) >= 0.2:
        tone = "mixed"
    lines: list[str] = []
    emotional = [b for b in ranked if b != NEUTRAL]
    if top == NEUTRAL:
        first = "The words are mostly matter-of-fact, with no clear emotion"
        runner = emotional[0]
        if scores[runner] >= 0.2:
            first += (
                f", though a little {nuance[runner]} may come through ('{quote(evidence[runner])}')"
            )
        lines.append(f"{first}; the tone of the text is {tone}.")
    else:
        verb = "clearly express" if p >= 0.6 else "express" if p >= 0.35 else "suggest some"
        lines.append(
            f"The words {verb} {nuance[top]} ('{quote(evidence[top])}'); "
            f"the tone of the text is {tone}."
        )
        second = next((b for b in ranked[1:] if b != NEUTRAL), None)
        if second is not None and scores[second] >= 0.2:
            extra = f"There is also a hint of {nuance[second]}"
            if evidence[second] != evidence[top]:
                extra += f" ('{quote(evidence[second])}')"
            lines.append(extra + ".")
    if whole.negated_positive:
        lines.append(
            f"A positive word is negated ('{whole.negated_positive[0]}'), which reads as negative."
        )
    loud = []
    if whole.exclamations:
        loud.append("exclamation marks")
    if whole.caps_words and whole.caps_words >= max(1, whole.words // 10):
        loud.append("capital letters")
    if whole.intensifiers >= 2:
        loud.append("intensifiers")
    if loud:
        lines.append(f"The {' and '.join(loud)} make it sound intense.")
    return lines
