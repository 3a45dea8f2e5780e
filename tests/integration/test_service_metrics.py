"""End to end: the Prometheus metrics of the real service on Ray's metrics export port, and
bearer-token authentication (this module's server runs with a token file).

(Not named test_metrics.py: tests/unit/test_metrics.py exists and the test folders are not
packages, so pytest would refuse two modules of the same name.)
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from emer_proto import emotion_pb2 as pb

from clients.client import EmotionClient
from clients.options import ClientOptions
from services.local_server import free_port, local_server

pytestmark = pytest.mark.integration

# Ray exports every few seconds (the metrics agent's report period is 10 s by default).
POLL_S = 60.0


TOKEN = "integration-test-token-5f2c9a"
RAY_LOGS = Path("/tmp/ray/session_latest/logs")  # the Ray started last: this module's


@pytest.fixture(scope="module")
def serve_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve") / "serve.log"


@pytest.fixture(scope="module")
def served(
    emer_data: Path, serve_log: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    tokens = tmp_path_factory.mktemp("auth") / "tokens"
    tokens.write_text(f"# API tokens\nsomeone-else\n{TOKEN}\n")
    metrics_port = free_port()
    env = {"EMER_DATA": str(emer_data), "EMER_AUTH_TOKEN_FILE": str(tokens)}
    try:
        with local_server(serve_log, env=env, metrics_port=metrics_port) as address:
            yield address, metrics_port
    except (RuntimeError, TimeoutError) as e:
        pytest.fail(str(e))


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text: str = resp.read().decode()
        return text


def _has(text: str, name: str, *labels: str) -> bool:
    """A sample of series `name` (any `ray_` prefix) carrying every label in `labels`."""
    for line in text.splitlines():
        m = re.match(rf"^(?:ray_)?{re.escape(name)}\{{(.*)\}} ", line)
        if m and all(label in m.group(1) for label in labels):
            return True
    return False


def test_rpcs_need_an_accepted_token_and_health_does_not(
    served: tuple[str, int], serve_log: Path
) -> None:
    address, _ = served
    request = pb.AnalyzeRequest(subtitle="Thanks a lot, that really made my day.")
    for token in (None, "wrong-token", TOKEN[:-1]):
        with EmotionClient(ClientOptions(address=address, timeout_s=60, token=token)) as client:
            assert client.health(timeout_s=30)  # probes need no secret
            for call in (
                lambda: client.analyze(request),
                lambda: list(client.analyze_stream(request)),
                lambda: client.extract_labels("She smiles warmly and sounds relieved."),
            ):
                with pytest.raises(grpc.RpcError) as err:
                    call()
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, token
                details = err.value.details() or ""
                assert "token" in details and TOKEN not in details
    with EmotionClient(ClientOptions(address=address, timeout_s=120, token=TOKEN)) as client:
        assert client.analyze(request).clues.text.available
        assert list(client.analyze_stream(request))[-1].HasField("summary")
        assert client.extract_labels("She smiles warmly and sounds relieved.").labels
    log = serve_log.read_text()
    assert "authentication: bearer tokens from" in log and "(2 tokens)" in log
    assert TOKEN not in log
    # The gateway logs each rejection (in its Ray worker's log files), never a token.
    ray_logs = [p.read_text(errors="replace") for p in RAY_LOGS.rglob("*") if p.is_file()]
    assert any("auth: rejected Analyze from" in text for text in ray_logs)
    assert not any(TOKEN[:-1] in text or "wrong-token" in text for text in ray_logs)


def test_no_subtitle_description_or_media_reaches_the_logs(
    served: tuple[str, int], serve_log: Path, emer_data: Path
) -> None:
    """Privacy: what people said and showed stays out of every log of every process, also
    when the request fails."""
    address, _ = served
    marker = "Quokkafrangipane"  # in no model, prompt or message of ours
    subtitle = f"{marker} told me the results were fine, but I know they lied to me."
    description = f"{marker} frowns and her voice trembles; she sounds anxious and betrayed."
    speech = (emer_data / "speech" / "ravdess" / "03-01-05-01-02-02-01.wav").read_bytes()
    media_marker = b"QuokkaMediaMarker"
    with EmotionClient(ClientOptions(address=address, timeout_s=120, token=TOKEN)) as client:
        assert client.analyze(pb.AnalyzeRequest(subtitle=subtitle)).clues.text.available
        assert client.analyze(
            pb.AnalyzeRequest(media=speech, media_kind=pb.MEDIA_KIND_AUDIO, subtitle=subtitle)
        ).clues.audio.available
        assert client.extract_labels(description).labels
        with pytest.raises(grpc.RpcError) as err:  # a failing request logs its error, not data
            client.analyze(
                pb.AnalyzeRequest(
                    media=media_marker * 100, media_kind=pb.MEDIA_KIND_VIDEO, subtitle=subtitle
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    time.sleep(2)  # Ray flushes worker output to its log files
    texts = [p.read_bytes() for p in RAY_LOGS.rglob("*") if p.is_file()]
    texts.append(serve_log.read_bytes())
    for needle in (marker.encode(), media_marker, b"results were fine", b"voice trembles"):
        assert not any(needle in text for text in texts), needle


def test_request_ids_are_bounded_and_printable(served: tuple[str, int]) -> None:
    address, _ = served
    given = "id-with\nnewline\tand-tab " + "x" * 500
    with EmotionClient(ClientOptions(address=address, timeout_s=120, token=TOKEN)) as client:
        answer = client.analyze(pb.AnalyzeRequest(subtitle="I am so glad.", request_id=given))
    assert answer.request_id == ("id-withnewlineand-tab" + "x" * 500)[:128]


def test_requests_are_exported_on_the_metrics_port(served: tuple[str, int]) -> None:
    address, port = served
    options = ClientOptions(address=address, timeout_s=120, token=TOKEN)
    with EmotionClient(options) as client:
        resp = client.analyze(pb.AnalyzeRequest(subtitle="I am so happy to see you again!"))
        assert resp.clues.text.available
        with pytest.raises(grpc.RpcError) as err:
            client.analyze(pb.AnalyzeRequest())  # neither media nor subtitle
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    wanted = {
        "stage total": ("emer_stage_latency_ms_bucket", 'stage="total"'),
        "ok request": ("emer_requests_total", 'method="Analyze"', 'code="OK"'),
        "bad request": ("emer_requests_total", 'method="Analyze"', 'code="INVALID_ARGUMENT"'),
        "text modality": ("emer_modality_total", 'modality="text"', 'available="true"'),
        "audio modality": ("emer_modality_total", 'modality="audio"', 'available="false"'),
        "ongoing": ("emer_ongoing_requests", 'method="Analyze"'),
        "no token": ("emer_requests_total", 'method="Analyze"', 'code="UNAUTHENTICATED"'),
        "serve built-in": ("serve_deployment_processing_latency_ms_bucket",),
    }
    deadline = time.monotonic() + POLL_S
    text, missing = "", list(wanted)
    while True:
        try:
            text = _scrape(port)
        except OSError:
            text = ""
        missing = [k for k, (name, *labels) in wanted.items() if not _has(text, name, *labels)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    emer = sorted({line.split("{")[0] for line in text.splitlines() if "emer_" in line})
    assert not missing, f"missing {missing}; exported emer series: {emer}"
    # Ray prefixes custom metrics: what docs/metrics.md documents.
    assert "ray_emer_requests_total" in emer
    assert any(line.startswith("ray_serve_") for line in text.splitlines())
