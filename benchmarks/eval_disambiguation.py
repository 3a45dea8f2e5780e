"""Cross-modal disambiguation dev set: clue models + explainer on real faces, voices, own lines.

Each case of `benchmarks/data/disambiguation-dev.yaml` pairs a subtitle written by the project
with a real FER2013 face and a real RAVDESS/TESS voice from $EMER_DATA (or the subtitle alone).
The embedded clue models read them in-process (no Ray), the explainer answers (the composer, or
an LLM on vLLM with `--llm`), and the case is right when the basic category has the expected
polarity, the labels include one expected word and no forbidden one, and the explanation says
what the group needs said (e.g. "sarcas"). Prints a score per group; `--show` prints answers.

    .venv/bin/python benchmarks/eval_disambiguation.py                 # composer
    .venv/bin/python benchmarks/eval_disambiguation.py --llm default   # + the profile's LLM
    .venv/bin/python benchmarks/eval_disambiguation.py --llm /path/to/hf-folder --json out.json
    .venv/bin/python benchmarks/eval_disambiguation.py --llm default --stage lexical

`--stage lexical` asks the LLM itself to read the words with the face and the voice (the
paper's lexical-clue prompt, prompts/<version>/lexical_disambiguation.txt) and scores its
answer: in a disagreement group it must say what the group needs said (sarcasm, teasing, put-on
cheer, nervousness); in an agreeing group it must not claim a disagreement. That measures
whether the stage can be left to the LLM (docs/explanations.md).

The script uses only APIs that existed before the disambiguation stage (clue models, compose,
ExplainerCore), so it also scores an older checkout: `PYTHONPATH=<old tree> python ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path and not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))

from emer_eval.vocabulary import load_vocabulary  # noqa: E402

from services.common.types import Clue, Transcript  # noqa: E402
from services.explainer.composer import Explanation  # noqa: E402
from services.explainer.explainer import ExplainerCore  # noqa: E402
from services.media.decode import DecodeOptions, MediaKind, decode_media  # noqa: E402

DEV_SET = ROOT / "benchmarks" / "data" / "disambiguation-dev.yaml"
POSITIVE = {"happy", "surprise"}
NEGATIVE = {"angry", "disgust", "fear", "sad"}


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", ROOT.parent / "shared" / "data"))


@dataclass
class Case:
    group: str
    subtitle: str
    face: str | None
    voice: str | None
    polarity: str | None
    any_of: list[str]
    none_of: list[str]
    says: str | None


@dataclass
class Outcome:
    case: Case
    right: bool
    why: list[str]
    labels: list[str]
    basic: str
    explanation: str
    warnings: list[str] = field(default_factory=list)


def load_cases(path: Path) -> list[Case]:
    spec = yaml.safe_load(path.read_text())
    groups = spec["groups"]
    out = []
    for raw in spec["cases"]:
        g = groups[raw["group"]]
        out.append(
            Case(
                group=raw["group"],
                subtitle=raw["subtitle"],
                face=raw.get("face"),
                voice=raw.get("voice"),
                polarity=raw.get("expect", g.get("polarity")),
                any_of=list(raw.get("any_of", g.get("any_of", []))),
                none_of=list(raw.get("none_of", g.get("none_of", []))),
                says=raw.get("says", g.get("says")),
            )
        )
    return out


def face_path(spec: str, root: Path) -> Path:
    label, k = spec.rsplit(":", 1)
    files = sorted((root / "faces" / "fer2013").glob(f"{label}_*.jpg"))
    return files[int(k) % len(files)]


def voice_path(spec: str, root: Path) -> Path:
    corpus, label, k = spec.split(":")
    folder = root / "speech" / corpus
    with open(folder / "labels.csv", newline="") as f:
        rows = [r["file"] for r in csv.DictReader(f) if r["label"] == label]
    return folder / rows[int(k) % len(rows)]


class ClueModels:
    """The embedded clue models, loaded once."""

    def __init__(self) -> None:
        import torch

        from services.audio import AudioConfig
        from services.audio import load_model as load_audio
        from services.text import TextConfig
        from services.text import load_model as load_text
        from services.visual import VisualConfig
        from services.visual import load_model as load_visual

        torch.set_num_threads(1)
        self.audio: Any = load_audio(AudioConfig())
        self.visual: Any = load_visual(VisualConfig())
        self.text: Any = load_text(TextConfig())
        for model in (self.audio, self.visual, self.text):
            model.warmup()

    def clues(self, case: Case, root: Path) -> tuple[Clue | None, Clue | None, Clue]:
        visual = audio = None
        if case.face:
            data = face_path(case.face, root).read_bytes()
            video = decode_media(data, MediaKind.IMAGE, DecodeOptions()).video
            visual = self.visual.analyze(video)
        if case.voice:
            data = voice_path(case.voice, root).read_bytes()
            clip = decode_media(data, MediaKind.AUDIO, DecodeOptions()).audio
            audio = self.audio.analyze(clip, transcribe=False).clue
        return audio, visual, self.text.analyze(case.subtitle)


async def explain(
    core: ExplainerCore, clues: tuple[Clue | None, ...], subtitle: str
) -> Explanation:
    audio, visual, text = clues
    transcript = Transcript(subtitle, "en", [], "subtitle")
    async for item in core.explain_stream(audio, visual, text, transcript):
        if isinstance(item, Explanation):
            return item
    raise RuntimeError("the explainer gave no explanation")


def judge(case: Case, ex: Explanation) -> Outcome:
    labels = [lab.word for lab in ex.labels]
    why = []
    if case.polarity == "positive" and ex.basic_category not in POSITIVE:
        why.append(f"basic category {ex.basic_category} is not positive")
    if case.polarity == "negative" and ex.basic_category not in NEGATIVE:
        why.append(f"basic category {ex.basic_category} is not negative")
    if case.any_of and not set(labels) & set(case.any_of):
        why.append(f"no label of {case.any_of}")
    bad = sorted(set(labels) & set(case.none_of))
    if bad:
        why.append(f"forbidden labels {bad}")
    if case.says and not re.search(case.says, ex.text, re.IGNORECASE):
        why.append(f"the explanation does not say /{case.says}/")
    return Outcome(case, not why, why, labels, ex.basic_category, ex.text, list(ex.warnings))


# What an answer claims when it reads a disagreement into the words.
_CLAIMS_DISAGREEMENT = re.compile(
    r"sarcas|teas|playful|joking|ironic|put on|hiding|mask|nervous|not (?:really|genuine)",
    re.IGNORECASE,
)


async def lexical_stage(engine: Any, cases: list[Case], models: ClueModels, root: Path) -> None:
    """Score the LLM's own lexical clue on the cases that have a face or a voice."""
    from services.explainer.llm import GenerationParams
    from services.explainer.prompts import lexical_disambiguation_messages, load_prompt

    prefix = load_prompt("lexical_disambiguation").response_prefix
    params = GenerationParams(max_tokens=96, temperature=0.0)
    groups: dict[str, list[bool]] = {}
    for case in cases:
        if not (case.face or case.voice):
            continue
        audio, visual, _text = models.clues(case, root)
        messages = lexical_disambiguation_messages(case.subtitle, visual, audio)
        answer = prefix + " " + "".join([d async for d in engine.generate(messages, params)])
        if case.says:
            right = bool(re.search(case.says, answer, re.IGNORECASE))
        else:
            right = not _CLAIMS_DISAGREEMENT.search(answer)
        groups.setdefault(case.group, []).append(right)
        print(f"[{'ok ' if right else 'BAD'}] {case.group}: {case.subtitle!r} -> {answer.strip()}")
    print("\n| group (LLM reads the words) | right | cases |\n|---|---|---|")
    for name, marks in groups.items():
        print(f"| {name} | {sum(marks)} | {len(marks)} |")
    total = [m for marks in groups.values() for m in marks]
    print(f"| **all** | **{sum(total)}** | **{len(total)}** |")


def llm_config(spec: str, config: Path) -> Any:
    """The CPU profile's `explainer.llm` block, with `model` replaced unless spec is 'default'."""
    from services.explainer.config import LLMConfig

    app = yaml.safe_load(config.read_text())["applications"][0]["args"]
    block = dict(app["explainer"]["llm"])
    if spec != "default":
        block["model"] = spec
    return LLMConfig.model_validate(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=DEV_SET)
    parser.add_argument("--llm", help="'default' (the CPU profile's LLM) or a model folder")
    parser.add_argument("--config", type=Path, default=ROOT / "deploy" / "serve-cpu.yaml")
    parser.add_argument("--show", action="store_true", help="print every answer")
    parser.add_argument(
        "--stage",
        choices=["explain", "lexical"],
        default="explain",
        help="explain: the whole answer; lexical: only the LLM's reading of the words (--llm)",
    )
    parser.add_argument("--json", type=Path, help="write the outcomes here")
    args = parser.parse_args()

    root = data_root()
    cases = load_cases(args.cases)
    models = ClueModels()
    vocabulary = load_vocabulary(None)
    if vocabulary is None:
        raise SystemExit(f"the emotion wheel is missing under {root}")

    if args.stage == "lexical" and not args.llm:
        raise SystemExit("--stage lexical needs --llm")

    async def run() -> list[Outcome]:
        from services.explainer.vllm_engine import VLLMEngine

        engine = await VLLMEngine.start(llm_config(args.llm, args.config)) if args.llm else None
        if args.stage == "lexical" and engine is not None:
            await lexical_stage(engine, cases, models, root)
            engine.shutdown()
            return []
        core = ExplainerCore(vocabulary, engine)
        out = []
        for case in cases:
            clues = models.clues(case, root)
            out.append(judge(case, await explain(core, clues, case.subtitle)))
        if engine is not None:
            engine.shutdown()
        return out

    outcomes = asyncio.run(run())
    if not outcomes:
        return
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(o.case.group, []).append(o)
    print("\n| group | right | cases | check fired |\n|---|---|---|---|")
    for name, items in groups.items():
        fired = sum(1 for o in items if any("not used" in w or "dropped" in w for w in o.warnings))
        print(f"| {name} | {sum(o.right for o in items)} | {len(items)} | {fired} |")
    right = sum(o.right for o in outcomes)
    fired = sum(1 for o in outcomes if any("not used" in w or "dropped" in w for w in o.warnings))
    print(f"| **all** | **{right}** | **{len(outcomes)}** | {fired} |")
    for o in outcomes:
        if args.show or not o.right:
            mark = "ok " if o.right else "BAD"
            where = f"face={o.case.face} voice={o.case.voice}"
            print(f"\n[{mark}] {o.case.group}: {o.case.subtitle!r} {where}")
            print(f"  labels={o.labels} basic={o.basic} {'; '.join(o.why)}")
            if args.show:
                print(f"  {o.explanation}")
                for w in o.warnings:
                    print(f"  warning: {w}")
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "group": o.case.group,
                        "subtitle": o.case.subtitle,
                        "face": o.case.face,
                        "voice": o.case.voice,
                        "right": o.right,
                        "why": o.why,
                        "labels": o.labels,
                        "basic": o.basic,
                        "explanation": o.explanation,
                        "warnings": o.warnings,
                    }
                    for o in outcomes
                ],
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
