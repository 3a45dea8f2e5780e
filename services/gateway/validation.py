"""Requests checked before any work is done: field combinations and payload sizes. Each problem
is the client's (InvalidInputError, PayloadTooLargeError; services/gateway/status.py maps them to
gRPC statuses), with a message that says what to change."""

from __future__ import annotations

from services.common.errors import InvalidInputError, PayloadTooLargeError
from services.gateway.config import MAX_SEGMENT_S, MIN_SEGMENT_S, GatewayConfig
from services.gateway.events import AnalysisRequest


def validate(request: AnalysisRequest, config: GatewayConfig) -> None:
    """Reject wrong field combinations and oversize payloads before any work is done."""
    if len(request.media) > config.max_media_bytes:
        raise PayloadTooLargeError(
            f"the media is {len(request.media) / 1e6:.1f} MB; "
            f"the limit is {config.max_media_bytes / 1e6:.1f} MB"
        )
    if len(request.subtitle) > config.max_subtitle_chars:
        raise PayloadTooLargeError(
            f"the subtitle has {len(request.subtitle)} characters; "
            f"the limit is {config.max_subtitle_chars}"
        )
    if not request.media and not request.subtitle.strip():
        raise InvalidInputError("the request has neither media nor subtitle: send at least one")
    if request.media_kind is not None and not request.media:
        raise InvalidInputError("media_kind is set but the media field is empty")
    if "\x00" in request.subtitle:
        raise InvalidInputError("the subtitle contains NUL characters")
    if request.skip_audio and request.skip_visual and request.skip_text:
        raise InvalidInputError("all modalities are skipped: nothing to analyse")
    if request.segment_s and not MIN_SEGMENT_S <= request.segment_s <= MAX_SEGMENT_S:
        raise InvalidInputError(
            f"options.segment_s is {request.segment_s:g}; use 0 (the server's default) or "
            f"{MIN_SEGMENT_S:g} to {MAX_SEGMENT_S:g} seconds"
        )


def validate_extraction_text(text: str, config: GatewayConfig) -> str:
    """The description an ExtractLabels request carries, stripped and checked."""
    if len(text) > config.max_description_chars:
        raise PayloadTooLargeError(
            f"the text has {len(text)} characters; the limit is {config.max_description_chars}"
        )
    if "\x00" in text:
        raise InvalidInputError("the text contains NUL characters")
    if not text.strip():
        raise InvalidInputError("the text is empty")
    return text.strip()
