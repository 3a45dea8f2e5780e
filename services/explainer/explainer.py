"""The explainer: an LLM writes the EMER description; labels come from the vocabulary.

Transport-free (the Ray deployment in services/deployments.py wraps it; tests inject a
ScriptedEngine). Without an engine, or when the engine fails or times out, every answer comes
from the deterministic composer and says so in `warnings` and in the model info.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

from services.common import metrics
from services.common.errors import NotConfiguredError
from services.common.types import Clue, ModelInfo, Transcript
from services.explainer.composer import (
    COMPOSER_INFO,
    Explanation,
    Label,
    LabelExtraction,
    compose,
)
from services.explainer.extraction import extract_labels
from services.explainer.extraction_zh import EXTRACTOR_ZH_INFO, extract_by_language
from services.explainer.llm import GenerationParams, LLMEngine, LLMError
from services.explainer.llm_labels import select_labels_llm
from services.explainer.prompts import (
    conclusion_messages,
    lexical_disambiguation_messages,
    load_prompt,
    merge_description_messages,
    prompt_model_info,
)
from services.explainer.vocabulary import EmotionVocabulary, load_vocabulary

if TYPE_CHECKING:
    from services.config import ExplainerConfig

logger = logging.getLogger(__name__)

EXTRACTOR_INFO = ModelInfo(role="labels", name="emer-extractor", version="1", backend="rules")


class ExplainerCore:
    def __init__(
        self,
        vocabulary: EmotionVocabulary | None,
        engine: LLMEngine | None,
        *,
        engine_problem: str | None = None,
        request_timeout_s: float = 60.0,
        max_tokens: int = 256,
        disambiguate_text: bool = True,
        select_labels: bool = False,
        llm_writes: str = "conclusion",
    ) -> None:
        """`engine_problem`: why an LLM that was asked for is not there (shown as a warning)."""
        self.vocabulary = vocabulary
        self.engine = engine
        self.engine_problem = engine_problem
        self.request_timeout_s = request_timeout_s
        self.max_tokens = max_tokens
        self.disambiguate_text = disambiguate_text
        self.select_labels = select_labels
        self.llm_writes = llm_writes

    @classmethod
    def from_config(
        cls, config: ExplainerConfig, engine: LLMEngine | None, engine_problem: str | None = None
    ) -> ExplainerCore:
        """The explainer an `explainer:` config block describes, around an engine started from
        its `llm:` block (None: the composer answers)."""
        return cls(
            load_vocabulary(config.wheel_dir),
            engine,
            engine_problem=engine_problem,
            request_timeout_s=config.llm.request_timeout_s,
            max_tokens=config.llm.max_tokens,
            disambiguate_text=config.disambiguate_text,
            select_labels=config.select_labels,
            llm_writes=config.llm_writes,
        )

    @property
    def models(self) -> list[ModelInfo]:
        if self.engine is None:
            return [COMPOSER_INFO, EXTRACTOR_INFO]
        return [prompt_model_info(self.engine.info), EXTRACTOR_INFO]

    def _fallback_warning(self, what: str) -> list[str]:
        if self.engine is not None:
            return [f"the LLM explainer {what}; the explanation comes from the composer"]
        if self.engine_problem:
            return [f"the LLM explainer is unavailable ({self.engine_problem}); used the composer"]
        return []

    async def explain_stream(
        self,
        audio: Clue | None,
        visual: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        """Yields the explanation's text deltas, then the final Explanation."""
        base = compose(audio, visual, text, transcript, self.vocabulary)
        if self.engine is None:
            if self.engine_problem:
                metrics.record_fallback("unavailable")
            async for item in self._composed(base, self._fallback_warning("")):
                yield item
            return
        parts: list[str] = []
        try:
            async with asyncio.timeout(self.request_timeout_s):
                if self.llm_writes == "conclusion":
                    # The composer's clue paragraphs, then the LLM's "Therefore, ..." sentence.
                    clue_part = " ".join(base.sentences[:-1])
                    fused = ", ".join(lab.word for lab in base.labels) or "no clear emotion"
                    prompt = load_prompt("conclusion")
                    messages = conclusion_messages(clue_part, fused)
                    lead = [s + " " for s in base.sentences[:-1]]
                    # One sentence: past its first full stop a small model rambles.
                    params = GenerationParams(
                        max_tokens=min(self.max_tokens, 96), temperature=0.0, stop=(".", "\n")
                    )
                else:
                    lexical = " ".join(text.description) if text and text.available else ""
                    if lexical and self.disambiguate_text and (audio or visual):
                        lexical = (
                            await self._complete(
                                "lexical_disambiguation",
                                lexical_disambiguation_messages(transcript, visual, audio),
                                96,
                            )
                            or lexical
                        )
                    prompt = load_prompt("merge_description")
                    messages = merge_description_messages(visual, audio, lexical, transcript)
                    lead = []
                    params = GenerationParams(max_tokens=self.max_tokens, temperature=0.0)
                stream = metrics.measured(self.engine.generate(messages, params))
                first = True
                async for delta in stream:
                    if first and not delta.strip():
                        continue  # nothing said yet: an empty answer falls back below
                    if first:
                        # The prompt starts the answer; the model continues it.
                        for piece in [*lead, prompt.response_prefix]:
                            if piece:
                                parts.append(piece)
                                yield piece
                        if delta and not delta[0].isspace() and prompt.response_prefix:
                            delta = " " + delta
                        first = False
                    parts.append(delta)
                    yield delta
                if parts and self.llm_writes == "conclusion" and parts[-1].rstrip()[-1:] != ".":
                    parts.append(".")  # the stop string itself is not returned
                    yield "."
        except (LLMError, TimeoutError) as e:
            logger.warning("LLM explainer failed: %s", e)
            if not parts:
                reason = "timed out" if isinstance(e, TimeoutError) else "failed"
                metrics.record_fallback("timeout" if isinstance(e, TimeoutError) else "error")
                async for item in self._composed(base, self._fallback_warning(reason)):
                    yield item
                return
            base.warnings.append("the LLM explanation was cut short")
        written = "".join(parts).strip()
        if not written:
            metrics.record_fallback("empty")
            async for item in self._composed(base, self._fallback_warning("wrote nothing")):
                yield item
            return
        yield replace(
            base,
            text=written,
            sentences=[written],
            labels=self._merge_labels(base.labels, written),
            model=prompt_model_info(self.engine.info),
        )

    async def _composed(
        self, base: Explanation, warnings: list[str]
    ) -> AsyncIterator[str | Explanation]:
        for sentence in base.sentences:
            yield sentence + " "
        base.warnings.extend(warnings)
        yield base

    async def _complete(self, name: str, messages: list[dict[str, str]], max_tokens: int) -> str:
        """A whole short answer, with the prompt's pre-filled start in front."""
        assert self.engine is not None
        params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
        stream = metrics.measured(self.engine.generate(messages, params))
        answer = "".join([d async for d in stream]).strip()
        return f"{load_prompt(name).response_prefix} {answer}".strip() if answer else ""

    def _merge_labels(self, fused: list[Label], written: str) -> list[Label]:
        """The fused-clue labels, plus words the LLM's description states that agree with them
        (same wheel category): the small model may not invent an emotion on its own."""
        if self.vocabulary is None:
            return fused
        agreeing = {c for lab in fused for c in lab.wheel_categories if "level1" in c}
        have = {lab.word for lab in fused}
        extra = []
        for found in extract_labels(written, self.vocabulary):
            if found.word in have:
                continue
            cats = self.vocabulary.categories(found.word)
            if agreeing & {c for c in cats if "level1" in c}:
                extra.append(Label(found.word, round(found.confidence * 0.8, 4), [], cats))
                have.add(found.word)
        return fused + extra

    async def extract(self, description: str, language: str = "") -> LabelExtraction:
        """The emotional states of the main character that `description` states.

        `language`: "en", "zh" (or a regional form); empty = detect it from the script. Chinese
        descriptions get English vocabulary labels (extraction_zh.py); other languages none.
        """
        if self.vocabulary is None:
            raise NotConfiguredError(
                "label extraction needs the emotion wheel vocabulary, which is not configured "
                "(set explainer.wheel_dir or EMER_DATA)"
            )
        found, warnings, read_as = extract_by_language(description, language, self.vocabulary)
        confidence = {f.word: f.confidence for f in found}
        words = list(confidence)
        models = [EXTRACTOR_ZH_INFO if read_as == "zh" else EXTRACTOR_INFO]
        if self.engine is not None and self.select_labels and len(words) > 1:
            try:
                async with asyncio.timeout(self.request_timeout_s):
                    selection = await select_labels_llm(self.engine, description, words)
                words = selection.words
                models.append(prompt_model_info(self.engine.info))
            except TimeoutError:
                warnings.append("the LLM label selection timed out; kept the extracted words")
        elif self.engine is None and self.engine_problem:
            warnings.extend(self._fallback_warning(""))
        labels = [
            Label(w, round(confidence.get(w, 0.5), 4), [], self.vocabulary.categories(w))
            for w in words
        ]
        return LabelExtraction(labels=labels, models=models, warnings=warnings)
