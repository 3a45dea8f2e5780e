"""Arousal on speakers and recordings the model has never met: nested protocols and shifts.

Run from the repository root:

    python benchmarks/eval_audio_speakers.py           # the protocols below, as markdown
    python benchmarks/eval_audio_speakers.py --fit     # the shipped constants (all clips)
    python benchmarks/eval_audio_speakers.py --cache /tmp/feats.json   # measure once (~2 min)

Every figure here comes from a fold whose test speaker (or corpus) took no part in anything
that was fitted: the z-score constants and the logistic weights are refitted inside each fold
on the other speakers only. Speakers: the 12 RAVDESS actors, TESS YAF, and the 5 EmoDB
speakers (18 folds); corpora: RAVDESS, TESS, EmoDB (3 folds).

Unseen speakers differ from the shared ones in ways 18 speakers cannot show, so each test clip
is also scored after a shift that keeps its emotion but changes the voice or the recording:
- `darker`: a first-order low-pass at 1 kHz (about -6 dB per octave above it: a duller voice or
  microphone; what an older or softer speaker does to the spectral tilt);
- `brighter`: pre-emphasis (1 - 0.7 z^-1);
- `lower`: pitch shifted down 3 semitones (librosa's phase vocoder, which also smears the
  pitch track: the harshest of the four);
- `noise20`: white noise at 20 dB SNR, a shift no model here is trained on.
Models are fitted either on the original clips only or on the originals plus their `darker`,
`brighter` and `lower` copies (augmentation: the same emotion under other voices, so that the
weights cannot lean on one speaker's absolute tilt). The shipped arousal model is the one
`--fit` prints: AROUSAL_FEATURES fitted on every clip with augmentation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.eval_audio import arousal_target, data_root, load_items  # noqa: E402
from services.audio import embedded, prosody, scoring  # noqa: E402
from services.audio.config import AudioConfig  # noqa: E402

FIT_C = 0.1  # inverse L2 strength, as in eval_audio.py
SR = prosody.SAMPLE_RATE
TRAIN_SHIFTS = ("orig", "darker", "brighter", "lower")
TEST_SHIFTS = ("orig", "darker", "brighter", "lower", "noise20")
# The shipped four-feature model before augmentation, for comparison.
PREVIOUS_FEATURES = ("alpha_ratio_db", "hammarberg_db", "jitter_like_pct", "pitch_std_st")


def darker(y: np.ndarray) -> np.ndarray:
    b, a = scipy.signal.butter(1, 1000, fs=SR)
    return np.asarray(scipy.signal.lfilter(b, a, y), dtype=np.float32)


def brighter(y: np.ndarray) -> np.ndarray:
    return np.asarray(scipy.signal.lfilter([1.0, -0.7], [1.0], y), dtype=np.float32)


def lower(y: np.ndarray) -> np.ndarray:
    import librosa

    return np.asarray(librosa.effects.pitch_shift(y, sr=SR, n_steps=-3), dtype=np.float32)


def noise20(y: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    power = float(np.mean(y**2))
    return (y + rng.normal(0.0, np.sqrt(power / 100.0), len(y))).astype(np.float32)


SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "orig": lambda y: y,
    "darker": darker,
    "brighter": brighter,
    "lower": lower,
    "noise20": noise20,
}


@dataclass
class Row:
    corpus: str
    speaker: str  # "corpus:speaker"
    label: str
    shift: str
    target: int
    values: dict[str, float]


def measure() -> list[Row]:
    """Features of every labelled clip under every shift (clips without speech are left out:
    the service reports those as 'no speech', not as an arousal)."""
    analyzer = embedded.ProsodyAnalyzer(AudioConfig())
    rows = []
    for item in load_items(data_root()):
        target = arousal_target(item.label)
        if target is None:
            continue
        y, _ = analyzer.prepare(item.clip)
        for shift, fn in SHIFTS.items():
            result = analyzer.analyze(fn(y))
            if result is None:
                continue
            rows.append(
                Row(
                    item.corpus,
                    f"{item.corpus}:{item.speaker}",
                    item.label,
                    shift,
                    target,
                    scoring.feature_values(result[1]),
                )
            )
    return rows


@dataclass
class Model:
    names: tuple[str, ...]
    mean: np.ndarray
    sd: np.ndarray
    weights: np.ndarray
    bias: float

    def z(self, rows: Sequence[Row]) -> np.ndarray:
        x = np.array([[r.values.get(k, np.nan) for k in self.names] for r in rows], dtype=float)
        z = (x - self.mean) / self.sd
        z[~np.isfinite(z)] = 0.0  # unmeasured = average, as feature_z does
        return np.clip(z, -3.0, 3.0)

    def logits(self, rows: Sequence[Row]) -> np.ndarray:
        return np.asarray(self.z(rows) @ self.weights + self.bias)


def norms(rows: Sequence[Row], names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of each feature over the original clips of `rows`."""
    originals = [r for r in rows if r.shift == "orig"]
    x0 = np.array([[r.values.get(k, np.nan) for k in names] for r in originals], dtype=float)
    mean, sd = np.nanmean(x0, axis=0), np.nanstd(x0, axis=0)
    sd[~(sd > 0)] = 1.0
    return mean, sd


def fit(
    rows: Sequence[Row],
    names: tuple[str, ...],
    shifts: Sequence[str],
    fixed_norms: dict[str, tuple[float, float]] | None = None,
) -> Model:
    """Logistic regression; every (corpus, class) cell carries the same total weight; the
    z-score constants come from the original clips of the training speakers (or, for the
    shipped constants, from `fixed_norms`: the service's FEATURE_NORMS)."""
    from sklearn.linear_model import LogisticRegression

    mean, sd = norms(rows, names)
    if fixed_norms is not None:
        mean = np.array([fixed_norms[k][0] for k in names])
        sd = np.array([fixed_norms[k][1] for k in names])
    model = Model(names, mean, sd, np.zeros(len(names)), 0.0)
    train = [r for r in rows if r.shift in shifts]
    y = np.array([r.target for r in train])
    cells: dict[tuple[str, int], int] = {}
    for r in train:
        cells[(r.corpus, r.target)] = cells.get((r.corpus, r.target), 0) + 1
    w = np.array([1.0 / cells[(r.corpus, r.target)] for r in train])
    lr = LogisticRegression(C=FIT_C, max_iter=1000)
    lr.fit(model.z(train), y, sample_weight=w * len(w) / w.sum())
    model.weights, model.bias = lr.coef_[0], float(lr.intercept_[0])
    return model


def held_out(
    rows: Sequence[Row], names: tuple[str, ...], shifts: Sequence[str], by: str
) -> dict[str, dict[str, tuple[int, int]]]:
    """shift -> held-out group -> (correct, n), every group scored by a model fitted without it."""
    key: Callable[[Row], str] = (lambda r: r.speaker) if by == "speaker" else (lambda r: r.corpus)
    out: dict[str, dict[str, tuple[int, int]]] = {s: {} for s in TEST_SHIFTS}
    for group in sorted({key(r) for r in rows}):
        model = fit([r for r in rows if key(r) != group], names, shifts)
        for shift in TEST_SHIFTS:
            test = [r for r in rows if key(r) == group and r.shift == shift]
            if test:
                hits = (model.logits(test) > 0) == np.array([r.target for r in test])
                out[shift][group] = (int(hits.sum()), len(test))
    return out


def accuracy(cells: dict[str, tuple[int, int]]) -> float:
    n = sum(c[1] for c in cells.values())
    return sum(c[0] for c in cells.values()) / n if n else float("nan")


def report(rows: list[Row]) -> None:
    variants = {
        "previous 4 features, originals only": (PREVIOUS_FEATURES, ("orig",)),
        "previous 4 features, augmented": (PREVIOUS_FEATURES, TRAIN_SHIFTS),
        "shipped features, originals only": (scoring.AROUSAL_FEATURES, ("orig",)),
        "**shipped: features + augmentation**": (scoring.AROUSAL_FEATURES, TRAIN_SHIFTS),
    }
    per_speaker: dict[str, tuple[int, int]] = {}
    for by in ("speaker", "corpus"):
        print(f"\nLeave one {by} out, binary arousal accuracy under each shift of the test clips\n")
        print("| model | " + " | ".join(TEST_SHIFTS) + " | mean |")
        print("|---|" + "---:|" * (len(TEST_SHIFTS) + 1))
        for title, (names, shifts) in variants.items():
            result = held_out(rows, names, shifts, by)
            accs = [accuracy(result[s]) for s in TEST_SHIFTS]
            print(
                f"| {title} | "
                + " | ".join(f"{a:.3f}" for a in accs)
                + f" | {float(np.mean(accs)):.3f} |"
            )
            if by == "speaker" and shifts == TRAIN_SHIFTS and names == scoring.AROUSAL_FEATURES:
                per_speaker = result["orig"]
    print("\nShipped model, leave one speaker out, original clips, per speaker\n")
    print("| speaker | correct / clips | accuracy |\n|---|---:|---:|")
    for speaker, (hits, n) in per_speaker.items():
        print(f"| {speaker} | {hits} / {n} | {hits / n:.2f} |")
    for corpus in ("ravdess", "tess", "emodb"):
        cells = {k: v for k, v in per_speaker.items() if k.startswith(corpus + ":")}
        print(f"| **{corpus} (all its speakers)** | | **{accuracy(cells):.3f}** |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true", help="print the shipped constants")
    parser.add_argument("--cache", type=Path, help="reuse (or write) the measured features here")
    args = parser.parse_args()
    if args.cache and args.cache.exists():
        rows = [Row(**r) for r in json.loads(args.cache.read_text())]
    else:
        rows = measure()
        if args.cache:
            args.cache.write_text(json.dumps([dataclasses.asdict(r) for r in rows]))
    if args.fit:
        names = scoring.AROUSAL_FEATURES
        missing = [k for k in names if k not in scoring.FEATURE_NORMS]
        if missing:
            mean, sd = norms(rows, tuple(missing))
            print("FEATURE_NORMS to add (mean, sd of the original clips with speech):")
            for k, m, s in zip(missing, mean, sd, strict=True):
                print(f'    "{k}": ({m:.4f}, {s:.4f}),')
            return
        model = fit(rows, names, TRAIN_SHIFTS, scoring.FEATURE_NORMS)
        print("AROUSAL_WEIGHTS:")
        for k, w in zip(model.names, model.weights, strict=True):
            print(f'    "{k}": {w:.4f},')
        print(f"AROUSAL_BIAS = {model.bias:.4f}")
        return
    report(rows)


if __name__ == "__main__":
    main()
