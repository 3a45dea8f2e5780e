"""The service's Prometheus metrics, through `ray.util.metrics`.

A prometheus_client registry inside a replica is never scraped: Ray's metrics agent exports
what `ray.util.metrics` records on each node's metrics export port (`emer serve --metrics-port`),
next to Serve's built-in `ray_serve_*` series. Ray prefixes every custom series with `ray_`, so
`emer_requests_total` is scraped as `ray_emer_requests_total`. See docs/metrics.md.

The metric objects are made lazily, once per process, so importing this module is free. Outside
Ray (unit tests run the pipeline and the explainer core without it) `ray.util.metrics` records
into nothing and raises nothing; should it ever fail, recording is skipped (a metric must never
fail a request).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

logger = logging.getLogger(__name__)

# Milliseconds: from a cached text clue to a long LLM explanation on CPU.
LATENCY_MS_BOUNDARIES = [
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    5000.0,
    10000.0,
    30000.0,
    60000.0,
    120000.0,
]
TOKENS_PER_S_BOUNDARIES = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 400.0]


@functools.cache
def _metrics() -> dict[str, Any]:
    from ray.util.metrics import Counter, Gauge, Histogram

    return {
        "stage": Histogram(
            "emer_stage_latency_ms",
            description="Latency of each pipeline stage (decode, audio, visual, text, clues, "
            "explain, total; labels for ExtractLabels), in milliseconds.",
            boundaries=LATENCY_MS_BOUNDARIES,
            tag_keys=("stage",),
        ),
        "requests": Counter(
            "emer_requests_total",
            description="EmotionService RPCs by method and gRPC status code name.",
            tag_keys=("method", "code"),
        ),
        "shed": Counter(
            "emer_requests_shed_total",
            description="Analyses refused at once (RESOURCE_EXHAUSTED) because the gateway "
            "replica already ran gateway.max_analyses_in_progress of them, by method.",
            tag_keys=("method",),
        ),
        "modality": Counter(
            "emer_modality_total",
            description="Clues per modality of analysed requests, by availability.",
            tag_keys=("modality", "available"),
        ),
        "ongoing": Gauge(
            "emer_ongoing_requests",
            description="EmotionService RPCs in progress in this gateway replica.",
            tag_keys=("method",),
        ),
        "ttft": Histogram(
            "emer_explainer_ttft_ms",
            description="LLM time to first non-empty delta, in milliseconds.",
            boundaries=LATENCY_MS_BOUNDARIES,
        ),
        "tps": Histogram(
            "emer_explainer_tokens_per_s",
            description="LLM generation speed: non-empty deltas per second after the first.",
            boundaries=TOKENS_PER_S_BOUNDARIES,
        ),
        "admission_limit": Gauge(
            "emer_admission_limit",
            description="Analyses this gateway replica admits at once now (adaptive, at most "
            "gateway.max_analyses_in_progress); beyond it requests are shed.",
        ),
        "backend_up": Gauge(
            "emer_backend_up",
            description="1 while the gateway reaches the deployment, 0 while its breaker is "
            "open (its replica died; requests skip it until it answers again).",
            tag_keys=("deployment",),
        ),
        "engine_up": Gauge(
            "emer_llm_engine_up",
            description="1 when the Explainer replica's LLM engine runs, 0 when it failed to "
            "start or is off and the composer writes every explanation.",
            tag_keys=("model",),
        ),
        "fallbacks": Counter(
            "emer_explainer_fallbacks_total",
            description="Explanations written by the composer instead of the LLM, by reason.",
            tag_keys=("reason",),
        ),
    }


def _record(name: str, method: str, value: float, tags: Mapping[str, str] | None = None) -> None:
    try:
        getattr(_metrics()[name], method)(value, tags=dict(tags) if tags else None)
    except Exception:  # a metric must never fail a request
        logger.debug("could not record %s", name, exc_info=True)


# --- gateway ---------------------------------------------------------------------------------


def record_timings(timings_ms: Mapping[str, float]) -> None:
    for stage, ms in timings_ms.items():
        _record("stage", "observe", ms, {"stage": stage})


def record_modalities(available: Mapping[str, bool]) -> None:
    """`available`: modality name ("audio", "visual", "text") -> whether its clue was."""
    for modality, ok in available.items():
        _record("modality", "inc", 1.0, {"modality": modality, "available": str(ok).lower()})


@dataclass
class Call:
    method: str
    code: grpc.StatusCode = grpc.StatusCode.OK


_ongoing: dict[str, int] = {}


@contextmanager
def track(method: str) -> Iterator[Call]:
    """Counts one RPC: ongoing while inside; on exit `emer_requests_total` with `call.code`
    (set it on a handled error; an exception that escapes counts as CANCELLED)."""
    call = Call(method)
    _ongoing[method] = _ongoing.get(method, 0) + 1
    _record("ongoing", "set", _ongoing[method], {"method": method})
    try:
        yield call
    except BaseException:
        if call.code == grpc.StatusCode.OK:
            call.code = grpc.StatusCode.CANCELLED
        raise
    finally:
        _ongoing[method] -= 1
        _record("ongoing", "set", _ongoing[method], {"method": method})
        _record("requests", "inc", 1.0, {"method": method, "code": call.code.name})


def record_shed(method: str) -> None:
    _record("shed", "inc", 1.0, {"method": method})


def record_admission_limit(limit: int) -> None:
    _record("admission_limit", "set", float(limit), {})


def record_backend(deployment: str, up: bool) -> None:
    _record("backend_up", "set", 1.0 if up else 0.0, {"deployment": deployment})


# --- explainer -------------------------------------------------------------------------------


def record_engine(model: str, up: bool) -> None:
    _record("engine_up", "set", 1.0 if up else 0.0, {"model": model})


def record_fallback(reason: str) -> None:
    _record("fallbacks", "inc", 1.0, {"reason": reason})


async def measured(stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """Passes an LLM delta stream through, recording its TTFT and tokens/s when it ends, however
    it ends. A delta counts its `tokens` attribute (services.explainer.llm.TextDelta: several
    tokens per delta with a stream interval), else one token per non-empty delta; tokens/s is
    over the tokens after the first delta, from its arrival."""
    t0 = time.perf_counter()
    first: float | None = None
    later_tokens = 0
    try:
        async for delta in stream:
            if delta:
                if first is None:
                    first = time.perf_counter()
                    _record("ttft", "observe", (first - t0) * 1000.0)
                else:
                    later_tokens += getattr(delta, "tokens", 1)
            yield delta
    finally:
        elapsed = time.perf_counter() - first if first is not None else 0.0
        if later_tokens > 0 and elapsed > 0:
            _record("tps", "observe", later_tokens / elapsed)


__all__ = [
    "Call",
    "measured",
    "record_backend",
    "record_engine",
    "record_fallback",
    "record_modalities",
    "record_shed",
    "record_timings",
    "track",
]
