"""The expression of one face over time: clip scores, the peak moment and how it changes.

Inputs are the per-frame probabilities over BASIC_EMOTIONS of one face track with their times.

- Clip scores weight each frame by how expressive it is, `NEUTRAL_WEIGHT + (1 - p(neutral))`, so
  a smile held for a third of the clip is not averaged away by the neutral frames around it (EMER
  annotators name what the face shows, not its resting state), while a clip that stays the same
  (every still image) gets exactly its frames' scores. An expressive frame counts at most
  (1 + NEUTRAL_WEIGHT) / NEUTRAL_WEIGHT = 5 times a fully neutral one.
- The peak moment is the frame with the highest non-neutral probability (the earliest of equals).
- The course is the run of per-frame leading emotions, smoothed by a 3-frame majority and with
  runs of a single frame merged into their neighbours, so one misread frame is not a change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.common.types import BASIC_EMOTIONS

NEUTRAL_WEIGHT = 0.25
NEUTRAL = BASIC_EMOTIONS.index("neutral")
PEAK_MIN = 0.5  # a peak below this non-neutral probability is not worth a sentence
MAX_RUNS = 4

# What a moment shows, as a noun phrase ("then a smile from 1.2 s").
MOMENT = {
    "angry": "an angry look",
    "disgust": "a look of disgust",
    "fear": "a fearful look",
    "happy": "a smile",
    "sad": "a sad look",
    "surprise": "a surprised look",
    "neutral": "a neutral face",
}


def weights(probs: np.ndarray) -> np.ndarray:
    """Per-frame weights of the clip scores (see the module docstring)."""
    return NEUTRAL_WEIGHT + (1.0 - probs[:, NEUTRAL])


def clip_scores(probs: np.ndarray) -> dict[str, float]:
    """Expressiveness-weighted mean of (n, 7) per-frame probabilities, summing to 1."""
    mean = np.average(probs, axis=0, weights=weights(probs))
    mean = mean / max(float(mean.sum()), 1e-9)
    return {e: float(p) for e, p in zip(BASIC_EMOTIONS, mean, strict=True)}


@dataclass
class Peak:
    """The most expressive sampled frame of a face."""

    t: float
    emotion: str  # the leading non-neutral emotion there
    probability: float  # its probability
    expressiveness: float  # 1 - p(neutral) there


def peak(times: list[float], probs: np.ndarray) -> Peak:
    expressive = 1.0 - probs[:, NEUTRAL]
    i = int(np.argmax(expressive))
    row = probs[i].copy()
    row[NEUTRAL] = -1.0
    e = int(np.argmax(row))
    return Peak(float(times[i]), BASIC_EMOTIONS[e], float(probs[i, e]), float(expressive[i]))


def course(times: list[float], probs: np.ndarray) -> list[tuple[str, float, float]]:
    """(leading emotion, start, end) runs over the frames, smoothed (module docstring)."""
    labels = [int(i) for i in np.argmax(probs, axis=1)]
    if len(labels) >= 3:
        smoothed = labels[:]
        for k in range(1, len(labels) - 1):
            window = labels[k - 1 : k + 2]
            top = max(set(window), key=window.count)
            # Majority of three; with three different labels keep the frame's own.
            smoothed[k] = top if window.count(top) >= 2 else labels[k]
        labels = smoothed
    runs: list[list[int]] = []  # [label, first frame, last frame]
    for k, label in enumerate(labels):
        if runs and runs[-1][0] == label:
            runs[-1][2] = k
        else:
            runs.append([label, k, k])
    if len(labels) >= 5:
        # A one-frame run between or beside longer ones is noise: give it to the previous run.
        merged: list[list[int]] = []
        for run in runs:
            if merged and (run[2] == run[1] or merged[-1][0] == run[0]):
                merged[-1][2] = run[2]
            else:
                merged.append(run)
        if len(merged) > 1 and merged[0][2] == merged[0][1]:
            merged[1][1] = merged[0][1]
            merged = merged[1:]
        runs = merged
    return [(BASIC_EMOTIONS[label], times[a], times[b]) for label, a, b in runs]


def course_sentence(runs: list[tuple[str, float, float]]) -> str:
    """'The expression changes: a neutral face at first, then a smile from 2.0 s.'"""
    if len(runs) == 1:
        return f"The expression stays the same throughout ({MOMENT[runs[0][0]]})."
    steps = [f"{MOMENT[runs[0][0]]} at first"]
    steps += [f"then {MOMENT[e]} from {a:.1f} s" for e, a, _ in runs[1:MAX_RUNS]]
    more = ""
    if len(runs) > MAX_RUNS:
        more = f", and {len(runs) - MAX_RUNS} more changes"
    return f"The expression changes: {', '.join(steps)}{more}."


def peak_sentence(p: Peak) -> str:
    if p.expressiveness < PEAK_MIN:
        return "No moment is clearly expressive; the face stays mostly neutral."
    return (
        f"The most expressive moment is at {p.t:.1f} s: {MOMENT[p.emotion]} "
        f"({p.emotion} {p.probability:.2f})."
    )
