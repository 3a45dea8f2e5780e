"""Evaluate the audio clue model on the shared speech sets and time it.

Run from the repository root:

    python benchmarks/eval_audio.py            # evaluate the shipped model
    python benchmarks/eval_audio.py --fit      # refit the arousal weights, print the constants
    python benchmarks/eval_audio.py --no-asr   # skip the transcripts (faster)
    python benchmarks/eval_audio.py --asr-languages [--asr-threads 2]  # ASR models and routing

Reads `$EMER_DATA/speech/{ravdess,tess,emodb}` (default `<repo>/../shared/data`); every file is
decoded by the service's own media decoder (PyAV, 16 kHz mono). Prints, per corpus:
- binary arousal accuracy and ROC AUC (high: angry, happy, fearful, surprised / pleasant
  surprise, EmoDB anger/happiness/fear; low: neutral, calm, sad, EmoDB sadness/boredom/neutral;
  disgust is left out) of the shipped model, and the same for leave-one-corpus-out refits
  (fit on the other two corpora), the honest estimate for unseen speakers and recordings;
- 7-class accuracy of the category scores (calm counted as neutral, boredom left out);
- transcript word recall against labels.csv (RAVDESS, TESS);
- time per clip: VAD, features + scores, ASR; and a 4 s clip end to end.
Writes `docs/figures/audio_arousal_confusion.png` and `docs/figures/audio_category_confusion.png`.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.audio import embedded, prosody, scoring, wording  # noqa: E402
from services.audio.config import AudioConfig  # noqa: E402
from services.common.types import BASIC_EMOTIONS, AudioClip  # noqa: E402
from services.media.decode import DecodeOptions, MediaKind, decode_media  # noqa: E402

FIGURES = REPO / "docs" / "figures"
CORPORA = ("ravdess", "tess", "emodb")
HIGH = {"angry", "happy", "fearful", "surprised", "pleasant_surprise", "fear", "anger", "happiness"}
LOW = {"neutral", "calm", "sad", "sadness", "boredom"}
TO_BASIC = {
    "angry": "angry",
    "anger": "angry",
    "disgust": "disgust",
    "fearful": "fear",
    "fear": "fear",
    "happy": "happy",
    "happiness": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprised": "surprise",
    "pleasant_surprise": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
}
FIT_C = 0.1  # inverse L2 strength of the arousal logistic regression


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", REPO.parent / "shared" / "data")).resolve()


@dataclass
class Item:
    corpus: str
    file: str
    label: str
    speaker: str
    transcript: str
    clip: AudioClip


def arousal_target(label: str) -> int | None:
    return 1 if label in HIGH else 0 if label in LOW else None


def load_items(root: Path) -> list[Item]:
    items = []
    for corpus in CORPORA:
        folder = root / "speech" / corpus
        with open(folder / "labels.csv", newline="") as f:
            for row in csv.DictReader(f):
                media = decode_media(
                    (folder / row["file"]).read_bytes(), MediaKind.AUDIO, DecodeOptions()
                )
                assert media.audio is not None
                items.append(
                    Item(
                        corpus=corpus,
                        file=row["file"],
                        label=row["label"],
                        speaker=row.get("actor") or row.get("speaker") or "",
                        transcript=row.get("transcript") or row.get("transcript_de") or "",
                        clip=media.audio,
                    )
                )
    return items


@dataclass
class Result:
    item: Item
    feats: prosody.ProsodyFeatures | None
    vad_s: float
    features_s: float


def analyse(items: list[Item], analyzer: embedded.ProsodyAnalyzer) -> list[Result]:
    out = []
    for it in items:
        y, _ = analyzer.prepare(it.clip)
        t0 = time.perf_counter()
        y_n, gain = analyzer.condition(y)
        segments = analyzer.vad(y_n)
        t1 = time.perf_counter()
        feats = None
        if sum(e - s for s, e in segments) >= analyzer.config.min_speech_s:
            tracks = prosody.compute_tracks(y_n, segments, gain_db=gain)
            feats = prosody.summarize(tracks)
            wording.describe(feats, scoring.score(feats))
            wording.observe(tracks, feats, long_pause_s=analyzer.config.long_pause_s)
        t2 = time.perf_counter()
        out.append(Result(it, feats, t1 - t0, t2 - t1))
    return out


# ---------------------------------------------------------------- fitting


def norms(results: list[Result]) -> dict[str, tuple[float, float]]:
    values = [scoring.feature_values(r.feats) for r in results if r.feats is not None]
    out = {}
    for key in values[0]:
        v = np.array([x[key] for x in values])
        v = v[np.isfinite(v)]
        out[key] = (round(float(v.mean()), 4), round(float(v.std()), 4))
    return out


def design(results: list[Result], names: tuple[str, ...]) -> np.ndarray:
    rows = []
    for r in results:
        z = scoring.feature_z(r.feats) if r.feats is not None else {}
        rows.append([z.get(k, 0.0) for k in names])
    return np.array(rows)


def fit_arousal(train: list[Result]) -> tuple[dict[str, float], float]:
    """Logistic regression; every (corpus, class) cell carries the same total weight."""
    from sklearn.linear_model import LogisticRegression

    train = [r for r in train if arousal_target(r.item.label) is not None]
    y = np.array([arousal_target(r.item.label) for r in train])
    cells: dict[tuple[str, int], int] = {}
    for r, t in zip(train, y, strict=True):
        cells[(r.item.corpus, int(t))] = cells.get((r.item.corpus, int(t)), 0) + 1
    w = np.array([1.0 / cells[(r.item.corpus, int(t))] for r, t in zip(train, y, strict=True)])
    w *= len(w) / w.sum()
    lr = LogisticRegression(C=FIT_C, max_iter=1000)
    lr.fit(design(train, scoring.AROUSAL_FEATURES), y, sample_weight=w)
    weights = {
        k: round(float(c), 4) for k, c in zip(scoring.AROUSAL_FEATURES, lr.coef_[0], strict=True)
    }
    return weights, round(float(lr.intercept_[0]), 4)


def logits(results: list[Result], weights: dict[str, float], bias: float) -> np.ndarray:
    x = design(results, tuple(weights))
    return np.asarray(x @ np.array(list(weights.values())) + bias)


def binary_metrics(results: list[Result], scores: np.ndarray) -> tuple[float, float, int]:
    from sklearn.metrics import roc_auc_score

    keep = [i for i, r in enumerate(results) if arousal_target(r.item.label) is not None]
    y = np.array([arousal_target(results[i].item.label) for i in keep])
    s = scores[keep]
    return float(((s > 0) == y).mean()), float(roc_auc_score(y, s)), len(keep)


def held_out(results: list[Result]) -> dict[str, tuple[float, float, int]]:
    """Leave-one-corpus-out and, within RAVDESS, leave-one-actor-out refits."""
    out = {}
    for corpus in CORPORA:
        test = [r for r in results if r.item.corpus == corpus]
        w, b = fit_arousal([r for r in results if r.item.corpus != corpus])
        out[f"{corpus} (fit on the other two)"] = binary_metrics(test, logits(test, w, b))
    rav = [r for r in results if r.item.corpus == "ravdess"]
    scores = np.zeros(len(rav))
    for actor in sorted({r.item.speaker for r in rav}):
        idx = [i for i, r in enumerate(rav) if r.item.speaker == actor]
        left_out = {id(rav[i]) for i in idx}
        w, b = fit_arousal([r for r in results if id(r) not in left_out])
        scores[idx] = logits([rav[i] for i in idx], w, b)
    out["ravdess (leave one actor out)"] = binary_metrics(rav, scores)
    return out


# ---------------------------------------------------------------- reporting


def confusion(true: list[str], pred: list[str], rows: list[str], cols: list[str]) -> np.ndarray:
    m = np.zeros((len(rows), len(cols)), dtype=int)
    for t, p in zip(true, pred, strict=True):
        m[rows.index(t), cols.index(p)] += 1
    return m


def plot(path: Path, panels: list[tuple[str, np.ndarray, list[str], list[str]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4))
    for ax, (title, m, rows, cols) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(m, cmap="Blues")
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=10)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(
                    j,
                    i,
                    str(m[i, j]),
                    ha="center",
                    va="center",
                    color="white" if m[i, j] > m.max() / 2 else "black",
                )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def top_emotion(r: Result) -> str:
    """The highest category score; a clip without detected speech counts as neutral."""
    if r.feats is None:
        return "neutral"
    emotions = scoring.score(r.feats).emotions
    return max(emotions, key=lambda e: emotions[e])


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def _recall(reference: str, hypothesis: str) -> float:
    # \w+ keeps German umlauts and eszett (words() is for English)
    ref = re.findall(r"\w+", reference.lower())
    hyp = set(re.findall(r"\w+", hypothesis.lower()))
    return sum(w in hyp for w in ref) / max(1, len(ref))


def asr_languages(items: list[Item], config: AudioConfig) -> None:
    """Each recogniser forced onto each corpus, whisper-base's language identification, and the
    default profile's routing (no language in the request), timed in CPU seconds per clip."""
    from collections import Counter

    from services.audio.speech import SpeechRecognizer, mean_word_probability

    asr = SpeechRecognizer(config)
    assert asr.multilingual is not None, "the profile has no multilingual model"
    spoken = {"ravdess": "en", "tess": "en", "emodb": "de"}
    clips = {
        c: [(it, prosody.to_mono_16k(it.clip)) for it in items if it.corpus == c] for c in CORPORA
    }
    asr.warmup(clips["ravdess"][0][1])
    print(f"\nASR per clip ({config.num_threads} CTranslate2 thread(s); CPU-s = process time)")
    print(f"{'model':16s} {'corpus':8s} {'recall':>7s} {'CPU-s':>6s} {'wall-s':>6s} {'RTF':>6s}")
    for rec in (asr.english, asr.multilingual):
        for corpus in CORPORA:
            lang = spoken[corpus]
            if lang not in rec.languages:
                lang = "en"  # what an English-only model makes of it
            recalls, cpu, wall, audio_s = [], [], [], 0.0
            for it, y in clips[corpus]:
                c0, w0 = time.process_time(), time.perf_counter()
                tr = rec(y, lang)
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
                audio_s += len(y) / prosody.SAMPLE_RATE
                recalls.append(_recall(it.transcript, tr.text if tr else ""))
            print(
                f"{rec.name:16s} {corpus:8s} {np.mean(recalls):7.3f} {statistics.median(cpu):6.3f}"
                f" {statistics.median(wall):6.3f} {sum(wall) / audio_s:6.3f}"
            )
    print("\nLanguage identification (whisper-base detect_language)")
    for corpus in CORPORA:
        found: Counter[str] = Counter()
        cpu = []
        for _, y in clips[corpus]:
            c0 = time.process_time()
            lang, _ = asr.multilingual.detect_language(y)
            cpu.append(time.process_time() - c0)
            found[lang] += 1
        print(f"{corpus:8s} {dict(found)} CPU-s/clip {statistics.median(cpu):.3f}")
    print("\nDefault routing, no language in the request (gate: tiny.en mean word probability)")
    for corpus in CORPORA:
        recalls, cpu, cpu_en, probs = [], [], [], []
        langs: Counter[str] = Counter()
        sources: Counter[str] = Counter()
        for it, y in clips[corpus]:
            c0 = time.process_time()
            english = asr.english(y, "en")  # what every clip cost before the routing
            cpu_en.append(time.process_time() - c0)
            probs.append(mean_word_probability(english) if english else 0.0)
            c0 = time.process_time()
            heard = asr(y, "")
            cpu.append(time.process_time() - c0)
            langs[heard.language] += 1
            tr = heard.transcript
            sources[tr.source if tr else "none"] += 1
            recalls.append(_recall(it.transcript, tr.text if tr else ""))
        gated = sum(p < config.asr_language_gate for p in probs)
        print(
            f"{corpus:8s} recall {np.mean(recalls):.3f} CPU-s/clip median "
            f"{statistics.median(cpu):.3f} mean {np.mean(cpu):.3f} (tiny.en alone, same clips: "
            f"{statistics.median(cpu_en):.3f} / {np.mean(cpu_en):.3f}); languages {dict(langs)}; "
            f"models {dict(sources)}; tiny.en word probability {min(probs):.2f}-{max(probs):.2f},"
            f" {gated}/{len(probs)} below the gate {config.asr_language_gate}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true", help="refit and print the constants")
    parser.add_argument("--no-asr", action="store_true", help="skip transcripts")
    parser.add_argument(
        "--asr-languages",
        action="store_true",
        help="only the speech recognisers: each model forced, language identification and the "
        "routing of the default profile, with word recall and CPU time per clip",
    )
    parser.add_argument("--asr-threads", type=int, default=1, help="CTranslate2 threads")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    root = data_root()
    print(f"data: {root}")
    items = load_items(root)
    if args.asr_languages:
        asr_languages(items, AudioConfig(num_threads=args.asr_threads))
        return
    model = embedded.EmbeddedAudioModel(AudioConfig())
    model.warmup()
    results = analyse(items, model.prosody)
    missing = [r.item.file for r in results if r.feats is None]
    print(f"{len(items)} clips, {len(missing)} without detected speech {missing}")

    if args.fit:
        scoring.FEATURE_NORMS.clear()
        scoring.FEATURE_NORMS.update(norms(results))
        print("FEATURE_NORMS =", scoring.FEATURE_NORMS)
        w, b = fit_arousal(results)
        print("AROUSAL_WEIGHTS =", w)
        print("AROUSAL_BIAS =", b)
        scoring.AROUSAL_WEIGHTS.clear()
        scoring.AROUSAL_WEIGHTS.update(w)
        scoring.AROUSAL_BIAS = b

    # --- arousal
    print("\nBinary arousal (disgust excluded)")
    print(f"{'set':42s} {'n':>4s} {'accuracy':>9s} {'AUC':>6s}")
    panels = []
    for corpus in CORPORA:
        rs = [r for r in results if r.item.corpus == corpus and r.feats is not None]
        s = np.array([scoring.score(r.feats).arousal_logit for r in rs])  # type: ignore[arg-type]
        acc, auc, n = binary_metrics(rs, s)
        print(f"{corpus + ' (shipped model, in-sample)':42s} {n:4d} {acc:9.3f} {auc:6.3f}")
        keep = [i for i, r in enumerate(rs) if arousal_target(r.item.label) is not None]
        true = ["high" if arousal_target(rs[i].item.label) else "low" for i in keep]
        pred = ["high" if s[i] > 0 else "low" for i in keep]
        m = confusion(true, pred, ["high", "low"], ["high", "low"])
        panels.append(
            (f"{corpus}: arousal acc {acc:.2f} (in-sample)", m, ["high", "low"], ["high", "low"])
        )
    for name, (acc, auc, n) in held_out([r for r in results if r.feats is not None]).items():
        print(f"{name:42s} {n:4d} {acc:9.3f} {auc:6.3f}")
    plot(FIGURES / "audio_arousal_confusion.png", panels)

    # --- categories
    print("\nCategory (7 basic emotions; calm = neutral; boredom excluded)")
    panels = []
    for corpus in CORPORA:
        rs = [r for r in results if r.item.corpus == corpus and r.item.label in TO_BASIC]
        true = [TO_BASIC[r.item.label] for r in rs]
        pred = [top_emotion(r) for r in rs]
        acc = float(np.mean([t == p for t, p in zip(true, pred, strict=True)]))
        labels = [e for e in BASIC_EMOTIONS if e in true]
        chance = max(true.count(e) for e in labels) / len(true)
        print(f"{corpus:10s} n={len(rs):3d} accuracy {acc:.3f} (majority class {chance:.3f})")
        m = confusion(true, pred, labels, list(BASIC_EMOTIONS))
        panels.append(
            (f"{corpus}: 7-class acc {acc:.2f} (in-sample)", m, labels, list(BASIC_EMOTIONS))
        )
    plot(FIGURES / "audio_category_confusion.png", panels)

    # --- transcripts
    if not args.no_asr:
        print("\nTranscript word recall (bundled whisper tiny.en)")
        for corpus in ("ravdess", "tess"):
            recalls, secs = [], []
            for it in [i for i in items if i.corpus == corpus]:
                y, _ = model.prosody.prepare(it.clip)
                t0 = time.perf_counter()
                tr = model.asr(y, "en").transcript
                secs.append(time.perf_counter() - t0)
                got = set(words(tr.text if tr else ""))
                want = words(it.transcript)
                recalls.append(sum(w in got for w in want) / len(want))
            print(
                f"{corpus:10s} n={len(recalls):3d} word recall {np.mean(recalls):.3f} "
                f"exact {np.mean([r == 1.0 for r in recalls]):.3f} "
                f"median ASR {statistics.median(secs):.3f} s/clip"
            )

    # --- runtime
    print("\nTime per clip (1 thread; median over the corpus)")
    for corpus in CORPORA:
        rs = [r for r in results if r.item.corpus == corpus]
        dur = statistics.median(r.item.clip.duration_s for r in rs)
        print(
            f"{corpus:10s} clip {dur:.2f} s  VAD {statistics.median(r.vad_s for r in rs):.3f} s"
            f"  features+scores {statistics.median(r.features_s for r in rs):.3f} s"
        )
    it = next(i for i in items if i.corpus == "ravdess")
    y = np.zeros(4 * prosody.SAMPLE_RATE, dtype=np.float32)
    y16, _ = model.prosody.prepare(it.clip)
    y[: min(len(y), len(y16))] = y16[: len(y)]
    clip4 = AudioClip(samples=y, sample_rate=prosody.SAMPLE_RATE)
    times = []
    for _ in range(3):
        r4 = analyse([Item("ravdess", it.file, it.label, "", "", clip4)], model.prosody)[0]
        t0 = time.perf_counter()
        model.asr(y, "en")
        asr_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.analyze(clip4, transcribe=True)
        total = time.perf_counter() - t0
        times.append((r4.vad_s, r4.features_s, asr_s, total))
    vad_s, feat_s, asr_s, total = (statistics.median(t[i] for t in times) for i in range(4))
    print(
        f"4.0 s clip: VAD {vad_s:.3f} s, features+scores {feat_s:.3f} s, ASR {asr_s:.3f} s, "
        f"analyze(transcribe=True) {total:.3f} s"
    )
    print(
        f"\nwrote {FIGURES / 'audio_arousal_confusion.png'} and "
        f"{FIGURES / 'audio_category_confusion.png'}"
    )


if __name__ == "__main__":
    main()
