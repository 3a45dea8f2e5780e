"""The request mix of `emer loadtest`: weighted entries (media and/or subtitle), the project's
demo inputs by default or a YAML/JSON mix file."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from emer_proto import emotion_pb2 as pb

from clients.client import EmotionClient
from clients.media_requests import media_kind_for

__all__ = ["DEMO_INPUTS", "REPO", "MixEntry", "default_mix", "load_mix"]

REPO = Path(__file__).resolve().parents[1]
DEMO_INPUTS = REPO / "demo" / "inputs"


@dataclass
class MixEntry:
    name: str
    media: str | None
    subtitle: str
    weight: float
    request: pb.AnalyzeRequest = field(repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "media": self.media,
            "subtitle": self.subtitle,
            "weight": self.weight,
            "media_bytes": len(self.request.media),
        }


def _entry(
    media: str | Path | None, subtitle: str, weight: float, name: str | None = None
) -> MixEntry:
    if weight <= 0 or not math.isfinite(weight):
        raise ValueError(f"mix weight must be positive, got {weight!r}")
    if media is None and not subtitle:
        raise ValueError("a mix entry needs media, a subtitle or both")
    data = Path(media).read_bytes() if media is not None else b""
    kind = media_kind_for(media) if media is not None else pb.MEDIA_KIND_UNSPECIFIED
    request = EmotionClient.request(data, media_kind=kind, subtitle=subtitle)
    label = name or (Path(media).name if media is not None else "text-only")
    return MixEntry(label, str(media) if media is not None else None, subtitle, weight, request)


def default_mix() -> list[MixEntry]:
    """The project's demo inputs: video, audio-only, image-only and a text-only subtitle."""
    return [
        _entry(DEMO_INPUTS / "astronaut-greeting.mp4", "", 0.4, "video"),
        _entry(DEMO_INPUTS / "waited.wav", "", 0.2, "audio-only"),
        _entry(DEMO_INPUTS / "astronaut-portrait.jpg", "", 0.2, "image-only"),
        _entry(None, "I waited for hours and nobody even called me back.", 0.2, "text-only"),
    ]


def load_mix(path: str | Path) -> list[MixEntry]:
    """A YAML or JSON list of {media: path or null, subtitle: str, weight: float, name: str?}.
    Relative media paths are read from the mix file's folder."""
    path = Path(path)
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: expected a non-empty list of mix entries")
    out: list[MixEntry] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: entry {i} is not a mapping")
        media = item.get("media")
        if media is not None:
            media = Path(media) if Path(media).is_absolute() else path.parent / media
        name = item.get("name") or (
            f"{i}:{Path(media).name}" if media is not None else f"{i}:text-only"
        )
        out.append(
            _entry(media, str(item.get("subtitle") or ""), float(item.get("weight", 1.0)), name)
        )
    return out
