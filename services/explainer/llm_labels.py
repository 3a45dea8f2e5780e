"""LLM label selection: the LLM chooses among the deterministic extractor's candidate words.

The embedded 135M model cannot be trusted to name emotions on its own (BRIEF, "Label extraction:
what was measured"): free text scored 41/25 and guided decoding over the whole vocabulary 9/1
against 63/47 for plain lexical rules. So the LLM only ever sees the candidates that
`services.explainer.extraction.extract_labels` found in the description, answers through
guided decoding (a JSON array whose items are an enum of those candidates), and a merge policy
decides what its answer may change:

- "select": keep the candidates the LLM chose, in its order; if it chose none, keep them all
  (the extractor found emotion words, and an empty answer scores 0 on every EMER metric);
- "reorder": keep every candidate, the LLM's choices first (the set is unchanged, so the
  set-level metrics are too; only the ranking, i.e. confidence order, moves).

Whatever happens, the answer is a subset of the candidates: never a word outside them, never a
failed request because of the LLM (an engine error returns the candidates with the reason).

`python -m services.explainer.llm_labels [--half B]` measures the LLM against the candidates
alone on the EMER-Fine dev descriptions with the emotion-wheel metric (mean F over the five
wheels, level 1 / level 2). Measured with SmolLM2-135M, prompt v1, on half B (115 descriptions
the extractor's constants were not tuned on), 2 CPU cores, 97 s for the 115 calls:

    candidates (extractor alone)       77.6 / 67.2   3.14 labels per description
    LLM "select"                       52.3 / 41.8   1.07
    LLM's first choice                 51.4 / 40.1   1.00
    extractor's first candidate        60.6 / 49.7   1.00

The tiny model picks one word and closes the array, and its pick is worse than the extractor's
own ranking (a prompt listing the candidates: 55.2 / 44.1; a plain "which of these words
apply" prompt: 60.3 / 48.7, i.e. it returns the first candidate 87% of the time). So with the
embedded model the LLM hurts and the explainer should use the candidates alone; this module is
the hook for a larger instruct model (GPU profile), to be measured the same way before use.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.explainer.llm import LLMEngine, LLMError
from services.explainer.prompts import PROMPT_VERSION, label_extraction_messages

logger = logging.getLogger(__name__)

MergePolicy = Literal["select", "reorder"]
DEFAULT_POLICY: MergePolicy = "select"
_QUOTED = re.compile(r'"([^"\\]*)"')


@dataclass(frozen=True)
class LabelSelection:
    """What the LLM did with the candidates (for logs, warnings and evaluation)."""

    words: list[str]  # the final labels: always a subset of the candidates
    chosen: list[str]  # the candidates the LLM picked, in its order
    raw: str  # the LLM's JSON text ("" when it was not called)
    fallback: str | None = None  # why the candidates were returned unchanged


def normalise_candidates(candidates: Sequence[str]) -> list[str]:
    """Lower-cased, stripped, de-duplicated, first occurrence first."""
    out = [c.strip().lower() for c in candidates]
    return list(dict.fromkeys(c for c in out if c))


def candidate_schema(candidates: Sequence[str]) -> dict[str, Any]:
    """A JSON array of candidate words. No `uniqueItems`: xgrammar rejects it; `maxItems` bounds
    the greedy repetition a tiny model falls into, and duplicates are removed after parsing."""
    return {
        "type": "array",
        "items": {"type": "string", "enum": list(candidates)},
        "maxItems": len(candidates),
    }


def parse_selection(raw: str, candidates: Sequence[str]) -> list[str]:
    """The candidates named in the LLM's answer, in its order, without repeats.

    The grammar makes the text valid JSON unless `max_tokens` cut it; then the complete quoted
    items are still read. Anything that is not a candidate is dropped (never trusted).
    """
    allowed = set(candidates)
    try:
        value = json.loads(raw)
        items = [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
    except json.JSONDecodeError:
        items = _QUOTED.findall(raw)
    return list(dict.fromkeys(w.strip().lower() for w in items if w.strip().lower() in allowed))


def merge_selection(
    candidates: Sequence[str], chosen: Sequence[str], policy: MergePolicy = DEFAULT_POLICY
) -> list[str]:
    """Apply the merge policy (see the module docstring). Output ⊆ candidates."""
    allowed = set(candidates)
    picked = [w for w in dict.fromkeys(chosen) if w in allowed]
    if policy == "reorder":
        return picked + [c for c in candidates if c not in picked]
    return picked or list(candidates)


async def select_labels_llm(
    engine: LLMEngine,
    description: str,
    candidates: Sequence[str],
    *,
    policy: MergePolicy = DEFAULT_POLICY,
    version: str = PROMPT_VERSION,
    max_tokens: int | None = None,
) -> LabelSelection:
    """Ask the LLM which candidates the description supports and merge its answer."""
    cands = normalise_candidates(candidates)
    if not cands:
        return LabelSelection(words=[], chosen=[], raw="", fallback="no candidates")
    if len(cands) == 1 and policy == "select":
        # Nothing to choose: an empty choice would fall back to this one word anyway.
        return LabelSelection(words=cands, chosen=[], raw="", fallback="single candidate")
    # About 6 tokens per quoted word plus brackets; a cut answer is still parsed.
    budget = max_tokens or 8 + 8 * len(cands)
    try:
        raw = await engine.complete_json(
            label_extraction_messages(description, version), candidate_schema(cands), budget
        )
    except (LLMError, TimeoutError) as e:
        logger.warning("LLM label selection failed, keeping the candidates: %s", e)
        return LabelSelection(words=cands, chosen=[], raw="", fallback=f"llm error: {e}")
    chosen = parse_selection(raw, cands)
    fallback = None if chosen else "llm chose none"
    return LabelSelection(merge_selection(cands, chosen, policy), chosen, raw, fallback)


async def extract_labels_llm(
    engine: LLMEngine, description: str, candidates: list[str]
) -> list[str]:
    """The labels of `description`, chosen by the LLM among `candidates` (the words the
    deterministic extractor found); [] when there are none. Never a word outside them."""
    return (await select_labels_llm(engine, description, candidates)).words


# --- measurement ---------------------------------------------------------------------------------


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import asyncio
    import csv
    import time
    from pathlib import Path

    from emer_eval.metrics import read_openset_csv, wheel_metric
    from emer_eval.vocabulary import EmotionVocabulary, default_data_dir

    from services.explainer.config import LLMConfig
    from services.explainer.extraction import extract_labels
    from services.explainer.vllm_engine import VLLMEngine

    parser = argparse.ArgumentParser(description="LLM label selection vs the candidates alone")
    parser.add_argument("--data", type=Path, default=None, help="EMER data root ($EMER_DATA)")
    parser.add_argument("--limit", type=int, default=0, help="first N descriptions (0 = all)")
    parser.add_argument("--half", choices=["all", "A", "B"], default="all")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    root = args.data or default_data_dir()
    emer = root / "emer"
    with (emer / "emer-fine-descriptions.csv").open(newline="", encoding="utf-8") as f:
        descriptions = {r["name"]: r["english"] for r in csv.DictReader(f)}
    names = sorted(descriptions)
    names = {"all": names, "A": names[0::2], "B": names[1::2]}[args.half]
    if args.limit:
        names = names[: args.limit]
    gold_all = read_openset_csv(emer / "check-openset.csv")
    gold = {n: gold_all[n] for n in names}
    vocabulary = EmotionVocabulary.load(emer / "wheel")
    candidates = {
        n: [lab.word for lab in extract_labels(descriptions[n], vocabulary)] for n in names
    }

    async def run() -> dict[str, dict[str, list[str]]]:
        engine = await VLLMEngine.start(LLMConfig())
        gate = asyncio.Semaphore(args.concurrency)
        selections: dict[str, LabelSelection] = {}

        async def one(name: str) -> None:
            async with gate:
                selections[name] = await select_labels_llm(
                    engine, descriptions[name], candidates[name], policy="reorder"
                )

        try:
            started = time.monotonic()
            await asyncio.gather(*(one(n) for n in names))
            took = time.monotonic() - started
        finally:
            engine.shutdown()
        calls = sum(1 for s in selections.values() if s.raw)
        print(f"{len(names)} descriptions, {calls} LLM calls, {took:.1f} s")
        none = sum(1 for s in selections.values() if s.fallback == "llm chose none")
        print(f"LLM chose no candidate: {none}")
        return {
            "candidates": candidates,
            "llm select": {
                n: merge_selection(candidates[n], s.chosen, "select") for n, s in selections.items()
            },
            "llm top-1": {
                n: merge_selection(candidates[n], s.chosen, "reorder")[:1]
                for n, s in selections.items()
            },
            "candidates top-1": {n: c[:1] for n, c in candidates.items()},
        }

    results = asyncio.run(run())
    print(f"{'labels':<18} {'L1 F':>6} {'L2 F':>6} {'mean labels':>12}")
    for label, pred in results.items():
        score = wheel_metric(gold, pred, vocabulary)
        mean = sum(len(v) for v in pred.values()) / max(1, len(pred))
        print(f"{label:<18} {score.level1_f:6.1f} {score.level2_f:6.1f} {mean:12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
