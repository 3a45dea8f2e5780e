"""EMER open-vocabulary metrics: the emotion-wheel metric and the set-level (synonym) metric.

Both compare, sample by sample, a predicted set of emotion words with a gold set after mapping
every word to a group identifier, and average per-sample precision and recall. They reproduce
the reference code of the MER challenges (MERTools) exactly:

- `wheel_metric` is the MER2025/2026 Track 2 (OV-MER) emotion-wheel metric,
  `wheel_metric_calculation` in MERTools. Reference figures, `predict-openset.csv` against
  `check-openset.csv` (332 EMER-Fine samples): level1 F 55.46, level2 F 42.46.
- `openset_metric` is the MER2024-OV / EMER v6 set-level metric with per-sample synonym groups,
  `calculate_openset_overlap_rate_mer2024` in MERTools. Reference figures on the same files
  with the shipped `openset-synonym.zip`: accuracy 0.58178, recall 0.49779, mean 0.53978.

Files are read with the standard library only; label lists are parsed with
`ast.literal_eval` (never `eval`), and a malformed row raises `ValueError` naming the file,
the line and the sample.
"""

from __future__ import annotations

import ast
import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

import numpy as np
from emer_eval.vocabulary import LEVELS, WHEELS, EmotionVocabulary

Labels = Mapping[str, Sequence[str]]  # sample name -> emotion words


# --- reading files ----------------------------------------------------------------------------


def parse_label_list(text: str) -> list[str]:
    """Parse one `openset` cell such as "['happy', 'relieved']" into a list of words.

    An empty cell is an empty list (the reference treats a missing value the same way). The
    cell must be a Python/JSON list (or tuple) of strings; anything else raises ValueError.
    """
    stripped = text.strip()
    if not stripped:
        return []
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        detail = exc.__class__.__name__
        raise ValueError(f"not a list literal: {_clip(stripped)!r} ({detail})") from None
    if not isinstance(value, list | tuple) or not all(isinstance(x, str) for x in value):
        raise ValueError(f"expected a list of strings, got {_clip(stripped)!r}")
    return list(value)


def read_openset_csv(path: str | Path) -> dict[str, list[str]]:
    """Read a `name,openset` CSV (gold or prediction) into {name: [words]}.

    Raises ValueError (naming the file and line) when the file lacks the two columns, a row has
    no name, an openset cell is not a list of strings, or a name appears twice; OSError when the
    file cannot be read.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            missing = [c for c in ("name", "openset") if c not in fields]
            if missing:
                raise ValueError(
                    f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(fields)})"
                )
            out: dict[str, list[str]] = {}
            for row in reader:
                line = reader.line_num
                name = (row.get("name") or "").strip()
                if not name:
                    raise ValueError(f"{path}, line {line}: empty sample name")
                if name in out:
                    raise ValueError(f"{path}, line {line}: sample {name} appears twice")
                try:
                    out[name] = parse_label_list(row.get("openset") or "")
                except ValueError as exc:
                    raise ValueError(f"{path}, line {line} (sample {name}): {exc}") from None
        except csv.Error as exc:
            raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return out


def write_openset_csv(path: str | Path, labels: Labels) -> None:
    """Write {name: [words]} as a `name,openset` CSV that `read_openset_csv` reads back."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "openset"])
        for name, words in labels.items():
            writer.writerow([name, repr([str(w) for w in words])])


def read_synonym_zip(path: str | Path) -> dict[str, list[list[str]]]:
    """Read the per-sample synonym groups of the set-level metric (`openset-synonym.zip`).

    Each member `<folder>/<name>.npy` holds a 0-d string array such as
    "[['joyful', 'happy'], ['worried']]". Arrays are loaded with allow_pickle=False and the
    string is parsed with ast.literal_eval; a malformed member raises ValueError naming it.
    """
    path = Path(path)
    out: dict[str, list[list[str]]] = {}
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: not a zip archive ({exc})") from None
    with archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            name = PurePosixPath(member).stem
            try:
                array = np.load(io.BytesIO(archive.read(member)), allow_pickle=False)
                text = array.tolist()
                if not isinstance(text, str):
                    raise ValueError("expected a string array")
                groups = ast.literal_eval(text)
                if not isinstance(groups, list | tuple) or not all(
                    isinstance(g, list | tuple) and all(isinstance(w, str) for w in g)
                    for g in groups
                ):
                    raise ValueError("expected a list of lists of strings")
            except (ValueError, SyntaxError, OSError) as exc:
                raise ValueError(f"{path}: member {member}: {exc}") from None
            out[name] = [list(g) for g in groups]
    if not out:
        raise ValueError(f"{path}: no .npy synonym files inside")
    return out


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


# --- emotion-wheel metric ---------------------------------------------------------------------


def wheel_category(word: str, vocabulary: EmotionVocabulary, wheel: str, level: str) -> str | None:
    """Map one open-vocabulary word to its category on `wheel` at `level` (None = unmapped).

    The reference's `func_backward_case3`; see `EmotionVocabulary.category`.
    """
    return vocabulary.category(word, wheel, level)


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F (all in percent) over `samples` evaluated samples."""

    precision: float
    recall: float
    f: float
    samples: int


@dataclass(frozen=True)
class WheelResult:
    """The emotion-wheel metric: mean F over the five wheels at level 1 and level 2 (percent)."""

    level1_f: float
    level2_f: float
    # level -> wheel -> scores
    per_wheel: dict[str, dict[str, Scores]]
    missing_predictions: list[str] = field(default_factory=list)
    extra_predictions: list[str] = field(default_factory=list)

    def level_means(self, level: str) -> Scores:
        """Mean precision, recall and F over the wheels at `level` (F is the mean of the Fs)."""
        rows = list(self.per_wheel[level].values())
        return Scores(
            precision=float(np.mean([r.precision for r in rows])),
            recall=float(np.mean([r.recall for r in rows])),
            f=float(np.mean([r.f for r in rows])),
            samples=min(r.samples for r in rows),
        )


def _overlap(
    gold: Labels, pred: Labels, names: Iterable[str], mapper: Callable[[str], str | None]
) -> tuple[float, float, int]:
    """Mean per-sample precision |G∩P|/|P| and recall |G∩P|/|G| after mapping every word.

    Unmapped words (mapper -> None) are dropped; a sample whose mapped gold set is empty is
    skipped; an empty mapped prediction scores precision 0 and recall 0.
    """
    precision: list[float] = []
    recall: list[float] = []
    for name in names:
        g = {m for m in (mapper(w) for w in gold[name]) if m is not None}
        if not g:
            continue
        p = {m for m in (mapper(w) for w in pred.get(name, ())) if m is not None}
        if not p:
            precision.append(0.0)
            recall.append(0.0)
            continue
        hit = len(g & p)
        precision.append(hit / len(p))
        recall.append(hit / len(g))
    if not precision:
        return 0.0, 0.0, 0
    return float(np.mean(precision)), float(np.mean(recall)), len(precision)


def _wheel_mapper(
    vocabulary: EmotionVocabulary, wheel: str, level: str
) -> Callable[[str], str | None]:
    # Cached per (wheel, level) run: a metric run maps the same few hundred words many times.
    @cache
    def mapper(word: str) -> str | None:
        return wheel_category(word, vocabulary, wheel, level)

    return mapper


def _f(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def wheel_metric(gold: Labels, pred: Labels, vocabulary: EmotionVocabulary) -> WheelResult:
    """The emotion-wheel metric (MER2025/2026 OV-MER; MERTools `wheel_metric_calculation`).

    For each of the five wheels and each level (level1 = the wheel's inner ring, level2 = its
    second ring):

    1. every word, lower-cased and stripped, is mapped word form -> base words -> synonym wheel
       words -> wheel category, taking the alphabetically first wheel word the wheel knows
       (`wheel_category`); words that do not map are dropped;
    2. for every gold sample (the gold file defines the sample set) the mapped sets G and P give
       precision |G∩P|/|P| and recall |G∩P|/|G|; samples whose mapped G is empty are skipped;
       an empty P (including a sample missing from `pred`) scores 0 and 0;
    3. precision and recall are averaged over samples and F = 2PR/(P+R) per wheel.

    `level1_f` / `level2_f` are the mean F over the five wheels, in percent. Predictions for
    names that are not in `gold` are ignored and listed in `extra_predictions`.
    """
    names = list(gold)
    per_wheel: dict[str, dict[str, Scores]] = {}
    for level in LEVELS:
        per_wheel[level] = {}
        for wheel in WHEELS:
            p, r, n = _overlap(gold, pred, names, _wheel_mapper(vocabulary, wheel, level))
            per_wheel[level][wheel] = Scores(100 * p, 100 * r, 100 * _f(p, r), n)
    return WheelResult(
        level1_f=float(np.mean([s.f for s in per_wheel["level1"].values()])),
        level2_f=float(np.mean([s.f for s in per_wheel["level2"].values()])),
        per_wheel=per_wheel,
        missing_predictions=[n for n in names if n not in pred],
        extra_predictions=[n for n in pred if n not in gold],
    )


# --- set-level metric -------------------------------------------------------------------------


@dataclass(frozen=True)
class OpensetResult:
    """The set-level metric (fractions in [0, 1], as the reference prints them)."""

    accuracy: float
    recall: float
    mean: float
    samples: int
    missing_predictions: list[str] = field(default_factory=list)


def reference_tokens(words: Iterable[str]) -> list[str]:
    """Split words on quote characters the way the reference's `string_to_list` does.

    The reference parses "['a', \"don't believe\"]" by splitting on every quote, so
    "don't believe" becomes "don" and "t believe". The shipped synonym groups were generated
    from those pieces (sample_00001774 has a group with "don" and another with "t believe"),
    so the set-level metric splits the same way to reproduce the reference figures.
    """
    out: list[str] = []
    for word in words:
        out.extend(piece for piece in re.split("['\"]", word) if piece.strip() not in ("", ","))
    return out


def openset_metric(
    gold: Labels,
    pred: Labels,
    synonyms: Mapping[str, Sequence[Sequence[str]]] | str | Path,
    *,
    split_quotes: bool = True,
) -> OpensetResult:
    """The set-level metric (MER2024-OV / EMER v6; `calculate_openset_overlap_rate_mer2024`).

    `synonyms` is {name: groups} or the path of `openset-synonym.zip`. For each sample that has
    synonym groups and a gold entry:

    1. words are split on quote characters like the reference parser (`reference_tokens`;
       `split_quotes=False` keeps them whole) and lower-cased (not stripped: the reference
       does not strip here);
    2. every word of a group maps to the group's first member (later groups win on overlap,
       as in the reference); words in no group stand for themselves;
    3. precision ("accuracy") |G∩P|/|P| and recall |G∩P|/|G| of the mapped sets; an empty
       prediction (or a sample missing from `pred`) scores 0 and 0; a sample with an empty gold
       set is skipped (the reference would divide by zero);
    4. accuracy and recall are averaged over samples; `mean` is their mean.

    The shipped synonym groups were generated by an LLM for one particular prediction file
    (`predict-openset.csv`), so for any other predictions a word outside the groups only
    matches when spelt exactly like a gold word: the emotion-wheel metric is the general one.
    """
    groups_by_name = read_synonym_zip(synonyms) if isinstance(synonyms, str | Path) else synonyms

    def words(labels: Sequence[str]) -> list[str]:
        return reference_tokens(labels) if split_quotes else list(labels)

    accuracy: list[float] = []
    recall: list[float] = []
    for name, groups in groups_by_name.items():
        if name not in gold:
            continue
        synonym_map: dict[str, str] = {}
        for group in groups:
            for word in group:
                synonym_map[word] = group[0]
        g = {synonym_map.get(w.lower(), w.lower()) for w in words(gold[name])}
        if not g:
            continue
        p = {synonym_map.get(w.lower(), w.lower()) for w in words(pred.get(name, ()))}
        if not p:
            accuracy.append(0.0)
            recall.append(0.0)
            continue
        hit = len(g & p)
        accuracy.append(hit / len(p))
        recall.append(hit / len(g))
    acc = float(np.mean(accuracy)) if accuracy else 0.0
    rec = float(np.mean(recall)) if recall else 0.0
    return OpensetResult(
        accuracy=acc,
        recall=rec,
        mean=(acc + rec) / 2,
        samples=len(accuracy),
        missing_predictions=[n for n in groups_by_name if n in gold and n not in pred],
    )
