"""Checks an LLM's sentence against the clues before it reaches a client.

Small models write fluent sentences that no clue supports: "Therefore, I am happy." for a
sarcastic line, a "story" about a party nobody mentioned, "optimism" for a reproach. A sentence
passes only when

- every emotional state it attributes to the person is supported: it is one of the answer's
  labels, or shares their category on the emotion wheels (level 1, on most wheels that know
  both), or is the leading emotion of a clue. Mentions the sentence negates or concedes
  ("although the words sound angry", "rather than happy") do not count;
- its overall tone ("positive", "negative", "optimistic") does not contradict the fused valence;
- it names no person, place or event that neither the clues nor the transcript mention, and
  does not speak in the first person ("I am happy", "I can create a story");
- every other content word it uses is in the clues, the transcript, the emotion vocabulary or
  a short list of words for talking about clues ("shows", "face", "voice", "because"): small
  models otherwise add "tomorrow's impending doom" or "memories of their past";
- it names at least one emotional state (a conclusion that names none says nothing) and does
  not loop (a content word three times).

The check is deterministic and vocabulary-aware (the EMER emotion wheels, as the extractor and
the metric use them). What fails is dropped or replaced by the composer's sentence, and the
answer's `warnings` say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from emer_eval.vocabulary import EmotionVocabulary

from services.common.types import BASIC_EMOTIONS, Clue
from services.explainer.extraction import NON_EMOTION_FORMS, candidate_labels


# People, places and events a clip description must not invent. Words of the clue sentences
# themselves (face, voice, words, speaker, person...) are not here.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


INVENTED_NOUNS = _words(
    """
    friend friends mother mom mum father dad parent parents brother sister son daughter wife
    husband boyfriend girlfriend partner boss colleague colleagues coworker coworkers teacher
    student students doctor nurse child children kid kids baby family team customer stranger
    neighbour neighbor manager crowd audience fans guests
    party wedding funeral meeting interview exam date game match concert trip holiday vacation
    birthday news accident gift promotion breakup story movie film song book email message
    letter phone call job work office school hospital home house room kitchen restaurant
    street park beach car stage church classroom city country
    """
)
# Words any sentence about the clues may use: function words and the words of the genre.
ALLOWED_WORDS = _words(
    """
    a an the and or but nor so yet as at by for from in into of on onto to with without about
    over under through while whereas although though because since than then also too very
    quite rather more most less least much many some any all both each either neither no not
    only just even still such same other own this that these those it its it's they them their
    theirs he him his she her hers who whom whose which what when where why how there here
    is are was were be been being am has have had having do does did doing can could may might
    must shall should will would feel feels felt feeling seem seems seemed appear appears
    appeared look looks looked show shows showed shown suggest suggests suggested indicate
    indicates indicated reveal reveals express expresses expressed convey conveys imply implies
    therefore thus overall likely probably clearly mainly mostly slightly somewhat perhaps
    main character person speaker face facial expression expressions voice vocal tone words
    word text subtitle line lines clue clues audio video visual acoustic lexical sign signs
    smile smiles smiling frown frowns frowning laugh laughs laughing eyes mouth brow brows
    state states emotion emotions emotional mood together combined combination given based
    mix mixed mixture blend hint touch bit little sense surface meant meaning way manner
    sound sounds sounding said says say saying speak speaks speaking spoken
    one two three first second well high low energy strong weak mild
    contradict contradicts contradicting disagree disagrees agree agrees match matches despite
    instead actually really genuine genuinely positive negative tense loud soft quiet calm
    however between neutral due evident evidenced evidence expressing body language extremely
    respectively given making fact
    i i'm i've i'd i'll me my mine myself
    """
)
_STEM = re.compile(r"(?:'s|s|es|ed|d|ing|ly)$")
# The model speaking for itself, or about its own task.
_SELF = re.compile(
    r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself)\b|\bas an ai\b|\blanguage model\b|"
    r"\bcreate a story\b|\bimagine\b",
    re.IGNORECASE,
)
# Clauses whose emotion words the sentence does not attribute to the person.
_CONCESSIVE = re.compile(
    r"\b(?:although|though|even though|despite|in spite of|rather than|instead of|not|no|"
    r"never|without|on the surface|sound(?:s)?|seem(?:s)? to say)\b[^,;.]*",
    re.IGNORECASE,
)
_MOOD = r"(?:mood|attitude|outlook|state|emotions?|feelings?|tone overall)"
_POSITIVE_TONE = re.compile(
    rf"\bpositive {_MOOD}|\b(?:feels?|is|are|remains?) positive\b|\boptimis\w*|\bupbeat\b",
    re.IGNORECASE,
)
_NEGATIVE_TONE = re.compile(
    rf"\bnegative {_MOOD}|\b(?:feels?|is|are|remains?) negative\b|\bpessimis\w*",
    re.IGNORECASE,
)
# Tone words the vocabulary counts as emotions; the tone check above handles them.
_TONE_FORMS = frozenset({"positive", "negative", "positively", "negatively"})
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|“[^”]*”")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# Fused valence beyond which the opposite overall tone is a contradiction.
TONE_MARGIN = 0.2
# A content word this often in one sentence is a small model looping.
REPEATS = 3
# A clue's leading emotion supports the sentence from this score on.
LEADING = 0.35


@dataclass(frozen=True)
class Verdict:
    """What the check found in one sentence: no problems = it may be shown."""

    problems: list[str] = field(default_factory=list)
    emotions: list[str] = field(default_factory=list)  # the emotion words it attributes

    @property
    def ok(self) -> bool:
        return not self.problems


class GroundingCheck:
    """The check for one answer: its labels, its clues, what it may mention, its valence."""

    def __init__(
        self,
        vocabulary: EmotionVocabulary | None,
        labels: Iterable[str],
        clues: Iterable[Clue | None],
        context: str,
        valence: float,
    ) -> None:
        """`context`: what the answer may talk about (the clue paragraphs as the description
        words them, and the transcript)."""
        self.vocabulary = vocabulary
        self.labels = list(dict.fromkeys(labels))
        readable = [c for c in clues if c is not None and c.available]
        self.valence = valence
        self._mentioned = set(_WORD.findall(context.lower()))
        self._mentioned_stems = {_stem(w) for w in self._mentioned}
        self._leading = {
            max(c.emotion_scores, key=lambda k: c.emotion_scores[k])
            for c in readable
            if c.emotion_scores and max(c.emotion_scores.values()) >= LEADING
        }
        self._supported_cats = self._level1(self.labels)

    def _level1(self, words: Iterable[str]) -> dict[str, set[str]]:
        """Wheel -> the level-1 categories of `words` on it."""
        out: dict[str, set[str]] = {}
        if self.vocabulary is None:
            return out
        for word in words:
            for cat in self.vocabulary.categories(word):
                wheel, rest = cat.split("/", 1)
                if rest.startswith("level1:"):
                    out.setdefault(wheel, set()).add(rest.split(":", 1)[1])
        return out

    def supported(self, word: str) -> bool:
        """Whether the answer's labels or a clue's leading emotion back `word`."""
        if word in self.labels or word in self._mentioned:
            return True
        if self.vocabulary is None:
            return True  # nothing to check against: the composer's labels have no wheel either
        if word in self._leading or _basic_of(word) in self._leading:
            return True
        own = self._level1([word])
        shared = [w for w in own if w in self._supported_cats]
        if not shared:
            return False
        agree = sum(1 for w in shared if own[w] & self._supported_cats[w])
        # Most wheels, or at least two ("frustrated" shares anger's category on two of five).
        return agree >= 2 or agree * 2 > len(shared)

    def check(self, sentence: str, *, conclusion: bool = True, strict: bool = False) -> Verdict:
        """`conclusion`: the sentence states the person's emotional state (a clue sentence,
        "In the video, ...", need not name one). `strict`: every content word must come from
        the clues (for the small models' one-sentence conclusion; a large model writing the
        whole description paraphrases the clues, and only the other checks apply)."""
        problems: list[str] = []
        unquoted = _QUOTED.sub(" ", sentence)
        if _SELF.search(unquoted):
            problems.append("it speaks in the first person or about its own task")
        tokens = _WORD.findall(unquoted.lower())
        words = set(tokens)
        repeated = sorted(w for w in words if w not in ALLOWED_WORDS and tokens.count(w) >= REPEATS)
        if repeated:
            problems.append(f"it repeats {_list(repeated[:2])}")
        invented = sorted(w for w in words & INVENTED_NOUNS if w not in self._mentioned)
        if invented:
            problems.append(f"it mentions {_list(invented)}, which no clue mentions")
        added = sorted(
            w
            for w in (words if strict else set())
            if w not in ALLOWED_WORDS
            and w not in INVENTED_NOUNS
            and _stem(w) not in self._mentioned_stems
            and not (self.vocabulary is not None and self.vocabulary.is_emotion(w))
        )
        if added:
            problems.append(f"it adds {_list(added[:4])}, which no clue says")
        attributed = _CONCESSIVE.sub(" ", unquoted)
        if self.valence <= -TONE_MARGIN and _POSITIVE_TONE.search(attributed):
            problems.append("it calls the mood positive while the clues are negative")
        if self.valence >= TONE_MARGIN and _NEGATIVE_TONE.search(attributed):
            problems.append("it calls the mood negative while the clues are positive")
        emotions = self._emotions(attributed)
        unsupported = [w for w in emotions if not self.supported(w)]
        if unsupported:
            problems.append(f"it names {_list(unsupported)}, which no clue supports")
        if conclusion and not emotions and self.vocabulary is not None:
            problems.append("it names no emotional state")
        return Verdict(problems=problems, emotions=emotions)

    def _emotions(self, text: str) -> list[str]:
        if self.vocabulary is None:
            return []
        found = candidate_labels(text, self.vocabulary)
        return [f.word for f in found if f.word not in NON_EMOTION_FORMS | _TONE_FORMS]


def _stem(word: str) -> str:
    """A crude stem, so "smiles" matches "smiling" and "shouts" matches "shouted"."""
    word = word.removesuffix("'s")
    return _STEM.sub("", word) if len(word) > 4 else word


def _basic_of(word: str) -> str:
    """The basic category a plain word names ("anger" -> "angry"), or ""."""
    stems = {
        "angry": "ang",
        "disgust": "disgust",
        "fear": "fear",
        "happy": "happ",
        "sad": "sad",
        "surprise": "surpris",
        "neutral": "neutral",
    }
    return next((b for b in BASIC_EMOTIONS if word.startswith(stems[b])), "")


def _list(words: list[str]) -> str:
    quoted = [f"'{w}'" for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
