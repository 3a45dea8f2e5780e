"""Admission control: a gateway replica runs at most `max_analyses_in_progress` analyses at
once and sheds the rest at once, RESOURCE_EXHAUSTED with a retry pushback, instead of letting
them queue into their deadlines behind the clue models and the LLM.

Why here and not only Ray's `max_ongoing_requests` / `max_queued_requests`: those count every
RPC of the gateway alike, so health checks would queue behind (or be shed with) the analyses
they are meant to report on; this counts Analyze* calls only. Ray's `max_queued_requests` stays
as the backstop for everything else (docs/performance.md#overload).

One event loop runs a replica's requests, so a plain counter is enough.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from services.common import metrics
from services.common.errors import OverloadedError


class Admission:
    def __init__(
        self,
        limit: int,
        retry_after_s: float,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if limit < 1 or retry_after_s <= 0:
            raise ValueError("limit >= 1 and retry_after_s > 0 are required")
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.in_progress = 0
        self._rng = rng

    def pushback_s(self) -> float:
        """How long a shed client should wait: `retry_after_s`, jittered by +-50% so that the
        clients shed together do not come back together (gRPC uses a pushback as given)."""
        return self.retry_after_s * (0.5 + self._rng())

    @contextmanager
    def slot(self, method: str) -> Iterator[None]:
        """Hold one of the replica's analysis slots, or raise OverloadedError when none is free."""
        if self.in_progress >= self.limit:
            metrics.record_shed(method)
            raise OverloadedError(
                f"the service is at capacity ({self.limit} analyses in progress on this "
                "gateway); retry in a few seconds",
                retry_after_s=self.pushback_s(),
            )
        self.in_progress += 1
        try:
            yield
        finally:
            self.in_progress -= 1
