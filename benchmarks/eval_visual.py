"""Evaluate the visual clue model on the shared FER2013 faces and time it.

Run from the repository root:

    python benchmarks/eval_visual.py [--backend huggingface --model PATH_OR_HUB_NAME]

Prints 7-class top-1 accuracy, per-class recall and the detection rate on
`$EMER_DATA/faces/fer2013` (default `<repo>/../shared/data`), with every image fed exactly as the
service feeds it (decoded to RGB, one still frame); the same faces pasted, upscaled, into a
640x480 frame (the detector + crop path); both with and without the mirror-image test-time
augmentation (`flip_tta`: faces fixed and broken, a two-sided sign test, per-class recall, cost);
and the time per image, per 20-frame 640x480 clip and per 20-frame clip with two people on one
thread. Writes `docs/figures/visual_fer2013_confusion.png`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.common.types import BASIC_EMOTIONS, VideoFrames  # noqa: E402
from services.visual import VisualConfig, load_model  # noqa: E402
from services.visual.networks import CropSpec  # noqa: E402

FIGURE = REPO / "docs" / "figures" / "visual_fer2013_confusion.png"


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", REPO.parent / "shared" / "data")).resolve()


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def still(rgb: np.ndarray) -> VideoFrames:
    return VideoFrames(frames=[rgb], timestamps=[0.0], duration_s=0.0)


def predict(model: object, video: VideoFrames) -> tuple[str, float, float]:
    """(top label or 'no face', precropped frames, seconds)."""
    start = time.perf_counter()
    clue = model.analyze(video)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    if not clue.available:
        return "no face", 0.0, seconds
    label = max(clue.emotion_scores, key=lambda e: clue.emotion_scores[e])
    return label, clue.measurements.get("precropped_frames", 0.0), seconds


def demo_clip(face: np.ndarray, frames: int = 20) -> VideoFrames:
    """A 4 s clip at 5 fps: a portrait moving and growing in a 640x480 frame."""
    out = []
    for i in range(frames):
        canvas = np.full((480, 640, 3), 90, np.uint8)
        width = 240 + 4 * i
        height = int(width * face.shape[0] / face.shape[1])
        small = cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)[: 480 - 30]
        x = 60 + 10 * i
        canvas[30 : 30 + small.shape[0], x : x + width] = small[:, : 640 - x]
        out.append(canvas)
    return VideoFrames(frames=out, timestamps=[i * 0.2 for i in range(frames)], duration_s=4.0)


def plot_confusion(matrix: np.ndarray, labels: list[str], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.2, 6))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(BASIC_EMOTIONS)), BASIC_EMOTIONS)
    for i in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            if matrix[i, j]:
                colour = "white" if rows[i, j] > 0.5 else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def pasted_frames(images: list[np.ndarray]) -> list[np.ndarray]:
    """Each face upscaled to 240 px at a random place in a 640x480 frame (fixed seed)."""
    rng = np.random.default_rng(0)
    out = []
    for img in images:
        canvas = np.full((480, 640, 3), 110, np.uint8)
        x, y = int(rng.integers(0, 400)), int(rng.integers(0, 240))
        canvas[y : y + 240, x : x + 240] = cv2.resize(
            img, (240, 240), interpolation=cv2.INTER_CUBIC
        )
        out.append(canvas)
    return out


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test of wins vs losses (ties dropped)."""
    n, k = wins + losses, max(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n)


def compare_tta(
    name: str,
    truth: list[str],
    plain: list[tuple[str, float, float]],
    tta: list[tuple[str, float, float]],
) -> None:
    """Accuracy, per-class recall and cost with and without the mirror-image augmentation."""
    ok_plain = [r[0] == t for r, t in zip(plain, truth, strict=True)]
    ok_tta = [r[0] == t for r, t in zip(tta, truth, strict=True)]
    fixed = sum(b and not a for a, b in zip(ok_plain, ok_tta, strict=True))
    broken = sum(a and not b for a, b in zip(ok_plain, ok_tta, strict=True))
    cost = statistics.median(r[2] for r in tta) - statistics.median(r[2] for r in plain)
    # Net faces gained on the even- and the odd-numbered faces (sorted by file name): the choice
    # was made on the even half and checked on the odd one.
    halves = [sum(ok_tta[i] - ok_plain[i] for i in range(h, len(truth), 2)) for h in (0, 1)]
    print(
        f"  {name}: without {np.mean(ok_plain):.3f}, with flip {np.mean(ok_tta):.3f} "
        f"(fixed {fixed}, broken {broken}, sign test p={sign_test(fixed, broken):.3f}; net "
        f"{halves[0]:+d} on the even half, {halves[1]:+d} on the odd half; "
        f"median cost {cost * 1000:+.1f} ms per image)"
    )
    for label in BASIC_EMOTIONS:
        idx = [i for i, t in enumerate(truth) if t == label]
        a = np.mean([ok_plain[i] for i in idx])
        b = np.mean([ok_tta[i] for i in idx])
        print(f"    {label:9s} {a:.3f} -> {b:.3f}  (n={len(idx)})")


def two_person_clip(big: np.ndarray, small: np.ndarray, frames: int = 20) -> VideoFrames:
    """A 4 s clip at 5 fps: two faces side by side, the left one larger, both drifting."""
    out = []
    for i in range(frames):
        canvas = np.full((480, 640, 3), 90, np.uint8)
        canvas[60 + i : 320 + i, 20 + 2 * i : 280 + 2 * i] = cv2.resize(
            big, (260, 260), interpolation=cv2.INTER_CUBIC
        )
        canvas[120:320, 400 - i : 600 - i] = cv2.resize(
            small, (200, 200), interpolation=cv2.INTER_CUBIC
        )
        out.append(canvas)
    return VideoFrames(frames=out, timestamps=[i * 0.2 for i in range(frames)], duration_s=4.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="embedded", choices=["embedded", "huggingface"])
    parser.add_argument("--model", default=None, help="huggingface model folder or hub name")
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()

    folder = data_root() / "faces" / "fer2013"
    paths = sorted(folder.glob("*.jpg"))
    if not paths:
        sys.exit(f"no FER2013 faces in {folder} (set EMER_DATA)")
    config = VisualConfig(backend=args.backend, model=args.model, num_threads=1)
    start = time.perf_counter()
    model = load_model(config)
    model.warmup()
    print(f"backend {args.backend}: loaded and warmed up in {time.perf_counter() - start:.2f} s")
    plain_model = load_model(config.model_copy(update={"flip_tta": False}))
    plain_model.warmup()

    # 1) As the service feeds a still: decoded to RGB, one frame.
    truth = [p.name.split("_")[0] for p in paths]
    images = [read_rgb(p) for p in paths]
    results = [predict(model, still(img)) for img in images]
    preds = [r[0] for r in results]
    times = [r[2] for r in results]
    correct = [p == t for p, t in zip(preds, truth, strict=True)]
    found = sum(p != "no face" for p in preds)
    print(f"\nFER2013 PrivateTest faces ({len(paths)} images, {folder})")
    print(f"  7-class top-1 accuracy: {np.mean(correct):.3f} (chance {1 / 7:.3f})")
    print(
        f"  face found: {found}/{len(paths)} ({found / len(paths):.3f}); classified whole as a "
        f"pre-cropped face: {int(sum(r[1] for r in results))}"
    )
    print("  per-class recall:")
    for label in BASIC_EMOTIONS:
        idx = [i for i, t in enumerate(truth) if t == label]
        recall = np.mean([correct[i] for i in idx]) if idx else float("nan")
        print(f"    {label:9s} {recall:.3f}  (n={len(idx)})")

    columns = [*BASIC_EMOTIONS, "no face"]
    matrix = np.zeros((len(BASIC_EMOTIONS), len(columns)), int)
    for t, p in zip(truth, preds, strict=True):
        matrix[BASIC_EMOTIONS.index(t), columns.index(p)] += 1
    if matrix[:, -1].sum() == 0:
        matrix, columns = matrix[:, :-1], columns[:-1]
    plot_confusion(
        matrix,
        columns,
        f"Visual clue model ({args.backend}) on {len(paths)} FER2013 PrivateTest faces\n"
        f"top-1 {np.mean(correct):.3f}; python benchmarks/eval_visual.py",
        args.figure,
    )
    shown = args.figure.relative_to(REPO) if args.figure.is_relative_to(REPO) else args.figure
    print(f"  confusion matrix: {shown}")

    # 2) The detector + crop path: each face upscaled to 240 px inside a 640x480 frame.
    frames = pasted_frames(images)
    pasted = [predict(model, still(frame)) for frame in frames]
    in_frame = np.mean([p[0] == t for p, t in zip(pasted, truth, strict=True)])
    missed = sum(p[0] == "no face" for p in pasted)
    print(
        f"\nSame faces upscaled to 240 px in a 640x480 frame (detector + crop path): top-1 "
        f"{in_frame:.3f}, no face found in {missed}/{len(paths)}"
    )

    # 3) Test-time augmentation: the same inputs without the mirror image.
    if args.backend == "embedded":
        print(
            "\nMirror-image test-time augmentation (flip_tta; whole-image crops are never flipped)"
        )
        compare_tta(
            "stills (whole image)",
            truth,
            [predict(plain_model, still(img)) for img in images],
            results,
        )
        forced = load_model(config)
        forced.warmup()
        # What flipping whole-image crops too would give (the option not taken).
        scores = forced._expression_scores  # type: ignore[attr-defined]

        def flip_all(fs: list[np.ndarray], crops: list[CropSpec]) -> np.ndarray:
            return scores(fs, [replace(c, whole=False) for c in crops])  # type: ignore[no-any-return]

        forced._expression_scores = flip_all  # type: ignore[attr-defined]
        compare_tta(
            "stills, if whole images were flipped too",
            truth,
            [predict(plain_model, still(img)) for img in images],
            [predict(forced, still(img)) for img in images],
        )
        compare_tta(
            "faces in a frame (crop path)",
            truth,
            [predict(plain_model, still(frame)) for frame in frames],
            pasted,
        )

    # 4) Timing on one thread.
    print("\nTiming (one thread, after warm-up)")
    print(
        f"  per FER2013 image: median {statistics.median(times) * 1000:.1f} ms, "
        f"mean {statistics.mean(times) * 1000:.1f} ms"
    )
    import matplotlib

    portrait_path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    portrait = (
        read_rgb(portrait_path)
        if portrait_path.exists()
        else cv2.resize(images[truth.index("happy")], (256, 300), interpolation=cv2.INTER_CUBIC)
    )
    clip = demo_clip(portrait)
    two = two_person_clip(images[truth.index("happy")], images[truth.index("neutral")])
    runs = (
        ("", model, clip),
        (" without flip", plain_model, clip),
        (" with two people", model, two),
    )
    for name, m, video in runs:
        cpu = time.process_time()
        clip_times = [predict(m, video)[2] for _ in range(5)]
        cpu = (time.process_time() - cpu) / 5
        print(
            f"  per 20-frame 640x480 clip{name}: median {statistics.median(clip_times):.3f} s "
            f"({statistics.median(clip_times) / 20 * 1000:.1f} ms per frame), CPU {cpu:.3f} s"
        )
    two_clue = model.analyze(two)
    print(
        f"  two-people clip: {len(two_clue.persons)} persons, main character "
        + ", ".join(p.person_id for p in two_clue.persons if p.main_character)
    )
    clue = model.analyze(clip)
    print("\nExample clip description:")
    for sentence in clue.description:
        print(f"  {sentence}")
    print("\nExample two-person clip description:")
    for sentence in two_clue.description:
        print(f"  {sentence}")


if __name__ == "__main__":
    main()
