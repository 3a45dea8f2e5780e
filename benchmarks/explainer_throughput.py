"""Explainer tokens/s through the service against raw AsyncLLM, at concurrency 1 and 8.

1. Starts the real service (deploy/serve-cpu.yaml: the embedded SmolLM2 on vLLM, the LLM
   writing the "Therefore, ..." conclusion) and sends text-only AnalyzeStream requests. Tokens =
   the LLM's part of each explanation, re-encoded with the model's tokenizer; tokens/s = all
   tokens / wall time of the batch (so it includes everything the service does around the LLM).
2. Stops the service, starts the same model with the same settings (LLMConfig from the same
   Serve config) and runs vLLM's AsyncLLM directly on exactly the prompts the service built
   (recomputed from the returned text clue with the same composer), greedy, same max_tokens,
   counting tokens the same way.

    scripts/netns-run .venv/bin/python benchmarks/explainer_throughput.py [--llm-writes MODE]

`--llm-writes conclusion` (the CPU default: one short sentence per request, so fixed per-request
costs weigh in) or `description` (the LLM writes the whole paragraph, as in the GPU profile).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from emer_proto import emotion_pb2 as pb

from clients.client import ClientOptions, EmotionClient
from clients.local_server import local_server
from services.common.types import Clue, Modality, Transcript
from services.explainer.composer import compose
from services.explainer.llm import LLMConfig, VLLMEngine
from services.explainer.prompts import conclusion_messages, merge_description_messages
from services.explainer.vocabulary import load_vocabulary

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "serve-cpu.yaml"
SUBTITLES = [
    "We won the final, I still can't believe it!",
    "I waited two hours and nobody even called me.",
    "Please don't leave me here alone in the dark.",
    "You ate the last piece again? Unbelievable.",
    "That smell in the fridge is absolutely disgusting.",
    "Wait, you're telling me she's moving to Japan?",
    "Fine. Whatever. Do what you want.",
    "Thank you so much, this means the world to me.",
]
MARK = "Therefore,"
DESCRIPTION_PREFIX = "In the video,"


def _clue(msg: pb.Clue) -> Clue:
    return Clue(
        Modality.TEXT,
        msg.available,
        msg.unavailable_reason,
        list(msg.description),
        dict(msg.emotion_scores),
        msg.valence,
        msg.arousal,
    )


def run_service(address: str, concurrency: int, n: int) -> tuple[float, list[pb.AnalyzeResponse]]:
    def one(i: int) -> pb.AnalyzeResponse:
        with EmotionClient(ClientOptions(address=address, timeout_s=300)) as client:
            events = list(client.analyze_stream(pb.AnalyzeRequest(subtitle=SUBTITLES[i % 8])))
        return events[-1].summary

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        out = list(pool.map(one, range(n)))
    return time.perf_counter() - t0, out


async def run_raw(
    engine: VLLMEngine, prompts: list[list[int]], concurrency: int, max_tokens: int, mode: str
) -> tuple[float, list[str]]:
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind, SamplingParams

    # The service's settings (services/explainer/explainer.py): a conclusion is one sentence.
    conclusion = mode == "conclusion"
    params = SamplingParams(
        max_tokens=min(max_tokens, 96) if conclusion else max_tokens,
        temperature=0.0,
        stop=[".", "\n"] if conclusion else None,
        output_kind=RequestOutputKind.FINAL_ONLY,
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        async with gate:
            text = ""
            prompt = TokensPrompt(prompt_token_ids=prompts[i])
            async for out in engine.async_llm.generate(prompt, params, f"raw-{i}-{time.time()}"):
                text = out.outputs[0].text
            return text

    t0 = time.perf_counter()
    texts = await asyncio.gather(*(one(i) for i in range(len(prompts))))
    return time.perf_counter() - t0, list(texts)


async def raw_phase(
    service: dict[int, tuple[float, list[pb.AnalyzeResponse]]], llm_config: LLMConfig, mode: str
) -> list[tuple[int, int, float, float]]:
    """Raw AsyncLLM on the prompts the service built; one event loop (AsyncLLM is bound to it)."""
    vocab = load_vocabulary(None)
    engine = await VLLMEngine.start(llm_config)
    tok: Any = engine._tokenizer  # the model's own tokenizer counts both columns alike

    def tokens(texts: list[str]) -> int:
        return sum(len(tok.encode(t, add_special_tokens=False)) for t in texts)

    rows = []
    try:
        for conc, (service_s, responses) in service.items():
            prompts, service_texts = [], []
            for r in responses:
                transcript = Transcript(r.transcript.text, "en", [], "subtitle")
                base = compose(None, None, _clue(r.clues.text), transcript, vocab)
                if mode == "conclusion":
                    fused = ", ".join(lab.word for lab in base.labels) or "no clear emotion"
                    messages = conclusion_messages(" ".join(base.sentences[:-1]), fused)
                    service_texts.append(r.explanation.split(MARK, 1)[-1])
                else:
                    lexical = " ".join(_clue(r.clues.text).description)
                    messages = merge_description_messages(None, None, lexical, transcript)
                    service_texts.append(r.explanation.split(DESCRIPTION_PREFIX, 1)[-1])
                prompts.append(engine.prompt_token_ids(messages))
            raw_s, raw_texts = await run_raw(engine, prompts, conc, llm_config.max_tokens, mode)
            s_tok, r_tok = tokens(service_texts), tokens(raw_texts)
            rows.append((conc, len(responses), s_tok / service_s, r_tok / raw_s))
    finally:
        engine.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--llm-writes", choices=["conclusion", "description"], default="conclusion")
    mode = parser.parse_args().llm_writes
    serve_config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    app = serve_config["applications"][0]["args"]
    app["explainer"]["llm_writes"] = mode
    llm_config = LLMConfig.model_validate(app["explainer"]["llm"])
    plan = {1: 4, 8: 16}
    service: dict[int, tuple[float, list[pb.AnalyzeResponse]]] = {}
    tmp_dir = tempfile.TemporaryDirectory()
    config_path = Path(tmp_dir.name) / "serve.yaml"
    config_path.write_text(yaml.safe_dump(serve_config))
    with local_server(Path(tmp_dir.name) / "serve.log", config=config_path) as address:
        run_service(address, 2, 4)  # warm-up
        for conc, n in plan.items():
            service[conc] = run_service(address, conc, n)

    rows = asyncio.run(raw_phase(service, llm_config, mode))
    print(f"embedded model, llm_writes {mode}, {os.cpu_count()} CPUs, greedy")
    print("\n| concurrency | requests | service tok/s | raw AsyncLLM tok/s | service / raw |")
    print("|---|---|---|---|---|")
    for conc, n, s, r in rows:
        print(f"| {conc} | {n} | {s:.1f} | {r:.1f} | {s / r:.2f} |")
    sample = service[1][1][0]
    print(f"\nsample explanation ({sample.transcript.text!r}):\n{sample.explanation}")


if __name__ == "__main__":
    main()
