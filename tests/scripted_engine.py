"""A deterministic `LLMEngine` for tests (test support, never imported by the server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.common.types import ModelInfo
from services.explainer.llm import ChatMessage, GenerationParams, LLMUnavailableError, Prompt


def _schema_instance(schema: Mapping[str, Any]) -> Any:
    """A deterministic instance of the small JSON schemas the explainer uses."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        if "enum" in items:
            values = list(items["enum"])
            return values[: schema.get("maxItems", len(values))]
        return [_schema_instance(items)] * schema.get("minItems", 0)
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _schema_instance(v) for k, v in props.items() if k in schema.get("required", [])}
    return {"string": "", "integer": 0, "number": 0.0, "boolean": False}.get(str(kind))


SCRIPTED_INFO = ModelInfo(role="explainer", name="scripted", version="test", backend="scripted")


@dataclass
class ScriptedCall:
    kind: Literal["generate", "complete_json"]
    prompt: Prompt
    params: GenerationParams | None = None
    json_schema: Mapping[str, Any] | None = None


@dataclass
class ScriptedEngine:
    """A deterministic `LLMEngine` for tests: answers come from `reply` (a function of the
    prompt), streamed word by word. Never used in production: it knows nothing.

    - reply: prompt -> full answer for `generate` (default: echo a fixed sentence).
    - json_reply: (messages, schema) -> JSON text (default: a schema-valid instance).
    - delay_s: pause before each delta, to exercise timeouts and cancellation.
    - fail: raised by every request (e.g. LLMUnavailableError) to exercise fallbacks.
    - fail_after: deltas streamed before `fail` is raised (None = fail before the first).
    - healthy: False makes check_health raise.
    """

    reply: Callable[[Prompt], str] = lambda _prompt: "In the video, nothing is scripted."
    json_reply: Callable[[Sequence[ChatMessage], Mapping[str, Any]], str] | None = None
    delay_s: float = 0.0
    fail: Exception | None = None
    fail_after: int | None = None
    healthy: bool = True
    model_info: ModelInfo = SCRIPTED_INFO
    calls: list[ScriptedCall] = field(default_factory=list)
    cancelled: int = 0
    delivered: int = 0
    closed: bool = False

    @property
    def info(self) -> ModelInfo:
        return self.model_info

    async def generate(
        self, prompt: Prompt, params: GenerationParams | None = None
    ) -> AsyncGenerator[str, None]:
        self.calls.append(ScriptedCall("generate", prompt, params))
        if self.closed:
            raise LLMUnavailableError("scripted engine is shut down")
        if self.fail is not None and self.fail_after is None:
            raise self.fail
        words = self.reply(prompt).split(" ")
        limit = params.max_tokens if params and params.max_tokens else len(words)
        completed = False
        try:
            for i, word in enumerate(words[:limit]):
                if self.fail is not None and self.fail_after is not None and i >= self.fail_after:
                    raise self.fail
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                self.delivered += 1
                yield word if i == 0 else " " + word
            completed = True
        finally:
            if not completed:
                self.cancelled += 1

    async def complete_json(
        self, messages: Sequence[ChatMessage], json_schema: Mapping[str, Any], max_tokens: int
    ) -> str:
        self.calls.append(
            ScriptedCall("complete_json", messages, GenerationParams(max_tokens), json_schema)
        )
        if self.closed:
            raise LLMUnavailableError("scripted engine is shut down")
        if self.fail is not None:
            raise self.fail
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.json_reply is not None:
            return self.json_reply(messages, json_schema)
        return json.dumps(_schema_instance(json_schema))

    async def check_health(self) -> None:
        if self.closed or not self.healthy:
            raise LLMUnavailableError("scripted engine unhealthy")

    def shutdown(self) -> None:
        self.closed = True
