"""The explainer's configuration (`explainer:` in the application args)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DType = Literal["auto", "bfloat16", "float16", "float32"]


class LLMConfig(BaseModel):
    """Settings of the explainer LLM. The defaults run the embedded model on 2 CPU cores."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        None,
        description="Local folder or Hugging Face hub name of an instruct model with a chat "
        "template. None = the embedded model named by `embedded`, converted from its packaged "
        "GGUF into `models_dir` on first use.",
    )
    embedded: str = Field(
        "smollm2-135m-instruct",
        description="Which embedded model runs when `model` is None: a name of "
        "`services.explainer.prepare_model.EMBEDDED_MODELS` (smollm2-135m-instruct, "
        "gemma3-270m, qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct; all but the "
        "first need their packages installed, see docs/models/explainer-llms.md).",
    )
    models_dir: str | None = Field(
        None,
        description="Cache folder for the converted embedded model. None = $EMER_MODELS or "
        "<repo>/.models. Ignored when `model` is set.",
    )

    @field_validator("embedded")
    @classmethod
    def _known_embedded(cls, value: str) -> str:
        from services.explainer.prepare_model import EMBEDDED_MODELS

        if value not in EMBEDDED_MODELS:
            raise ValueError(f"unknown embedded model {value!r}; known: {sorted(EMBEDDED_MODELS)}")
        return value

    max_model_len: int = Field(
        2048, ge=256, description="Context length (prompt + generated tokens) per request."
    )
    max_num_seqs: int = Field(
        16,
        ge=1,
        description="Most sequences batched together in one engine step (continuous batching). "
        "Requests beyond it wait in vLLM's queue.",
    )
    stream_interval: int = Field(
        4,
        ge=1,
        description="vLLM's stream interval: a streamed answer goes out as its first token, then "
        "every this many tokens (and at the end). Each delta crosses three processes (engine "
        "front end -> Explainer -> gateway -> proxy) at a fixed CPU cost; 4 tokens per delta "
        "cut that cost 4x at ~0.1-0.4 s between updates on CPU. 1 = every token.",
    )
    enforce_eager: bool = Field(
        True,
        description="Skip torch.compile / CUDA graphs. Compilation costs 60-90 s per start on CPU "
        "for little gain with a 135M model; turn it off for GPU production models.",
    )
    kv_cache_space_gib: int = Field(
        1,
        ge=1,
        description="CPU only: KV cache size in GiB (sets VLLM_CPU_KVCACHE_SPACE). Without it "
        "vLLM reserves a fraction of all host memory (~17 GiB here).",
    )
    cpu_threads_bind: str = Field(
        "all",
        description="CPU only: VLLM_CPU_OMP_THREADS_BIND. 'all' = every core this process may "
        "run on (vLLM's own 'auto' keeps one core back for its scheduler: half of a 2-core "
        "machine); 'auto', 'nobind' or an explicit list such as '0-1' are passed through.",
    )
    dtype: DType = Field(
        "auto",
        description="Weight and activation dtype. 'auto': on CPU bfloat16 where the CPU computes "
        "it natively (avx512_bf16, AMX, aarch64 bf16), else float32 (1.8x the tokens per second "
        "at 8 requests there, 0.37 GiB more for the embedded model); on GPU the checkpoint's "
        "dtype. The embedded model is stored in bfloat16.",
    )
    max_tokens: int = Field(320, ge=1, description="Default limit on generated tokens per request.")
    temperature: float = Field(
        0.0,
        ge=0.0,
        le=2.0,
        description="Default sampling temperature. 0 = greedy, which makes explanations "
        "reproducible for the same clues.",
    )
    repetition_penalty: float = Field(
        1.1,
        gt=0.0,
        description="Default repetition penalty; tiny models loop on greedy decoding without it.",
    )
    seed: int = Field(0, description="Sampling seed, for reproducible non-greedy runs.")
    startup_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Longest wait for the engine to load (and, for the embedded model, convert).",
    )
    request_timeout_s: float = Field(
        120.0, gt=0, description="Longest a single generation may take, queueing included."
    )
    health_probe_interval_s: float = Field(
        60.0,
        ge=0,
        description="check_health generates one token when no request succeeded for this long, "
        "so a wedged engine is noticed even when idle. 0 = probe on every check.",
    )
    gpu_memory_utilization: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description="GPU only: fraction of GPU memory vLLM may reserve (weights + KV cache).",
    )
    tensor_parallel_size: int = Field(
        1, ge=1, description="GPUs one replica shards the model over (GPU only)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="Expected device. vLLM picks its platform from the installed build "
        "(vllm-cpu -> cpu); a different value here fails start-up instead of silently "
        "running elsewhere.",
    )


class ExplainerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["vllm", "composer"] = Field(
        "vllm",
        description="'vllm': an LLM (vLLM AsyncLLM) writes the explanation and chooses among the "
        "extracted labels, with the composer as fallback; 'composer': the deterministic writer "
        "only (no LLM).",
    )
    llm: LLMConfig = Field(
        default_factory=LLMConfig,
        description="The LLM engine (model path or hub name, context length, KV cache...). "
        "model: null = the embedded model named by `embedded` (default SmolLM2-135M-Instruct, "
        "prepared by `make setup`; others: docs/models/explainer-llms.md).",
    )
    disambiguate_text: bool = Field(
        True,
        description="Run the paper's lexical-clue step (the subtitle re-read with the audio and "
        "visual clues) before the merged description; costs one more short LLM call.",
    )
    llm_writes: Literal["conclusion", "description"] = Field(
        "conclusion",
        description="'description': the LLM writes the whole EMER paragraph from the clues "
        "(for capable models); 'conclusion': the composer writes the clue paragraphs and the LLM "
        "the 'Therefore, ...' reasoning (small models invent scenes when asked for more).",
    )
    select_labels: bool = Field(
        False,
        description="ExtractLabels: let the LLM choose among the extracted candidate words. Off "
        "by default: with the embedded 135M model it lowers wheel F from 77.6/67.2 to 52.3/41.8 "
        "(docs/labels.md); turn it on for a larger model after measuring.",
    )
    wheel_dir: str | None = Field(
        None,
        description="Folder with the EMER emotion wheel (wheel_mapping.npz) used to map labels "
        "onto wheel categories. None = $EMER_DATA/emer/wheel.",
    )
