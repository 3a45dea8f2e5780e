"""Score label extractors on the 230 EMER-Fine dev descriptions with the EMER metrics.

Run from the repository root:

    python benchmarks/eval_labels.py [--json OUT.json] [--pred-csv OUT.csv] [--column chinese]

`--column chinese` scores the Chinese descriptions of the same samples with
`services.explainer.extraction_zh` (against the same English gold labels; its baselines are the
same two, over the Chinese lexicon's words).

Reads `$EMER_DATA/emer` (default `<repo>/../shared/data/emer`): the English descriptions
(`emer-fine-descriptions.csv`), their gold labels (`check-openset.csv`), the emotion wheel
(`wheel/wheel_mapping.npz`) and the set-level synonym groups (`openset-synonym.zip`).
For each extractor it reports the emotion-wheel metric (level1 / level2 F, mean over the five
wheels) on all 230 descriptions and on two fixed halves (A = even positions, B = odd positions
of the descriptions sorted by name; the rule extractor's constants were set on A and checked on
B), plus the set-level accuracy/recall with the shipped synonym groups. Those groups were
generated for another prediction file, so the set-level numbers of these extractors only credit
words spelt like a gold word or grouped by chance: read them as a rough second opinion.

Extractors: (a) `naive`, every vocabulary word form found anywhere in the description;
(b) `last2`, the same on the last two sentences; (c) `rules`, `services.explainer.extraction`.
Add one with `evaluate(name, fn)` where `fn` maps a description to a list of words (the lead's
vLLM extractor plugs in there). `--pred-csv` writes the rule extractor's labels as
`name,openset`, for `emer eval wheel --gold ... --pred OUT.csv`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emer_eval.metrics import (  # noqa: E402
    openset_metric,
    read_openset_csv,
    read_synonym_zip,
    wheel_metric,
    write_openset_csv,
)
from emer_eval.vocabulary import EmotionVocabulary  # noqa: E402

from services.common.zh_lexicon import segment  # noqa: E402
from services.explainer.extraction import Extractor  # noqa: E402
from services.explainer.extraction_zh import ChineseExtractor, mask_quotes  # noqa: E402

LabelFn = Callable[[str], list[str]]
_TOKEN = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", REPO.parent / "shared" / "data")).resolve()


@dataclass
class DevSet:
    """The dev descriptions (sorted by name), their gold labels and the metric resources."""

    descriptions: dict[str, str]
    gold: dict[str, list[str]]
    vocabulary: EmotionVocabulary
    synonyms: dict[str, list[list[str]]]

    @property
    def halves(self) -> dict[str, list[str]]:
        names = sorted(self.descriptions)
        return {"all": names, "A": names[0::2], "B": names[1::2]}


def load_dev(root: Path | None = None, column: str = "english") -> DevSet:
    """Read the dev descriptions (`column`: english or chinese), gold labels, wheel vocabulary
    and synonym groups."""
    emer = (root or data_root()) / "emer"
    with (emer / "emer-fine-descriptions.csv").open(newline="", encoding="utf-8") as handle:
        descriptions = {row["name"]: row[column] for row in csv.DictReader(handle)}
    gold = read_openset_csv(emer / "check-openset.csv")
    missing = sorted(set(descriptions) - set(gold))
    if missing:
        raise ValueError(f"{len(missing)} description(s) have no gold labels, e.g. {missing[0]}")
    return DevSet(
        descriptions=dict(sorted(descriptions.items())),
        gold={n: gold[n] for n in descriptions},
        vocabulary=EmotionVocabulary.load(emer / "wheel"),
        synonyms=read_synonym_zip(emer / "openset-synonym.zip"),
    )


# --- baselines ---------------------------------------------------------------------------------


def vocabulary_words(text: str, vocabulary: EmotionVocabulary) -> list[str]:
    """Every word form of the vocabulary in `text` (all n-grams, overlapping), first-seen order."""
    tokens = _TOKEN.findall(text.lower().replace("\u2019", "'"))
    longest = max(len(k.split()) for k in vocabulary.format_mapping)
    found: dict[str, None] = {}
    for i in range(len(tokens)):
        for n in range(1, longest + 1):
            form = " ".join(tokens[i : i + n])
            if i + n <= len(tokens) and form in vocabulary.format_mapping:
                found[form] = None
    return list(found)


def naive(vocabulary: EmotionVocabulary) -> LabelFn:
    """(a) Every emotion word form anywhere in the description."""
    return lambda text: vocabulary_words(text, vocabulary)


def last_two_sentences(vocabulary: EmotionVocabulary) -> LabelFn:
    """(b) Emotion word forms in the last two sentences (split after . ! ? and white space)."""

    def fn(text: str) -> list[str]:
        sentences = re.split(r"(?<=[.!?])\s+", text.strip())
        return vocabulary_words(" ".join(sentences[-2:]), vocabulary)

    return fn


def rules(vocabulary: EmotionVocabulary) -> LabelFn:
    """(c) The deterministic extractor of the service."""
    extractor = Extractor(vocabulary)
    return lambda text: [label.word for label in extractor.extract(text)]


def rules_zh(vocabulary: EmotionVocabulary) -> LabelFn:
    """(c) The Chinese extractor of the service (`extraction_zh.py`)."""
    extractor = ChineseExtractor(vocabulary)
    return lambda text: [label.word for label in extractor.extract(text)]


def naive_zh(vocabulary: EmotionVocabulary) -> LabelFn:
    """(a) Every Chinese emotion word (table or dictionary gloss) anywhere, in English."""
    extractor = ChineseExtractor(vocabulary)

    def fn(text: str) -> list[str]:
        found = (e for w in segment(mask_quotes(text)) for e in extractor.english(w))
        return list(dict.fromkeys(found))

    return fn


def last_two_zh(vocabulary: EmotionVocabulary) -> LabelFn:
    """(b) The same on the last two sentences (split after 。！？；)."""
    every = naive_zh(vocabulary)

    def fn(text: str) -> list[str]:
        sentences = [s for s in re.split(r"(?<=[。！？；])", text.strip()) if s.strip()]
        return every("".join(sentences[-2:]))

    return fn


# --- evaluation --------------------------------------------------------------------------------


def evaluate(name: str, fn: LabelFn, dev: DevSet) -> dict[str, Any]:
    """Run `fn` on every dev description and score it (the hook for further extractors).

    Returns {"name", "ms_per_description", "mean_labels", "predictions",
    "<half>": {"level1_f", "level2_f", "set_accuracy", "set_recall"}} for halves all/A/B.
    """
    started = time.perf_counter()
    predictions = {n: list(fn(text)) for n, text in dev.descriptions.items()}
    elapsed = time.perf_counter() - started
    out: dict[str, Any] = {
        "name": name,
        "ms_per_description": round(1000 * elapsed / max(1, len(predictions)), 3),
        "mean_labels": round(sum(map(len, predictions.values())) / max(1, len(predictions)), 2),
        "predictions": predictions,
    }
    for half, names in dev.halves.items():
        gold = {n: dev.gold[n] for n in names}
        pred = {n: predictions[n] for n in names}
        wheel = wheel_metric(gold, pred, dev.vocabulary)
        groups = {n: dev.synonyms[n] for n in names if n in dev.synonyms}
        setlevel = openset_metric(gold, pred, groups)
        out[half] = {
            "level1_f": round(wheel.level1_f, 2),
            "level2_f": round(wheel.level2_f, 2),
            "set_accuracy": round(setlevel.accuracy, 4),
            "set_recall": round(setlevel.recall, 4),
        }
    return out


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """The results as a markdown table."""
    head = (
        "| extractor | L1 F all | L2 F all | L1 F A | L2 F A | L1 F B | L2 F B "
        "| set acc | set recall | labels/desc | ms/desc |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [
        f"| {r['name']} | {r['all']['level1_f']:.2f} | {r['all']['level2_f']:.2f} "
        f"| {r['A']['level1_f']:.2f} | {r['A']['level2_f']:.2f} "
        f"| {r['B']['level1_f']:.2f} | {r['B']['level2_f']:.2f} "
        f"| {r['all']['set_accuracy']:.4f} | {r['all']['set_recall']:.4f} "
        f"| {r['mean_labels']:.2f} | {r['ms_per_description']:.2f} |"
        for r in results
    ]
    return "\n".join([head, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the numbers (and labels) here")
    parser.add_argument("--pred-csv", type=Path, help="write the rule extractor's labels here")
    parser.add_argument(
        "--column",
        choices=("english", "chinese"),
        default="english",
        help="which description to read: the English one (extraction.py) or the Chinese one "
        "(extraction_zh.py); the gold labels are English in both cases",
    )
    args = parser.parse_args(argv)

    dev = load_dev(column=args.column)
    if args.column == "chinese":
        results = [
            evaluate("(a) naive: all emotion words", naive_zh(dev.vocabulary), dev),
            evaluate("(b) last two sentences", last_two_zh(dev.vocabulary), dev),
            evaluate("(c) rules (extraction_zh.py)", rules_zh(dev.vocabulary), dev),
        ]
    else:
        results = [
            evaluate("(a) naive: all emotion words", naive(dev.vocabulary), dev),
            evaluate("(b) last two sentences", last_two_sentences(dev.vocabulary), dev),
            evaluate("(c) rules (extraction.py)", rules(dev.vocabulary), dev),
        ]
    print(
        f"EMER-Fine dev descriptions ({args.column}): {len(dev.descriptions)} (A/B halves of 115)\n"
    )
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.pred_csv:
        write_openset_csv(args.pred_csv, results[-1]["predictions"])
        print(f"\nwrote {args.pred_csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
