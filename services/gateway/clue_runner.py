"""One modality's clue, the same way for a short clip and for each segment of long media.

`ClueRunner` turns what a request (or a segment) holds into the audio, visual and text clues:
it says why a clue is missing when the input has nothing for it, calls the model deployment
under the request's time budget, and turns a failed call into an unavailable clue of the right
kind (the input's fault, a model failure or a timeout) plus the warning that tells the client.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable

from services.common.errors import EmerError, InvalidInputError, PayloadTooLargeError
from services.common.types import (
    AudioClip,
    AudioClueResult,
    Clue,
    Modality,
    Transcript,
    Unavailable,
    VideoFrames,
)
from services.gateway.config import GatewayConfig
from services.gateway.events import AnalysisRequest, Backends

logger = logging.getLogger(__name__)

# The reason given for a modality the request did not carry (or skipped) starts so.
NOT_IN_REQUEST = "not in the request"
SKIPPED = "skipped by the request options"
NO_TEXT = "no subtitle and no audio to transcribe"
NOTHING_TRANSCRIBED = "no subtitle was given and no speech was transcribed"

# When the request being served must be answered (event-loop time), or None (no budget: long
# media, whose stages keep their own timeouts). Set once per request by the pipeline; the clue
# and explainer tasks it starts inherit it.
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)
# Kept back from the clue models for the explanation: the composer needs no more than this when
# the clues took the rest of the budget.
EXPLAIN_RESERVE_S = 1.0


def stage_timeout(cap_s: float, reserve_s: float = 0.0) -> float:
    """How long a stage may wait: its own cap, or less when the request's budget ends sooner."""
    deadline = DEADLINE.get()
    if deadline is None:
        return cap_s
    return max(0.0, min(cap_s, deadline - asyncio.get_running_loop().time() - reserve_s))


def not_in_request(modality: Modality, detail: str) -> Clue:
    """The clue of a modality the request did not carry, or asked to skip."""
    return Clue.unavailable(
        modality, f"{NOT_IN_REQUEST}: {detail}", kind=Unavailable.NOT_IN_REQUEST
    )


def elapsed_ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


class ModelFailure(str):
    """What `ClueRunner.timed` returns when a model call failed on our side: the human reason,
    and its kind (MODEL_FAILED or TIMED_OUT) for the clue."""

    kind: Unavailable

    def __new__(cls, message: str, kind: Unavailable) -> ModelFailure:
        failure = super().__new__(cls, message)
        failure.kind = kind
        return failure


def failed_clue(modality: Modality, reason: object, warnings: list[str]) -> Clue:
    """The clue of a model call that failed (`reason` as `ClueRunner.timed` returns it), and
    the warning that tells the client."""
    warnings.append(f"{modality.value} clue unavailable: {reason}")
    if isinstance(reason, ModelFailure):
        return Clue.unavailable(modality, str(reason), kind=reason.kind)
    return Clue.unavailable(modality, str(reason))


class ClueRunner:
    """The three clue stages of one request. Each method gets what its modality has (None when
    there is nothing) and the clue to answer when there is nothing, which only the caller can
    word ("the media has no audio track", "... in this segment"); it records its time under the
    stage's name in `timings` and the client's warnings in `warnings`."""

    def __init__(self, backends: Backends, config: GatewayConfig) -> None:
        self.backends = backends
        self.config = config

    async def audio(
        self,
        request: AnalysisRequest,
        clip: AudioClip | None,
        absent: Clue,
        transcribe: bool,
        timings: dict[str, float],
        warnings: list[str],
    ) -> tuple[Clue, Transcript | None]:
        """The audio clue and, when `transcribe` (no subtitle), the ASR transcript."""
        if request.skip_audio:
            return not_in_request(Modality.AUDIO, SKIPPED), None
        if clip is None:
            return absent, None
        result = await self.timed(
            "audio", self.backends.audio(clip, transcribe, request.language), timings
        )
        if not isinstance(result, AudioClueResult):
            return failed_clue(Modality.AUDIO, result, warnings), None
        warnings.extend(result.warnings)
        return result.clue, result.transcript if transcribe else None

    async def visual(
        self,
        request: AnalysisRequest,
        video: VideoFrames | None,
        absent: Clue,
        timings: dict[str, float],
        warnings: list[str],
    ) -> Clue:
        if request.skip_visual:
            return not_in_request(Modality.VISUAL, SKIPPED)
        if video is None:
            return absent
        result = await self.timed("visual", self.backends.visual(video), timings)
        if isinstance(result, Clue):
            return result
        return failed_clue(Modality.VISUAL, result, warnings)

    async def text(
        self,
        request: AnalysisRequest,
        transcript: Transcript | None,
        had_audio: bool,
        timings: dict[str, float],
        warnings: list[str],
    ) -> Clue:
        """The text clue of the subtitle or of the transcript; `had_audio` says whether there
        was audio to transcribe (which words the answer when there is no text)."""
        if request.skip_text:
            return not_in_request(Modality.TEXT, SKIPPED)
        if transcript is None or not transcript.text.strip():
            if not had_audio:
                return not_in_request(Modality.TEXT, NO_TEXT)
            return Clue.unavailable(Modality.TEXT, NOTHING_TRANSCRIBED)
        result = await self.timed(
            "text",
            self.backends.text(transcript.text, request.language or transcript.language),
            timings,
        )
        if isinstance(result, Clue):
            return result
        return failed_clue(Modality.TEXT, result, warnings)

    async def timed(
        self, stage: str, call: Awaitable[object], timings: dict[str, float]
    ) -> object | str:
        """Await a model call; on failure return the reason as a string (the answer goes on)."""
        t0 = time.perf_counter()
        timeout_s = stage_timeout(self.config.clue_timeout_s, EXPLAIN_RESERVE_S)
        try:
            async with asyncio.timeout(timeout_s):
                return await call
        except TimeoutError:
            return ModelFailure(
                f"the {stage} model did not answer within {timeout_s:.0f} s", Unavailable.TIMED_OUT
            )
        except (InvalidInputError, PayloadTooLargeError) as e:
            return e.message  # the input's fault, as the model saw it
        except EmerError as e:
            return ModelFailure(e.message, Unavailable.MODEL_FAILED)
        except Exception:
            logger.exception("%s model failed", stage)
            return ModelFailure(f"the {stage} model failed", Unavailable.MODEL_FAILED)
        finally:
            timings[stage] = elapsed_ms(t0)
