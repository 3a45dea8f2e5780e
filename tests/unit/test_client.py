"""The Python clients against a real in-process gRPC server (no Ray): gRPC's own retries from
the channel's service config (backoff, server pushback, throttling), deadlines, metadata,
streaming (sync and asyncio), TLS and mutual TLS."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from clients.aio import AsyncEmotionClient
from clients.client import EmotionClient
from clients.media_requests import media_kind_for
from clients.options import ClientOptions
from clients.results import Analysis
from tests.certificates import cert_pem, certificate, key_pem

FAST_RETRY: dict[str, Any] = {
    "initial_backoff_s": 0.05,
    "max_backoff_s": 0.2,
    "backoff_multiplier": 2.0,
    "timeout_s": 5.0,
}


def _response(request_id: str) -> pb.AnalyzeResponse:
    resp = pb.AnalyzeResponse(
        request_id=request_id,
        explanation="In the text, the speaker is delighted. Therefore, happy.",
        basic_category="happy",
        labels=[
            pb.EmotionLabel(word="happy", confidence=0.9),
            pb.EmotionLabel(word="excited", confidence=0.6),
        ],
    )
    resp.clues.text.CopyFrom(
        pb.Clue(modality=pb.MODALITY_TEXT, available=True, description=["Delighted words."])
    )
    resp.clues.audio.CopyFrom(
        pb.Clue(modality=pb.MODALITY_AUDIO, available=False, unavailable_reason="no audio")
    )
    return resp


@dataclass
class Servicer(emotion_pb2_grpc.EmotionServiceServicer):
    """Fails the first `fail_first` calls with `fail_code`, records what it received."""

    fail_first: int = 0
    fail_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    fail_mid_stream: bool = False
    # Sent as `grpc-retry-pushback-ms` with each failure ("" = none).
    pushback_ms: str = ""
    calls: int = 0
    call_times: list[float] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _enter(self, request: Any, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.calls += 1
            n = self.calls
            self.call_times.append(time.monotonic())
            self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
            self.requests.append(request)
        if n <= self.fail_first:
            if self.pushback_ms:
                context.set_trailing_metadata((("grpc-retry-pushback-ms", self.pushback_ms),))
            context.abort(self.fail_code, f"failing call {n}")

    def _analysable(self, request: pb.AnalyzeRequest, context: grpc.ServicerContext) -> None:
        if not request.media and not request.subtitle:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty request")
        if request.subtitle == "slow":
            time.sleep(1.0)

    def Analyze(self, request: pb.AnalyzeRequest, context: grpc.ServicerContext) -> Any:
        self._enter(request, context)
        self._analysable(request, context)
        return _response(request.request_id or "srv-1")

    def AnalyzeStream(self, request: pb.AnalyzeRequest, context: grpc.ServicerContext) -> Any:
        self._enter(request, context)
        self._analysable(request, context)
        rid = request.request_id or "srv-1"
        resp = _response(rid)
        yield pb.AnalyzeEvent(request_id=rid, clue=resp.clues.text)
        if self.fail_mid_stream:
            context.abort(grpc.StatusCode.UNAVAILABLE, "lost mid-stream")
        for part in ("In the text, ", "the speaker is delighted."):
            yield pb.AnalyzeEvent(request_id=rid, explanation_delta=pb.ExplanationDelta(text=part))
        yield pb.AnalyzeEvent(
            request_id=rid, labels=pb.LabelsEvent(labels=resp.labels, basic_category="happy")
        )
        yield pb.AnalyzeEvent(request_id=rid, summary=resp)

    def ExtractLabels(self, request: pb.ExtractLabelsRequest, context: grpc.ServicerContext) -> Any:
        self._enter(request, context)
        if not request.text.strip():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty text")
        return pb.ExtractLabelsResponse(
            request_id=request.request_id, labels=[pb.EmotionLabel(word="joyful")]
        )


class Server:
    def __init__(self, credentials: grpc.ServerCredentials | None = None) -> None:
        self.servicer = Servicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        emotion_pb2_grpc.add_EmotionServiceServicer_to_server(self.servicer, self.server)
        self.health = health.HealthServicer()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if credentials is None:
            port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            port = self.server.add_secure_port("127.0.0.1:0", credentials)
        self.address = f"127.0.0.1:{port}"
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
def servicer(server: Server) -> Servicer:
    # The server keeps the first servicer's bound methods: reset that object's state in place.
    fresh = Servicer()
    svc = server.servicer
    for name in (
        "fail_first",
        "fail_code",
        "fail_mid_stream",
        "pushback_ms",
        "calls",
        "call_times",
        "metadata",
        "requests",
    ):
        setattr(svc, name, getattr(fresh, name))
    return svc


def _client(server: Server, **kw: Any) -> EmotionClient:
    return EmotionClient(
        ClientOptions(address=server.address, **{**FAST_RETRY, "max_attempts": 4, **kw})
    )


# --- unary calls ------------------------------------------------------------------------------


def test_retries_unavailable_and_shed_requests(server: Server, servicer: Servicer) -> None:
    # UNAVAILABLE (restarting) and RESOURCE_EXHAUSTED (shed at capacity) are retried by gRPC.
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        servicer.calls, servicer.fail_first, servicer.fail_code = 0, 2, code
        with _client(server) as client:
            resp = client.analyze(client.request(subtitle="What a day!", request_id="r1"))
        assert resp.request_id == "r1"
        assert servicer.calls == 3


def test_the_policy_is_in_the_channel_service_config() -> None:
    options = ClientOptions(max_attempts=3, initial_backoff_s=0.1)
    config = json.loads(dict(options.grpc_channel_options())["grpc.service_config"])
    policy = config["methodConfig"][0]["retryPolicy"]
    assert config["methodConfig"][0]["name"] == [{"service": "emer.v1.EmotionService"}]
    assert policy["maxAttempts"] == 3 and policy["initialBackoff"] == "0.100s"
    assert policy["retryableStatusCodes"] == ["RESOURCE_EXHAUSTED", "UNAVAILABLE"]
    assert config["retryThrottling"] == {"maxTokens": 10, "tokenRatio": 0.1}
    plain = dict(ClientOptions(max_attempts=1).grpc_channel_options())
    assert plain["grpc.enable_retries"] == 0
    assert "retryPolicy" not in json.loads(plain["grpc.service_config"])["methodConfig"][0]
    with pytest.raises(ValueError, match="gRPC's cap"):
        ClientOptions(max_attempts=6)


def test_gives_up_after_max_attempts(server: Server, servicer: Servicer) -> None:
    servicer.fail_first = 10
    with _client(server, max_attempts=3) as client, pytest.raises(grpc.RpcError) as info:
        client.analyze(client.request(subtitle="hi"))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls == 3


def test_server_pushback_sets_the_wait_or_forbids_the_retry(
    server: Server, servicer: Servicer
) -> None:
    servicer.fail_first, servicer.fail_code = 1, grpc.StatusCode.RESOURCE_EXHAUSTED
    servicer.pushback_ms = "400"
    with _client(server) as client:
        client.analyze(client.request(subtitle="hi"))
        assert servicer.calls == 2
        assert servicer.call_times[1] - servicer.call_times[0] >= 0.4 * 0.95
        # A too-large request: the server says never retry it.
        servicer.calls, servicer.call_times, servicer.pushback_ms = 0, [], "-1"
        with pytest.raises(grpc.RpcError) as info:
            client.analyze(client.request(subtitle="hi"))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert servicer.calls == 1


def test_retry_throttling_stops_retries_when_most_calls_fail(
    server: Server, servicer: Servicer
) -> None:
    # maxTokens 4: every failed attempt takes one; at 2 or fewer left nothing is retried.
    servicer.fail_first = 1000
    with _client(server, retry_max_tokens=4, max_attempts=5) as client:
        for _ in range(3):
            with pytest.raises(grpc.RpcError):
                client.analyze(client.request(subtitle="hi"))
    # Call 1: tokens 4 -> 3 (retried) -> 2 (not above half: given up); calls 2 and 3: one
    # attempt each. Without throttling that would have been 3 x 5 attempts.
    assert servicer.calls == 4


def test_never_retries_invalid_argument_nor_unlisted_codes(
    server: Server, servicer: Servicer
) -> None:
    with _client(server) as client:
        with pytest.raises(grpc.RpcError) as info:
            client.analyze(pb.AnalyzeRequest())
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert servicer.calls == 1
        servicer.fail_first, servicer.fail_code = 2, grpc.StatusCode.INTERNAL
        with pytest.raises(grpc.RpcError) as info:
            client.analyze(client.request(subtitle="hi"))
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert servicer.calls == 2
    with pytest.raises(ValueError, match="INVALID_ARGUMENT"):
        ClientOptions(retry_codes=frozenset({grpc.StatusCode.INVALID_ARGUMENT}))


def test_configurable_retry_codes(server: Server, servicer: Servicer) -> None:
    servicer.fail_first, servicer.fail_code = 1, grpc.StatusCode.RESOURCE_EXHAUSTED
    with _client(server, retry_codes=frozenset({grpc.StatusCode.UNAVAILABLE})) as client:
        with pytest.raises(grpc.RpcError) as info:
            client.extract_labels("He smiles.", request_id="x")
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert servicer.calls == 1
        servicer.calls = 0
        servicer.fail_code = grpc.StatusCode.UNAVAILABLE
        assert client.extract_labels("He smiles.", request_id="x").labels[0].word == "joyful"
    assert servicer.calls == 2


def test_deadline_exceeded(server: Server, servicer: Servicer) -> None:
    with _client(server) as client, pytest.raises(grpc.RpcError) as info:
        start = time.monotonic()
        client.analyze(client.request(subtitle="slow"), timeout_s=0.2)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 0.9
    assert servicer.calls == 1


def test_retries_stay_within_the_call_deadline(server: Server, servicer: Servicer) -> None:
    servicer.fail_first = 100
    options = {"initial_backoff_s": 0.4, "max_backoff_s": 0.4, "max_attempts": 5}
    with _client(server, **options) as client, pytest.raises(grpc.RpcError) as info:
        start = time.monotonic()
        client.analyze(client.request(subtitle="hi"), timeout_s=0.5)
    # The deadline ends the call during a wait (DEADLINE_EXCEEDED) or refuses a wait that would
    # outlast it (the last UNAVAILABLE); no attempt starts after it.
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert time.monotonic() - start < 0.6
    assert all(t - start < 0.5 for t in servicer.call_times)


def test_metadata_carries_application_and_bearer_token(
    server: Server, servicer: Servicer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMER_ADDRESS", server.address)
    monkeypatch.setenv("EMER_APPLICATION", "emer-test")
    monkeypatch.setenv("EMER_TOKEN", "s3cret")
    options = ClientOptions.from_env()
    assert (options.address, options.token) == (server.address, "s3cret")
    with EmotionClient(options) as client:
        client.analyze(client.request(subtitle="hi"))
        assert client.health()
    with _client(server) as client:  # no token: no authorization header
        client.extract_labels("He smiles.")
    assert servicer.metadata[0]["application"] == "emer-test"
    assert servicer.metadata[0]["authorization"] == "Bearer s3cret"
    assert servicer.metadata[1]["application"] == "emer"
    assert "authorization" not in servicer.metadata[1]


def test_analyze_file_and_typed_analysis(
    server: Server, servicer: Servicer, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.WAV"
    clip.write_bytes(b"RIFF....WAVE")
    with _client(server) as client:
        resp = client.analyze_file(clip, subtitle="Wow!", request_id="f1")
    sent = servicer.requests[0]
    assert (sent.media, sent.media_kind, sent.subtitle) == (
        b"RIFF....WAVE",
        pb.MEDIA_KIND_AUDIO,
        "Wow!",
    )
    assert media_kind_for("a.mp4") == pb.MEDIA_KIND_VIDEO
    analysis = Analysis.of(resp)
    assert analysis.request_id == "f1"
    assert analysis.labels == ["happy", "excited"]
    assert analysis.explanation.startswith("In the text")
    assert analysis.clue("text").description == ["Delighted words."]
    assert analysis.clue(pb.MODALITY_AUDIO).unavailable_reason == "no audio"
    assert list(analysis.available_clues()) == ["text"]
    with pytest.raises(ValueError):
        analysis.clue("smell")


def test_health_false_when_unreachable() -> None:
    with EmotionClient(ClientOptions(address="127.0.0.1:1", max_attempts=1)) as client:
        assert client.health(timeout_s=0.5) is False


# --- streaming --------------------------------------------------------------------------------


def test_stream_sync_retries_only_before_first_event(server: Server, servicer: Servicer) -> None:
    servicer.fail_first = 1
    with _client(server) as client:
        events = list(client.analyze_stream(client.request(subtitle="hi", request_id="s1")))
        kinds = [e.WhichOneof("event") for e in events]
        assert kinds == ["clue", "explanation_delta", "explanation_delta", "labels", "summary"]
        assert Analysis.of(events[-1].summary).labels == ["happy", "excited"]
        assert servicer.calls == 2

        servicer.fail_mid_stream = True
        got: list[pb.AnalyzeEvent] = []
        with pytest.raises(grpc.RpcError) as info:
            for event in client.analyze_stream(client.request(subtitle="hi")):
                got.append(event)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert len(got) == 1 and servicer.calls == 3  # no retry after the first event

        with pytest.raises(grpc.RpcError) as info:
            list(client.analyze_stream(pb.AnalyzeRequest()))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert servicer.calls == 4


def test_async_client(server: Server, servicer: Servicer) -> None:
    servicer.fail_first = 2

    async def main() -> None:
        options = ClientOptions(address=server.address, token="tok", **FAST_RETRY)
        async with AsyncEmotionClient(options) as client:
            events = [e async for e in client.analyze_stream(client.request(subtitle="hi"))]
            assert events[-1].WhichOneof("event") == "summary"
            assert servicer.calls == 3
            resp = await client.analyze(client.request(subtitle="hi", request_id="a1"))
            assert Analysis.of(resp).request_id == "a1"
            labels = await client.extract_labels("He smiles.")
            assert [lab.word for lab in labels.labels] == ["joyful"]
            assert await client.health()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await client.analyze(pb.AnalyzeRequest())
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await client.analyze(client.request(subtitle="slow"), timeout_s=0.2)
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            servicer.fail_mid_stream = True
            calls = servicer.calls
            with pytest.raises(grpc.aio.AioRpcError):
                async for _ in client.analyze_stream(client.request(subtitle="hi")):
                    pass
            assert servicer.calls == calls + 1

    asyncio.run(main())
    assert servicer.metadata[0]["authorization"] == "Bearer tok"


# --- TLS --------------------------------------------------------------------------------------


def _self_signed(name: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for DNS name `name` (PEM cert, PEM key)."""
    key, cert = certificate(name, dns=[name], ca=True)
    return cert_pem(cert), key_pem(key)


def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    server_cert, server_key = _self_signed("emer.test")
    client_cert, client_key = _self_signed("client.emer.test")
    credentials = grpc.ssl_server_credentials(
        [(server_key, server_cert)], root_certificates=client_cert, require_client_auth=True
    )
    srv = Server(credentials)
    try:
        ca_file = tmp_path / "ca.pem"
        ca_file.write_bytes(server_cert)
        options = ClientOptions(
            address=srv.address,
            root_certificates=ca_file,
            certificate_chain=client_cert,
            private_key=client_key,
            server_name_override="emer.test",
            token="tls-token",
            **FAST_RETRY,
        )
        with EmotionClient(options) as client:
            assert client.analyze(client.request(subtitle="hi")).basic_category == "happy"
        assert srv.servicer.metadata[0]["authorization"] == "Bearer tls-token"

        async def aio() -> str:
            async with AsyncEmotionClient(options) as client:
                return (await client.analyze(client.request(subtitle="hi"))).basic_category

        assert asyncio.run(aio()) == "happy"

        # Without the client certificate the handshake fails: UNAVAILABLE, retried, then raised.
        anonymous = ClientOptions(
            address=srv.address,
            tls=True,
            root_certificates=server_cert,
            server_name_override="emer.test",
            **{**FAST_RETRY, "max_attempts": 2, "timeout_s": 2.0},
        )
        with EmotionClient(anonymous) as client, pytest.raises(grpc.RpcError) as info:
            client.analyze(client.request(subtitle="hi"))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        srv.stop()
