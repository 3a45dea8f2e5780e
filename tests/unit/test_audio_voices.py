"""Arousal when the voice or the recording differs from the shared speakers' (real clips)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch

from services.audio import AudioConfig
from services.audio.embedded import EmbeddedAudioModel
from services.common.types import AudioClip
from services.media.decode import DecodeOptions, MediaKind, decode_media

HIGH = {"angry", "happy", "fearful", "surprised", "pleasant_surprise"}
LOW = {"neutral", "calm", "sad"}


@pytest.fixture(scope="module")
def model() -> EmbeddedAudioModel:
    torch.set_num_threads(1)
    return EmbeddedAudioModel(AudioConfig())


def _darker(clip: AudioClip) -> AudioClip:
    """A first-order low-pass at 1 kHz: a duller voice or microphone, same emotion."""
    b, a = scipy.signal.butter(1, 1000, fs=clip.sample_rate)
    samples = scipy.signal.lfilter(b, a, clip.samples).astype(np.float32)
    return AudioClip(samples=samples, sample_rate=clip.sample_rate)


def _clips(root: Path, corpus: str) -> list[tuple[int, AudioClip]]:
    folder = root / "speech" / corpus
    out = []
    with open(folder / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["label"] not in HIGH | LOW:
                continue
            media = decode_media(
                (folder / row["file"]).read_bytes(), MediaKind.AUDIO, DecodeOptions()
            )
            assert media.audio is not None
            out.append((int(row["label"] in HIGH), media.audio))
    return out


@pytest.mark.parametrize("corpus", ["ravdess", "tess"])
def test_a_darker_voice_keeps_its_arousal(
    model: EmbeddedAudioModel, emer_data: Path, corpus: str
) -> None:
    clips = _clips(emer_data, corpus)
    hits, shifts = [], []
    for target, clip in clips:
        original = model.analyze(clip, transcribe=False).clue
        darker = model.analyze(_darker(clip), transcribe=False).clue
        assert original.available and darker.available
        hits.append((darker.arousal > 0) == bool(target))
        shifts.append(darker.arousal - original.arousal)
    # The model fitted on the original clips only scored 0.69 (RAVDESS) and 0.50 (TESS) here:
    # it heard every darkened clip as calm. The shipped model scores 0.82 and 0.88.
    assert float(np.mean(hits)) >= 0.78
    # Darkening may lower arousal a little, not flip the reading of the corpus.
    assert float(np.mean(shifts)) > -0.35
