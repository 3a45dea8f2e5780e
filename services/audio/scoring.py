"""Voice scores from prosody features: the arousal model (a small logistic model fitted with
the leave-one-speaker-out protocol of benchmarks/eval_audio_speakers.py) and the category
scores it supports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.audio.prosody import ProsodyFeatures
from services.common.types import BASIC_EMOTIONS

# Mean and standard deviation of each feature over the 150 shared clips (RAVDESS, TESS,
# EmoDB at 16 kHz), printed by `python benchmarks/eval_audio.py --fit`. Only used to put
# features on a common scale; values outside +-3 SD are clipped so one odd measurement
# cannot dominate.
FEATURE_NORMS: dict[str, tuple[float, float]] = {
    "alpha_ratio_db": (-12.1435, 4.9332),
    "hammarberg_db": (22.2556, 5.2954),
    "jitter_like_pct": (2.6305, 0.8727),
    "shimmer_like_db": (2.0111, 0.6391),
    "pitch_std_st": (3.1236, 1.4678),
    "loudness_range_db": (32.9496, 10.5107),
    "voiced_ratio": (0.7463, 0.1519),
    "hnr_db": (9.8542, 3.9652),
    "speech_rate_sps": (3.258, 1.1032),
    "pitch_end_slope_st": (-1.2141, 4.6561),
    "pitch_level_st": (11.9392, 6.2017),
    # added later, over the 129 clips with an arousal label and speech
    "alpha_level_slope": (0.0243, 0.3226),
}

# Arousal: logistic regression on z-scored features that are free of the recording gain, of
# the speaker's own pitch level and of a fixed spectral colouring (a dark voice, a dull
# microphone), fitted with `benchmarks/eval_audio_speakers.py --fit` on the shared RAVDESS +
# TESS + EmoDB clips plus copies of them made darker, brighter and 3 semitones lower (each
# corpus and class weighted equally, L2 C=0.1). Without those copies the weights leaned on the
# absolute spectral tilt and a darker voice was heard as calm (0.64 accuracy on darkened clips
# of unseen speakers against 0.90 on the originals). The alpha ratio stays, with less weight
# than its dynamics: how much brighter the voice gets when louder (`alpha_level_slope`) and how
# fast pitch and level move. Leave-one-speaker-out and leave-one-corpus-out results, per
# speaker and per shift, are in docs/models/audio.md.
AROUSAL_FEATURES: tuple[str, ...] = (
    "alpha_ratio_db",
    "alpha_level_slope",
    "jitter_like_pct",
    "pitch_std_st",
    "shimmer_like_db",
)
AROUSAL_WEIGHTS: dict[str, float] = {
    "alpha_ratio_db": 0.9064,  # flatter spectrum (more energy above 1 kHz): more vocal effort
    "alpha_level_slope": 0.4735,  # the spectrum flattens as the voice gets louder: effort
    "jitter_like_pct": 1.2489,  # faster pitch movement from one 20 ms frame to the next
    "pitch_std_st": 0.3522,  # more pitch variation, in semitones (free of the speaker's pitch)
    "shimmer_like_db": 0.2003,  # faster level movement on voiced frames
}
AROUSAL_BIAS = 0.7826

# Categories: hand-set weights (z-score units) within each arousal group, read off the
# per-corpus class means of the shared clips (a pattern is used when at least two of the
# three corpora agree on it), so the category numbers in docs/models/audio.md are in-sample.
# Prosody separates arousal well but categories only weakly.
HIGH_AROUSAL = ("angry", "happy", "fear", "surprise")
LOW_AROUSAL = ("sad", "neutral", "disgust")
CATEGORY_WEIGHTS: dict[str, dict[str, float]] = {
    # pressed, harsh voice: flat spectrum, low HNR, less voicing, loudness swings, level pitch
    "angry": {
        "alpha_ratio_db": 0.5,
        "hammarberg_db": -0.3,
        "hnr_db": -0.6,
        "voiced_ratio": -0.5,
        "loudness_range_db": 0.4,
        "pitch_std_st": -0.3,
    },
    # well voiced and clear, falling (not questioning) endings
    "happy": {"voiced_ratio": 0.8, "pitch_end_slope_st": -0.6, "hnr_db": 0.3},
    # raised but level pitch, hurried
    "fear": {"pitch_level_st": 0.6, "speech_rate_sps": 0.5, "pitch_std_st": -0.4},
    # large, fast pitch excursions without a pressed voice
    "surprise": {
        "pitch_std_st": 0.8,
        "jitter_like_pct": 0.5,
        "alpha_ratio_db": -0.4,
        "loudness_range_db": -0.3,
    },
    # lax, dark voice (steep spectral tilt), low pitch
    "sad": {"hammarberg_db": 0.6, "alpha_ratio_db": -0.4, "pitch_level_st": -0.4},
    # steady: little pitch movement, fully voiced
    "neutral": {"jitter_like_pct": -0.5, "pitch_std_st": -0.4, "voiced_ratio": 0.3},
    # less voicing, some pitch movement, rising or drawn-out endings, emphasis
    "disgust": {
        "voiced_ratio": -0.8,
        "jitter_like_pct": 0.4,
        "pitch_end_slope_st": 0.3,
        "loudness_range_db": 0.3,
    },
}
# Neutral is the reading when no cue stands out: a small head start within the low group.
CATEGORY_PRIOR: dict[str, float] = {"neutral": 0.3}
# Valence of each category as heard in the voice; kept modest because prosody tells the
# sign of valence poorly (anger and joy sound alike).
CATEGORY_VALENCE: dict[str, float] = {
    "angry": -0.6,
    "disgust": -0.6,
    "fear": -0.5,
    "happy": 0.7,
    "sad": -0.6,
    "surprise": 0.3,
    "neutral": 0.0,
}


def feature_values(f: ProsodyFeatures) -> dict[str, float]:
    """Every scored feature of `f` by name (NaN where it could not be measured)."""
    values = {
        "alpha_ratio_db": f.alpha_ratio_db,
        "hammarberg_db": f.hammarberg_db,
        "jitter_like_pct": f.jitter_like_pct,
        "shimmer_like_db": f.shimmer_like_db,
        "alpha_level_slope": f.alpha_level_slope,
        "pitch_std_st": f.pitch_std_st,
        "loudness_range_db": f.loudness_range_db,
        "voiced_ratio": f.voiced_ratio,
        "hnr_db": f.hnr_db,
        "speech_rate_sps": f.speech_rate_sps,
        "pitch_end_slope_st": f.pitch_end_slope_st,
        "pitch_level_st": (
            12.0 * math.log2(f.pitch_median_hz / 100.0)
            if math.isfinite(f.pitch_median_hz) and f.pitch_median_hz > 0
            else float("nan")
        ),
    }
    return {k: float(v) for k, v in values.items()}


def feature_z(f: ProsodyFeatures) -> dict[str, float]:
    """z-scores of the scored features; an unmeasured feature counts as average (0)."""
    out: dict[str, float] = {}
    for key, value in feature_values(f).items():
        mean, sd = FEATURE_NORMS.get(key, (0.0, 1.0))
        z = (value - mean) / sd if math.isfinite(value) and sd > 0 else 0.0
        out[key] = float(np.clip(z, -3.0, 3.0))
    return out


def _softmax(logits: dict[str, float]) -> dict[str, float]:
    top = max(logits.values())
    exp = {k: math.exp(v - top) for k, v in logits.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


@dataclass
class VoiceScores:
    """What the voice suggests: arousal, category probabilities, valence."""

    arousal_logit: float
    arousal: float  # [-1, 1]
    p_high: float  # probability of high arousal
    emotions: dict[str, float]  # BASIC_EMOTIONS, sums to 1
    valence: float  # [-1, 1]


def score(f: ProsodyFeatures) -> VoiceScores:
    """Arousal from the fitted logistic model; categories split within each arousal group."""
    z = feature_z(f)
    logit = AROUSAL_BIAS + sum(w * z[k] for k, w in AROUSAL_WEIGHTS.items())
    p_high = 1.0 / (1.0 + math.exp(-logit))

    def group(names: tuple[str, ...]) -> dict[str, float]:
        return _softmax(
            {
                c: CATEGORY_PRIOR.get(c, 0.0)
                + sum(w * z[k] for k, w in CATEGORY_WEIGHTS[c].items())
                for c in names
            }
        )

    high, low = group(HIGH_AROUSAL), group(LOW_AROUSAL)
    emotions = {
        c: p_high * high.get(c, 0.0) + (1.0 - p_high) * low.get(c, 0.0) for c in BASIC_EMOTIONS
    }
    total = sum(emotions.values())
    emotions = {c: v / total for c, v in emotions.items()}
    valence = sum(emotions[c] * CATEGORY_VALENCE[c] for c in BASIC_EMOTIONS)
    return VoiceScores(
        arousal_logit=logit,
        arousal=math.tanh(logit / 2.0),  # = 2 * p_high - 1
        p_high=p_high,
        emotions=emotions,
        valence=float(np.clip(valence, -1.0, 1.0)),
    )
