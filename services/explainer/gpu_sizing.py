"""Does the LLM fit the share of the GPU its profile gives it? (`make k8s-check` fails if not.)

vLLM takes `gpu_memory_utilization` of the GPU's memory for everything it holds: the weights,
activations (and CUDA graphs unless `enforce_eager`), and the KV cache, which must hold at
least one sequence of `max_model_len` tokens. If that does not fit, the engine fails to start
and every answer comes from the composer. On a GPU that the clue models share, the LLM's memory
share must also stay within its Ray scheduling share (`num_gpus`): Ray packs replicas by
`num_gpus`, so a replica that uses more memory than its share starves its neighbours.

Checkpoint sizes and KV-cache bytes per token of the models we size are below (from each
model's config.json: layers x KV heads x head size x 2 (K and V) x 2 bytes); a model that is
not listed cannot be sized offline, and the check says so.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class LLMSpec:
    weights_gib: float  # the checkpoint's size in memory
    kv_bytes_per_token: int  # bf16/fp16 KV cache


KNOWN_LLMS: dict[str, LLMSpec] = {
    # 28 layers, 4 KV heads of 128: 28 x 4 x 128 x 2 x 2 = 57,344 B/token.
    "Qwen/Qwen2.5-7B-Instruct": LLMSpec(14.2, 57_344),
    "Qwen/Qwen2.5-7B-Instruct-AWQ": LLMSpec(5.2, 57_344),
    # 36 layers, 2 KV heads of 128.
    "Qwen/Qwen2.5-3B-Instruct": LLMSpec(5.8, 36_864),
    # 48 layers, 8 KV heads of 128.
    "Qwen/Qwen2.5-14B-Instruct-AWQ": LLMSpec(9.3, 196_608),
    # 32 layers, 8 KV heads of 128.
    "meta-llama/Llama-3.1-8B-Instruct": LLMSpec(15.0, 131_072),
}

# GPU memory by the node labels clouds and NVIDIA's GPU feature discovery put on GPU nodes.
GPU_MEMORY_GIB: dict[str, float] = {
    "nvidia-tesla-t4": 15.0,
    "nvidia-l4": 22.0,
    "nvidia-a10g": 22.0,
    "nvidia-l40s": 44.4,
    "nvidia-tesla-a100": 39.4,
    "nvidia-a100-80gb": 79.2,
    "nvidia-h100-80gb": 79.2,
    "Tesla-T4": 15.0,
    "NVIDIA-L4": 22.0,
    "NVIDIA-A10G": 22.0,
    "NVIDIA-L40S": 44.4,
    "NVIDIA-A100-SXM4-40GB": 39.4,
    "NVIDIA-A100-SXM4-80GB": 79.2,
    "NVIDIA-H100-80GB-HBM3": 79.2,
}
GPU_LABELS = ("cloud.google.com/gke-accelerator", "nvidia.com/gpu.product")

# Activations of a max_num_batched_tokens step, the sampler and allocator slack; CUDA graphs
# (enforce_eager false) take some more. vLLM's profiling run measures the real figure.
OVERHEAD_GIB = 1.5
CUDA_GRAPHS_GIB = 0.5


@dataclass(frozen=True)
class Fit:
    share_gib: float  # gpu_memory_utilization x GPU memory
    weights_gib: float
    overhead_gib: float
    kv_gib: float  # what is left for the KV cache
    sequence_gib: float  # one max_model_len sequence's KV

    @property
    def fits(self) -> bool:
        return self.kv_gib >= self.sequence_gib

    @property
    def full_sequences(self) -> float:
        return max(self.kv_gib, 0.0) / self.sequence_gib if self.sequence_gib else 0.0

    def describe(self) -> str:
        return (
            f"{self.share_gib:.1f} GiB share = weights {self.weights_gib:.1f} + overhead "
            f"{self.overhead_gib:.1f} + KV cache {max(self.kv_gib, 0):.1f} GiB "
            f"({self.full_sequences:.1f} sequences of max_model_len; one needs "
            f"{self.sequence_gib:.2f} GiB)"
        )


def fit(
    spec: LLMSpec,
    gpu_memory_gib: float,
    gpu_memory_utilization: float,
    max_model_len: int,
    enforce_eager: bool,
) -> Fit:
    share = gpu_memory_gib * gpu_memory_utilization
    overhead = OVERHEAD_GIB + (0.0 if enforce_eager else CUDA_GRAPHS_GIB)
    return Fit(
        share_gib=share,
        weights_gib=spec.weights_gib,
        overhead_gib=overhead,
        kv_gib=share - spec.weights_gib - overhead,
        sequence_gib=max_model_len * spec.kv_bytes_per_token / GIB,
    )


def gpu_memory_of(node_selector: dict[str, str]) -> float | None:
    """The GPU memory a node selector pins, or None when it names no known GPU."""
    for label in GPU_LABELS:
        if label in node_selector:
            return GPU_MEMORY_GIB.get(node_selector[label])
    return None
