"""The gateway's configuration (`gateway:` in the application args): limits, timeouts, long
media, admission."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
