"""What Ray Serve's gRPC proxy does with failures that never reach the gateway's code.

Three kinds of failure happen outside `EmotionGateway`, in Ray's proxy, and Ray (pinned in
pyproject) reports them as if they were nobody's, or in a form clients cannot retry:
- a request body that is not the message the method takes: grpcio's deserializer raises in the
  proxy and the client gets UNKNOWN "Unexpected <class 'google.protobuf.message.DecodeError'>...";
- a gateway replica that dies (or an unexpected error escapes it) while a request is on it: the
  proxy answers INTERNAL with the exception text, Ray's actor id and class name included;
- every unary error (the gateway's, or Ray's own back-pressure RESOURCE_EXHAUSTED) goes out with
  a response message before its status: the client has then "received a response" and gRPC's
  retry policy may not retry it, so a shed request was never retried.

The proxy's only hook into our code is the servicer function it imports from
`grpc_options.grpc_servicer_functions`; `add_EmotionServiceServicer_to_server` below is that
function. It registers the generated service with a deserializer that hands undecodable bytes on
as `UndecodableMessage` (the gateway answers INVALID_ARGUMENT, like any bad input), and it wraps
the proxy's error-to-status function so that a dead replica is UNAVAILABLE (retryable, ours) and
anything else unexpected is INTERNAL with a request id, never Ray's internals. Statuses the
gateway set itself pass through unchanged, but a unary call that ends in an error ends with
`abort` (a trailers-only response, its trailing metadata kept: `grpc-retry-pushback-ms`), which
gRPC clients may retry. tests/integration/test_faults.py checks both on the
running service, so a Ray upgrade that moves these hooks fails there.

This module runs inside the proxy process: it imports nothing heavy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

logger = logging.getLogger(__name__)

DEAD_REPLICA_MESSAGE = (
    "the server lost the worker that was answering this request ({request_id}); "
    "it is being replaced, retry the request"
)
INTERNAL_MESSAGE = "internal error while serving request {request_id}; see server logs"


@dataclass(frozen=True)
class UndecodableMessage:
    """A request body grpcio could not parse as `expected` (passed to the gateway as is)."""

    expected: str
    size: int
    error: str

    def message(self) -> str:
        return (
            f"the request body ({self.size} bytes) is not a valid {self.expected} message "
            f"({self.error}); build it from the service's .proto"
        )


def _tolerant(parse: Callable[[bytes], Any], expected: str) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as e:  # DecodeError, or a RuntimeWarning-turned-error from upb
            return UndecodableMessage(expected, len(data), str(e)[:200] or type(e).__name__)

    return deserialize


def _aborting_on_error(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    """A unary-response behaviour of the proxy that ends an error with `abort` instead of
    returning a message with it (see the module docstring)."""

    async def answer(request: Any, context: Any) -> Any:
        response = await behaviour(request, context)
        code = context.code()
        if isinstance(code, grpc.StatusCode) and code is not grpc.StatusCode.OK:
            await context.abort(code, context.details() or "")
        return response

    return answer


def _with_tolerant_deserializers(
    handlers: Mapping[str, grpc.RpcMethodHandler],
) -> dict[str, grpc.RpcMethodHandler]:
    tolerant = {}
    for method, handler in handlers.items():
        changes: dict[str, Any] = {}
        for kind in ("unary_unary", "stream_unary"):
            behaviour = getattr(handler, kind, None)
            if behaviour is not None:
                changes[kind] = _aborting_on_error(behaviour)
        parse = handler.request_deserializer
        if parse is not None:
            expected = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
            name = expected.full_name if expected is not None else "request"
            changes["request_deserializer"] = _tolerant(parse, name)
        tolerant[method] = handler._replace(**changes)  # type: ignore[attr-defined]
    return tolerant


class _TolerantServer:
    """The proxy's server as the generated registration function sees it: every handler gets a
    tolerant deserializer on its way in."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        handlers = tuple(handlers)
        for handler in handlers:
            # grpc's generic handler keeps its methods in _method_handlers (Ray's proxy reads
            # and rewrites the same attribute).
            handler._method_handlers = _with_tolerant_deserializers(handler._method_handlers)
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        self._server.add_registered_method_handlers(service, _with_tolerant_deserializers(handlers))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def add_EmotionServiceServicer_to_server(servicer: Any, server: Any) -> None:
    """What grpc_options.grpc_servicer_functions names: the generated registration, with
    tolerant deserializers, and the proxy's statuses made honest (see the module docstring)."""
    from emer_proto import emotion_pb2_grpc

    install_proxy_status()
    emotion_pb2_grpc.add_EmotionServiceServicer_to_server(servicer, _TolerantServer(server))


def add_HealthServicer_to_server(servicer: Any, server: Any) -> None:
    """grpc.health.v1 registered the same way (its Check and Watch are gateway methods too)."""
    from grpc_health.v1 import health_pb2_grpc

    install_proxy_status()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, _TolerantServer(server))


def install_proxy_status() -> None:
    """Wrap the proxy's error-to-status function (once per process)."""
    from ray.serve._private import proxy

    original = proxy.get_grpc_response_status
    if getattr(original, "_emer_wrapped", False):
        return

    def status(exc: BaseException, request_timeout_s: float | None, request_id: str) -> Any:
        result = original(exc, request_timeout_s, request_id)
        return honest_status(exc, result, request_id)

    status._emer_wrapped = True  # type: ignore[attr-defined]
    proxy.get_grpc_response_status = status


def honest_status(exc: BaseException, result: Any, request_id: str) -> Any:
    """`result` (Ray's ResponseStatus for `exc`), with a dead replica as UNAVAILABLE and other
    unexpected errors as INTERNAL without Ray's text. Statuses the gateway chose are kept."""
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import gRPCStatusError

    if isinstance(exc, gRPCStatusError) or result.code not in (
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    ):
        return result
    if isinstance(exc, RayActorError):  # ActorDiedError, ActorUnavailableError
        logger.warning("request %s lost its gateway replica: %s", request_id, exc)
        return type(result)(
            code=grpc.StatusCode.UNAVAILABLE,
            is_error=True,
            message=DEAD_REPLICA_MESSAGE.format(request_id=request_id),
        )
    logger.error("request %s failed outside the gateway: %r", request_id, exc)
    return type(result)(
        code=grpc.StatusCode.INTERNAL,
        is_error=True,
        message=INTERNAL_MESSAGE.format(request_id=request_id),
    )
