"""Long media end to end: a 3-minute clip through the real Ray Serve application over gRPC.

The clip (clients.clipmaker.story_clip) shows real FER2013 faces and plays real RAVDESS speech
of the same emotion, the emotion changing every 30 s: happy, angry, neutral, surprise, happy,
angry. Per-frame grain brings it to a camera's bitrate (~35 MB), so the request is as heavy as a
real 3-minute clip. What is asserted is what the models reliably do on it: the faces were chosen
among those the embedded visual model reads as their label on their own, and it reads every
segment right; the fused category follows the story in (nearly) every segment; the voice model
is reliable for arousal only, so only arousal is compared.

Starts `emer serve` (deploy/serve-cpu.yaml) once for the module; run inside the loopback-only
network namespace (scripts/netns-run).
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from emer_proto import emotion_pb2 as pb
from emer_proto import emotion_pb2_grpc

from clients.client import EmotionClient
from clients.clipmaker import story_clip
from clients.options import ClientOptions

pytestmark = pytest.mark.integration

Schedule = list[tuple[float, float, str]]


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[EmotionClient]:
    with EmotionClient(ClientOptions(address=server, timeout_s=300)) as c:
        yield c


@pytest.fixture(scope="module")
def story(emer_data: Path) -> tuple[bytes, Schedule]:
    return story_clip(emer_data, seconds=180.0, part_s=30.0, noise=4.0)


def shown(schedule: Schedule, seg: pb.Segment) -> str:
    """The emotion the clip shows in the middle of a segment."""
    middle = (seg.start_s + seg.end_s) / 2
    return next(emotion for a, b, emotion in schedule if a <= middle < b)


def top(scores: dict[str, float]) -> str:
    return max(scores, key=lambda k: scores[k])


@pytest.fixture(scope="module")
def streamed(client: EmotionClient, story: tuple[bytes, Schedule]) -> list[pb.AnalyzeEvent]:
    """The 3-minute clip, uploaded in pieces, analysed with the LLM explanation, streamed."""
    clip, _ = story
    request = pb.AnalyzeRequest(request_id="long-1", media=clip, media_kind=pb.MEDIA_KIND_VIDEO)
    return list(client.analyze_upload_stream(request))


def test_timeline_covers_the_clip_and_streams_segment_by_segment(
    streamed: list[pb.AnalyzeEvent], story: tuple[bytes, Schedule]
) -> None:
    clip, _ = story
    assert len(clip) > 30_000_000  # as heavy as a camera's 3 minutes
    kinds = [e.WhichOneof("event") for e in streamed]
    assert kinds[:12] == ["segment"] * 12 and kinds.count("segment") == 12
    assert kinds[12:15] == ["clue"] * 3 and kinds[15] == "transcript"
    assert kinds[-2:] == ["labels", "summary"]
    assert {e.request_id for e in streamed} == {"long-1"}
    summary = streamed[-1].summary
    assert list(summary.timeline) == [e.segment for e in streamed[:12]]
    timeline = summary.timeline
    assert [s.index for s in timeline] == list(range(12))
    assert timeline[0].start_s == 0.0
    for a, b in itertools.pairwise(timeline):
        assert b.start_s == a.end_s == pytest.approx(a.start_s + 15.0)
    assert timeline[-1].end_s == pytest.approx(180.0, abs=0.2)
    assert summary.media_duration_s == pytest.approx(180.0, abs=0.2)
    for seg in timeline:
        assert not seg.warnings, seg.warnings
        for name in ("audio", "visual", "text"):
            clue = getattr(seg.clues, name)
            assert clue.available, f"segment {seg.index} {name}: {clue.unavailable_reason}"
        # Times are the clip's: observations and words fall inside their segment.
        for obs in seg.clues.visual.observations:
            assert seg.start_s - 1e-3 <= obs.start_s <= obs.end_s <= seg.end_s + 1e-3
        words = seg.transcript.words
        assert words, f"segment {seg.index}: nothing transcribed"
        assert seg.start_s <= words[0].start_s and words[-1].end_s <= seg.end_s + 0.5
    stamps = [w.start_s for w in summary.transcript.words]
    assert stamps == sorted(stamps) and stamps[-1] > 165.0


def test_segment_categories_follow_the_story(
    streamed: list[pb.AnalyzeEvent], story: tuple[bytes, Schedule]
) -> None:
    _, schedule = story
    timeline = streamed[-1].summary.timeline
    truth = [shown(schedule, seg) for seg in timeline]
    # The faces: every segment's visual clue leads with the emotion shown.
    assert [top(dict(seg.clues.visual.emotion_scores)) for seg in timeline] == truth
    # The fused category (face, voice and words): nearly always the emotion shown.
    fused = [seg.basic_category for seg in timeline]
    agree = sum(f == t for f, t in zip(fused, truth, strict=True))
    assert agree >= 10, list(zip(fused, truth, strict=True))
    assert all(seg.labels for seg in timeline)
    # The voice: neutral speech sounds calmer than angry, happy or surprised speech.
    calm = [s.clues.audio.arousal for s, t in zip(timeline, truth, strict=True) if t == "neutral"]
    aroused = [
        s.clues.audio.arousal for s, t in zip(timeline, truth, strict=True) if t != "neutral"
    ]
    assert statistics.mean(calm) < statistics.mean(aroused)


def test_overall_explanation_once_from_the_aggregated_clues(
    streamed: list[pb.AnalyzeEvent],
) -> None:
    summary = streamed[-1].summary
    deltas = [
        e.explanation_delta.text for e in streamed if e.WhichOneof("event") == "explanation_delta"
    ]
    assert "".join(deltas).strip() == summary.explanation
    assert summary.explanation.startswith("In the video") and "Therefore" in summary.explanation
    # The aggregated clues say when things happen, and so does the explanation built on them.
    visual = summary.clues.visual
    assert visual.measurements["segments"] == 12 and visual.measurements["segments_analysed"] == 12
    assert visual.description[0].startswith("Over the 3-minute clip (12 segments)")
    assert re.search(r"\d:\d\d-\d:\d\d", " ".join(visual.description))
    assert re.search(r"\d:\d\d-\d:\d\d", summary.explanation)
    assert summary.labels and summary.basic_category
    assert {m.role for m in summary.models} >= {"audio", "visual", "text", "explainer"}
    # The LLM ran (no failure or timeout); the grounding check may have replaced what the 135M
    # model wrote with the composer's conclusion, and then a warning says why.
    assert not [w for w in summary.warnings if "failed" in w or "timed out" in w]
    if "Therefore, the main character feels" not in summary.explanation:
        assert [w for w in summary.warnings if "not used" in w], summary.warnings
    timings = {t.stage: t.ms for t in summary.timings}
    assert {"decode", "audio", "visual", "text", "clues", "explain", "total"} <= set(timings)
    assert timings["clues"] <= timings["total"]


def test_one_message_analyze_of_a_35_mb_clip_passes_the_proxy(
    client: EmotionClient, story: tuple[bytes, Schedule]
) -> None:
    """Serve's gRPC proxy accepts messages up to 2 GiB (RAY_SERVE_GRPC_MAX_MESSAGE_SIZE), the
    client sends up to 80 MB: the whole clip fits one Analyze message (visual only, to be quick)."""
    clip, schedule = story
    options = pb.AnalyzeOptions(skip_audio=True, skip_text=True, skip_explanation=True)
    response = client.analyze(pb.AnalyzeRequest(media=clip, options=options))
    assert len(response.timeline) == 12
    assert [top(dict(s.clues.visual.emotion_scores)) for s in response.timeline] == [
        shown(schedule, s) for s in response.timeline
    ]
    assert response.explanation == ""
    assert not response.timeline[0].clues.audio.available


def test_cli_prints_the_timeline(server: str, emer_data: Path, tmp_path: Path) -> None:
    clip, _ = story_clip(emer_data, seconds=40.0, part_s=20.0)
    video = tmp_path / "story.mp4"
    video.write_bytes(clip)
    out = subprocess.run(
        [sys.executable, "-m", "clients.cli", "analyze", str(video), "--segment-s", "20"],
        env={**os.environ, "EMER_ADDRESS": server},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Timeline (2 segments):" in out.stdout
    lines = [line.split() for line in out.stdout.splitlines() if re.match(r"\s+\d:\d\d-", line)]
    assert [line[0] for line in lines] == ["0:00-0:20", "0:20-0:40"]
    assert [line[1] for line in lines] == ["happy", "angry"]


def test_short_media_have_no_timeline(client: EmotionClient, emer_data: Path) -> None:
    """Up to long_media_s (30 s) a clip is analysed whole, as before: no segments."""
    clip, _ = story_clip(emer_data, seconds=10.0)
    events = list(client.analyze_stream(pb.AnalyzeRequest(media=clip)))
    kinds = [e.WhichOneof("event") for e in events]
    assert "segment" not in kinds and kinds.count("clue") == 3 and kinds[-1] == "summary"
    summary = events[-1].summary
    assert not summary.timeline and summary.basic_category == "happy"
    assert summary.clues.visual.description[0].startswith("A face is visible")


def test_upload_without_its_request_is_invalid(server: str) -> None:
    with grpc.insecure_channel(server) as channel:
        stub = emotion_pb2_grpc.EmotionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.AnalyzeUpload(
                iter([pb.AnalyzeChunk(media=b"\x00" * 1000)]),
                timeout=30,
                metadata=(("application", "emer"),),
            )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "first message" in (err.value.details() or "")
