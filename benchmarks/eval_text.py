"""Evaluate the text clue model on the shared GoEmotions (Ekman-7) and MELD dev sets and time it.

Run from the repository root:

    python benchmarks/eval_text.py [--no-head] [--backend huggingface --model PATH_OR_HUB_NAME]

The embedded model is measured as shipped: its prototype scores mixed with the head fitted on
GoEmotions dev, so its GoEmotions figures here are in-sample (`--no-head`: the prototypes alone;
`benchmarks/fit_text_head.py --service-cv`: the mix cross-validated). MELD plays no part in the
fit (MELD train chose the head's share), so the MELD figures are held out either way.

Every text goes through `model.analyze()` exactly as the service calls it; the prediction is the
top basic category. Reports, on `$EMER_DATA/text` (default `<repo>/../shared/data`):

- GoEmotions dev, all 5,426 comments: top-1 is correct when it is one of the gold labels;
- GoEmotions dev, single-label comments only: top-1, macro-F1, per-class recall;
- GoEmotions dev, balanced subsample (same number of single-label comments per class, fixed seed):
  top-1, macro-F1, per-class recall (chance = 1/7);
- MELD dev utterances: top-1, macro-F1, weighted-F1, per-class recall, and how often the sign of
  the clue's valence agrees with MELD's positive/negative sentiment label;
- milliseconds per analyze() call (one thread).

Writes docs/figures/text_goemotions_confusion.png (single-label comments) and
docs/figures/text_meld_confusion.png (row-normalised).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.common.types import BASIC_EMOTIONS  # noqa: E402
from services.text import TextConfig, load_model  # noqa: E402

FIGURES = REPO / "docs" / "figures"
# Dataset label names -> BASIC_EMOTIONS.
EKMAN_TO_BASIC = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "joy": "happy",
    "neutral": "neutral",
    "sadness": "sad",
    "surprise": "surprise",
}


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", REPO.parent / "shared" / "data")).resolve()


@dataclass
class Sample:
    text: str
    labels: list[str]  # BASIC_EMOTIONS names; GoEmotions comments may carry several
    sentiment: str = ""  # MELD only: positive / negative / neutral


def load_goemotions(root: Path) -> list[Sample]:
    """GoEmotions dev, Ekman-mapped: `text<TAB>label ids<TAB>id` (raw TSV, no quoting)."""
    folder = root / "text" / "goemotions"
    names = (folder / "ekman_labels.txt").read_text(encoding="utf-8").split()
    samples = []
    for line in (folder / "ekman_dev.tsv").read_text(encoding="utf-8").splitlines():
        text, ids, _ = line.split("\t")
        labels = [EKMAN_TO_BASIC[names[int(i)]] for i in ids.split(",")]
        samples.append(Sample(text, labels))
    return samples


def load_meld(root: Path, split: str = "dev") -> list[Sample]:
    """MELD utterances (Friends), one emotion and one sentiment label each."""
    path = root / "text" / "meld" / f"{split}_sent_emo.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [
            Sample(r["Utterance"], [EKMAN_TO_BASIC[r["Emotion"]]], r["Sentiment"])
            for r in csv.DictReader(f)
        ]


def balanced_subset(
    samples: list[Sample], seed: int = 0, per_class: int | None = None
) -> list[Sample]:
    """Single-label samples, the same number per class (default: the rarest class's count)."""
    by_class: dict[str, list[Sample]] = {b: [] for b in BASIC_EMOTIONS}
    for s in samples:
        if len(s.labels) == 1:
            by_class[s.labels[0]].append(s)
    n = per_class or min(len(v) for v in by_class.values())
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for b in BASIC_EMOTIONS:
        pool = by_class[b]
        picks = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
        out.extend(pool[int(i)] for i in sorted(picks))
    return out


@dataclass
class Prediction:
    label: str
    valence: float
    seconds: float


def predict(model: object, texts: list[str]) -> list[Prediction]:
    out = []
    for text in texts:
        start = time.perf_counter()
        clue = model.analyze(text)  # type: ignore[attr-defined]
        seconds = time.perf_counter() - start
        if not clue.available:
            out.append(Prediction("neutral", 0.0, seconds))
            continue
        label = max(clue.emotion_scores, key=lambda e: clue.emotion_scores[e])
        out.append(Prediction(label, clue.valence, seconds))
    return out


def confusion(gold: list[str], pred: list[str]) -> np.ndarray:
    idx = {b: i for i, b in enumerate(BASIC_EMOTIONS)}
    m = np.zeros((len(BASIC_EMOTIONS), len(BASIC_EMOTIONS)), dtype=int)
    for g, p in zip(gold, pred, strict=True):
        m[idx[g], idx[p]] += 1
    return m


def scores(gold: list[str], pred: list[str]) -> dict[str, object]:
    """Top-1, macro-F1, weighted-F1 and per-class recall of single-label predictions."""
    m = confusion(gold, pred)
    support = m.sum(axis=1)
    predicted = m.sum(axis=0)
    tp = np.diag(m)
    recall = np.divide(tp, support, out=np.zeros(len(tp)), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(len(tp)), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(len(tp)), where=denom > 0)
    present = support > 0
    return {
        "n": int(m.sum()),
        "top1": float(tp.sum() / max(m.sum(), 1)),
        "macro_f1": float(f1[present].mean()),
        "weighted_f1": float((f1 * support).sum() / max(support.sum(), 1)),
        "recall": {b: round(float(recall[i]), 3) for i, b in enumerate(BASIC_EMOTIONS)},
        "confusion": m.tolist(),
    }


def plot_confusion(m: np.ndarray, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros(m.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(BASIC_EMOTIONS)), BASIC_EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(BASIC_EMOTIONS)), BASIC_EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            colour = "white" if norm[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({m[i, j]})",
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
            )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(name: str, result: dict[str, object]) -> None:
    recall = result["recall"]
    assert isinstance(recall, dict)
    per_class = " ".join(f"{b}={recall[b]:.2f}" for b in BASIC_EMOTIONS)
    print(
        f"{name:<34} n={result['n']:<5} top1={result['top1']:.3f} "
        f"macroF1={result['macro_f1']:.3f} weightedF1={result['weighted_f1']:.3f}"
    )
    print(f"{'':<34} recall: {per_class}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["embedded", "huggingface"], default="embedded")
    parser.add_argument("--model", default=None, help="huggingface backend: local path or hub name")
    parser.add_argument(
        "--no-quantize",
        action="store_true",
        help="embedded backend: keep the encoder in float32 (default: int8 dynamic quantization)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the balanced subsample")
    parser.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="balanced subsample size per class (default: rarest class count)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N texts per set")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument(
        "--no-head",
        action="store_true",
        help="the embedded model's prototype scores alone, without the fitted head it mixes "
        "in by default",
    )
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = data_root()
    goemotions = load_goemotions(root)
    meld = load_meld(root, "dev")
    if args.limit:
        goemotions, meld = goemotions[: args.limit], meld[: args.limit]

    start = time.perf_counter()
    model = load_model(
        TextConfig(
            backend=args.backend,
            model=args.model,
            torch_threads=1,
            quantize=not args.no_quantize,
            head=not args.no_head,
        )
    )
    model.warmup()
    print(f"model: {[f'{i.name} {i.version}' for i in model.info]}")
    print(f"load + warm-up: {time.perf_counter() - start:.1f} s")
    if getattr(model, "_head", None) is not None:
        # The head was fitted on GoEmotions dev: scoring it there again is no test of it.
        print(
            "note: GoEmotions figures are in-sample (the text head was fitted on GoEmotions "
            "dev); the cross-validated ones: benchmarks/fit_text_head.py --service-cv"
        )

    ge_pred = predict(model, [s.text for s in goemotions])
    meld_pred = predict(model, [s.text for s in meld])
    label_of = {id(s): p.label for s, p in zip(goemotions, ge_pred, strict=True)}

    results: dict[str, object] = {}
    ge_any = float(np.mean([p.label in s.labels for s, p in zip(goemotions, ge_pred, strict=True)]))
    print(f"{'GoEmotions dev, all (top1 in gold)':<34} n={len(goemotions):<5} top1={ge_any:.3f}")
    results["goemotions_all_top1_in_gold"] = ge_any

    single = [s for s in goemotions if len(s.labels) == 1]
    ge_single = scores([s.labels[0] for s in single], [label_of[id(s)] for s in single])
    report("GoEmotions dev, single-label", ge_single)
    results["goemotions_single"] = ge_single

    balanced = balanced_subset(goemotions, seed=args.seed, per_class=args.per_class)
    ge_bal = scores([s.labels[0] for s in balanced], [label_of[id(s)] for s in balanced])
    report(f"GoEmotions dev, balanced (seed {args.seed})", ge_bal)
    results["goemotions_balanced"] = ge_bal

    # The balanced subsample is small (the rarest class has ~60 comments): show the spread.
    spread = []
    for seed in range(10):
        subset = balanced_subset(goemotions, seed=seed, per_class=args.per_class)
        spread.append(float(np.mean([label_of[id(s)] == s.labels[0] for s in subset])))
    print(
        f"{'GoEmotions balanced, seeds 0-9':<34} top1 mean={statistics.mean(spread):.3f} "
        f"sd={statistics.stdev(spread):.3f} min={min(spread):.3f}"
    )
    results["goemotions_balanced_seeds_0_9"] = spread

    meld_scores = scores([s.labels[0] for s in meld], [p.label for p in meld_pred])
    report("MELD dev", meld_scores)
    results["meld_dev"] = meld_scores
    meld_bal = balanced_subset(meld, seed=args.seed, per_class=args.per_class)
    meld_label = {id(s): p.label for s, p in zip(meld, meld_pred, strict=True)}
    meld_bal_scores = scores([s.labels[0] for s in meld_bal], [meld_label[id(s)] for s in meld_bal])
    report(f"MELD dev, balanced (seed {args.seed})", meld_bal_scores)
    results["meld_dev_balanced"] = meld_bal_scores

    polar = [(s, p) for s, p in zip(meld, meld_pred, strict=True) if s.sentiment != "neutral"]
    sign = float(np.mean([(p.valence > 0) == (s.sentiment == "positive") for s, p in polar]))
    print(f"{'MELD dev valence sign vs sentiment':<34} n={len(polar):<5} agreement={sign:.3f}")
    results["meld_dev_valence_sign_agreement"] = sign

    ms = [p.seconds * 1000 for p in meld_pred]
    ms_ge = [p.seconds * 1000 for p in ge_pred]
    q = statistics.quantiles(ms, n=20)
    print(
        f"time per analyze(), MELD utterances: mean {statistics.mean(ms):.1f} ms, "
        f"p50 {statistics.median(ms):.1f} ms, p95 {q[18]:.1f} ms (1 thread)"
    )
    print(
        f"time per analyze(), GoEmotions comments: mean {statistics.mean(ms_ge):.1f} ms, "
        f"p50 {statistics.median(ms_ge):.1f} ms"
    )
    results["ms_per_call_meld_mean"] = statistics.mean(ms)
    results["ms_per_call_goemotions_mean"] = statistics.mean(ms_ge)

    if not args.no_figures:
        plot_confusion(
            np.array(ge_single["confusion"]),
            f"Text clue ({args.backend}) on GoEmotions dev, single-label "
            f"(n={ge_single['n']}, top-1 {ge_single['top1']:.2f})",
            FIGURES / "text_goemotions_confusion.png",
        )
        plot_confusion(
            np.array(meld_scores["confusion"]),
            f"Text clue ({args.backend}) on MELD dev (n={meld_scores['n']}, "
            f"top-1 {meld_scores['top1']:.2f})",
            FIGURES / "text_meld_confusion.png",
        )
        print(
            f"figures: {FIGURES / 'text_goemotions_confusion.png'}, "
            f"{FIGURES / 'text_meld_confusion.png'}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
