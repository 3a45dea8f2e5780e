"""Application configuration: the `args:` of the Serve config's application.

Per-deployment replicas, resources, `max_ongoing_requests` and autoscaling live in the Serve
config's `deployments:` list (Serve applies them); these models hold what the code needs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.audio.config import AudioConfig
from services.explainer.llm import LLMConfig
from services.text.config import TextConfig
from services.visual.config import VisualConfig


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


# Bounds of a segment's length (GatewayConfig.segment_s and AnalyzeOptions.segment_s).
MIN_SEGMENT_S = 5.0
MAX_SEGMENT_S = 300.0


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_media_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest accepted media payload."
    )
    auth_token_file: str | None = Field(
        None,
        description="File of accepted bearer tokens, one per line; every RPC but health then "
        "needs `authorization: Bearer <token>`. EMER_AUTH_TOKEN_FILE overrides it. None (and no "
        "variable): authentication is off.",
    )
    max_subtitle_chars: int = Field(5000, gt=0, description="Longest accepted subtitle.")
    max_description_chars: int = Field(
        20000, gt=0, description="Longest description accepted by ExtractLabels."
    )
    max_duration_s: float = Field(600.0, gt=0, description="Longest accepted media duration.")
    frame_rate: float = Field(5.0, gt=0, description="Video frames sampled per second.")
    max_frames: int = Field(
        32, gt=0, description="Most frames handed to the visual model per clip."
    )
    max_frame_side: int = Field(
        640, ge=64, description="Frames are downscaled to this longer side."
    )
    max_analyses_in_progress: int = Field(
        12,
        ge=1,
        description="Most Analyze* calls one gateway replica runs at once; beyond its current "
        "limit a call is shed at once with RESOURCE_EXHAUSTED and a retry pushback instead of "
        "queueing into its deadline. The limit adapts below this to keep answers within "
        "target_latency_s (docs/performance.md#overload); health checks and ExtractLabels are "
        "not counted.",
    )
    target_latency_s: float | None = Field(
        20.0,
        gt=0,
        description="Short-media answers slower than this cut the admission limit by a fifth; "
        "faster ones at a full replica raise it by 1/limit (AIMD). Keep it below "
        "request_timeout_s; null: a fixed limit of max_analyses_in_progress.",
    )
    shed_retry_after_s: float = Field(
        2.0,
        gt=0,
        description="Wait suggested to shed clients (gRPC retry pushback), jittered +-50%.",
    )
    request_timeout_s: float = Field(
        45.0,
        gt=0,
        description="Every Analyze request of media up to long_media_s is answered within this "
        "(decoding included): a clue model still busy when it runs out is marked timed out, and an "
        "explainer still writing gives way to the composer. Give clients a deadline above it. "
        "Long media are bounded per model call (clue_timeout_s, explainer_timeout_s).",
    )
    clue_timeout_s: float = Field(
        60.0, gt=0, description="A clue model slower than this is marked unavailable."
    )
    explainer_timeout_s: float = Field(
        60.0, gt=0, description="An explainer slower than this falls back to the composer."
    )
    long_media_s: float = Field(
        30.0,
        gt=0,
        description="Audio/video longer than this is decoded as a stream and analysed in "
        "segments (the answer carries a per-segment timeline); shorter media are analysed whole, "
        "as one clip. Must be at least segment_s.",
    )
    segment_s: float = Field(
        15.0,
        ge=MIN_SEGMENT_S,
        le=MAX_SEGMENT_S,
        description="Length of a segment of long media in seconds (a last piece shorter than half "
        "a segment joins the one before). A request may ask for another length "
        "(options.segment_s).",
    )
    max_segments: int = Field(
        60,
        ge=2,
        description="Most segments per request: longer media (or a shorter requested segment_s) "
        "get proportionally longer segments, so one request cannot ask for unbounded model calls.",
    )

    @model_validator(mode="after")
    def _long_media_holds_segments(self) -> GatewayConfig:
        if self.long_media_s < self.segment_s:
            raise ValueError(
                f"long_media_s ({self.long_media_s}) must be at least segment_s ({self.segment_s})"
            )
        return self


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audio: AudioConfig = Field(default_factory=AudioConfig, description="Audio clue model.")
    visual: VisualConfig = Field(default_factory=VisualConfig, description="Visual clue model.")
    text: TextConfig = Field(default_factory=TextConfig, description="Text clue model.")
    explainer: ExplainerConfig = Field(default_factory=ExplainerConfig, description="Explainer.")
    gateway: GatewayConfig = Field(default_factory=GatewayConfig, description="Ingress limits.")

    @classmethod
    def from_args(cls, args: dict[str, Any] | None) -> AppConfig:
        try:
            return cls.model_validate(args or {})
        except ValidationError as e:
            raise ValueError(f"invalid emer-serve application args: {e}") from e
