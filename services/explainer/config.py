"""The explainer's configuration (`explainer:` in the application args)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.explainer.llm import LLMConfig


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
