"""What the service says for the demo inputs and a few dev cases: clues, explanation, labels.

Runs the embedded clue models and the explainer in-process (the same code the deployments run,
without Ray), with the CPU profile's LLM when `--llm default` is given, and prints markdown for
docs/explanations.md. Like eval_disambiguation.py it only uses APIs that predate the
disambiguation stage, so `PYTHONPATH=<old checkout>` shows the "before".

    .venv/bin/python benchmarks/show_explanations.py --llm default > /tmp/after.md
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from pathlib import Path
from typing import Any

# As a script: find benchmarks/ (after PYTHONPATH, so an older checkout can be shown).
sys.path.append(str(Path(__file__).resolve().parents[1]))

from emer_eval.vocabulary import load_vocabulary

from benchmarks.eval_disambiguation import (
    DEV_SET,
    ROOT,
    ClueModels,
    data_root,
    llm_config,
    load_cases,
)
from services.common.types import Clue, Transcript
from services.explainer.composer import Explanation
from services.explainer.explainer import ExplainerCore
from services.media.decode import DecodeOptions, decode_media

# Dev cases shown (by their subtitle), one per kind of disagreement and agreement.
SHOWN_CASES = (
    "Thanks so much, I really appreciate it.",
    "You're so annoying, go away!",
    "Congratulations, I'm so happy for you.",
    "Haha, I'm so scared I'm going to fail this.",
    "We did it, we actually won!",
    "How could you do this to me? I trusted you.",
)


def _clue_line(name: str, clue: Clue | None) -> str:
    if clue is None:
        return ""
    if not clue.available:
        return f"- **{name}**: unavailable ({clue.unavailable_reason})"
    top = max(clue.emotion_scores, key=lambda k: clue.emotion_scores[k])
    text = " ".join(clue.description)
    return f"- **{name}** ({top} {clue.emotion_scores[top]:.2f}): {text}"


def _block(title: str, clues: tuple[Clue | None, Clue | None, Clue | None], ex: Explanation) -> str:
    audio, visual, text = clues
    lines = [f"#### {title}", ""]
    lines += [
        line
        for line in (
            _clue_line("face", visual),
            _clue_line("voice", audio),
            _clue_line("words", text),
        )
        if line
    ]
    labels = ", ".join(lab.word for lab in ex.labels)
    lines += [
        f"- **explanation** ({ex.model.name}): {ex.text}",
        f"- **labels**: {labels}; basic category {ex.basic_category}",
    ]
    lines += [f"- **warning**: {w}" for w in ex.warnings]
    return "\n".join(lines) + "\n"


async def _explain(
    core: ExplainerCore, clues: tuple[Clue | None, Clue | None, Clue | None], transcript: str
) -> Explanation:
    audio, visual, text = clues
    said = Transcript(transcript, "en", [], "subtitle") if transcript else None
    async for item in core.explain_stream(audio, visual, text, said):
        if isinstance(item, Explanation):
            return item
    raise RuntimeError("no explanation")


def demo_clues(models: ClueModels, media: str, subtitle: str) -> tuple[Any, Any, Any, str]:
    """The clues of one demo manifest row, and the words said (subtitle or ASR)."""
    audio = visual = None
    words = subtitle
    if media:
        decoded = decode_media((ROOT / "demo" / media).read_bytes(), None, DecodeOptions())
        if decoded.video is not None and decoded.video.frames:
            visual = models.visual.analyze(decoded.video)
        if decoded.audio is not None:
            result = models.audio.analyze(decoded.audio, transcribe=not subtitle)
            audio = result.clue
            if not subtitle and result.transcript is not None:
                words = result.transcript.text
    text = models.text.analyze(words) if words.strip() else None
    return audio, visual, text, words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", help="'default' (the CPU profile's LLM) or a model folder")
    parser.add_argument("--config", type=Path, default=ROOT / "deploy" / "serve-cpu.yaml")
    args = parser.parse_args()
    root = data_root()
    models = ClueModels()
    vocabulary = load_vocabulary(str(root / "emer" / "wheel"))

    async def run() -> list[str]:
        from services.explainer.vllm_engine import VLLMEngine

        engine = await VLLMEngine.start(llm_config(args.llm, args.config)) if args.llm else None
        core = ExplainerCore(vocabulary, engine)
        out = ["### Demo inputs", ""]
        with open(ROOT / "demo" / "manifest.csv", newline="") as f:
            for row in csv.DictReader(f):
                audio, visual, text, words = demo_clues(models, row["media"], row["subtitle"])
                ex = await _explain(core, (audio, visual, text), words)
                out.append(
                    _block(
                        f"`{row['id']}` ({row['media'] or 'text only'})", (audio, visual, text), ex
                    )
                )
        out += ["### Dev cases", ""]
        cases = {c.subtitle: c for c in load_cases(DEV_SET)}
        for subtitle in SHOWN_CASES:
            case = cases[subtitle]
            clues = models.clues(case, root)
            ex = await _explain(core, clues, subtitle)
            where = f"face {case.face}, voice {case.voice}" if case.face else "text only"
            out.append(_block(f'{case.group}: "{subtitle}" ({where})', clues, ex))
        if engine is not None:
            engine.shutdown()
        return out

    print("\n".join(asyncio.run(run())))


if __name__ == "__main__":
    main()
