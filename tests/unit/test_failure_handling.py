"""Failure handling that needs no running service: the circuit breaker in front of each model
deployment, and the proxy hooks that keep Ray's internals out of statuses. (The request budget
is tested in test_pipeline.py; tests/integration/test_faults.py kills real replicas.)"""

from __future__ import annotations

import asyncio
import itertools
import time

import grpc
import pytest
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc
from ray.exceptions import ActorDiedError, RayTaskError
from ray.serve._private.proxy_request_response import ResponseStatus
from ray.serve.exceptions import gRPCStatusError

from services.common.errors import ReplicaUnavailableError
from services.gateway import proxy_hooks
from services.gateway.breaker import Breaker
from services.gateway.status import to_status


def test_breaker_opens_on_a_dead_replica_fails_fast_and_closes_when_it_answers() -> None:
    async def scenario() -> None:
        alive = asyncio.Event()

        async def probe() -> None:
            if not alive.is_set():
                raise TimeoutError

        breaker = Breaker("AudioClues", "the audio model", probe, probe_interval_s=0.05)

        async def dies() -> None:
            raise ActorDiedError()

        with pytest.raises(ReplicaUnavailableError, match="stopped while reading this request"):
            await breaker.call(dies)
        assert breaker.open
        called = False

        async def would_queue() -> None:
            nonlocal called
            called = True

        t0 = time.monotonic()
        with pytest.raises(ReplicaUnavailableError, match="the audio model is restarting"):
            await breaker.call(would_queue)
        assert not called and time.monotonic() - t0 < 0.01  # skipped, not queued
        alive.set()
        await asyncio.sleep(0.2)
        assert not breaker.open
        await breaker.call(would_queue)
        assert called

    asyncio.run(scenario())


def test_a_call_waiting_when_the_deployment_goes_down_is_given_up_at_once() -> None:
    async def scenario() -> None:
        running = {"VisualClues": 1}

        async def probe() -> None:
            return None

        breaker = Breaker(
            "VisualClues",
            "the visual model",
            probe,
            lambda name: running[name] > 0,
            recheck_s=0.05,
        )
        cancelled = asyncio.Event()

        async def frozen_replica() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        async def serve_stops_it() -> None:
            await asyncio.sleep(0.2)
            running["VisualClues"] = 0  # health checks failed; the replacement is starting

        t0 = time.monotonic()
        stopper = asyncio.create_task(serve_stops_it())
        with pytest.raises(ReplicaUnavailableError, match="stopped answering"):
            await breaker.call(frozen_replica)
        await stopper
        assert time.monotonic() - t0 < 1.0
        await asyncio.wait_for(cancelled.wait(), 1.0)  # the queued call itself is cancelled
        with pytest.raises(ReplicaUnavailableError, match="is restarting"):
            breaker.check()
        running["VisualClues"] = 1
        breaker.check()

    asyncio.run(scenario())


def test_a_models_own_error_does_not_open_the_breaker() -> None:
    async def scenario() -> None:
        async def probe() -> None:
            return None

        breaker = Breaker("VisualClues", "the visual model", probe)

        async def bad_input() -> None:
            raise ValueError("cannot read this frame")

        with pytest.raises(ValueError):
            await breaker.call(bad_input)
        assert not breaker.open

    asyncio.run(scenario())


def test_replica_unavailable_is_ours_and_retryable() -> None:
    code, message = to_status(ReplicaUnavailableError("the explainer is restarting"), "r1")
    assert code == grpc.StatusCode.UNAVAILABLE and message == "the explainer is restarting"


class _Recorder:
    """Stands in for the proxy's grpc server: keeps what the registration passes it."""

    def __init__(self) -> None:
        self.generic: list[object] = []
        self.registered: dict[str, dict[str, grpc.RpcMethodHandler]] = {}

    def add_generic_rpc_handlers(self, handlers: tuple[object, ...]) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self.registered[service] = handlers


def test_undecodable_request_bodies_reach_the_gateway_as_a_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(proxy_hooks, "install_proxy_status", lambda: None)
    server = _Recorder()
    proxy_hooks.add_EmotionServiceServicer_to_server(
        emotion_pb2_grpc.EmotionServiceServicer(), server
    )
    handlers = server.registered["emer.v1.EmotionService"]
    parse = handlers["Analyze"].request_deserializer
    assert parse is not None
    good = pb.AnalyzeRequest(subtitle="hello", request_id="x")
    assert parse(good.SerializeToString()) == good
    bad = parse(b"\xff\xff\xff\xff garbage")
    assert isinstance(bad, proxy_hooks.UndecodableMessage)
    assert bad.expected == "emer.v1.AnalyzeRequest"
    assert "is not a valid emer.v1.AnalyzeRequest message" in bad.message()
    generic = server.generic[0]._method_handlers  # type: ignore[attr-defined]
    assert isinstance(
        generic["/emer.v1.EmotionService/ExtractLabels"].request_deserializer(b"\xff"),
        proxy_hooks.UndecodableMessage,
    )


def _ray_status(code: grpc.StatusCode, message: str) -> ResponseStatus:
    return ResponseStatus(code=code, is_error=True, message=message)


def test_a_dead_gateway_replica_is_unavailable_without_rays_internals() -> None:
    died = ActorDiedError()
    raw = _ray_status(grpc.StatusCode.INTERNAL, str(died))
    status = proxy_hooks.honest_status(died, raw, "req-7")
    assert status.code == grpc.StatusCode.UNAVAILABLE
    assert "req-7" in status.message and "retry" in status.message
    assert "Actor" not in status.message and "ray" not in status.message.lower()


def test_other_unexpected_errors_are_internal_and_say_only_the_request_id() -> None:
    error = RayTaskError("f", "Traceback (most recent call last): ...", KeyError("x"))
    raw = _ray_status(grpc.StatusCode.INTERNAL, str(error))
    status = proxy_hooks.honest_status(error, raw, "req-8")
    assert status.code == grpc.StatusCode.INTERNAL
    assert status.message == "internal error while serving request req-8; see server logs"


def test_statuses_the_gateway_chose_are_kept() -> None:
    chosen = gRPCStatusError(RuntimeError("x"), grpc.StatusCode.INVALID_ARGUMENT, "bad media")
    raw = _ray_status(grpc.StatusCode.INVALID_ARGUMENT, "bad media")
    assert proxy_hooks.honest_status(chosen, raw, "r") is raw
    timeout = _ray_status(grpc.StatusCode.DEADLINE_EXCEEDED, "Request timed out.")
    assert proxy_hooks.honest_status(TimeoutError(), timeout, "r") is timeout


def test_unary_errors_leave_the_proxy_as_retryable_trailers_only_responses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ray's proxy sets the status and returns a message; registered through the hook, the error
    ends in abort, so the client's gRPC retry policy retries it and honours the pushback."""
    from clients.options import ClientOptions

    monkeypatch.setattr(proxy_hooks, "install_proxy_status", lambda: None)
    attempts: list[float] = []

    class ProxyLike(emotion_pb2_grpc.EmotionServiceServicer):
        async def Analyze(self, request: pb.AnalyzeRequest, context: object) -> object:
            attempts.append(time.monotonic())
            if len(attempts) < 3:
                context.set_code(grpc.StatusCode.RESOURCE_EXHAUSTED)  # type: ignore[attr-defined]
                context.set_details("at capacity")  # type: ignore[attr-defined]
                context.set_trailing_metadata(  # type: ignore[attr-defined]
                    (("grpc-retry-pushback-ms", "200"),)
                )
            return pb.AnalyzeResponse(request_id="answered")

    async def scenario() -> str:
        server = grpc.aio.server()
        proxy_hooks.add_EmotionServiceServicer_to_server(ProxyLike(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            options = ClientOptions(address=f"127.0.0.1:{port}", max_attempts=3)
            async with grpc.aio.insecure_channel(
                options.address, options=options.grpc_channel_options()
            ) as channel:
                stub = emotion_pb2_grpc.EmotionServiceStub(channel)
                reply = await stub.Analyze(pb.AnalyzeRequest(subtitle="hi"), timeout=5)
                return str(reply.request_id)
        finally:
            await server.stop(None)

    assert asyncio.run(scenario()) == "answered"
    assert len(attempts) == 3
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(attempts))


def test_health_counts_the_requests_own_answers_and_never_waits_for_the_explainer() -> None:
    """Under load a ping waits in a model replica's queue behind the analyses (a health check
    timed out at 2 s in the overload test): a clue model that just answered a request is up
    without one, and the whole service's health asks nothing of the Explainer."""
    from services.gateway.ingress import CLUE_DEPLOYMENTS, HandleBackends

    class Queued:
        """A handle method whose calls wait behind a busy replica's queue."""

        def __init__(self, answer: object, wait_s: float) -> None:
            self.answer, self.wait_s, self.calls = answer, wait_s, 0

        def remote(self, *args: object) -> object:
            self.calls += 1

            async def later() -> object:
                await asyncio.sleep(self.wait_s)
                return self.answer

            return later()

    class Handle:
        def __init__(self, wait_s: float) -> None:
            self.info = Queued({"name": "model"}, wait_s)
            self.analyze = Queued("clue", 0.0)
            self.writes_as_configured = Queued(True, wait_s)

    async def scenario() -> None:
        audio, visual, text, explainer = (Handle(30.0) for _ in range(4))
        backends = HandleBackends(audio, visual, text, explainer)  # type: ignore[arg-type]
        await backends.breakers["AudioClues"].call(lambda: audio.analyze.remote())  # type: ignore[arg-type,return-value]
        await backends.breakers["VisualClues"].call(lambda: visual.analyze.remote())  # type: ignore[arg-type,return-value]
        text.info = Queued({"name": "model"}, 0.0)  # idle: answers its ping at once
        t0 = time.monotonic()
        states = await backends.ping(CLUE_DEPLOYMENTS)
        assert time.monotonic() - t0 < 1.0
        assert states == dict.fromkeys(CLUE_DEPLOYMENTS, True)
        assert audio.info.calls == visual.info.calls == 0  # their requests' answers sufficed
        assert text.info.calls == 1
        # At the start of a burst nothing has answered yet, but calls are in flight.
        busy = Handle(30.0)
        busy.analyze = Queued("clue", 30.0)
        backends = HandleBackends(busy, busy, busy, busy)  # type: ignore[arg-type]
        waiting = asyncio.ensure_future(
            backends.breakers["AudioClues"].call(lambda: busy.analyze.remote())  # type: ignore[arg-type,return-value]
        )
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        assert await backends.ping(("AudioClues",)) == {"AudioClues": True}
        assert time.monotonic() - t0 < 1.0 and busy.info.calls == 0
        waiting.cancel()
        assert explainer.writes_as_configured.calls == explainer.info.calls == 0

    asyncio.run(scenario())


def test_the_fault_bar_allows_shed_load_but_no_other_refusal() -> None:
    from benchmarks.fault_injection import problems

    def outcome(code: str, details: str) -> dict[str, object]:
        return {"started_s": 1.0, "elapsed_s": 2.0, "code": code, "details": details}

    shed = "the service is at capacity (3 analyses in progress on this gateway); retry in a few"
    result = {
        "deadline_s": 60.0,
        "faults": [],
        "outcomes": [
            outcome("OK", ""),
            outcome("UNAVAILABLE", "the visual model is restarting"),
            outcome("RESOURCE_EXHAUSTED", shed),
        ],
    }
    assert problems(result) == []
    result["outcomes"] = [
        outcome("RESOURCE_EXHAUSTED", "the media lasts 900 s; the limit is 600 s"),
        outcome("INTERNAL", "request r1 failed"),
    ]
    assert len(problems(result)) == 2
