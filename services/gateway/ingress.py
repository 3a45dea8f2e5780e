"""The gRPC gateway: Ray Serve's native gRPC ingress for EmotionService, health and reflection.

Ray's proxy routes `/package.Service/Method` to the method of this deployment named `Method`,
so the EmotionService RPCs and grpc.health.v1 `Check`/`Watch` are methods here. The upload RPCs
(client streaming) receive a `gRPCInputStream` that pulls the client's messages through the
proxy one at a time. Reflection is
served by the proxy itself (gRPCOptions.enable_reflection). Every error goes through
status.to_status.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from emer_eval.vocabulary import load_vocabulary
from emer_proto import emotion_pb2 as pb
from grpc_health.v1 import health_pb2
from ray import serve
from ray.serve.grpc_util import RayServegRPCContext, gRPCInputStream
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from services.common import prometheus as metrics
from services.common.errors import InvalidInputError
from services.common.types import (
    AudioClip,
    AudioClueResult,
    Clue,
    ModelInfo,
    Transcript,
    VideoFrames,
)
from services.explainer.composer import Explanation, LabelExtraction
from services.explainer.config import ExplainerConfig
from services.gateway.admission import Admission
from services.gateway.auth import TokenAuth, token_file
from services.gateway.breaker import Breaker, ReplicaWatch
from services.gateway.config import GatewayConfig
from services.gateway.convert import (
    event_to_proto,
    label_to_proto,
    model_to_proto,
    request_from_proto,
    request_from_upload,
    response_to_proto,
)
from services.gateway.events import AnalysisRequest, AnalysisResult, Event
from services.gateway.pipeline import Pipeline
from services.gateway.proxy_hooks import UndecodableMessage
from services.gateway.status import PUSHBACK_KEY, pushback_ms, to_status
from services.gateway.validation import validate_extraction_text

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EmotionService"].full_name
MAX_REQUEST_ID = 128
HEALTH_TIMEOUT_S = 4.0  # per deployment; a down one is known at once (ReplicaWatch)
# A clue model that answered one of the requests this recently counts as up without a ping.
# (Not the Explainer: its answers can be the composer's when the LLM is down.)
HEALTH_FRESH_S = 5.0
# Health service names for one deployment each (Check(service="Explainer")).
CLUE_DEPLOYMENTS = ("AudioClues", "VisualClues", "TextClues")
HEALTH_DEPLOYMENTS = (*CLUE_DEPLOYMENTS, "Explainer")
MODELS_TIMEOUT_S = 2.0  # for the clue models' info (see HandleBackends.models)


def _record(result: AnalysisResult) -> None:
    """The metrics of one analysed request: stage timings and modality availability."""
    metrics.record_timings(result.timings_ms)
    metrics.record_modalities({m.value: c.available for m, c in result.clues.items()})


class HandleBackends:
    """The pipeline's Backends on top of Serve deployment handles, each behind a circuit
    breaker (services/gateway/breaker.py): a deployment whose replica died is skipped at once
    until it answers again, instead of every request queueing for its replacement."""

    def __init__(
        self,
        audio: DeploymentHandle,
        visual: DeploymentHandle,
        text: DeploymentHandle,
        explainer: DeploymentHandle,
    ) -> None:
        self._audio, self._visual, self._text, self._explainer = audio, visual, text, explainer
        self._models: list[ModelInfo] | None = None
        self._handles = {
            "AudioClues": audio,
            "VisualClues": visual,
            "TextClues": text,
            "Explainer": explainer,
        }
        what = {
            "AudioClues": "the audio model",
            "VisualClues": "the visual model",
            "TextClues": "the text model",
            "Explainer": "the explainer",
        }

        self.watch = ReplicaWatch()

        def breaker(name: str, handle: DeploymentHandle) -> Breaker:
            return Breaker(name, what[name], lambda: handle.info.remote(), self.watch.has_replica)

        self.breakers = {name: breaker(name, handle) for name, handle in self._handles.items()}

    async def audio(self, clip: AudioClip, transcribe: bool, language: str) -> AudioClueResult:
        result: AudioClueResult = await self.breakers["AudioClues"].call(
            lambda: self._audio.analyze.remote(clip, transcribe, language)
        )
        return result

    async def visual(self, video: VideoFrames) -> Clue:
        clue: Clue = await self.breakers["VisualClues"].call(
            lambda: self._visual.analyze.remote(video)
        )
        return clue

    async def text(self, text: str, language: str) -> Clue:
        clue: Clue = await self.breakers["TextClues"].call(
            lambda: self._text.analyze.remote(text, language)
        )
        return clue

    async def explain(
        self,
        audio: Clue | None,
        visual: Clue | None,
        text: Clue | None,
        transcript: Transcript | None,
    ) -> AsyncIterator[str | Explanation]:
        breaker = self.breakers["Explainer"]
        breaker.check()
        stream = self._explainer.options(stream=True).explain_stream.remote(
            audio, visual, text, transcript
        )
        assert isinstance(stream, DeploymentResponseGenerator)  # stream=True gives a generator
        while True:
            # Each step through the breaker: a replica that dies mid-stream ends it at once.
            try:
                item = await breaker.call(stream.__anext__)
            except StopAsyncIteration:
                return
            yield item

    async def extract_labels(self, text: str, language: str = "") -> LabelExtraction:
        result: LabelExtraction = await self.breakers["Explainer"].call(
            lambda: self._explainer.extract_labels.remote(text, language)
        )
        return result

    async def models(self) -> list[ModelInfo]:
        """The clue models' names and versions, asked once. A deployment that does not answer
        at once (a replica restarting) is left out of this answer and asked again next time:
        the list must never hold up or fail a request that has its clues."""
        if self._models is None:
            infos = await asyncio.gather(
                *(
                    asyncio.wait_for(handle.info.remote(), MODELS_TIMEOUT_S)
                    for handle in (self._audio, self._visual, self._text)
                ),
                return_exceptions=True,
            )
            known = [m for group in infos if isinstance(group, list) for m in group]
            if any(isinstance(group, BaseException) for group in infos):
                return known
            self._models = known
        return list(self._models)

    async def ping(self, names: tuple[str, ...] = HEALTH_DEPLOYMENTS) -> dict[str, bool]:
        """Whether each named model deployment answers now: its breaker closed, and a call of a
        request in flight or answered in the last HEALTH_FRESH_S or, failing that, a replica
        answering a ping within HEALTH_TIMEOUT_S. (Under load a ping waits in the replicas'
        queues behind the analyses; the requests' own calls say the same at no cost.)"""
        handles = {name: self._handles[name] for name in names}

        async def answers(name: str, handle: DeploymentHandle) -> bool:
            breaker = self.breakers[name]
            if breaker.down:
                return False
            # Calls in flight are watched by the breaker (a dead or stopped replica fails them
            # at once), so a closed breaker with work in progress is up: no ping to queue.
            if name != "Explainer" and (
                breaker.answered_within(HEALTH_FRESH_S) or breaker.in_flight > 0
            ):
                return True
            # The Explainer answers for its LLM engine: up only if it writes as configured.
            ask = handle.writes_as_configured if name == "Explainer" else handle.info
            try:
                answer = await asyncio.wait_for(ask.remote(), HEALTH_TIMEOUT_S)
            except Exception:
                logger.warning("health: %s did not answer", name, exc_info=True)
                return False
            return answer is not False

        states = await asyncio.gather(*(answers(n, h) for n, h in handles.items()))
        return dict(zip(handles, states, strict=True))


def _request_id(given: str) -> str:
    """The client's id, or a new one. Ids go into logs and statuses: kept to 128 printable
    characters without whitespace (a newline in an id could forge a log line)."""
    kept = "".join(c for c in given if c.isprintable() and not c.isspace())
    return kept[:MAX_REQUEST_ID] or uuid.uuid4().hex


def _given_id(message: Any) -> str:
    """The request_id field of a request message, "" for one that could not be parsed."""
    return "" if isinstance(message, UndecodableMessage) else str(message.request_id)


def _decoded(message: Any) -> Any:
    """A parsed request message; a body the proxy could not parse is the client's error."""
    if isinstance(message, UndecodableMessage):
        raise InvalidInputError(message.message())
    return message


class _Ids:
    """A request's id; an upload's is known only once its first message has arrived (errors
    before that carry a fresh one)."""

    def __init__(self, given: str = "") -> None:
        self.request_id = _request_id(given)
        self._from_client = bool(given.strip())

    def upload(
        self, chunks: gRPCInputStream[pb.AnalyzeChunk], config: GatewayConfig
    ) -> Callable[[], Awaitable[AnalysisRequest]]:
        """The request of an upload, assembled as its messages arrive."""

        async def noting_id() -> AsyncIterator[pb.AnalyzeChunk]:
            async for chunk in chunks:
                chunk = _decoded(chunk)
                if chunk.HasField("request") and not self._from_client:
                    self.request_id = _request_id(chunk.request.request_id)
                    self._from_client = True
                yield chunk

        async def make() -> AnalysisRequest:
            request = await request_from_upload(noting_id(), "", config.max_media_bytes)
            if chunks.is_cancelled():  # never analyse a truncated upload
                raise InvalidInputError("the upload was broken off before its end")
            request.request_id = self.request_id
            return request

        return make


def _fail(
    call: Any, grpc_context: RayServegRPCContext, error: BaseException, request_id: str
) -> None:
    """The one exit for every error: status.to_status decides the code and message."""
    code, message = to_status(error, request_id)
    call.code = code
    grpc_context.set_code(code)
    grpc_context.set_details(message)
    pushback = pushback_ms(error)
    if pushback is not None:
        grpc_context.set_trailing_metadata([(PUSHBACK_KEY, pushback)])


class StreamFailed(Exception):
    """Ends a failed stream. Ray's proxy passes a streaming RPC's status to the client only with
    a message or through an exception (a status set on `grpc_context` after the last message
    is dropped and the client sees OK): raised after `_fail`, it carries the code and details
    set there (Serve wraps it as gRPCStatusError); the message is never shown to the client."""


@serve.deployment(
    name="EmotionGateway", max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.1}
)
class EmotionGateway:
    def __init__(
        self,
        audio: DeploymentHandle,
        visual: DeploymentHandle,
        text: DeploymentHandle,
        explainer: DeploymentHandle,
        gateway_config: dict[str, Any],
        explainer_config: dict[str, Any],
    ) -> None:
        self.config = GatewayConfig.model_validate(gateway_config)
        wheel_dir = ExplainerConfig.model_validate(explainer_config).wheel_dir
        self.backends = HandleBackends(audio, visual, text, explainer)
        self.pipeline = Pipeline(self.backends, self.config, load_vocabulary(wheel_dir))
        self.auth = TokenAuth(token_file(self.config.auth_token_file))
        self.admission = Admission(
            self.config.max_analyses_in_progress,
            self.config.shed_retry_after_s,
            self.config.target_latency_s,
        )

    def _authorize(self, method: str, grpc_context: RayServegRPCContext) -> None:
        self.auth.check(grpc_context.invocation_metadata(), method, grpc_context.peer())

    # --- emer.v1.EmotionService -------------------------------------------------------------

    async def Analyze(
        self, request: pb.AnalyzeRequest, grpc_context: RayServegRPCContext
    ) -> pb.AnalyzeResponse:
        ids = _Ids(_given_id(request))

        async def make() -> AnalysisRequest:
            return request_from_proto(_decoded(request), ids.request_id)

        return await self._analyze("Analyze", ids, make, grpc_context)

    async def AnalyzeUpload(
        self, chunks: gRPCInputStream[pb.AnalyzeChunk], grpc_context: RayServegRPCContext
    ) -> pb.AnalyzeResponse:
        ids = _Ids()
        return await self._analyze(
            "AnalyzeUpload", ids, ids.upload(chunks, self.config), grpc_context
        )

    async def _analyze(
        self,
        method: str,
        ids: _Ids,
        make: Callable[[], Awaitable[AnalysisRequest]],
        grpc_context: RayServegRPCContext,
    ) -> pb.AnalyzeResponse:
        with metrics.track(method) as call:
            try:
                self._authorize(method, grpc_context)
                with self.admission.slot(method) as ticket:
                    result = await self.pipeline.run(await make())
                    ticket.measured = not result.timeline
                _record(result)
                return response_to_proto(result)
            except Exception as e:
                _fail(call, grpc_context, e, ids.request_id)
                return pb.AnalyzeResponse(request_id=ids.request_id)

    async def AnalyzeStream(
        self, request: pb.AnalyzeRequest, grpc_context: RayServegRPCContext
    ) -> AsyncIterator[pb.AnalyzeEvent]:
        ids = _Ids(_given_id(request))

        async def make() -> AnalysisRequest:
            return request_from_proto(_decoded(request), ids.request_id)

        async for event in self._analyze_stream("AnalyzeStream", ids, make, grpc_context):
            yield event

    async def AnalyzeUploadStream(
        self, chunks: gRPCInputStream[pb.AnalyzeChunk], grpc_context: RayServegRPCContext
    ) -> AsyncIterator[pb.AnalyzeEvent]:
        ids = _Ids()
        async for event in self._analyze_stream(
            "AnalyzeUploadStream", ids, ids.upload(chunks, self.config), grpc_context
        ):
            yield event

    async def _analyze_stream(
        self,
        method: str,
        ids: _Ids,
        make: Callable[[], Awaitable[AnalysisRequest]],
        grpc_context: RayServegRPCContext,
    ) -> AsyncIterator[pb.AnalyzeEvent]:
        queue: asyncio.Queue[pb.AnalyzeEvent | BaseException | None] = asyncio.Queue()

        async def emit(event: Event) -> None:
            await queue.put(event_to_proto(ids.request_id, event))

        async def produce() -> None:
            try:
                self._authorize(method, grpc_context)
                with self.admission.slot(method) as ticket:
                    result = await self.pipeline.run(await make(), emit)
                    ticket.measured = not result.timeline
                _record(result)
                await queue.put(
                    pb.AnalyzeEvent(request_id=ids.request_id, summary=response_to_proto(result))
                )
                await queue.put(None)
            except Exception as e:
                await queue.put(e)

        task = asyncio.create_task(produce())
        with metrics.track(method) as call:
            try:
                while True:
                    item = await queue.get()
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        _fail(call, grpc_context, item, ids.request_id)
                        raise StreamFailed(method) from None
                    yield item
            finally:
                # A client that cancels or passes its deadline stops the work it started.
                task.cancel()

    async def ExtractLabels(
        self, request: pb.ExtractLabelsRequest, grpc_context: RayServegRPCContext
    ) -> pb.ExtractLabelsResponse:
        request_id = _request_id(_given_id(request))
        with metrics.track("ExtractLabels") as call:
            try:
                self._authorize("ExtractLabels", grpc_context)
                request = _decoded(request)
                text = validate_extraction_text(request.text, self.config)
                t0 = time.perf_counter()
                result: LabelExtraction = await asyncio.wait_for(
                    # An empty language is passed on as is: the explainer detects it.
                    self.backends.extract_labels(text, request.language.strip()),
                    self.config.explainer_timeout_s,
                )
                ms = (time.perf_counter() - t0) * 1e3
                metrics.record_timings({"labels": ms})
                return pb.ExtractLabelsResponse(
                    request_id=request_id,
                    labels=[label_to_proto(lab) for lab in result.labels],
                    timings=[pb.StageTiming(stage="labels", ms=ms)],
                    models=[model_to_proto(m) for m in result.models],
                    warnings=result.warnings,
                )
            except Exception as e:
                _fail(call, grpc_context, e, request_id)
                return pb.ExtractLabelsResponse(request_id=request_id)

    # --- grpc.health.v1.Health --------------------------------------------------------------

    async def _serving_status(self, service: str) -> int:
        """The service ("" or emer.v1.EmotionService) is SERVING while every clue model
        answers. The Explainer is left out: without it the composer writes the explanation
        (marked in the answer's warnings), also while its LLM engine is still starting. One
        deployment's state is asked by its name (e.g. "Explainer": SERVING only while the LLM
        writes as configured)."""
        if service not in ("", SERVICE_NAME, *HEALTH_DEPLOYMENTS):
            return int(health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
        # The whole service's state needs the clue models only: no ping of the Explainer then.
        names = (service,) if service in HEALTH_DEPLOYMENTS else CLUE_DEPLOYMENTS
        try:
            states = await self.backends.ping(names)
        except Exception:
            logger.warning("health check failed", exc_info=True)
            return int(health_pb2.HealthCheckResponse.NOT_SERVING)
        if service in HEALTH_DEPLOYMENTS:
            up = states[service]
        else:
            up = all(ok for name, ok in states.items() if name != "Explainer")
        return int(
            health_pb2.HealthCheckResponse.SERVING
            if up
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def Check(
        self, request: health_pb2.HealthCheckRequest, grpc_context: RayServegRPCContext
    ) -> health_pb2.HealthCheckResponse:
        if isinstance(request, UndecodableMessage):
            grpc_context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
            grpc_context.set_details(request.message())
            return health_pb2.HealthCheckResponse()
        status = await self._serving_status(request.service)
        if status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN:
            grpc_context.set_code(grpc.StatusCode.NOT_FOUND)
            grpc_context.set_details(f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)  # type: ignore[arg-type]

    async def Watch(
        self, request: health_pb2.HealthCheckRequest
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        last = None
        while True:
            status = await self._serving_status(request.service)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)  # type: ignore[arg-type]
                last = status
            await asyncio.sleep(5.0)
