"""Production visual backend: a Hugging Face image-classification model on the face crops.

Face detection, landmark cues, time segments and wording are the embedded backend's; only the
expression scores come from the transformers `image-classification` pipeline, loaded from a
local folder or a hub name (`VisualConfig.model`). Its labels are mapped onto BASIC_EMOTIONS by
name ("happiness" -> happy, "contempt" -> disgust...); labels that map to none are dropped and
the remaining probabilities renormalised. Importing this module imports torch and transformers,
so `services.visual.load_model` imports it only when the backend is selected.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import pipeline

from services.common.types import BASIC_EMOTIONS, ModelInfo
from services.visual.config import VisualConfig
from services.visual.embedded import EmbeddedVisualModel
from services.visual.networks import CropSpec, crop_roi

# Label spellings of common facial-expression datasets (FER2013, AffectNet, RAF-DB, CK+...).
_SYNONYMS: dict[str, str] = {
    "angry": "angry", "anger": "angry", "ang": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust",
    # AffectNet's 8th class; contempt is closest to disgust among the basic seven.
    "contempt": "disgust",
    "fear": "fear", "fearful": "fear", "scared": "fear", "afraid": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "hap": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise", "sur": "surprise",
    "neutral": "neutral", "neu": "neutral", "calm": "neutral",
}  # fmt: skip


def map_label(label: str) -> str | None:
    """The basic emotion a classifier label names, or None ('LABEL_3', 'other'...)."""
    words = re.findall(r"[a-z]+", label.lower())
    for word in [label.strip().lower(), *words]:
        if word in _SYNONYMS:
            return _SYNONYMS[word]
    return None


class HuggingFaceVisualModel(EmbeddedVisualModel):
    """Embedded detection and cues, expression scores from a transformers image classifier."""

    backend = "huggingface"

    def __init__(self, config: VisualConfig) -> None:
        if not config.model:
            raise ValueError("the huggingface visual backend needs `model` (a folder or hub name)")
        super().__init__(config)

    def _init_classifier(self) -> None:
        cfg = self.config
        torch.set_num_threads(cfg.num_threads)
        self.pipe = pipeline("image-classification", model=cfg.model, device=cfg.device)
        id2label = {int(k): str(v) for k, v in (self.pipe.model.config.id2label or {}).items()}
        self.labels = [id2label[i] for i in sorted(id2label)]
        self.label_map = {label: map_label(label) for label in self.labels}
        if not any(self.label_map.values()):
            raise ValueError(
                f"none of the labels of {cfg.model} ({', '.join(self.labels)}) name a basic "
                f"emotion ({', '.join(BASIC_EMOTIONS)})"
            )
        revision = getattr(self.pipe.model.config, "_commit_hash", None)
        self._expression_info = ModelInfo(
            role="visual",
            name=str(cfg.model),
            version=revision or f"transformers-{transformers.__version__}",
            backend="huggingface",
        )

    def _expression_scores(self, frames: list[np.ndarray], crops: list[CropSpec]) -> np.ndarray:
        size = self.config.hf_crop_size
        images = [
            Image.fromarray(crop_roi(frame, spec.centre, spec.size, spec.angle, size))
            for frame, spec in zip(frames, crops, strict=True)
        ]
        outputs = self.pipe(images, top_k=len(self.labels), batch_size=self.config.hf_batch_size)
        rows = np.zeros((len(images), len(BASIC_EMOTIONS)))
        for row, output in zip(rows, outputs, strict=True):
            for item in output:
                emotion = self.label_map.get(str(item["label"]))
                if emotion is not None:
                    row[BASIC_EMOTIONS.index(emotion)] += float(item["score"])
            total = row.sum()
            # A crop whose mass is all on unmapped labels carries no basic-emotion evidence.
            row[:] = row / total if total > 0 else 1.0 / len(BASIC_EMOTIONS)
        return rows
