"""The explainer's LLM engine protocol: what the explainer asks of an LLM and the errors it sees.

The `Explainer` deployment depends only on `LLMEngine`, so the CPU tests of its fallback paths
inject a scripted double (tests/scripted_engine.py), and a GPU profile swaps the embedded
SmolLM2-135M for any instruct model by changing `LLMConfig.model`
(services/explainer/config.py). The production engine is `services.explainer.vllm_engine`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from services.common.types import ModelInfo

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


ChatMessage = Mapping[str, str]
"""One chat turn: {"role": "system" | "user" | "assistant", "content": "..."}. A final
"assistant" turn is the start of the answer, which the model continues (not repeated in the
output)."""

Prompt = str | Sequence[ChatMessage]
"""A raw completion prompt, or chat messages rendered with the model's chat template."""


class LLMError(RuntimeError):
    """A generation failed on the server side (our fault, not the caller's)."""


class LLMUnavailableError(LLMError):
    """The engine is not running (failed start-up, dead engine core, shut down)."""


class LLMTimeoutError(LLMError, TimeoutError):
    """Start-up or a request took longer than its configured limit."""


class LLMRequestError(LLMError, ValueError):
    """The request itself cannot be served (e.g. the prompt is longer than the context)."""


class TextDelta(str):
    """A streamed piece of generated text that knows how many tokens it holds (with a stream
    interval one delta carries several): the explainer's tokens/s metric counts them."""

    tokens: int

    def __new__(cls, text: str, tokens: int = 1) -> TextDelta:
        delta = super().__new__(cls, text)
        delta.tokens = tokens
        return delta

    def __reduce__(self) -> tuple[type[TextDelta], tuple[str, int]]:
        return TextDelta, (str(self), self.tokens)


@dataclass(frozen=True)
class GenerationParams:
    """Per-request sampling settings; None = the engine's configured default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float = 1.0
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = ()
    # For benchmarks: generate exactly max_tokens tokens so counts are comparable.
    ignore_eos: bool = False
    # Must be unique among running requests (aborts go by id); None = a fresh uuid.
    request_id: str | None = None
    # Shorter than the configured request_timeout_s, e.g. what is left of a client's deadline.
    timeout_s: float | None = None


@runtime_checkable
class LLMEngine(Protocol):
    """What the explainer needs from an LLM. Implementations must be safe to call from many
    concurrent tasks on one event loop (vLLM batches them)."""

    @property
    def info(self) -> ModelInfo:
        """Which model answers (role 'explainer')."""
        ...

    def generate(
        self, prompt: Prompt, params: GenerationParams | None = None
    ) -> AsyncGenerator[str, None]:
        """Stream text deltas (empty deltas are skipped). Cancelling the consuming task, or
        closing the generator (`async with contextlib.aclosing(...)` when you may stop early),
        aborts the request in the engine."""
        ...

    async def complete_json(
        self, messages: Sequence[ChatMessage], json_schema: Mapping[str, Any], max_tokens: int
    ) -> str:
        """The whole answer, constrained by guided decoding to `json_schema`. The text can still
        be cut short by `max_tokens`: callers validate it."""
        ...

    async def check_health(self) -> None:
        """Raise when the engine cannot serve."""
        ...

    def shutdown(self) -> None:
        """Release the engine (processes, memory). Idempotent."""
        ...
