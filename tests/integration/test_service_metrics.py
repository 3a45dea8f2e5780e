"""End to end: the Prometheus metrics of the real service on Ray's metrics export port.

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

from clients.client import ClientOptions, EmotionClient
from clients.local_server import free_port, local_server

pytestmark = pytest.mark.integration

# Ray exports every few seconds (the metrics agent's report period is 10 s by default).
POLL_S = 60.0


@pytest.fixture(scope="module")
def served(emer_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    metrics_port = free_port()
    try:
        with local_server(
            log, env={"EMER_DATA": str(emer_data)}, metrics_port=metrics_port
        ) as address:
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


def test_requests_are_exported_on_the_metrics_port(served: tuple[str, int]) -> None:
    address, port = served
    with EmotionClient(ClientOptions(address=address, timeout_s=120)) as client:
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
