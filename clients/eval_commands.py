"""`emer eval`: score open-vocabulary emotion labels with the EMER metrics (no server needed).

    emer eval wheel   --gold check-openset.csv --pred predict-openset.csv [--wheel-dir DIR] [--json]
    emer eval openset --gold check-openset.csv --pred predict-openset.csv \
                      --synonyms openset-synonym.zip [--json]

Both files are `name,openset` CSVs whose openset cells are Python list literals such as
"['happy', 'relieved']" (what `emer extract-labels` writes). Exit status: 0 on success, 2 with a
one-line message on a missing or malformed file.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from emer_eval.metrics import (
    OpensetResult,
    WheelResult,
    openset_metric,
    read_openset_csv,
    read_synonym_zip,
    wheel_metric,
)
from emer_eval.vocabulary import LEVELS, EmotionVocabulary, default_wheel_dir


class _InputError(Exception):
    """A user-facing problem with an input file (exit status 2)."""


def register(subparsers: Any) -> None:
    """Add `eval wheel` and `eval openset` to the `emer` command line's sub-parsers."""
    p = subparsers.add_parser("eval", help="score label files with the EMER metrics")
    sub = p.add_subparsers(dest="eval_command", required=True)

    w = sub.add_parser(
        "wheel", help="emotion-wheel metric (MER2025/2026 OV-MER): mean F over five wheels"
    )
    w.add_argument("--gold", required=True, help="gold CSV (name,openset)")
    w.add_argument("--pred", required=True, help="prediction CSV (name,openset)")
    w.add_argument(
        "--wheel-dir",
        help="folder with wheel_mapping.npz (default $EMER_DATA/emer/wheel)",
    )
    w.add_argument("--json", action="store_true", help="print JSON")
    w.add_argument(
        "--only-predicted",
        action="store_true",
        help="score only the gold samples the prediction file covers (a dev subset); by default "
        "a missing prediction scores 0",
    )
    w.set_defaults(func=cmd_eval_wheel)

    o = sub.add_parser("openset", help="set-level metric (MER2024-OV) with synonym groups")
    o.add_argument("--gold", required=True, help="gold CSV (name,openset)")
    o.add_argument("--pred", required=True, help="prediction CSV (name,openset)")
    o.add_argument("--synonyms", required=True, help="openset-synonym.zip (per-sample groups)")
    o.add_argument("--json", action="store_true", help="print JSON")
    o.add_argument(
        "--only-predicted",
        action="store_true",
        help="score only the gold samples the prediction file covers",
    )
    o.set_defaults(func=cmd_eval_openset)


def _read(path: str) -> dict[str, list[str]]:
    try:
        return read_openset_csv(path)
    except FileNotFoundError:
        raise _InputError(f"no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise _InputError(str(exc)) from None


def _vocabulary(folder: str | None) -> EmotionVocabulary:
    path = Path(folder) if folder else default_wheel_dir()
    if not (path / "wheel_mapping.npz").is_file():
        raise _InputError(
            f"wheel_mapping.npz not found in {path} (pass --wheel-dir or set EMER_DATA)"
        )
    try:
        return EmotionVocabulary.load(path)
    except Exception as exc:  # a corrupt or foreign npz: numpy/pickle raise many types
        raise _InputError(f"cannot read {path / 'wheel_mapping.npz'}: {exc}") from None


def _warn_coverage(missing: list[str], extra: list[str] | None = None) -> None:
    if missing:
        print(
            f"warning: {len(missing)} gold sample(s) have no prediction and score 0 "
            f"(first: {missing[0]})",
            file=sys.stderr,
        )
    if extra:
        print(
            f"warning: {len(extra)} predicted sample(s) are not in the gold file and are ignored "
            f"(first: {extra[0]})",
            file=sys.stderr,
        )


def wheel_json(result: WheelResult) -> dict[str, Any]:
    """The JSON document of `emer eval wheel --json`."""
    return {
        "level1_f": round(result.level1_f, 4),
        "level2_f": round(result.level2_f, 4),
        "per_wheel": {
            level: {
                wheel: {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(s).items()}
                for wheel, s in result.per_wheel[level].items()
            }
            for level in LEVELS
        },
        "missing_predictions": len(result.missing_predictions),
        "extra_predictions": len(result.extra_predictions),
    }


def format_wheel(result: WheelResult) -> str:
    """A human-readable table of the emotion-wheel metric (percent)."""
    lines = [f"{'':8}  {'level':6}  {'precision':>9}  {'recall':>7}  {'F':>6}  {'samples':>7}"]
    for level in LEVELS:
        for wheel, s in result.per_wheel[level].items():
            lines.append(
                f"{wheel:8}  {level:6}  {s.precision:9.2f}  {s.recall:7.2f}  {s.f:6.2f}  "
                f"{s.samples:7d}"
            )
    for level in LEVELS:
        m = result.level_means(level)
        lines.append(f"{'mean':8}  {level:6}  {m.precision:9.2f}  {m.recall:7.2f}  {m.f:6.2f}")
    lines.append(f"level1 F {result.level1_f:.2f}   level2 F {result.level2_f:.2f}")
    return "\n".join(lines)


def openset_json(result: OpensetResult) -> dict[str, Any]:
    """The JSON document of `emer eval openset --json`."""
    return {
        "accuracy": round(result.accuracy, 5),
        "recall": round(result.recall, 5),
        "mean": round(result.mean, 5),
        "samples": result.samples,
        "missing_predictions": len(result.missing_predictions),
    }


def cmd_eval_wheel(args: argparse.Namespace) -> int:
    """`emer eval wheel`."""
    try:
        gold, pred = _read(args.gold), _read(args.pred)
        if args.only_predicted:
            gold = {name: labels for name, labels in gold.items() if name in pred}
        if not gold:
            raise _InputError(f"{args.gold}: no samples")
        vocabulary = _vocabulary(args.wheel_dir)
    except _InputError as exc:
        print(f"emer eval wheel: {exc}", file=sys.stderr)
        return 2
    result = wheel_metric(gold, pred, vocabulary)
    _warn_coverage(result.missing_predictions, result.extra_predictions)
    if args.json:
        print(json.dumps(wheel_json(result), indent=2))
    else:
        print(format_wheel(result))
    return 0


def cmd_eval_openset(args: argparse.Namespace) -> int:
    """`emer eval openset`."""
    try:
        gold, pred = _read(args.gold), _read(args.pred)
        if args.only_predicted:
            gold = {name: labels for name, labels in gold.items() if name in pred}
        if not gold:
            raise _InputError(f"{args.gold}: no samples")
        try:
            synonyms = read_synonym_zip(args.synonyms)
        except FileNotFoundError:
            raise _InputError(f"no such file: {args.synonyms}") from None
        except (OSError, ValueError) as exc:
            raise _InputError(str(exc)) from None
    except _InputError as exc:
        print(f"emer eval openset: {exc}", file=sys.stderr)
        return 2
    result = openset_metric(gold, pred, synonyms)
    _warn_coverage(result.missing_predictions)
    if result.samples == 0:
        print(
            "emer eval openset: no sample has both gold labels and synonym groups", file=sys.stderr
        )
        return 2
    if args.json:
        print(json.dumps(openset_json(result), indent=2))
    else:
        print(
            f"samples {result.samples}   accuracy {result.accuracy:.5f}   "
            f"recall {result.recall:.5f}   mean {result.mean:.5f}"
        )
    return 0
