"""A circuit breaker per model deployment, so that a dead replica costs one failed call, not a
queue of requests waiting for its replacement.

When a replica dies, a Serve handle queues the next calls until a new replica is running, which
takes from seconds (a clue model) to a minute (the LLM engine): every request in that window
would wait out its budget. Instead a call fails at once with `ReplicaUnavailableError` (the
pipeline marks that clue unavailable, or lets the composer write the explanation) while either
- the breaker is open: a call failed because the deployment could not answer (its actor died);
  a background probe asks the deployment for its model info every `probe_interval_s` and closes
  the breaker when it answers. A model's own error on one input (a bad file) does not open it;
- or the Serve controller reports no running replica of the deployment (`ReplicaWatch`, polled
  every second): this covers a gateway replica that starts while a model is down, and a replica
  Serve stopped after failed health checks (a hung one), before any call of ours failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from services.common import prometheus as metrics
from services.common.errors import ReplicaUnavailableError

logger = logging.getLogger(__name__)

PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 2.0
WATCH_INTERVAL_S = 1.0


class ReplicaWatch:
    """How many RUNNING replicas each deployment of this application has, as the Serve
    controller reports them (`running_replicas`, polled in a thread). Until the first answer, and
    when the controller cannot be asked, every deployment counts as running: the watch can only
    make calls fail faster, never refuse work the handles could do."""

    def __init__(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._running: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def has_replica(self, deployment: str) -> bool:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())
        return self._running.get(deployment, 1) > 0

    async def _poll(self) -> None:
        from ray import serve

        try:
            app = serve.get_replica_context().app_name
        except Exception:  # not inside a Serve replica (tests): nothing to watch
            logger.debug("no Serve replica context; every deployment counts as running")
            return
        while True:
            try:
                self._running = await asyncio.to_thread(running_replicas, app)
            except Exception:
                logger.debug("could not read the Serve status", exc_info=True)
                self._running = {}
            await asyncio.sleep(self._interval_s)


def running_replicas(app: str) -> dict[str, int]:
    """RUNNING replicas per deployment of `app`, from the Serve controller.

    Read from the controller client's plain dict of the instance details, not `serve.status()`:
    that rebuilds pydantic models of the whole instance (pickling each deployment's request
    router class) on every call, 31 ms of the gateway's CPU against 1 ms for the dict, once a
    second (measured 2026-12-04, docs/performance.md). `_get_global_client` is Ray's private
    API, as in services/launcher.py; Ray is pinned in pyproject."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    if client is None:
        raise RuntimeError("no Serve controller")
    deployments = client.get_serve_details()["applications"][app]["deployments"]
    return {
        name: sum(1 for r in d["replicas"] if getattr(r["state"], "value", r["state"]) == "RUNNING")
        for name, d in deployments.items()
    }


def is_unreachable(error: BaseException) -> bool:
    """The deployment could not answer at all: its actor died or is unreachable, or Serve has
    no replica for it. (Ray's own exception types; a model's exception arrives as the
    RayTaskError of its class and is not one of these.)"""
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import DeploymentUnavailableError

    return isinstance(error, RayActorError | DeploymentUnavailableError)


class Breaker:
    def __init__(
        self,
        deployment: str,
        what: str,
        probe: Callable[[], Awaitable[Any]],
        has_replica: Callable[[str], bool] = lambda _: True,
        probe_interval_s: float = PROBE_INTERVAL_S,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
        recheck_s: float = WATCH_INTERVAL_S / 2,
    ) -> None:
        self.deployment = deployment
        self.what = what  # for messages: "the audio model"
        self._probe = probe
        self._has_replica = has_replica
        self._interval_s, self._timeout_s = probe_interval_s, probe_timeout_s
        self._recheck_s = recheck_s  # how often a waiting call looks at `down`
        self._probing: asyncio.Task[None] | None = None
        self._last_answer = -float("inf")  # time.monotonic() of the last call it answered
        self.in_flight = 0  # calls through the breaker not yet answered
        metrics.record_backend(deployment, True)

    def answered_within(self, seconds: float) -> bool:
        """A call through the breaker was answered (a result or the model's own error) in the
        last `seconds`: proof enough that a replica is up, and it costs no call of its own."""
        return time.monotonic() - self._last_answer <= seconds

    @property
    def open(self) -> bool:
        return self._probing is not None and not self._probing.done()

    @property
    def down(self) -> bool:
        """Known to be unable to answer now: tripped, or no replica running."""
        return self.open or not self._has_replica(self.deployment)

    def check(self) -> None:
        """Raise at once while the deployment is known to be down."""
        if self.down:
            raise ReplicaUnavailableError(f"{self.what} is restarting")

    def trip(self, error: BaseException) -> None:
        """Open the breaker after `error` (already known to be is_unreachable)."""
        if self.open:
            return
        logger.warning("%s unreachable (%s); skipping it until it answers", self.deployment, error)
        metrics.record_backend(self.deployment, False)
        self._probing = asyncio.get_running_loop().create_task(self._until_back())

    async def call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """`make()` unless the deployment is down. A call already waiting when the deployment
        goes down (its replica died or was stopped as hung, and Serve has none running) is
        given up at once rather than left queued for the replacement; an unreachable deployment
        opens the breaker. Both become ReplicaUnavailableError."""
        self.check()
        task = asyncio.ensure_future(make())
        self.in_flight += 1
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._recheck_s)
                if done:
                    result = task.result()
                    self._last_answer = time.monotonic()
                    return result
                if self.down:
                    raise ReplicaUnavailableError(
                        f"{self.what} stopped answering and is being replaced"
                    )
        except ReplicaUnavailableError:
            raise
        except Exception as e:
            if not is_unreachable(e):
                self._last_answer = time.monotonic()  # the model answered, with an error
                raise
            self.trip(e)
            raise ReplicaUnavailableError(
                f"{self.what} stopped while reading this request and is being replaced"
            ) from None
        finally:
            self.in_flight -= 1
            if not task.done():
                task.cancel()

    async def _until_back(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._probe()
            except Exception:
                continue
            logger.warning("%s answers again", self.deployment)
            metrics.record_backend(self.deployment, True)
            return
