"""The explainer: an LLM writes the EMER description; labels come from the vocabulary.

Transport-free (the Ray deployment in services/deployments.py wraps it; tests inject a
scripted double, tests/scripted_engine.py). Without an engine, or when the engine fails or
times out, every answer comes from the deterministic composer and says so in `warnings` and in
the model info.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

from emer_eval.vocabulary import EmotionVocabulary, load_vocabulary

from services.common import prometheus as metrics
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
from services.explainer.grounding import GroundingCheck
from services.explainer.llm import GenerationParams, LLMEngine, LLMError
from services.explainer.llm_labels import select_labels_llm
from services.explainer.prompts import (
    conclusion_messages,
    lexical_disambiguation_messages,
    load_prompt,
    merge_description_messages,
    prompt_model_info,
    structured_clues,
)

if TYPE_CHECKING:
    from services.explainer.config import ExplainerConfig

logger = logging.getLogger(__name__)

# The conclusion is one sentence. Its end is a full stop followed by a space or a line break: a
# bare "." would also cut inside a score the clues show ("sadness (0.52)").
CONCLUSION_STOP = (". ", ".\n", "\n")
CONCLUSION_MAX_TOKENS = 96

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
        """Yields the explanation's text deltas, then the final Explanation.

        Whatever the LLM writes is checked (services/explainer/grounding.py) before it is
        yielded: a sentence at a time, so a client never sees a sentence that the check drops.
        """
        base = compose(audio, visual, text, transcript, self.vocabulary)
        if self.engine is None:
            if self.engine_problem:
                metrics.record_fallback("unavailable")
            async for item in self._composed(base, self._fallback_warning("")):
                yield item
            return
        check = GroundingCheck(
            self.vocabulary,
            [lab.word for lab in base.labels],
            [visual, audio, text],
            " ".join([*base.sentences[:-1], transcript.text if transcript else ""]),
            base.valence,
        )
        if self.llm_writes == "conclusion":
            stream = self._conclusion(base, check, visual, audio, text)
        else:
            stream = self._description(base, check, visual, audio, text, transcript)
        async for item in stream:
            yield item

    async def _conclusion(
        self,
        base: Explanation,
        check: GroundingCheck,
        visual: Clue | None,
        audio: Clue | None,
        text: Clue | None,
    ) -> AsyncIterator[str | Explanation]:
        """The composer's clue paragraphs at once, then the LLM's checked "Therefore" sentence
        (or the composer's, when the LLM fails or the check rejects what it wrote)."""
        assert self.engine is not None
        lead = base.sentences[:-1]
        for sentence in lead:
            yield sentence + " "
        fused = ", ".join(lab.word for lab in base.labels) or "no clear emotion"
        messages = conclusion_messages(structured_clues(lead, [visual, audio, text]), fused)
        prefix = load_prompt("conclusion").response_prefix
        # One sentence: past its first full stop a small model rambles.
        params = GenerationParams(
            max_tokens=min(self.max_tokens, CONCLUSION_MAX_TOKENS),
            temperature=0.0,
            stop=CONCLUSION_STOP,
        )
        try:
            async with asyncio.timeout(self.request_timeout_s):
                written = await self._generate(messages, params)
        except (LLMError, TimeoutError) as e:
            logger.warning("LLM explainer failed: %s", e)
            timed_out = isinstance(e, TimeoutError)
            metrics.record_fallback("timeout" if timed_out else "error")
            reason = "timed out" if timed_out else "failed"
            async for item in self._composer_conclusion(base, self._fallback_warning(reason)):
                yield item
            return
        if not written:
            metrics.record_fallback("empty")
            warning = self._fallback_warning("wrote nothing")
            async for item in self._composer_conclusion(base, warning):
                yield item
            return
        sentence = _join_prefix(prefix, written)
        if sentence[-1] not in ".!?":
            sentence += "."  # the stop string itself is not returned
        verdict = check.check(sentence, conclusion=True, strict=True)
        if not verdict.ok:
            metrics.record_fallback("ungrounded")
            warning = [
                f"the LLM's conclusion was not used ({'; '.join(verdict.problems)}); "
                "the composer's conclusion stands"
            ]
            async for item in self._composer_conclusion(base, warning):
                yield item
            return
        yield sentence
        sentences = [*lead, sentence]
        yield replace(
            base,
            text=" ".join(sentences),
            sentences=sentences,
            labels=self._merge_labels(base.labels, sentence),
            model=prompt_model_info(self.engine.info),
        )

    async def _description(
        self,
        base: Explanation,
        check: GroundingCheck,
        visual: Clue | None,
        audio: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        """The LLM writes the whole description (large models); each sentence is checked and
        yielded when complete. Dropped sentences are named in `warnings`; without a checked
        conclusion the composer's closes the description."""
        assert self.engine is not None
        # The words as the disambiguation stage reads them (the composer's "In the text").
        lexical = next((s for s in base.sentences if s.startswith("In the text, ")), "")
        lexical = lexical.removeprefix("In the text, ")
        warnings: list[str] = []
        kept: list[str] = []
        dropped: list[str] = []
        buffer = ""
        cut_short = False
        try:
            async with asyncio.timeout(self.request_timeout_s):
                if lexical and self.disambiguate_text and (audio or visual):
                    lexical = (
                        await self._complete(
                            "lexical_disambiguation",
                            lexical_disambiguation_messages(transcript, visual, audio),
                            96,
                        )
                        or lexical
                    )
                messages = merge_description_messages(visual, audio, lexical, transcript)
                params = GenerationParams(max_tokens=self.max_tokens, temperature=0.0)
                stream = metrics.measured(self.engine.generate(messages, params))
                buffer = load_prompt("merge_description").response_prefix
                async for delta in stream:
                    if not kept and not dropped and not buffer.strip() and not delta.strip():
                        continue
                    if buffer and delta and not delta[0].isspace() and not buffer[-1].isspace():
                        delta = " " + delta
                    buffer += delta
                    complete, buffer = _split_complete(buffer)
                    for sentence in complete:
                        if self._keep(sentence, check, dropped):
                            kept.append(sentence)
                            yield (" " if len(kept) > 1 else "") + sentence
        except (LLMError, TimeoutError) as e:
            logger.warning("LLM explainer failed: %s", e)
            if not kept:  # an unfinished first sentence is not shown either
                timed_out = isinstance(e, TimeoutError)
                metrics.record_fallback("timeout" if timed_out else "error")
                reason = "timed out" if timed_out else "failed"
                async for item in self._composed(base, self._fallback_warning(reason)):
                    yield item
                return
            cut_short = True
        tail = buffer.strip()
        prefix = load_prompt("merge_description").response_prefix
        # An unfinished sentence of a stream that broke off is not shown.
        if not cut_short and tail and tail != prefix and self._keep(tail, check, dropped):
            kept.append(tail)
            yield (" " if len(kept) > 1 else "") + tail
        if not kept:
            metrics.record_fallback("empty" if not dropped else "ungrounded")
            reason = "wrote nothing" if not dropped else "wrote nothing the clues support"
            warning = self._fallback_warning(reason)
            if dropped:
                warning.append(_dropped_warning(dropped))
            async for item in self._composed(base, warning):
                yield item
            return
        if cut_short:
            warnings.append("the LLM explanation was cut short")
        if dropped:
            warnings.append(_dropped_warning(dropped))
        if not any(_is_conclusion(s) for s in kept):
            conclusion = base.sentences[-1]
            kept.append(conclusion)
            yield " " + conclusion
            warnings.append("the LLM wrote no checked conclusion; the composer's closes it")
        written = " ".join(kept)
        yield replace(
            base,
            text=written,
            sentences=kept,
            labels=self._merge_labels(base.labels, written),
            model=prompt_model_info(self.engine.info),
            warnings=[*base.warnings, *warnings],
        )

    @staticmethod
    def _keep(sentence: str, check: GroundingCheck, dropped: list[str]) -> bool:
        verdict = check.check(sentence, conclusion=_is_conclusion(sentence))
        if not verdict.ok:
            dropped.append(f'"{_short(sentence)}" ({"; ".join(verdict.problems)})')
        return verdict.ok

    async def _generate(self, messages: list[dict[str, str]], params: GenerationParams) -> str:
        """The whole answer to `messages`, stripped."""
        assert self.engine is not None
        stream = metrics.measured(self.engine.generate(messages, params))
        return "".join([d async for d in stream]).strip()

    async def _composer_conclusion(
        self, base: Explanation, warnings: list[str]
    ) -> AsyncIterator[str | Explanation]:
        """The composer's conclusion after clue paragraphs that were already streamed."""
        yield base.sentences[-1]
        base.warnings.extend(warnings)
        yield base

    async def _composed(
        self, base: Explanation, warnings: list[str]
    ) -> AsyncIterator[str | Explanation]:
        for sentence in base.sentences:
            yield sentence + " "
        base.warnings.extend(warnings)
        yield base

    async def _complete(self, name: str, messages: list[dict[str, str]], max_tokens: int) -> str:
        """A whole short answer, with the prompt's pre-filled start in front."""
        params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
        answer = await self._generate(messages, params)
        return _join_prefix(load_prompt(name).response_prefix, answer) if answer else ""

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


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_CONCLUSION_START = re.compile(
    r"^(?:therefore|thus|overall|in summary|in conclusion|taken together|so\b)", re.IGNORECASE
)


def _join_prefix(prefix: str, answer: str) -> str:
    """The prompt's pre-filled start and the model's continuation, spaced once."""
    if not prefix:
        return answer.strip()
    return f"{prefix} {answer.strip()}".strip()


def _split_complete(buffer: str) -> tuple[list[str], str]:
    """The complete sentences at the start of `buffer`, and the incomplete rest."""
    parts = _SENTENCE_END.split(buffer)
    return [p.strip() for p in parts[:-1] if p.strip()], parts[-1]


def _is_conclusion(sentence: str) -> bool:
    return bool(_CONCLUSION_START.match(sentence.strip()))


def _short(sentence: str, limit: int = 60) -> str:
    return sentence if len(sentence) <= limit else sentence[: limit - 3].rstrip() + "..."


def _dropped_warning(dropped: list[str]) -> str:
    return "the check dropped what the LLM wrote that no clue supports: " + "; ".join(dropped)
