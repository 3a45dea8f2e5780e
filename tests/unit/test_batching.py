"""The clue deployments batch concurrent requests (Serve's `@serve.batch`): one result per
request, identical to what a request alone gets, an error only for the request that caused it,
one batch at a time per replica, and the `batching:` settings of each model config applied.

The deployment classes (`TextClues.func_or_class`, ...) run here as a replica runs them but
without a Ray cluster: Serve's batch queue needs only a running event loop and a replica context,
which the `replica` fixture sets the way Ray's own batching tests do. The models are the real
embedded ones, on real texts, speech and faces from EMER_DATA.
"""

from __future__ import annotations

import asyncio
import csv
import os
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import ray.serve.context as serve_context
import yaml
from ray.serve._private.common import DeploymentID, ReplicaID
from ray.serve._private.config import DeploymentConfig
from ray.serve.schema import ReplicaRank

from services import deployments
from services.audio import AudioConfig
from services.audio import load_model as load_audio_model
from services.common.types import AudioClip, Clue, VideoFrames
from services.config import AppConfig
from services.deployments import AudioClues, TextClues, VisualClues
from services.media.decode import DecodeOptions, MediaKind, decode_media
from services.text import TextConfig
from services.text import load_model as load_text_model
from services.text.embedded import EmbeddedTextModel
from services.text.features import split_sentences
from services.visual import VisualConfig
from services.visual import load_model as load_visual_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
SERVE_CONFIGS = [
    REPO / "deploy" / "serve-cpu.yaml",
    REPO / "deploy" / "serve-gpu.yaml",
    REPO / "deploy" / "k8s" / "overlays" / "cpu" / "serve-config.yaml",
    REPO / "deploy" / "k8s" / "overlays" / "gpu" / "serve-config.yaml",
]
CLUE_DEPLOYMENTS = {"AudioClues": "audio", "VisualClues": "visual", "TextClues": "text"}


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def replica() -> Iterator[None]:
    """The replica context Serve's batch queue reads (max_ongoing_requests, for its warning)."""
    previous = serve_context._INTERNAL_REPLICA_CONTEXT
    serve_context._set_internal_replica_context(
        replica_id=ReplicaID(unique_id="unit", deployment_id=DeploymentID(name="unit")),
        servable_object=None,  # type: ignore[arg-type]
        _deployment_config=DeploymentConfig(max_ongoing_requests=64),
        rank=ReplicaRank(rank=0, node_rank=0, local_rank=0),
        world_size=1,
    )
    yield
    serve_context._INTERNAL_REPLICA_CONTEXT = previous


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(requests, results returned to Serve) of every batch that runs in the test."""
    seen: list[tuple[int, int]] = []
    original = deployments._BatchedModel._analyze_batch

    async def counted(self: Any, requests: list[Any]) -> list[None]:
        results = await original(self, requests)
        seen.append((len(requests), len(results)))
        return results

    monkeypatch.setattr(deployments._BatchedModel, "_analyze_batch", counted)
    return seen


@pytest.fixture(scope="module")
def int8_text() -> EmbeddedTextModel:
    """The default text model (int8 encoder: the items of a batch run one by one)."""
    model = load_text_model(TextConfig())
    assert isinstance(model, EmbeddedTextModel) and not model.joint_batches
    return model


@pytest.fixture(scope="module")
def float_text() -> EmbeddedTextModel:
    """The float encoder (as on a GPU): a batch is read in one encoder call."""
    model = load_text_model(TextConfig(quantize=False))
    assert isinstance(model, EmbeddedTextModel) and model.joint_batches
    return model


@pytest.fixture(params=["int8", "float"])
def text_model(request: pytest.FixtureRequest) -> EmbeddedTextModel:
    model: EmbeddedTextModel = request.getfixturevalue(f"{request.param}_text")
    return model


@pytest.fixture(scope="module")
def meld_texts(emer_data: Path) -> list[str]:
    """Eight real MELD dev utterances: four of several sentences, four of one."""
    with (emer_data / "text" / "meld" / "dev_sent_emo.csv").open(encoding="utf-8") as f:
        rows = [r["Utterance"] for r in csv.DictReader(f)]
    multi = [t for t in rows if len(split_sentences(t)) > 1][:4]
    single = [t for t in rows if len(split_sentences(t)) == 1][:4]
    assert len(multi) == len(single) == 4
    return [t for pair in zip(multi, single, strict=True) for t in pair]


def text_clues(
    model: Any, monkeypatch: pytest.MonkeyPatch, max_batch_size: int, wait_s: float
) -> Any:
    """A TextClues replica object built by its own __init__ around an already loaded model."""
    monkeypatch.setattr(deployments, "load_text_model", lambda config: model)
    batching = {"max_batch_size": max_batch_size, "batch_wait_timeout_s": wait_s}
    return TextClues.func_or_class({"batching": batching})  # type: ignore[attr-defined]


def spy(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str) -> list[Any]:
    """Records the first argument of every call of obj.name (which still runs)."""
    calls: list[Any] = []
    original = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0] if args else None)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, wrapper)
    return calls


async def settle(calls: list[Awaitable[Any]]) -> list[Any]:
    """Results (or exceptions) of concurrent calls, in order."""
    return await asyncio.gather(*calls, return_exceptions=True)


def assert_same_clue(got: Clue, want: Clue, *, exact: bool) -> None:
    if exact:
        assert got == want
        return
    # One encoder call for several texts pads them together: float rounding only.
    assert (got.available, got.unavailable_reason) == (want.available, want.unavailable_reason)
    assert got.description == want.description
    assert got.emotion_scores == pytest.approx(want.emotion_scores, abs=1e-5)
    assert got.valence == pytest.approx(want.valence, abs=1e-5)
    assert got.arousal == pytest.approx(want.arousal, abs=1e-5)
    assert got.measurements == pytest.approx(want.measurements, abs=1e-5)
    assert [o.text for o in got.observations] == [o.text for o in want.observations]
    for a, b in zip(got.observations, want.observations, strict=True):
        assert a.emotion_scores == pytest.approx(b.emotion_scores, abs=1e-5)
    assert got.model == want.model


# --------------------------------------------------------------------------------------- text
def test_concurrent_texts_share_a_batch_and_get_their_own_clue(
    text_model: EmbeddedTextModel,
    meld_texts: list[str],
    batches: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sequential = [text_model.analyze(t, language="en") for t in meld_texts]
    joint_calls = spy(monkeypatch, text_model, "analyze_batch")
    replica = text_clues(text_model, monkeypatch, max_batch_size=8, wait_s=0.05)
    assert replica.info() == text_model.info

    clues = asyncio.run(settle([replica.analyze(t, "en") for t in meld_texts]))

    assert batches == [(8, 8)], "8 concurrent requests should run as one batch"
    # The float encoder reads the batch in one call; the int8 one text by text.
    assert len(joint_calls) == (1 if text_model.joint_batches else 0)
    for clue, want in zip(clues, sequential, strict=True):
        assert isinstance(clue, Clue), clue
        assert_same_clue(clue, want, exact=not text_model.joint_batches)


def test_a_bad_request_fails_alone_with_its_own_error(
    text_model: EmbeddedTextModel,
    meld_texts: list[str],
    batches: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two malformed requests (a number, raw bytes as text) among six good ones, in one batch:
    each fails with the error its own input raises in the model; the six get their clues."""
    replica = text_clues(text_model, monkeypatch, max_batch_size=8, wait_s=0.05)
    good = meld_texts[:6]
    requests: list[tuple[Any, Any]] = [(t, "en") for t in good]
    requests.insert(2, (12345, "en"))
    requests.insert(5, (b"I'm fine.", "en"))

    results = asyncio.run(settle([replica.analyze(t, lang) for t, lang in requests]))

    assert batches == [(8, 8)]
    assert isinstance(results[2], AttributeError) and "'int'" in str(results[2])
    assert isinstance(results[5], TypeError) and "bytes" in str(results[5])
    clues = [r for i, r in enumerate(results) if i not in (2, 5)]
    for clue, text in zip(clues, good, strict=True):
        assert isinstance(clue, Clue), clue
        assert_same_clue(clue, text_model.analyze(text), exact=not text_model.joint_batches)


def test_a_joint_call_that_miscounts_falls_back_to_one_by_one(
    float_text: EmbeddedTextModel,
    meld_texts: list[str],
    batches: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A joint result of the wrong length is never handed out: every request still gets the
    clue of its own text, and Serve gets one value per request."""
    original = float_text.analyze_batch
    monkeypatch.setattr(float_text, "analyze_batch", lambda items: original(items)[:-1])
    replica = text_clues(float_text, monkeypatch, max_batch_size=8, wait_s=0.05)

    clues = asyncio.run(settle([replica.analyze(t, "en") for t in meld_texts]))

    assert batches == [(8, 8)]
    for clue, text in zip(clues, meld_texts, strict=True):
        assert isinstance(clue, Clue), clue
        assert clue == float_text.analyze(text)  # the one-by-one path: the same computation


def test_batch_settings_come_from_the_config(
    int8_text: EmbeddedTextModel,
    meld_texts: list[str],
    batches: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replica = text_clues(int8_text, monkeypatch, max_batch_size=3, wait_s=0.05)
    asyncio.run(settle([replica.analyze(t, "en") for t in meld_texts]))
    assert [n for n, _ in batches] == [3, 3, 2]

    async def staggered(replica: Any) -> None:
        first = asyncio.ensure_future(replica.analyze(meld_texts[0], "en"))
        await asyncio.sleep(0.1)
        await settle([first, replica.analyze(meld_texts[1], "en")])

    batches.clear()
    asyncio.run(staggered(text_clues(int8_text, monkeypatch, max_batch_size=8, wait_s=0.0)))
    assert batches == [(1, 1), (1, 1)], "no wait: a request does not wait for the next"
    batches.clear()
    asyncio.run(staggered(text_clues(int8_text, monkeypatch, max_batch_size=8, wait_s=1.0)))
    assert batches == [(2, 2)], "the first request waits up to batch_wait_timeout_s for more"


def test_one_batch_at_a_time(
    int8_text: EmbeddedTextModel,
    meld_texts: list[str],
    batches: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model is never run by two threads at once (tflite, CTranslate2 are not
    thread-safe), however many batches are queued."""
    lock = threading.Lock()
    running = [0, 0]  # now, most
    original = int8_text.analyze

    def tracked(text: str, *, language: str = "en") -> Clue:
        with lock:
            running[0] += 1
            running[1] = max(running)
        try:
            return original(text, language=language)
        finally:
            with lock:
                running[0] -= 1

    replica = text_clues(int8_text, monkeypatch, max_batch_size=2, wait_s=0.0)
    monkeypatch.setattr(int8_text, "analyze", tracked)
    results = asyncio.run(settle([replica.analyze(t, "en") for t in meld_texts * 2]))
    assert all(isinstance(r, Clue) for r in results)
    assert [n for n, _ in batches] == [2] * 8
    assert running[1] == 1


def test_a_cancelled_request_is_not_analysed(
    int8_text: EmbeddedTextModel,
    meld_texts: list[str],
    batches: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A caller that goes away (client cancel, gateway timeout) while earlier items of its batch
    run costs no inference; the others are answered."""
    started, release = threading.Event(), threading.Event()
    analysed: list[str] = []
    original = int8_text.analyze

    def gated(text: str, *, language: str = "en") -> Clue:
        analysed.append(text)
        if len(analysed) == 1:
            started.set()
            assert release.wait(30)
        return original(text, language=language)

    replica = text_clues(int8_text, monkeypatch, max_batch_size=4, wait_s=0.05)
    monkeypatch.setattr(int8_text, "analyze", gated)

    async def scenario() -> list[Any]:
        tasks = [asyncio.ensure_future(replica.analyze(t, "en")) for t in meld_texts[:3]]
        assert await asyncio.to_thread(started.wait, 30)
        tasks[1].cancel()
        await asyncio.sleep(0)
        release.set()
        return await settle(tasks)

    results = asyncio.run(scenario())
    assert isinstance(results[1], asyncio.CancelledError)
    assert isinstance(results[0], Clue) and isinstance(results[2], Clue)
    assert analysed == [meld_texts[0], meld_texts[2]]
    assert batches == [(3, 3)]


def test_a_failing_batch_reaches_every_request_as_an_error(
    int8_text: EmbeddedTextModel, meld_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the batch itself fail (Serve's machinery, not a request's input), each request
    gets that error: none hangs, none gets a result that is not its own."""

    async def broken(self: Any, requests: list[Any]) -> list[None]:
        raise RuntimeError("batch machinery failed")

    monkeypatch.setattr(deployments._BatchedModel, "_analyze_batch", broken)
    replica = text_clues(int8_text, monkeypatch, max_batch_size=4, wait_s=0.05)
    results = asyncio.run(
        asyncio.wait_for(settle([replica.analyze(t, "en") for t in meld_texts[:3]]), 30)
    )
    assert all(isinstance(r, RuntimeError) and "machinery" in str(r) for r in results), results


def test_huggingface_text_backend_reads_a_batch_in_one_call(
    tiny_hf_model: Path,
    meld_texts: list[str],
    batches: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The production backend's joint path (a tiny random BERT classifier, saved and loaded
    by path, tests/conftest.py): the same clues as one by one, from one pipeline call."""
    model = load_text_model(
        TextConfig(backend="huggingface", model=str(tiny_hf_model), max_length=64)
    )
    assert getattr(model, "joint_batches", False)
    sequential = [model.analyze(t) for t in meld_texts]
    pipeline_calls = spy(monkeypatch, model, "_classify")
    replica = text_clues(model, monkeypatch, max_batch_size=8, wait_s=0.05)
    pipeline_calls.clear()  # warm-up

    clues = asyncio.run(settle([replica.analyze(t, "en") for t in meld_texts]))

    assert batches == [(8, 8)]
    units = sum(len(split_sentences(t)) + (len(split_sentences(t)) > 1) for t in meld_texts)
    assert [len(c) for c in pipeline_calls] == [units]
    for clue, want in zip(clues, sequential, strict=True):
        assert isinstance(clue, Clue), clue
        assert_same_clue(clue, want, exact=False)


# ------------------------------------------------------------------------------ audio, visual
def _ravdess(root: Path, count: int) -> list[AudioClip]:
    folder = root / "speech" / "ravdess"
    clips = []
    with (folder / "labels.csv").open(newline="") as f:
        for row in list(csv.DictReader(f))[:count]:
            media = decode_media(
                (folder / row["file"]).read_bytes(), MediaKind.AUDIO, DecodeOptions()
            )
            assert media.audio is not None
            clips.append(media.audio)
    return clips


def test_audio_bad_clip_fails_alone(
    emer_data: Path, batches: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two real RAVDESS clips and a malformed one (3-D samples) in one batch: the malformed
    one gets the model's own error, each real clip the result it gets alone."""
    model = load_audio_model(AudioConfig())  # warmed up by the deployment
    clips = _ravdess(emer_data, 2)
    sequential = [model.analyze(c, transcribe=True, language="en") for c in clips]
    monkeypatch.setattr(deployments, "load_audio_model", lambda config: model)
    batching = {"max_batch_size": 4, "batch_wait_timeout_s": 0.05}
    replica = AudioClues.func_or_class({"batching": batching})  # type: ignore[attr-defined]
    bad = AudioClip(samples=np.zeros((100, 3, 2), dtype=np.float32), sample_rate=16_000)
    requests = [clips[0], bad, clips[1]]

    results = asyncio.run(settle([replica.analyze(c, True, "en") for c in requests]))

    assert batches == [(3, 3)]
    assert isinstance(results[1], ValueError)
    for got, want in zip([results[0], *results[2:]], sequential, strict=True):
        assert got == want
        assert got.clue.available and got.transcript is not None and got.transcript.text


def _fer_faces(root: Path, count: int) -> list[np.ndarray]:
    faces = []
    for path in sorted((root / "faces" / "fer2013").glob("happy_*.jpg"))[:count]:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert bgr is not None, path
        faces.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert len(faces) == count
    return faces


def test_visual_bad_frame_fails_alone(
    emer_data: Path, batches: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three real FER2013 faces and a malformed frame (5 channels) in one batch."""
    model = load_visual_model(VisualConfig())  # warmed up by the deployment
    videos = [VideoFrames([f], [0.0], 0.0) for f in _fer_faces(emer_data, 3)]
    sequential = [model.analyze(v) for v in videos]
    monkeypatch.setattr(deployments, "load_visual_model", lambda config: model)
    batching = {"max_batch_size": 4, "batch_wait_timeout_s": 0.05}
    replica = VisualClues.func_or_class({"batching": batching})  # type: ignore[attr-defined]
    bad = VideoFrames([np.zeros((48, 48, 5), dtype=np.uint8)], [0.0], 0.0)
    requests = [videos[0], videos[1], bad, videos[2]]

    results = asyncio.run(settle([replica.analyze(v) for v in requests]))

    assert batches == [(4, 4)]
    assert isinstance(results[2], ValueError)
    for got, want in zip([*results[:2], results[3]], sequential, strict=True):
        assert isinstance(got, Clue) and got.available
        assert got == want


# ------------------------------------------------------------------------------------- config
def test_defaults_and_validation() -> None:
    config = AppConfig.from_args({})
    assert (config.audio.batching.max_batch_size, config.audio.batching.batch_wait_timeout_s) == (
        4,
        0.0,
    )
    assert config.visual.batching.max_batch_size == 4
    assert config.text.batching.max_batch_size == 16
    # A partial block keeps the modality's other default.
    text = AppConfig.from_args({"text": {"batching": {"batch_wait_timeout_s": 0.01}}}).text
    assert text.batching.max_batch_size == 16
    for bad in ({"max_batch_size": 0}, {"batch_wait_timeout_s": -1}, {"max_batch_sise": 4}):
        with pytest.raises(ValueError):
            AppConfig.from_args({"audio": {"batching": bad}})


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_serve_configs_let_batches_fill(path: Path) -> None:
    """Each clue deployment may hold at least max_batch_size requests, or a replica could never
    fill a batch (Serve only warns in the replica log)."""
    raw = yaml.safe_load(path.read_text())
    app = raw["applications"][0]
    config = AppConfig.from_args(app["args"])
    ongoing = {d["name"]: d["max_ongoing_requests"] for d in app["deployments"]}
    for deployment, key in CLUE_DEPLOYMENTS.items():
        assert "batching" in app["args"][key], f"{deployment}: batching not set explicitly"
        batch_size = getattr(config, key).batching.max_batch_size
        assert ongoing[deployment] >= batch_size, (deployment, ongoing[deployment], batch_size)
