"""The production LLM engine: vLLM's AsyncLLM behind the `LLMEngine` protocol (llm.py).

vLLM is imported lazily inside `VLLMEngine.start`: importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.common.types import ModelInfo
from services.explainer.config import DType, LLMConfig
from services.explainer.llm import (
    ChatMessage,
    GenerationParams,
    LLMEngine,
    LLMError,
    LLMRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
    Prompt,
    TextDelta,
)

if TYPE_CHECKING:
    from vllm.v1.engine.async_llm import AsyncLLM

logger = logging.getLogger(__name__)

GIB = 1 << 30


def _bind_all_cores() -> str:
    cores = sorted(os.sched_getaffinity(0))
    return ",".join(str(c) for c in cores)


def _apply_cpu_env(config: LLMConfig) -> None:
    """vLLM's CPU backend reads these from the environment of the engine-core process it spawns,
    so they must be in os.environ before the engine starts."""
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(config.kv_cache_space_gib)
    bind = _bind_all_cores() if config.cpu_threads_bind == "all" else config.cpu_threads_bind
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = bind


# CPU flags (Linux /proc/cpuinfo) of an instruction set that computes bfloat16 natively.
_NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 AVX-512, AMX; aarch64


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bfloat16 in hardware (unknown -> True, vLLM's own default)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return True
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return bool(_NATIVE_BF16_FLAGS & set(value.split()))
    return True


def resolve_dtype(configured: DType, device: str) -> DType:
    """The dtype to run: "auto" on CPU is bfloat16 where the CPU computes it natively and
    float32 elsewhere. Without avx512_bf16/AMX, vLLM's bfloat16 kernels convert every operand:
    on a 2-core Xeon without them, SmolLM2-135M ran 50 -> 88 tok/s at 8 requests and its first
    token came 2.3 -> 0.9 s sooner in float32, for 0.37 GiB more memory (docs/performance.md).
    On GPU, "auto" is vLLM's: the checkpoint's dtype."""
    if configured != "auto" or device != "cpu":
        return configured
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def _apply_process_env() -> None:
    """Environment every engine needs, whatever the device (setdefault: an operator's value wins).

    - VLLM_HOST_IP: the engine's processes all live on this host; vLLM's discovery otherwise
      picks the machine's outward address for its message queues (traffic we keep off the
      network; it also fails inside a loopback-only namespace).
    - VLLM_NO_USAGE_STATS: vLLM reports usage to its authors' server by default; a model server
      must not phone home with its users' deployment details.
    """
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")


def _prepare(config: LLMConfig) -> tuple[str, str, str]:
    """Import vLLM and make the model available (converting the embedded one if needed).

    Returns (path or hub name for vLLM, display name, version).
    """
    import vllm.engine.arg_utils
    import vllm.inputs
    import vllm.platforms
    import vllm.sampling_params
    import vllm.v1.engine.async_llm  # noqa: F401

    from services.explainer import prepare_model

    if config.model is None:
        models_dir = Path(config.models_dir) if config.models_dir else None
        spec = prepare_model.embedded_model(config.embedded)
        path = prepare_model.ensure_model(models_dir, model=spec.name)
        version = "unknown"
        manifest = path / prepare_model.MANIFEST
        if manifest.is_file():
            files: dict[str, str] = json.loads(manifest.read_text()).get("files", {})
            # One file, or the first shard of a larger model.
            shards = sorted(k for k in files if k.endswith(".safetensors"))
            weights = files.get("model.safetensors") or (files[shards[0]] if shards else None)
            if weights:
                version = f"{spec.quant}-bf16-{weights[:12]}"
        return str(path), spec.display_name, version
    path = Path(config.model)
    name = path.name if path.exists() else config.model
    return config.model, name, "local" if path.exists() else "hub"


class VLLMEngine:
    """`LLMEngine` on vLLM's `AsyncLLM`: continuous batching, streaming, guided JSON.

    Create with `await VLLMEngine.start(config)`; one engine per process (vLLM spawns its
    engine-core process and sizes the KV cache for the whole machine).
    """

    def __init__(self, llm: AsyncLLM, config: LLMConfig, info: ModelInfo) -> None:
        self._llm = llm
        self._config = config
        self._info = info
        self._tokenizer = llm.get_tokenizer()
        self._closed = False
        self._last_success = time.monotonic()
        self._active: set[str] = set()

    @classmethod
    async def start(cls, config: LLMConfig | None = None) -> VLLMEngine:
        """Load the model (converting the embedded one if needed) within `startup_timeout_s`."""
        config = config or LLMConfig()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.startup_timeout_s
        # Both steps run in worker threads: they block for seconds (tens when converting) and
        # the replica's event loop must keep answering. AsyncLLM starts its output loop lazily
        # on the first request, on the loop that makes it.
        try:
            async with asyncio.timeout_at(deadline):
                # A separate thread call: vLLM keeps the traceback of an optional import that
                # fails while it loads, and that traceback's frames reach the calling frames.
                # If the engine were built in the same call, they would keep it alive past
                # shutdown() (and its __del__ would fail noisily at interpreter exit).
                identity = await loop.run_in_executor(None, _prepare, config)
        except TimeoutError as e:
            raise LLMTimeoutError(
                f"LLM model not ready within {config.startup_timeout_s:.0f} s"
            ) from e
        except LLMError:
            raise
        except Exception as e:
            raise LLMUnavailableError(f"LLM model could not be prepared: {e}") from e
        future = loop.run_in_executor(None, cls._build, config, *identity)
        try:
            remaining = max(0.0, deadline - loop.time())
            llm, info = await asyncio.wait_for(asyncio.shield(future), remaining)
        except TimeoutError as e:
            # The thread cannot be interrupted: shut the engine down whenever it does come up,
            # so a timed-out start does not leak an engine-core process.
            future.add_done_callback(_shutdown_when_built)
            raise LLMTimeoutError(
                f"LLM engine did not start within {config.startup_timeout_s:.0f} s"
            ) from e
        except LLMError:
            raise
        except Exception as e:
            raise LLMUnavailableError(f"LLM engine failed to start: {e}") from e
        return cls(llm, config, info)

    @staticmethod
    def _build(
        config: LLMConfig, model: str, name: str, version: str
    ) -> tuple[AsyncLLM, ModelInfo]:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.platforms import current_platform
        from vllm.v1.engine.async_llm import AsyncLLM

        device = current_platform.device_type
        if config.device != "auto" and config.device != device:
            raise LLMUnavailableError(
                f"configured device {config.device!r} but this vLLM build runs on {device!r}"
            )
        _apply_process_env()
        kwargs: dict[str, Any] = {}
        if device == "cpu":
            _apply_cpu_env(config)
            kwargs["kv_cache_memory_bytes"] = config.kv_cache_space_gib * GIB
        args = AsyncEngineArgs(
            model=model,
            served_model_name=name,
            dtype=resolve_dtype(config.dtype, device),
            max_model_len=config.max_model_len,
            max_num_seqs=config.max_num_seqs,
            stream_interval=config.stream_interval,
            enforce_eager=config.enforce_eager,
            gpu_memory_utilization=config.gpu_memory_utilization,
            tensor_parallel_size=config.tensor_parallel_size,
            seed=config.seed,
            # Sampling defaults come from LLMConfig, not from the checkpoint's
            # generation_config.json, so that every model behaves the same way.
            generation_config="vllm",
            disable_log_stats=True,
            **kwargs,
        )
        info = ModelInfo(role="explainer", name=name, version=version, backend="vllm")
        started = time.monotonic()
        try:
            # No local name for the engine: vLLM keeps a traceback of an import it tried during
            # start-up, whose frames reach this one; a local here would keep the engine alive
            # past shutdown() until interpreter exit, when its __del__ fails noisily.
            return AsyncLLM.from_engine_args(args), info
        finally:
            logger.info("vLLM engine for %s started in %.1f s", name, time.monotonic() - started)

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def config(self) -> LLMConfig:
        return self._config

    @property
    def async_llm(self) -> AsyncLLM:
        """The underlying vLLM engine, for benchmarks and diagnostics only."""
        if self._closed:
            raise LLMUnavailableError("LLM engine is shut down")
        return self._llm

    @property
    def num_active_requests(self) -> int:
        """Requests the engine still tracks (0 after every stream ended or was aborted)."""
        return 0 if self._closed else int(self._llm.get_num_unfinished_requests())

    async def scheduler_busy(self) -> bool:
        """Whether vLLM's engine core still holds requests to step (asked of the engine-core
        process itself, not of this front end): False once every request finished or was
        aborted, i.e. no token is being generated for anyone."""
        if self._closed:
            return False
        return bool(await self._llm.engine_core.call_utility_async("has_work"))

    def prompt_token_ids(self, prompt: Prompt) -> list[int]:
        """The token ids the engine will see for `prompt` (chat template applied)."""
        tok: Any = self._tokenizer
        if isinstance(prompt, str):
            ids = tok.encode(prompt)
        else:
            messages = [dict(m) for m in prompt]
            # A final assistant message is the start of the answer: continue it rather than
            # open a new turn (steers small models into a fixed form).
            prefill = bool(messages) and messages[-1].get("role") == "assistant"
            # The chat template already adds the special tokens.
            text = tok.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=not prefill,
                continue_final_message=prefill,
            )
            ids = tok.encode(text, add_special_tokens=False)
        return list(ids)

    def _sampling(
        self, params: GenerationParams, prompt_len: int, guided: Mapping[str, Any] | None
    ) -> Any:
        from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

        room = self._config.max_model_len - prompt_len
        if room < 1:
            raise LLMRequestError(
                f"prompt has {prompt_len} tokens; the context holds {self._config.max_model_len}"
            )
        wanted = params.max_tokens or self._config.max_tokens
        temperature = self._config.temperature if params.temperature is None else params.temperature
        penalty = (
            self._config.repetition_penalty
            if params.repetition_penalty is None
            else params.repetition_penalty
        )
        return SamplingParams(
            max_tokens=min(wanted, room),
            temperature=temperature,
            top_p=params.top_p,
            repetition_penalty=penalty,
            stop=list(params.stop) or None,
            ignore_eos=params.ignore_eos,
            seed=self._config.seed if temperature > 0 else None,
            output_kind=RequestOutputKind.DELTA,
            structured_outputs=StructuredOutputsParams(json=dict(guided)) if guided else None,
        )

    async def generate(
        self, prompt: Prompt, params: GenerationParams | None = None
    ) -> AsyncGenerator[str, None]:
        # aclosing: an `async for` left by GeneratorExit does not close the inner generator;
        # without it the engine would keep decoding until garbage collection gets to it.
        async with aclosing(self._stream(prompt, params or GenerationParams(), None)) as stream:
            async for delta in stream:
                yield delta

    async def _stream(
        self, prompt: Prompt, params: GenerationParams, guided: Mapping[str, Any] | None
    ) -> AsyncGenerator[str, None]:
        if self._closed:
            raise LLMUnavailableError("LLM engine is shut down")
        from vllm.exceptions import VLLMClientError
        from vllm.inputs import TokensPrompt
        from vllm.v1.engine.exceptions import EngineDeadError

        ids = self.prompt_token_ids(prompt)
        sampling = self._sampling(params, len(ids), guided)
        request_id = params.request_id or f"emer-{uuid.uuid4().hex}"
        timeout = min(params.timeout_s or math.inf, self._config.request_timeout_s)
        deadline = asyncio.get_running_loop().time() + timeout
        finished = False
        self._active.add(request_id)
        try:
            stream = self._llm.generate(TokensPrompt(prompt_token_ids=ids), sampling, request_id)
            async with aclosing(stream):
                while True:
                    # The timeout covers only the wait for the engine, never the consumer's
                    # own work between deltas (a timeout across `yield` would cancel the
                    # consumer's task at an arbitrary point).
                    try:
                        async with asyncio.timeout_at(deadline):
                            out = await anext(stream)
                    except StopAsyncIteration:
                        break
                    if out.outputs and out.outputs[0].text:
                        first = out.outputs[0]
                        yield TextDelta(first.text, tokens=len(first.token_ids))
                    if out.finished:
                        finished = True
                        break
            self._last_success = time.monotonic()
        except TimeoutError as e:
            raise LLMTimeoutError(f"generation {request_id} exceeded {timeout:.1f} s") from e
        except EngineDeadError as e:
            raise LLMUnavailableError("LLM engine core died") from e
        except (LLMError, GeneratorExit, asyncio.CancelledError):
            raise
        except (VLLMClientError, ValueError) as e:  # vLLM's request validation errors
            raise LLMRequestError(str(e)) from e
        except Exception as e:
            raise LLMError(f"generation {request_id} failed: {e}") from e
        finally:
            self._active.discard(request_id)
            if not finished and not self._closed:
                # vLLM aborts on cancellation of its own generator; this covers every other way
                # out (timeout, consumer closing us between deltas) and is a no-op when the
                # request is already gone. Never let it mask the error that brought us here.
                try:
                    await asyncio.shield(self._llm.abort(request_id))
                except Exception:
                    logger.warning("could not abort LLM request %s", request_id, exc_info=True)

    async def complete_json(
        self, messages: Sequence[ChatMessage], json_schema: Mapping[str, Any], max_tokens: int
    ) -> str:
        params = GenerationParams(max_tokens=max_tokens, temperature=0.0, repetition_penalty=1.0)
        async with aclosing(self._stream(messages, params, json_schema)) as stream:
            return "".join([d async for d in stream])

    async def check_health(self) -> None:
        if self._closed:
            raise LLMUnavailableError("LLM engine is shut down")
        if self._llm.errored:
            raise LLMUnavailableError("LLM engine core died")
        await self._llm.check_health()
        idle_for = time.monotonic() - self._last_success
        if not self._active and idle_for >= self._config.health_probe_interval_s:
            # Touch the model: a live process with a wedged engine would pass the checks above.
            probe = GenerationParams(max_tokens=1, temperature=0.0, request_id=None)
            # Well inside Serve's default 30 s health-check timeout.
            async with asyncio.timeout(10):
                async with aclosing(self.generate("Hello", probe)) as stream:
                    async for _ in stream:
                        pass

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        llm = self._llm
        # Drop our reference so AsyncLLM.__del__ runs now, while the interpreter is whole;
        # at interpreter exit it would call a half-torn-down shutdown and print a traceback.
        del self._llm
        llm.shutdown()
        del llm


def _shutdown_when_built(future: asyncio.Future[tuple[AsyncLLM, ModelInfo]]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result()[0].shutdown()


async def start_engine(config: LLMConfig | None = None) -> LLMEngine:
    """The production engine for `config` (vLLM). Tests inject a scripted double instead."""
    return await VLLMEngine.start(config)
