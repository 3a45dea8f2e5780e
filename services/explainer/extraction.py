"""Deterministic, vocabulary-aware extraction of open-vocabulary emotion labels from a description.

EMER descriptions follow a fixed rhetoric: per-modality evidence ("In the video, ... In the audio,
... In the text, the subtitle says ...") and then an inference ("Based on ..., we can infer that
..."; "Therefore, ..."). The inferred state is what annotators list as labels; the evidence
sentences mention many emotion words that are about the scene, the voice, an earlier moment or
another person, and the automatically generated word-form map of the emotion wheel turns many
ordinary words into emotions ("person" -> "personal", "content" -> "contented", "bit" ->
"biting"). So the extractor

1. finds every word form of the emotion vocabulary (`wheel_mapping.npz` word forms, longest
   multi-word match first) outside quoted speech (the subtitle is the character's words, and
   the description interprets it anyway);
2. drops forms whose sense in a description is not an emotion (`NON_EMOTION_FORMS`,
   "engaged in"), negated mentions ("does not seem angry", "no sign of sadness", "without
   nervousness") and mentions about someone else ("the other person's anger", "the other
   person seems angry");
3. weights each mention by its sentence role: the conclusion (from the first "Based on /
   Therefore / Overall ..." sentence after the last "In the video/audio/text" paragraph; the
   last sentences when there is none) counts fully, except the recap of the clues before "we can
   infer that"; the reading of the subtitle and the per-modality evidence count little, so they
   only add up when the conclusion is silent. Words that qualify a situation ("a tense topic")
   and "calm" (the absence of a marked emotion) count less;
4. sums the weights per synonym group (words with the same categories on all five wheels at
   both levels, so "anger" and "angry" are one label), keeps the groups that reach a
   threshold, best first, at most `max_labels`; when none reaches it the best group is kept,
   because an empty answer scores 0 while the description did name an emotion. No candidate at
   all gives an empty list.

Hedges ("a bit", "slightly", "a hint of", "may", "seems") lower a label's confidence but not its
selection: measured on the dev descriptions, the hedged inference is still the annotated one.
Every rule is about the genre; the extractor holds no words of particular samples. The
constants were set on one half of the 230 EMER-Fine dev descriptions and checked on the other
half (`benchmarks/eval_labels.py`, `docs/labels.md`).

Why one module of ~530 lines: it is one extractor, and a third of it is its word lists
(non-emotion forms, situation nouns, negators), which read best next to the rules that use them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import lemminflect
from emer_eval.vocabulary import LEVELS, WHEELS, EmotionVocabulary
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


@dataclass(frozen=True)
class ExtractedLabel:
    """One emotion label: the word as written, a confidence in (0, 1], the sentence behind it."""

    word: str
    confidence: float
    evidence_sentence: str


@dataclass(frozen=True)
class ExtractionConfig:
    """The extractor's weights (defaults set on half A of the dev descriptions)."""

    conclusion_weight: float = 1.0
    # The "Based on the clues of X and Y, we can infer that Z" recap part of a conclusion.
    recap_weight: float = 0.2
    # "In the text, the subtitle says ... This sentence may express X."
    subtitle_reading_weight: float = 0.3
    # "In the video, ... In the audio, ..." evidence.
    evidence_weight: float = 0.1
    # "a tense topic", "a serious conversation": the word describes the situation.
    situation_factor: float = 0.3
    # "Calm" in these descriptions means the absence of a marked emotion (a calm voice, a
    # relatively calm face), which annotators do not list.
    neutral_factor: float = 0.3
    # Selection weight of hedged mentions ("a bit frustrated"). 1.0 measured best: hedges only
    # lower the reported confidence (`hedge_confidence`).
    hedge_factor: float = 1.0
    hedge_confidence: float = 0.7
    threshold: float = 0.8
    max_labels: int = 4
    # Without a conclusion (some descriptions stop after the clues) the last sentences stand in.
    fallback_sentences: int = 2
    # When the chosen labels map onto no category of some wheel, add the best other candidate
    # that does (at most one per wheel): see `Extractor.extract`.
    cover_wheels: bool = True


DEFAULT_CONFIG = ExtractionConfig()


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Word forms of the vocabulary whose sense in a clip description is (almost) never a feeling of
# the person: body, camera and voice words, motion and perception verbs, discourse words and
# the words for emotion itself. The form map was generated automatically and maps them onto
# emotion words ("person" -> "personal", "see" -> "seen", "facial" -> "faced", "bit" ->
# "biting", "low" -> "lower", "living" -> "livid", "lack" -> "lacking").
NON_EMOTION_FORMS = _wordset(
    """
    person personal persons people face faces facing faced facial see sees seen saw seeing look
    looks looking open opens opened opening close closes closed closing move moves moved moving
    movement left leave leaves leaving go goes going gone went low lower lowers lowered lowering
    fixed fix direct directed directly bit bits slight slightly certain certainly sure clear
    clearly true truly current currently related relating associated association include
    includes including included inclusion involve involves involving involved use uses used
    using useful information inform informs informed evaluation evaluate analyze analyzed
    analyzing analysis consider considers considered considering consideration reflect reflects
    reflected reflecting reveal reveals revealed revealing mean means meaning meaningful
    receive receives received receiving create creates created creating member members here
    ground grounded edge distance distant cover covers covered covering determine determines
    determined determining important importance significant significantly signify signifies
    emotion emotions emotional emotionally feeling feelings mood moods state tone sense
    attention force forces forced forcing forcefully strong strongly strength soft softly
    sharp sharply quick quickly fast slow slowly high higher loud loudly quiet quietly stable
    steady stability full fully raise raised raising deep deeply dark bright light lightly
    warmly gentle gently active actively intense intensely intensity rapid rapidly expression
    expressions expressive response responding respond responds result thought thoughts think
    thinks question questions situation matter issue content contents support supports
    supported supporting regard regards regarding believe believes believed believing silence
    silent lack lacks lacking impression impressions observe observes observed observing
    observation observations living less carefully represent represents represented
    representing affect affects worth benefit judge judges judged judging judgment judgement
    """
)

# Nouns that, right after an emotion word, show it qualifies the situation rather than the
# person ("a tense topic", "a serious conversation", "a pleasant exchange").
SITUATION_NOUNS = _wordset(
    """
    topic topics atmosphere scene scenes situation situations environment setting settings
    conversation conversations discussion discussions exchange issue issues matter matters
    question questions event events news music lighting color colour background place room
    relationship relationships moment moments content subject subjects manner way pace
    """
)
NEUTRAL_FORMS = _wordset("calm calmly calmness calmer composed composure")
# Activity senses: "engaged in a conversation", "engaging with the other person".
ACTIVITY_FORMS = _wordset("engage engages engaged engaging")

NEGATORS = _wordset(
    "no not never without nor neither lack lacks lacking absence absent free hardly barely cannot"
)
# Words a negation reaches across ("no sign of anger", "not feel angry", "without any fear",
# "neither angry nor sad").
NEGATION_BRIDGE = _wordset(
    """
    a an any the of or and nor sign signs obvious apparent apparently clear much very too
    trace hint seem seems seemed seeming appear appears appeared be being been is are was were
    feel feels felt show shows showed display displays displayed express expresses expressed
    particularly really overly excessive excessively real genuine visible evident strong
    obviously clearly look looks looked to
    """
)
HEDGES = re.compile(
    r"\b(?:a (?:little )?bit(?: of)?|a little|a (?:hint|touch|trace|tinge|note|degree) of|"
    r"a slight|slightly|somewhat|mildly|may|might|possibly|perhaps|seem(?:s|ed|ing)?(?: to be)?|"
    r"appear(?:s|ed)?(?: to be)?)\s+(?:\w+\s+){0,2}$"
)
OTHER_PARTY = re.compile(
    r"\b(?:the other (?:person|party|people|character|characters|man|woman|side|one)|others|"
    r"someone else|the listener|the listeners|the audience|the interlocutor)\b"
)
# Nominal suffixes of emotion nouns derived from an adjective of the wheel ("curiosity" ->
# curious, "displeasure" -> displeased, "nervousness" -> nervous).
_NOMINAL_SUFFIXES = ("ity", "ness", "ment", "ion", "ure", "ety", "ance", "ence", "ism")


@lru_cache(maxsize=1)
def _affect_words() -> frozenset[str]:
    """VADER's hand-rated affect lexicon (MIT, bundled with vaderSentiment)."""
    return frozenset(SentimentIntensityAnalyzer().lexicon)


def _lemmas(word: str) -> set[str]:
    return {lemma for found in lemminflect.getAllLemmas(word).values() for lemma in found}


def faithful_form(form: str, bases: Iterable[str]) -> bool:
    """Whether a word form of the wheel's automatic form map means its base word.

    The map was generated by string edits, so next to true inflections ("angrier" -> angry) it
    holds unrelated words ("person" -> personal, "balances" -> balanced, "moves" -> moved,
    "living" -> livid). A form is kept when it is a base word itself or a phrase, an
    inflection of a base (lemminflect), an affect word (VADER's lexicon), or an emotion noun
    derived from a base ("curiosity" -> curious). This rule replaces a list of the forms seen
    in the dev descriptions for the forms no list can foresee: with a stop list built from half
    A of the dev descriptions only, it raises half B from 77.10 / 66.67 to 78.02 / 67.90
    (docs/labels.md).
    """
    bases = list(bases)
    if form in bases or " " in form or "-" in form:
        return True
    lemmas = _lemmas(form)
    if lemmas & set(bases) or not (lemmas | {form}).isdisjoint(_affect_words()):
        return True
    return form.endswith(_NOMINAL_SUFFIXES) and any(
        len(form) >= 5 and form[:5] == base[:5] for base in bases
    )


_LEADING_CONNECTIVE = re.compile(r"^\s*(?:and|but|while|whereas|whilst|although|though)\b")

_TOKEN = re.compile(r"[a-z]+(?:[-'][a-z]+)*")
_MODALITY_START = re.compile(r"^(?:input:\s*)?in the (?:video|audio|text|subtitle)s?\b")
_TEXT_START = re.compile(r"^(?:input:\s*)?in the (?:text|subtitle)s?\b")
_CONCLUSION_START = re.compile(
    r"^(?:therefore|thus|hence|so|overall|in summary|in conclusion|to sum up|to summarize|"
    r"in short|taken together|taking (?:all|these|into)|all in all|combining|combined with|"
    r"considering|based on|in general|putting|integrating|synthesizing|"
    r"(?:additionally|furthermore|moreover|however|meanwhile),? (?:based on|combining|"
    r"considering|taking)|from (?:these|the above|all))\b"
)
# Where the inferred part of a "Based on X, we can infer that Y" sentence starts.
_INFERENCE = re.compile(
    r"\b(?:infer(?:red)?|deduce[d]?|conclude[d]?|speculate[d]?|judge[d]?|assume[d]?|"
    r"suggests?|indicates?|implies?|shows?|reveals?)\b[^,;]*?\bthat\b|"
    r"\b(?:we can infer|it can be inferred|can be (?:seen|inferred|deduced|concluded|"
    r"speculated|judged))\b"
)
_CLAUSE_BREAK = re.compile(r"[,;:()\u2014]")


@dataclass
class _Sentence:
    text: str
    role: str  # "conclusion" | "subtitle" | "evidence"
    inference_at: int = -1  # offset in `text` where the inferred part starts


class Mention(NamedTuple):
    """One weighted mention of a vocabulary word form, with the sentence it is in."""

    form: str
    weight: float
    certainty: float
    evidence: str


@dataclass
class _Group:
    score: float = 0.0
    certainty: float = 0.0
    word: str = ""
    word_weight: float = -1.0
    evidence: str = ""


def normalise(text: str) -> str:
    """Straighten quotes and collapse white space."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text).strip()


def _mask_quotes(text: str) -> str:
    """Blank out quoted speech, keeping offsets: the character's words, not the describer's."""
    return re.sub(r'"[^"]*"', lambda m: " " * len(m.group(0)), text)


def split_sentences(text: str) -> list[str]:
    """Sentences of a description. Quotes never split inside; a quote that ends a sentence
    ('says "Stop!" Then ...') and a missing space after a full stop ('...it.In the audio') do."""
    masked = _mask_quotes(text)
    ends: set[int] = set()
    for m in re.finditer(r"[.!?;](?=\s|[A-Z]|$)", masked):
        # A semicolon ends a sentence only where a new modality paragraph begins.
        if m.group(0) == ";" and not re.match(r"\s*in the (?:video|audio|text)", masked[m.end() :]):
            continue
        ends.add(m.end())
    for m in re.finditer(r'"[^"]*[.!?]"(?=\s+[A-Z])', text):
        ends.add(m.end())
    out: list[str] = []
    start = 0
    for end in sorted(ends):
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _assign_roles(sentences: list[str], config: ExtractionConfig) -> list[_Sentence]:
    lowered = [s.lower() for s in sentences]
    # The conclusion starts at the first conclusion-style sentence after the last paragraph
    # that opens with "In the video/audio/text": a "Based on ..." inside the video paragraph
    # only concludes about that modality.
    last_modality = max((i for i, s in enumerate(lowered) if _MODALITY_START.match(s)), default=-1)
    conclusion_from = next(
        (i for i in range(last_modality + 1, len(lowered)) if _CONCLUSION_START.match(lowered[i])),
        None,
    )
    if conclusion_from is None:
        conclusion_from = max(len(lowered) - config.fallback_sentences, 0)
    text_from = max((i for i, s in enumerate(lowered) if _TEXT_START.match(s)), default=-1)
    out = []
    for i, sentence in enumerate(sentences):
        if i >= conclusion_from:
            role = "conclusion"
        elif 0 <= text_from <= i:
            role = "subtitle"
        else:
            role = "evidence"
        inference_at = -1
        if role == "conclusion" and re.match(
            r"^(?:\w+,? )?(?:based on|combin|consider|taking)", lowered[i]
        ):
            m = _INFERENCE.search(_mask_quotes(lowered[i]))
            inference_at = m.end() if m else -1
        out.append(_Sentence(sentence, role, inference_at))
    return out


class Extractor:
    """The extractor bound to one vocabulary (caches the synonym-group signature of each word)."""

    def __init__(
        self, vocabulary: EmotionVocabulary, config: ExtractionConfig = DEFAULT_CONFIG
    ) -> None:
        self.vocabulary = vocabulary
        self.config = config
        self._max_words = max((len(k.split()) for k in vocabulary.format_mapping), default=1)
        self._signatures: dict[str, tuple[str, ...]] = {}
        self._faithful: dict[str, bool] = {}

    def faithful(self, form: str) -> bool:
        """`faithful_form` for a form of this vocabulary (cached)."""
        if form not in self._faithful:
            bases = self.vocabulary.format_mapping.get(form, [])
            self._faithful[form] = faithful_form(form, bases)
        return self._faithful[form]

    def signature(self, word: str) -> tuple[str, ...]:
        """The word's category on every wheel and level: equal signatures = one synonym group."""
        if word not in self._signatures:
            self._signatures[word] = tuple(
                self.vocabulary.category(word, wheel, level) or ""
                for wheel in WHEELS
                for level in LEVELS
            )
        return self._signatures[word]

    def mentions(self, sentence: _Sentence) -> list[tuple[str, float, float]]:
        """(form, weight, certainty) for each emotion mention in the sentence."""
        masked = _mask_quotes(sentence.text.lower())
        tokens = list(_TOKEN.finditer(masked))
        words = [t.group(0) for t in tokens]
        out: list[tuple[str, float, float]] = []
        i = 0
        while i < len(tokens):
            n = next(
                (
                    n
                    for n in range(min(self._max_words, len(tokens) - i), 0, -1)
                    if " ".join(words[i : i + n]) in self.vocabulary.format_mapping
                ),
                0,
            )
            if n == 0:
                i += 1
                continue
            form = " ".join(words[i : i + n])
            if n > 1 or (form not in NON_EMOTION_FORMS and self.faithful(form)):
                weight, certainty = self._weigh(sentence, masked, tokens, words, i, n)
                if weight > 0:
                    out.append((form, weight, certainty))
            i += n
        return out

    def _weigh(
        self,
        sentence: _Sentence,
        masked: str,
        tokens: list[re.Match[str]],
        words: list[str],
        i: int,
        n: int,
    ) -> tuple[float, float]:
        cfg = self.config
        start = tokens[i].start()
        form = " ".join(words[i : i + n])
        nxt = words[i + n] if i + n < len(words) else ""
        clause = masked[:start]
        cut = max((m.end() for m in _CLAUSE_BREAK.finditer(clause)), default=0)
        clause = clause[cut:]
        if _negated(masked, tokens, i):
            return 0.0, 0.0
        if form in ACTIVITY_FORMS and nxt in ("in", "with", "into"):
            return 0.0, 0.0
        # Someone else's state: "the other person's anger", "the other person seems angry".
        head = _LEADING_CONNECTIVE.sub("", clause).lstrip()
        if OTHER_PARTY.match(head) or re.search(OTHER_PARTY.pattern + r"(?:'s|\s+of)\s*$", clause):
            return 0.0, 0.0
        if sentence.role == "conclusion":
            weight = cfg.conclusion_weight
            if start < sentence.inference_at:
                weight = cfg.recap_weight
        elif sentence.role == "subtitle":
            weight = cfg.subtitle_reading_weight
        else:
            weight = cfg.evidence_weight
        if nxt in SITUATION_NOUNS:
            weight *= cfg.situation_factor
        if form in NEUTRAL_FORMS:
            weight *= cfg.neutral_factor
        certainty = 1.0
        if HEDGES.search(clause):
            weight *= cfg.hedge_factor
            certainty = cfg.hedge_confidence
        return weight, certainty

    def _ranked(self, description: str) -> list[_Group]:
        """Every synonym group mentioned, with its summed weight, best first."""
        text = normalise(description)
        if not text:
            return []
        return self.rank(
            Mention(form, weight, certainty, sentence.text)
            for sentence in _assign_roles(split_sentences(text), self.config)
            for form, weight, certainty in self.mentions(sentence)
        )

    def rank(self, mentions: Iterable[Mention]) -> list[_Group]:
        """Sum weighted mentions of vocabulary words per synonym group, best first (shared with
        extractors of other languages, which find the mentions their own way)."""
        groups: dict[tuple[str, ...], _Group] = {}
        for form, weight, certainty, evidence in mentions:
            sig = self.signature(form)
            if not any(sig):
                continue  # on no wheel: no category to report or to score
            g = groups.setdefault(sig, _Group())
            g.score += weight
            g.certainty = max(g.certainty, certainty)
            if weight > g.word_weight:
                g.word, g.word_weight, g.evidence = form, weight, evidence
        # Stable sort: ties keep the order of first mention (the main inference comes first).
        return sorted(groups.values(), key=lambda g: -g.score)

    @staticmethod
    def _label(g: _Group) -> ExtractedLabel:
        # Saturating in the summed weight: one conclusion mention gives 0.67, two 0.8.
        return ExtractedLabel(g.word, round(g.certainty * g.score / (g.score + 0.5), 3), g.evidence)

    def extract(self, description: str) -> list[ExtractedLabel]:
        """Labels for one description, best first (the rules are in the module docstring)."""
        cfg = self.config
        ranked = self._ranked(description)
        chosen = [g for g in ranked if g.score >= cfg.threshold][: cfg.max_labels] or ranked[:1]
        if cfg.cover_wheels:
            chosen += self._covering(ranked, chosen)
        return [self._label(g) for g in chosen]

    def _covering(self, ranked: list[_Group], chosen: list[_Group]) -> list[_Group]:
        """Candidates that give a category on wheels where the chosen labels give none.

        Many wheel words sit on only some of the five wheels ("dissatisfaction" is on no level of
        wheel3 or wheel5), and an answer that maps onto nothing of a wheel reads there as no
        answer at all. Such a wheel gets the best-ranked other emotion the description attributes
        to the character that it can place (none when there is no such candidate: nothing is
        invented). Measured on the dev halves: A 76.68 / 65.49 -> 77.05 / 65.77, B 78.22 / 68.07
        -> 79.19 / 68.78 (docs/labels.md).
        """
        extra: list[_Group] = []
        for slot in range(0, len(WHEELS) * len(LEVELS), len(LEVELS)):
            if any(self.signature(g.word)[slot] for g in chosen + extra):
                continue
            found = next(
                (
                    g
                    for g in ranked
                    if g not in chosen and g not in extra and self.signature(g.word)[slot]
                ),
                None,
            )
            if found is not None:
                extra.append(found)
        return extra

    def candidates(self, description: str) -> list[ExtractedLabel]:
        """Every emotion the description attributes to the main character, best first, without
        threshold or cap: the candidate list that an LLM extractor chooses from."""
        return [self._label(g) for g in self._ranked(description)]


def _negated(masked: str, tokens: list[re.Match[str]], i: int) -> bool:
    """A negator a few bridge words before the mention, in the same clause."""
    j = i - 1
    while j >= 0 and i - j <= 6:
        between = masked[tokens[j].end() : tokens[j + 1].start()]
        if _CLAUSE_BREAK.search(between):
            return False
        w = tokens[j].group(0)
        if w in NEGATORS or w.endswith("n't"):
            # "not only X but also Y" is no negation.
            return not (j + 1 < len(tokens) and tokens[j + 1].group(0) == "only")
        if w not in NEGATION_BRIDGE:
            return False
        j -= 1
    return False


_EXTRACTORS: dict[tuple[int, ExtractionConfig], Extractor] = {}


def _extractor(vocabulary: EmotionVocabulary, config: ExtractionConfig) -> Extractor:
    key = (id(vocabulary), config)
    extractor = _EXTRACTORS.get(key)
    if extractor is None or extractor.vocabulary is not vocabulary:
        if len(_EXTRACTORS) >= 8:  # vocabularies are long-lived; this only bounds misuse
            _EXTRACTORS.clear()
        extractor = _EXTRACTORS[key] = Extractor(vocabulary, config)
    return extractor


def extract_labels(
    description: str, vocabulary: EmotionVocabulary, config: ExtractionConfig = DEFAULT_CONFIG
) -> list[ExtractedLabel]:
    """The emotion labels of the main character in an EMER-style description, best first.

    Deterministic and model-free; an empty list when the description names no emotion of the
    main character. See the module docstring for the rules.
    """
    return _extractor(vocabulary, config).extract(description)


def candidate_labels(
    description: str, vocabulary: EmotionVocabulary, config: ExtractionConfig = DEFAULT_CONFIG
) -> list[ExtractedLabel]:
    """All candidate labels (no threshold, no cap), best first, for an LLM to choose from."""
    return _extractor(vocabulary, config).candidates(description)
