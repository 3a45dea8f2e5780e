"""How a clue deployment batches concurrent requests (Ray Serve `@serve.batch`).

Each clue model's config has a `batching:` block of this type (`audio.batching`,
`visual.batching`, `text.batching` in the application args); services/deployments.py applies it.
It lives here rather than in services/config.py because the model configs, which
services/config.py imports, need it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BatchingConfig(BaseModel):
    """Requests that reach a replica while it is busy queue up; the next batch takes up to
    `max_batch_size` of them. One batch runs at a time per replica (the models are not
    thread-safe), and every request gets its own result or its own error."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(
        default=4,
        ge=1,
        le=256,
        description=(
            "Most requests in one batch. Keep the deployment's `max_ongoing_requests` at least "
            "this large, or a replica never holds enough requests to fill a batch."
        ),
    )
    batch_wait_timeout_s: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description=(
            "How long the first request of a batch waits for more before the batch starts. "
            "Worth a few ms only where the model reads a batch in one pass (text with the float "
            "encoder or the huggingface backend); elsewhere it only adds latency."
        ),
    )
    stalled_after_s: float = Field(
        default=60.0,
        gt=0.0,
        description=(
            "A model call running longer than this fails the replica's health check, and Serve "
            "replaces the replica (a wedged model otherwise holds its requests until their "
            "deadline, with the process still answering health checks). Keep it above the "
            "slowest legitimate call: a long-media segment under load."
        ),
    )
