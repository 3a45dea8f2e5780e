"""Tokens per second of the explainer LLM at concurrency 1 and 8.

Starts the embedded model with the service's own settings (`LLMConfig()`: SmolLM2-135M, dtype auto,
eager, 1 GiB KV cache, all cores) and streams fixed prompts with a fixed `max_tokens` and
`ignore_eos=True`, so every request produces exactly the same number of tokens and the rates
are comparable across runs and machines. Columns:

- `raw AsyncLLM`: vLLM's `AsyncLLM.generate` directly (token ids counted by vLLM);
- `VLLMEngine`: our `LLMEngine.generate` wrapper (chat template, deltas, abort handling).

Add a column (e.g. through the service) with `measure(generate_fn, concurrency, n_requests)`,
where `generate_fn(i)` is an async generator of text deltas for request number i.

    .venv/bin/python benchmarks/llm_throughput.py [--max-tokens 64] [--requests 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.explainer.config import LLMConfig  # noqa: E402
from services.explainer.llm import GenerationParams  # noqa: E402
from services.explainer.vllm_engine import VLLMEngine  # noqa: E402

GenerateFn = Callable[[int], AsyncIterator[str]]

# Clue-like prompts of a few hundred characters: what the explainer sends.
PROMPTS = [
    "In the video, a woman smiles widely and her eyes crinkle. In the audio, she laughs while "
    "speaking quickly. In the text, she says: 'You did not just do that!' Describe her emotions.",
    "In the video, a man frowns and looks down. In the audio, his voice is low and slow. In the "
    "text, he says: 'I guess it does not matter anymore.' Describe his emotional state.",
    "In the video, a person raises both eyebrows and opens the mouth. In the audio, the pitch "
    "jumps up. In the text: 'Wait, what?' Explain what the person feels and why.",
    "In the video, a woman clenches her jaw and stares. In the audio, she speaks loudly and "
    "sharply. In the text: 'I told you a hundred times.' Describe her emotions.",
]


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    tokens: int
    elapsed_s: float
    ttft_p50_s: float
    ttft_max_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.elapsed_s if self.elapsed_s else 0.0


async def measure_load(
    generate_fn: GenerateFn,
    concurrency: int,
    n_requests: int,
    tokens_per_request: int | None = None,
) -> LoadResult:
    """Run `n_requests` streams, at most `concurrency` at a time, and time them.

    Tokens are `tokens_per_request` per request when given (exact with ignore_eos and a fixed
    max_tokens); otherwise each non-empty delta counts as one token, which undercounts when
    a transport merges deltas.
    """
    gate = asyncio.Semaphore(concurrency)
    ttfts: list[float] = []
    counts: list[int] = []

    async def one(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            first: float | None = None
            n = 0
            async for delta in generate_fn(i):
                if first is None:
                    first = time.perf_counter() - started
                n += 1 if delta else 0
            ttfts.append(first if first is not None else float("nan"))
            counts.append(tokens_per_request if tokens_per_request is not None else n)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n_requests)))
    elapsed = time.perf_counter() - started
    return LoadResult(
        concurrency=concurrency,
        requests=n_requests,
        tokens=sum(counts),
        elapsed_s=elapsed,
        ttft_p50_s=statistics.median(ttfts),
        ttft_max_s=max(ttfts),
    )


async def measure(
    generate_fn: GenerateFn,
    concurrency: int,
    n_requests: int,
    tokens_per_request: int | None = None,
) -> float:
    """Tokens per second of `generate_fn` at `concurrency` (see `measure_load`)."""
    return (
        await measure_load(generate_fn, concurrency, n_requests, tokens_per_request)
    ).tokens_per_s


def raw_generate_fn(engine: VLLMEngine, max_tokens: int) -> GenerateFn:
    """vLLM's AsyncLLM without our wrapper, on the same chat-templated prompts."""
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind, SamplingParams

    llm = engine.async_llm
    ids = [engine.prompt_token_ids([{"role": "user", "content": p}]) for p in PROMPTS]
    params = SamplingParams(
        max_tokens=max_tokens,
        temperature=0.0,
        ignore_eos=True,
        output_kind=RequestOutputKind.DELTA,
    )

    async def fn(i: int) -> AsyncIterator[str]:
        prompt = TokensPrompt(prompt_token_ids=list(ids[i % len(ids)]))
        async for out in llm.generate(prompt, params, f"bench-raw-{i}-{time.monotonic_ns()}"):
            yield out.outputs[0].text

    return fn


def engine_generate_fn(engine: VLLMEngine, max_tokens: int) -> GenerateFn:
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True)

    def fn(i: int) -> AsyncIterator[str]:
        return engine.generate([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], params)

    return fn


def _pss_mib() -> dict[str, float]:
    """Proportional memory of this process and its children (vLLM's engine core and worker),
    by process name; PSS splits shared pages so the sum is what the replica really costs."""
    import psutil

    me = psutil.Process()
    out: dict[str, float] = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            info = p.memory_full_info()
            name = "frontend" if p.pid == me.pid else p.name()
            out[name] = out.get(name, 0.0) + getattr(info, "pss", info.rss) / (1 << 20)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


async def run(max_tokens: int, requests: int, dtype: str | None = None) -> None:
    started = time.perf_counter()
    engine = await VLLMEngine.start(LLMConfig(dtype=dtype) if dtype else LLMConfig())
    start_s = time.perf_counter() - started
    try:
        columns: dict[str, GenerateFn] = {
            "raw AsyncLLM": raw_generate_fn(engine, max_tokens),
            "VLLMEngine": engine_generate_fn(engine, max_tokens),
        }
        await measure(columns["raw AsyncLLM"], 1, 1, max_tokens)  # warm-up
        rows: dict[str, dict[int, LoadResult]] = {}
        for name, fn in columns.items():
            rows[name] = {}
            for concurrency in (1, 8):
                n = max(concurrency, requests if concurrency > 1 else max(2, requests // 4))
                rows[name][concurrency] = await measure_load(fn, concurrency, n, max_tokens)
        memory = _pss_mib()
    finally:
        engine.shutdown()

    print(
        f"model {engine.info.name} ({engine.info.version}), {platform.machine()}, "
        f"{os.cpu_count()} cores, max_tokens {max_tokens}, ignore_eos, greedy"
    )
    parts = ", ".join(f"{k} {v:.0f}" for k, v in memory.items())
    print(f"engine start {start_s:.1f} s; PSS {sum(memory.values()):.0f} MiB ({parts})")
    print(f"{'column':<14} {'conc':>4} {'reqs':>5} {'tok/s':>7} {'TTFT p50':>9} {'TTFT max':>9}")
    for name, by_conc in rows.items():
        for concurrency, r in by_conc.items():
            print(
                f"{name:<14} {concurrency:>4} {r.requests:>5} {r.tokens_per_s:>7.1f} "
                f"{r.ttft_p50_s * 1000:>7.0f}ms {r.ttft_max_s * 1000:>7.0f}ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=16, help="requests at concurrency 8")
    parser.add_argument(
        "--dtype", choices=["auto", "bfloat16", "float16", "float32"], help="default: LLMConfig's"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    asyncio.run(run(args.max_tokens, args.requests, args.dtype))


if __name__ == "__main__":
    main()
