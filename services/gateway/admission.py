"""Admission control: a gateway replica runs at most `max_analyses_in_progress` analyses at
once and sheds the rest at once, RESOURCE_EXHAUSTED with a retry pushback, instead of letting
them queue into their deadlines behind the clue models and the LLM.

Why here and not only Ray's `max_ongoing_requests` / `max_queued_requests`: those count every
RPC of the gateway alike, so health checks would queue behind (or be shed with) the analyses
they are meant to report on; this counts Analyze* calls only. Ray's `max_queued_requests` stays
as the backstop for everything else (docs/performance.md#overload).

The limit adapts (additive increase, multiplicative decrease, as TCP's congestion window or
Envoy's adaptive concurrency): the same models answer 5-10x slower on a CPU without AVX-512,
and a fixed limit sized for one machine let a slower one admit analyses that then all ran into
request_timeout_s. An analysis that took longer than `target_latency_s` cuts the limit by a
fifth (at most once per target interval, so one burst of slow answers is one cut); one
answered within it while the replica was full (at some moment) raises it by 1/limit: about
one per round of full answers. `max_limit` (the config's max_analyses_in_progress) caps it;
it never goes below 1.

One event loop runs a replica's requests, so plain counters are enough.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from services.common import prometheus as metrics
from services.common.errors import OverloadedError


@dataclass
class Ticket:
    """One admitted analysis. The caller sets `measured` when its duration says something about
    the load: a short-media analysis that completed (not an error, not a long-media timeline,
    whose duration follows its length)."""

    measured: bool = False


DECREASE = 0.8  # the limit after an analysis slower than the target, as a share of before


class Admission:
    def __init__(
        self,
        max_limit: int,
        retry_after_s: float,
        target_latency_s: float | None = None,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_limit < 1 or retry_after_s <= 0:
            raise ValueError("max_limit >= 1 and retry_after_s > 0 are required")
        if target_latency_s is not None and target_latency_s <= 0:
            raise ValueError("target_latency_s must be positive")
        self.max_limit = max_limit
        self.retry_after_s = retry_after_s
        self.target_latency_s = target_latency_s  # None: a fixed limit of max_limit
        self.in_progress = 0
        self._window = float(max_limit)  # the adaptive limit, fractional between steps
        self._last_cut = -float("inf")
        self._full = 0  # counts the moments the replica was full (its last slot taken, a shed)
        self._rng = rng
        self._clock = clock
        metrics.record_admission_limit(self.limit)

    @property
    def limit(self) -> int:
        """Analyses admitted at once now."""
        return max(1, int(self._window))

    def _finished(self, took_s: float, was_full: bool) -> None:
        if self.target_latency_s is None:
            return
        before = self.limit
        now = self._clock()
        if took_s > self.target_latency_s:
            if now - self._last_cut >= self.target_latency_s:
                self._window = max(1.0, self._window * DECREASE)
                self._last_cut = now
        elif was_full:
            self._window = min(float(self.max_limit), self._window + 1.0 / self._window)
        if self.limit != before:
            metrics.record_admission_limit(self.limit)

    def pushback_s(self) -> float:
        """How long a shed client should wait: `retry_after_s`, jittered by +-50% so that the
        clients shed together do not come back together (gRPC uses a pushback as given)."""
        return self.retry_after_s * (0.5 + self._rng())

    @contextmanager
    def slot(self, method: str) -> Iterator[Ticket]:
        """Hold one of the replica's analysis slots, or raise OverloadedError when none is free."""
        if self.in_progress >= self.limit:
            self._full += 1
            metrics.record_shed(method)
            raise OverloadedError(
                f"the service is at capacity ({self.in_progress} analyses in progress on this "
                "gateway); retry in a few seconds",
                retry_after_s=self.pushback_s(),
            )
        full_before = self._full
        self.in_progress += 1
        if self.in_progress >= self.limit:
            self._full += 1
        start = self._clock()
        ticket = Ticket()
        try:
            yield ticket
        finally:
            self.in_progress -= 1
            if ticket.measured:  # was the replica full at some moment while it ran (or at entry)?
                self._finished(self._clock() - start, self._full > full_before)
