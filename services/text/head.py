"""A small linear head that turns the text model's readings into the seven basic scores.

The prototype scores (cosine similarity to the project's example sentences, plus VADER and cue
words) rank emotions well but are badly calibrated against each other: a sentence close to many
"joy" examples beats one close to a few "disgust" examples whatever it says. The head is one
multinomial logistic regression over what the model already computes for a sentence (its
MiniLM embedding, the log prototype scores, VADER's compound, the question mark and the cue
counts), so it adds a 400 x 7 matrix product and nothing else.

Fitted by `python benchmarks/fit_text_head.py` on the GoEmotions dev split (CC BY 4.0, Demszky et
al. 2020; the fitted weights are shipped under that licence's attribution, see
docs/models/text.md), classes weighted equally. The neutral bias is then set on MELD *train*
(best mean recall over the classes), so that everyday dialogue, mostly neutral, is not all
read as emotional; MELD dev is only reported. The weights belong to one encoder and one
prototype file: the file records their fingerprint and a mismatch switches the head off with a
warning, instead of scoring garbage.

Alone it reads comments better and dialogue worse (docs/models/text.md), so the service mixes
it with the prototype scores (`TextHead.blend`, chosen on a validation split that loses nothing
on MELD train); on by default (`TextConfig.head`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from services.common.types import BASIC_EMOTIONS

logger = logging.getLogger(__name__)

HEAD_PATH = Path(__file__).with_name("head.npz")


class _Features(Protocol):
    @property
    def compound(self) -> float: ...

    @property
    def question(self) -> bool: ...

    @property
    def cues(self) -> dict[str, list[str]]: ...


# Where head_inputs puts the log prototype scores: after the embedding, before the 2 + 7 surface
# features (compound, question mark, cue counts).
LOG_PROBS = slice(-(2 * len(BASIC_EMOTIONS) + 2), -(len(BASIC_EMOTIONS) + 2))


def head_inputs(
    embeddings: np.ndarray, probs: np.ndarray, features: Sequence[_Features]
) -> np.ndarray:
    """The head's input rows: embedding, log prototype scores, compound, question, cue counts."""
    surface = np.array(
        [
            [f.compound, float(f.question), *(len(f.cues.get(b, [])) for b in BASIC_EMOTIONS)]
            for f in features
        ],
        dtype=np.float64,
    ).reshape(len(features), 2 + len(BASIC_EMOTIONS))
    log_probs = np.log(np.clip(probs, 1e-6, 1.0))
    return np.hstack([embeddings.astype(np.float64), log_probs, surface])


@dataclass(frozen=True)
class TextHead:
    weights: np.ndarray  # (inputs, 7)
    bias: np.ndarray  # (7,), neutral bias included
    fingerprint: str  # "<encoder> | <prototype digest>"
    # Share of the head in the answer: log scores = blend x head logits + (1 - blend) x log
    # prototype scores. Chosen with the fit (benchmarks/fit_text_head.py), so it lives in the
    # file: a head that reads comments well but dialogue badly alone is mixed, not swapped in.
    blend: float = 1.0

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(inputs @ self.weights + self.bias)

    def blended(self, inputs: np.ndarray) -> np.ndarray:
        """Log scores (unnormalised) of the head mixed with the prototype scores it reads (the
        inputs carry them: `head_inputs`)."""
        return np.asarray(
            self.blend * self.logits(inputs) + (1.0 - self.blend) * inputs[:, LOG_PROBS]
        )

    def save(self, path: Path = HEAD_PATH) -> None:
        np.savez_compressed(
            path,
            weights=self.weights.astype(np.float32),
            bias=self.bias.astype(np.float32),
            fingerprint=np.array(self.fingerprint),
            blend=np.array(self.blend),
        )


def fingerprint(encoder_name: str, prototype_digest: str) -> str:
    return f"{encoder_name} | {prototype_digest}"


def load_head(expected: str, path: Path = HEAD_PATH) -> TextHead | None:
    """The shipped head, or None (with a warning) when it is missing or belongs to another
    encoder / prototype file."""
    if not path.exists():
        logger.warning("text head %s not found: prototype scores are used as they are", path)
        return None
    with np.load(path) as data:
        head = TextHead(
            weights=data["weights"].astype(np.float64),
            bias=data["bias"].astype(np.float64),
            fingerprint=str(data["fingerprint"]),
            # Files written before the blend existed hold a head meant to be used alone.
            blend=float(data["blend"]) if "blend" in data.files else 1.0,
        )
    if head.fingerprint != expected:
        logger.warning(
            "text head was fitted for %r, not %r: prototype scores are used as they are "
            "(refit with benchmarks/fit_text_head.py)",
            head.fingerprint,
            expected,
        )
        return None
    return head
