"""End to end: the real Ray Serve application over gRPC.

Starts `emer serve` (local Ray + all five deployments) once for the module. Ray advertises
the machine's address, so `make test` runs this inside a loopback-only network namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from emer_proto import emotion_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.client import EmotionClient
from clients.clipmaker import make_clip
from clients.options import ClientOptions
from services.app import DEPLOYMENT_NAMES
from services.launcher import DEFAULT_CONFIG, load_config
from services.resource_plan import Plan

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[EmotionClient]:
    with EmotionClient(ClientOptions(address=server, timeout_s=120)) as c:
        yield c


@pytest.fixture(scope="module")
def clip(emer_data: Path) -> bytes:
    """A real face (FER2013 happy) and real happy speech (RAVDESS actor 1) as one video."""
    face = sorted((emer_data / "faces" / "fer2013").glob("happy_*.jpg"))[0].read_bytes()
    speech = emer_data / "speech" / "ravdess" / "03-01-03-01-01-01-09.wav"
    if not speech.exists():
        speech = sorted((emer_data / "speech" / "ravdess").glob("03-01-03-*.wav"))[0]
    return make_clip(face, speech.read_bytes())


def test_health_and_reflection(server: str, client: EmotionClient) -> None:
    assert client.health()
    with grpc.insecure_channel(server) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Check(
                health_pb2.HealthCheckRequest(service="no.such.Service"),
                timeout=10,
                metadata=(("application", "emer"),),
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(
            refl.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
            )
        )
        names = {s.name for s in replies[0].list_services_response.service}
        assert "emer.v1.EmotionService" in names


def test_analyze_video_returns_all_clues_explanation_and_labels(
    client: EmotionClient, clip: bytes
) -> None:
    resp = client.analyze(
        pb.AnalyzeRequest(request_id="it-1", media=clip, media_kind=pb.MEDIA_KIND_VIDEO)
    )
    assert resp.request_id == "it-1"
    for name in ("audio", "visual", "text"):
        clue = getattr(resp.clues, name)
        assert clue.available, f"{name}: {clue.unavailable_reason}"
        assert clue.description
        assert {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"} <= set(
            clue.emotion_scores
        )
        assert sum(clue.emotion_scores.values()) == pytest.approx(1.0, abs=0.02)
        assert -1.0 <= clue.valence <= 1.0 and -1.0 <= clue.arousal <= 1.0
    # No subtitle: the transcript comes from ASR with word timings (RAVDESS statement 01).
    assert "door" in resp.transcript.text.lower()
    assert resp.transcript.words and resp.transcript.source != "subtitle"
    assert resp.explanation.startswith("In the video")
    assert "Therefore" in resp.explanation
    assert resp.labels and all(lab.word for lab in resp.labels)
    assert resp.basic_category in {
        "angry",
        "disgust",
        "fear",
        "happy",
        "sad",
        "surprise",
        "neutral",
    }
    stages = {t.stage for t in resp.timings}
    assert {"decode", "audio", "visual", "text", "explain", "total"} <= stages
    assert {m.role for m in resp.models} >= {"audio", "visual", "text", "explainer"}
    assert resp.media_duration_s == pytest.approx(3.6, abs=0.5)
    # the wheel is configured from EMER_DATA: labels carry wheel categories
    assert any(lab.wheel_categories for lab in resp.labels)


def test_stream_yields_clues_deltas_labels_then_summary(client: EmotionClient, clip: bytes) -> None:
    events = list(
        client.analyze_stream(
            pb.AnalyzeRequest(media=clip, subtitle="We won the game, I can't believe it!")
        )
    )
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds.count("clue") == 3
    assert kinds[-1] == "summary" and kinds[-2] == "labels"
    deltas = [
        e.explanation_delta.text for e in events if e.WhichOneof("event") == "explanation_delta"
    ]
    assert len(deltas) >= 2
    summary = events[-1].summary
    assert "".join(deltas).strip() == summary.explanation
    assert summary.transcript.source == "subtitle"
    assert len({e.request_id for e in events}) == 1


def test_text_only_and_audio_only_and_image_only(client: EmotionClient, emer_data: Path) -> None:
    text = client.analyze(
        pb.AnalyzeRequest(subtitle="I am so angry with you, this is unacceptable!")
    )
    assert (
        text.clues.text.available
        and not text.clues.audio.available
        and not text.clues.visual.available
    )
    assert text.basic_category == "angry"
    wav = (emer_data / "speech" / "ravdess" / "03-01-05-01-02-02-01.wav").read_bytes()
    audio = client.analyze(pb.AnalyzeRequest(media=wav, media_kind=pb.MEDIA_KIND_AUDIO))
    assert audio.clues.audio.available and not audio.clues.visual.available
    face = sorted((emer_data / "faces" / "fer2013").glob("surprise_*.jpg"))[0].read_bytes()
    image = client.analyze(pb.AnalyzeRequest(media=face))
    assert image.clues.visual.available and not image.clues.audio.available


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (
            pb.AnalyzeRequest(media=os.urandom(20_000), media_kind=pb.MEDIA_KIND_VIDEO),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (pb.AnalyzeRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.AnalyzeRequest(subtitle="x" * 6000), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (
            pb.AnalyzeRequest(media=b"\x00" * 100, media_kind=pb.MEDIA_KIND_IMAGE),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.AnalyzeRequest(media=b"hello", media_kind=pb.MEDIA_KIND_AUDIO),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_bad_input_gets_status_and_human_message(
    client: EmotionClient, request_: pb.AnalyzeRequest, code: grpc.StatusCode
) -> None:
    # The same status whether the answer is one message or a stream (Ray's proxy drops a
    # stream's status unless the gateway raises it: services.gateway.ingress.StreamFailed).
    for call in (client.analyze, lambda r: list(client.analyze_stream(r))):
        with pytest.raises(grpc.RpcError) as err:
            call(request_)
        assert err.value.code() == code
        details = err.value.details() or ""
        assert details and "Traceback" not in details and 'File "' not in details
        assert "StreamFailed" not in details
    assert client.health()  # still serving


def test_no_face_and_silence_are_reported(client: EmotionClient) -> None:
    import io

    import numpy as np
    import soundfile as sf
    from PIL import Image

    buf = io.BytesIO()
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
    Image.fromarray(np.dstack([gradient] * 3)).save(buf, format="PNG")
    with pytest.raises(grpc.RpcError) as err:
        client.analyze(pb.AnalyzeRequest(media=buf.getvalue()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "face" in (err.value.details() or "")
    # The same image with a subtitle still answers from the text, with the visual clue marked.
    resp = client.analyze(pb.AnalyzeRequest(media=buf.getvalue(), subtitle="What a lovely day!"))
    assert not resp.clues.visual.available and "face" in resp.clues.visual.unavailable_reason
    assert resp.clues.text.available
    # No face and a silent (all-zero) sound track: nothing to analyse.
    silence = io.BytesIO()
    sf.write(silence, np.zeros(32_000, np.float32), 16_000, format="WAV")
    silent = make_clip(Image.fromarray(np.dstack([gradient] * 3)), silence.getvalue())
    with pytest.raises(grpc.RpcError) as err:
        client.analyze(pb.AnalyzeRequest(media=silent))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cli_analyze_json_and_annotate(server: str, tmp_path: Path, clip: bytes) -> None:
    env = {**os.environ, "EMER_ADDRESS": server}
    video = tmp_path / "clip.mp4"
    video.write_bytes(clip)
    out = subprocess.run(
        [sys.executable, "-m", "clients.cli", "analyze", str(video), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    import json

    body = json.loads(out.stdout)
    assert body["clues"]["visual"]["available"] is True and body["labels"]
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,media,subtitle\na,clip.mp4,\nb,,I love this!\nc,missing.mp4,\n")
    result = tmp_path / "out.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "clients.cli",
        "annotate",
        str(manifest),
        "--out",
        str(result),
        "--quiet",
    ]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1  # one item failed
    lines = [json.loads(x) for x in result.read_text().splitlines()]
    by_id = {x["id"]: x for x in lines}
    assert set(by_id) == {"a", "b", "c"}
    assert by_id["c"]["error"]["code"] == "NOT_FOUND" and "labels" in by_id["b"]
    # Resumable: a second run skips what is done and writes nothing new.
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert len(result.read_text().splitlines()) == 3, second.stderr
    health = subprocess.run(
        [sys.executable, "-m", "clients.cli", "health"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert health.returncode == 0 and "SERVING" in health.stdout


def test_annotate_interrupted_then_resumed_loses_nothing(
    server: str, tmp_path: Path, clip: bytes
) -> None:
    import json
    import signal

    env = {**os.environ, "EMER_ADDRESS": server}
    (tmp_path / "clip.mp4").write_bytes(clip)
    ids = [f"t{i}" for i in range(6)]
    rows = "".join(f"{i},clip.mp4,\n" for i in ids)  # about a second each
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,media,subtitle\n" + rows)
    out = tmp_path / "out.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "clients.cli",
        "annotate",
        str(manifest),
        "--out",
        str(out),
        "--concurrency",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while (not out.exists() or not out.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    first = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert first and len(first) == len(set(first))
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    final = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert sorted(final) == sorted(ids)  # every item exactly once


def test_stream_names_vllm_and_streams_llm_deltas(client: EmotionClient, clip: bytes) -> None:
    events = list(client.analyze_stream(pb.AnalyzeRequest(media=clip, subtitle="We did it!")))
    summary = events[-1].summary
    explainer = [m for m in summary.models if m.role == "explainer"]
    # The engine ran: no failure or timeout. The grounding check may replace what the 135M
    # model wrote with the composer's conclusion; then a warning says why and the explanation's
    # model is the composer.
    assert not [w for w in summary.warnings if "failed" in w or "timed out" in w]
    rejected = [w for w in summary.warnings if "not used" in w]
    if not rejected:
        assert explainer and explainer[0].backend == "vllm", summary.warnings
        assert "smollm2" in explainer[0].name.lower() and "prompts-v2" in explainer[0].version
    deltas = [
        e.explanation_delta.text for e in events if e.WhichOneof("event") == "explanation_delta"
    ]
    # The clue paragraphs, then the checked conclusion (one delta once it passed the check).
    assert len(deltas) >= 4
    assert "Therefore," in summary.explanation
    if "Therefore, the main character feels" not in summary.explanation:
        assert [w for w in summary.warnings if "not used" in w], summary.warnings


def test_extract_labels_rpc_and_cli(server: str, client: EmotionClient, tmp_path: Path) -> None:
    text = (
        "In the video, the man frowns and clenches his fists. In the audio, his voice is loud "
        "and sharp. Therefore, he is clearly angry and a little disappointed, but not sad."
    )
    resp = client.extract_labels(text, request_id="x1")
    words = [lab.word for lab in resp.labels]
    assert resp.request_id == "x1"
    assert "angry" in words and "sad" not in words
    assert all(lab.wheel_categories for lab in resp.labels)
    none = client.extract_labels("In the video, a man walks to the door and opens it.")
    assert list(none.labels) == []
    with pytest.raises(grpc.RpcError) as err:
        client.extract_labels("   ")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    src = tmp_path / "in.csv"
    src.write_text(f'name,english\na,"{text}"\nb,"Therefore, she feels relieved and happy."\n')
    out = tmp_path / "out.csv"
    env = {**os.environ, "EMER_ADDRESS": server}
    cmd = [
        sys.executable,
        "-m",
        "clients.cli",
        "extract-labels",
        "--input",
        str(src),
        "--output",
        str(out),
        "--quiet",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    import csv

    rows = {r["name"]: r["openset"] for r in csv.DictReader(out.open())}
    assert rows["b"].startswith("[") and "'relieved'" in rows["b"]


def test_the_replica_watch_counts_the_running_replicas(server: str, tmp_path: Path) -> None:
    """What the gateway's breakers read once a second (services/gateway/breaker.py), asked of
    the real Serve controller from another driver: every deployment, with its replicas."""
    code = (
        "import json, ray; ray.init(address='auto', namespace='serve', log_to_driver=False)\n"
        "from services.gateway.breaker import running_replicas\n"
        "print(json.dumps(running_replicas('emer')))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert found.returncode == 0, found.stderr[-3000:]
    running = json.loads(found.stdout.strip().splitlines()[-1])

    assert set(running) == set(DEPLOYMENT_NAMES)
    # The default profile fixes every deployment's count (autoscaling min = max), so all of
    # its replicas are running once the server is ready.
    plan = Plan.from_config(load_config(DEFAULT_CONFIG))
    assert running == {d.deployment: d.max_replicas for d in plan.demands}
