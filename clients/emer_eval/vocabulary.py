"""The emotion vocabulary of the EMER emotion wheels (MER2025/2026 `wheel_mapping.npz`).

Maps an open-vocabulary word through word forms -> base words -> wheel words -> wheel
category, the way the emotion-wheel metric does. The file is dataset material (CC BY-NC 4.0),
so it is never shipped: it is read from a configured folder (default $EMER_DATA/emer/wheel).
Without it, labels carry no wheel categories and the service says so in `warnings`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

WHEELS = ("wheel1", "wheel2", "wheel3", "wheel4", "wheel5")
LEVELS = ("level1", "level2")


def default_data_dir() -> Path:
    """`$EMER_DATA`; without it `../shared/data` from the working directory (the layout of a
    checkout run from its root), never a path inside the installed package."""
    return Path(os.environ.get("EMER_DATA", "../shared/data"))


def default_wheel_dir() -> Path:
    return default_data_dir() / "emer" / "wheel"


@dataclass(frozen=True)
class EmotionVocabulary:
    format_mapping: dict[str, list[str]]  # word form -> base words
    raw_mapping: dict[str, list[str]]  # base word -> wheel words (synonyms)
    wheels: dict[str, dict[str, dict[str, str]]]  # wheelN -> level -> wheel word -> category

    @classmethod
    def load(cls, folder: Path) -> EmotionVocabulary:
        # allow_pickle: the npz stores Python dicts; it is read only from a configured folder.
        with np.load(folder / "wheel_mapping.npz", allow_pickle=True) as data:
            return cls(
                format_mapping=data["format_mapping"].item(),
                raw_mapping=data["raw_mapping"].item(),
                wheels=data["wheel_map_whole"].item(),
            )

    def base_words(self, word: str) -> list[str]:
        w = word.strip().lower()
        return list(dict.fromkeys(self.format_mapping.get(w, [])))

    def is_emotion(self, word: str) -> bool:
        return bool(self.base_words(word))

    def category(self, word: str, wheel: str, level: str) -> str | None:
        """The wheel category of `word` (None = unmapped), as the MER reference maps it.

        Word form -> base words -> their synonym wheel words; the wheel words are sorted and the
        FIRST one the wheel knows gives the category (the tie-break is on the wheel word, not on
        the category: it matters for words whose synonyms sit in several categories).
        """
        bases = self.format_mapping.get(word.lower().strip())
        if not bases:
            return None
        table = self.wheels[wheel][level]
        for candidate in sorted(w for base in bases for w in self.raw_mapping.get(base, [])):
            if candidate in table:
                return table[candidate]
        return None

    def categories(self, word: str) -> list[str]:
        """All categories as "wheelN/levelK:category"."""
        out = []
        for wheel in sorted(self.wheels):
            for level in LEVELS:
                cat = self.category(word, wheel, level)
                if cat:
                    out.append(f"{wheel}/{level}:{cat}")
        return out


@lru_cache(maxsize=4)
def load_vocabulary(folder: str | None) -> EmotionVocabulary | None:
    """The vocabulary from `folder` (None = default), or None when the files are not there."""
    path = Path(folder) if folder else default_wheel_dir()
    if not (path / "wheel_mapping.npz").exists():
        logger.warning("emotion wheel not found at %s: labels will carry no wheel categories", path)
        return None
    return EmotionVocabulary.load(path)
