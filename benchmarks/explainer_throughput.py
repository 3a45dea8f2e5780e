"""Explainer tokens/s through the service against raw AsyncLLM, at concurrency 1 and 8.

Starts the real service (deploy/serve-cpu.yaml: the embedded SmolLM2 on vLLM, the LLM writing
the "Therefore, ..." conclusion) and, in this process, a raw vLLM AsyncLLM with the same model
and settings (LLMConfig from the same Serve config). Then, for each round and concurrency,
alternately:
1. a service batch: text-only AnalyzeStream requests; tokens = what the service's LLM generated
   (greedy, so the same as the raw run on the same prompts: the explanation itself may show the
   composer's sentence instead, when the grounding check replaced the LLM's), re-encoded with
   the model's tokenizer; tokens/s = all tokens / wall time of the batch (so it includes
   everything the service does around the LLM);
2. a raw batch: AsyncLLM.generate on exactly the prompts the service built (recomputed from the
   returned text clue with the same composer and prompt files), greedy, same max_tokens and
   stop rule, tokens counted the same way.
Alternating batches keep background load from favouring one side; the ratio reported is the
median of the per-round ratios. CPU seconds by process are printed for every batch.

    scripts/netns-run .venv/bin/python benchmarks/explainer_throughput.py [--llm-writes MODE]

`--llm-writes conclusion` (the CPU default: one short sentence per request, so fixed per-request
costs weigh in) or `description` (the LLM writes the whole paragraph, as in the GPU profile).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from cpu_usage import cpu_by_process, cpu_snapshot, format_usage
from emer_eval.vocabulary import load_vocabulary
from emer_proto import emotion_pb2 as pb

from clients.client import EmotionClient
from clients.options import ClientOptions
from services.common.types import Clue, Modality, Transcript
from services.explainer.composer import compose
from services.explainer.config import LLMConfig
from services.explainer.explainer import CONCLUSION_STOP
from services.explainer.llm import GenerationParams
from services.explainer.prompts import (
    conclusion_messages,
    merge_description_messages,
    structured_clues,
)
from services.explainer.vllm_engine import VLLMEngine
from services.local_server import local_server

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
    """n AnalyzeStream requests, `concurrency` at a time, each worker on its own open channel
    (as an application keeps its channel; a channel per request would time TCP and HTTP/2
    set-up in the client and the proxy)."""
    idle: queue.Queue[EmotionClient] = queue.Queue()
    for _ in range(concurrency):
        client = EmotionClient(ClientOptions(address=address, timeout_s=300))
        client.health()  # connect before the clock starts
        idle.put(client)

    def one(i: int) -> pb.AnalyzeResponse:
        client = idle.get()
        try:
            events = list(client.analyze_stream(pb.AnalyzeRequest(subtitle=SUBTITLES[i % 8])))
        finally:
            idle.put(client)
        return events[-1].summary

    try:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            out = list(pool.map(one, range(n)))
        return time.perf_counter() - t0, out
    finally:
        while not idle.empty():
            idle.get().close()


async def run_raw(
    engine: VLLMEngine,
    prompts: list[list[int]],
    concurrency: int,
    max_tokens: int,
    mode: str,
    streamed: bool,
) -> tuple[float, list[str]]:
    """AsyncLLM.generate with the sampling parameters the service's engine builds for the same
    request (services/explainer/explainer.py: a conclusion is one sentence; the configured
    repetition penalty), streamed token deltas like the service, or only the final output."""
    from dataclasses import replace

    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind

    conclusion = mode == "conclusion"
    wanted = GenerationParams(
        max_tokens=min(max_tokens, 96) if conclusion else max_tokens,
        temperature=0.0,
        stop=CONCLUSION_STOP if conclusion else (),
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        params = engine._sampling(wanted, len(prompts[i]), None)
        if not streamed:
            params.output_kind = RequestOutputKind.FINAL_ONLY
        async with gate:
            parts = []
            prompt = TokensPrompt(prompt_token_ids=prompts[i])
            async for out in engine.async_llm.generate(prompt, params, f"raw-{i}-{time.time()}"):
                parts.append(out.outputs[0].text)
            return "".join(parts)

    del replace
    t0 = time.perf_counter()
    texts = await asyncio.gather(*(one(i) for i in range(len(prompts))))
    return time.perf_counter() - t0, list(texts)


class RawEngine:
    """Raw AsyncLLM in a background event loop (AsyncLLM is bound to the loop it starts on), so
    its batches can alternate with the service's batches while the service is up."""

    def __init__(self, llm_config: LLMConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.engine: VLLMEngine = self.call(VLLMEngine.start(llm_config))
        self.tokenizer: Any = self.engine._tokenizer  # the model's own tokenizer counts both

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def tokens(self, texts: list[str]) -> int:
        return sum(len(self.tokenizer.encode(t, add_special_tokens=False)) for t in texts)

    def close(self) -> None:
        self.engine.shutdown()
        self.loop.call_soon_threadsafe(self.loop.stop)


def prompts_and_texts(
    engine: VLLMEngine, responses: list[pb.AnalyzeResponse], mode: str
) -> tuple[list[list[int]], list[str]]:
    """The prompts the service built (recomputed from the returned text clue with the same
    composer and prompt files) and the LLM's part of each explanation."""
    vocab = load_vocabulary(None)
    prompts, texts = [], []
    for r in responses:
        transcript = Transcript(r.transcript.text, "en", [], "subtitle")
        base = compose(None, None, _clue(r.clues.text), transcript, vocab)
        if mode == "conclusion":
            fused = ", ".join(lab.word for lab in base.labels) or "no clear emotion"
            text_clue = _clue(r.clues.text)
            clues = structured_clues(base.sentences[:-1], [None, None, text_clue])
            messages = conclusion_messages(clues, fused)
            texts.append(r.explanation.split(MARK, 1)[-1])
        else:
            lexical = " ".join(_clue(r.clues.text).description)
            messages = merge_description_messages(None, None, lexical, transcript)
            texts.append(r.explanation.split(DESCRIPTION_PREFIX, 1)[-1])
        prompts.append(engine.prompt_token_ids(messages))
    return prompts, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--llm-writes", choices=["conclusion", "description"], default="conclusion")
    parser.add_argument("--rounds", type=int, default=3, help="alternations per concurrency")
    args = parser.parse_args()
    mode = args.llm_writes
    serve_config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    app = serve_config["applications"][0]["args"]
    app["explainer"]["llm_writes"] = mode
    llm_config = LLMConfig.model_validate(app["explainer"]["llm"])
    plan = {1: 4, 8: 16}
    # concurrency -> per round (service, raw streamed, raw final-only) tok/s
    rows: dict[int, list[tuple[float, float, float]]] = {c: [] for c in plan}
    cpu: dict[tuple[str, int], list[str]] = {}
    sample: pb.AnalyzeResponse | None = None
    agree = [0, 0]  # explanations whose LLM part equals the raw output, of all
    tmp_dir = tempfile.TemporaryDirectory()
    config_path = Path(tmp_dir.name) / "serve.yaml"
    config_path.write_text(yaml.safe_dump(serve_config))
    with local_server(Path(tmp_dir.name) / "serve.log", config=config_path) as address:
        run_service(address, 2, 4)  # warm-up
        raw = RawEngine(llm_config)
        try:
            for _ in range(args.rounds):
                for conc, n in plan.items():
                    before = cpu_snapshot()
                    service_s, responses = run_service(address, conc, n)
                    used = cpu_by_process(before, cpu_snapshot())
                    cpu.setdefault(("service", conc), []).append(format_usage(used, service_s))
                    prompts, service_texts = prompts_and_texts(raw.engine, responses, mode)
                    tok_s = []
                    generated = 0
                    for streamed in (True, False):
                        before = cpu_snapshot()
                        raw_s, raw_texts = raw.call(
                            run_raw(
                                raw.engine, prompts, conc, llm_config.max_tokens, mode, streamed
                            )
                        )
                        used = cpu_by_process(before, cpu_snapshot())
                        phase = "raw streamed" if streamed else "raw final-only"
                        cpu.setdefault((phase, conc), []).append(format_usage(used, raw_s))
                        tok_s.append(raw.tokens(raw_texts) / raw_s)
                        if streamed:
                            generated = raw.tokens(raw_texts)
                            agree[0] += sum(
                                bool(b.strip()) and b.strip()[:40] in a
                                for a, b in zip(service_texts, raw_texts, strict=True)
                            )
                            agree[1] += len(raw_texts)
                    # Greedy decoding of the same prompts generates the same tokens in the
                    # service, but the explanation does not always show them: the grounding
                    # check replaces a failed conclusion with the composer's. So the service
                    # is credited with the tokens its LLM generated (those of the raw run).
                    rows[conc].append((generated / service_s, tok_s[0], tok_s[1]))
                    sample = sample or responses[0]
        finally:
            raw.close()

    print(f"embedded model, llm_writes {mode}, {os.cpu_count()} CPUs, greedy, {args.rounds} rounds")
    print(
        f"{agree[0]} of {agree[1]} explanations show the LLM's own conclusion (the others show the"
        " composer's: the grounding check replaced the LLM's)"
    )
    print(
        "(each round: a service batch, then raw AsyncLLM on the same prompts with the same\n"
        "sampling parameters, streamed and final-only; ratios are medians of the per-round\n"
        "ratios, the rounds in brackets)\n"
    )
    print(
        "| concurrency | requests per batch | service tok/s | raw streamed tok/s | "
        "service / raw streamed | raw final-only tok/s | service / raw final-only |"
    )
    print("|---|---|---|---|---|---|---|")
    for conc, triples in rows.items():
        med = [statistics.median(t[k] for t in triples) for k in range(3)]
        vs_streamed = [t[0] / t[1] for t in triples]
        vs_final = [t[0] / t[2] for t in triples]
        print(
            f"| {conc} | {plan[conc]} | {med[0]:.1f} | {med[1]:.1f} | "
            f"**{statistics.median(vs_streamed):.2f}** "
            f"({', '.join(f'{x:.2f}' for x in vs_streamed)}) | {med[2]:.1f} | "
            f"{statistics.median(vs_final):.2f} ({', '.join(f'{x:.2f}' for x in vs_final)}) |"
        )
    print("\nCPU by process in each batch (every process on the machine):")
    for (phase, conc), lines in cpu.items():
        for line in lines:
            print(f"- {phase} c={conc}: {line}")
    if sample is not None:
        print(f"\nsample explanation ({sample.transcript.text!r}):\n{sample.explanation}")


if __name__ == "__main__":
    main()
