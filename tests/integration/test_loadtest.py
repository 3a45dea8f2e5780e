"""`emer loadtest`: the generator against an in-process no-op target (no Ray) and a short run
against the real service (Ray; runs inside the loopback-only network namespace)."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import pytest

from clients.loadtest import cmd_loadtest, register

REPO = Path(__file__).resolve().parents[2]
PLOTS = ("latency_over_time.png", "latency_hist.png", "throughput.png")


def _args(out: Path, *extra: str, address: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address")
    parser.add_argument("--timeout", type=float)
    register(parser.add_subparsers(dest="command"))
    argv = ["loadtest", "--out", str(out), *extra]
    if address:
        argv = ["--address", address, *argv]
    return parser.parse_args(argv)


def _check_outputs(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").read_text().startswith("# emer loadtest report")
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return report


def test_self_test_against_noop_servicer(tmp_path: Path) -> None:
    out = tmp_path / "self"
    args = _args(out, "--self-test", "--concurrency", "2", "--duration", "2", "--warmup", "0.5")
    assert cmd_loadtest(args) == 0
    report = _check_outputs(out)
    assert report["errors"] == {}
    assert report["requests"] == report["ok"] > 50
    assert report["throughput_rps"] > 25
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert report["warmup_requests"] > 0
    assert report["generator"]["max_rps"] == pytest.approx(report["throughput_rps"], rel=0.01)
    assert report["generator"]["cpu_percent"] > 0
    assert {m["name"] for m in report["mix"]} == {"video", "audio-only", "image-only", "text-only"}
    assert report["stages"] == {}  # the no-op target reports no timings


def test_self_test_open_loop_with_mix_file(tmp_path: Path) -> None:
    mix = tmp_path / "mix.yaml"
    portrait = REPO / "demo" / "inputs" / "astronaut-portrait.jpg"
    mix.write_text(
        f"- {{media: {portrait}, subtitle: '', weight: 1}}\n"
        "- {media: null, subtitle: 'So happy to see you!', weight: 3, name: text}\n"
    )
    out = tmp_path / "open"
    args = _args(
        out,
        "--self-test",
        "--mix", str(mix),
        "--rate", "40",
        "--concurrency", "2",
        "--duration", "1.5",
        "--warmup", "0.5",
    )  # fmt: skip
    assert cmd_loadtest(args) == 0
    report = _check_outputs(out)
    assert report["mode"] == "open-loop" and report["rate_rps"] == 40
    assert report["requests"] == pytest.approx(60, abs=3)
    assert report["throughput_rps"] == pytest.approx(40, rel=0.15)
    assert [m["name"] for m in report["mix"]] == ["0:astronaut-portrait.jpg", "text"]


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {media: null, subtitle: '', weight: 1}\n")
    assert cmd_loadtest(_args(tmp_path / "x", "--self-test", "--mix", str(bad))) == 2
    assert cmd_loadtest(_args(tmp_path / "x", "--self-test", "--duration", "0")) == 2


@pytest.mark.integration
def test_short_run_against_real_service(server: str, tmp_path: Path) -> None:
    out = tmp_path / "real"
    # No warm-up: a request counts when it starts inside the window, and on a slow machine the
    # cold server's first answers (vLLM's first sequences) take longer than a short warm-up plus
    # the window, which left nothing to count.
    args = _args(out, "--concurrency", "2", "--duration", "5", "--warmup", "0", address=server)
    assert cmd_loadtest(args) == 0
    report = _check_outputs(out)
    assert report["errors"] == {}
    assert report["requests"] == report["ok"] >= 1
    assert report["throughput_rps"] > 0
    assert report["latency_ms"]["p50"] > 0
    for stage in ("decode", "total"):
        st = report["stages"][stage]
        assert st["p50"] is not None and st["p50"] <= st["p90"] <= st["p99"]
    assert "## Server stages" in (out / "report.md").read_text()


@pytest.mark.integration
def test_overload_is_shed_at_once_with_a_pushback(server: str, tmp_path: Path) -> None:
    """A burst of video requests far beyond what the default profile runs at once: the gateway
    admits its current limit (at most gateway.max_analyses_in_progress, 12) and sheds the rest
    within a fraction of a second (RESOURCE_EXHAUSTED with a retry pushback), instead of
    queueing them into their deadlines; every admitted one is answered; health stays SERVING
    throughout."""
    from clients.client import EmotionClient
    from clients.options import ClientOptions

    mix = tmp_path / "video.yaml"
    video = REPO / "demo" / "inputs" / "astronaut-greeting.mp4"
    mix.write_text(f"- {{media: {video}, subtitle: 'Hello there!', weight: 1}}\n")
    out = tmp_path / "burst"
    args = _args(
        out,
        "--mix", str(mix),
        "--rate", "20",
        "--concurrency", "40",
        "--duration", "2",
        "--warmup", "0",
        address=server,
    )  # fmt: skip
    health: list[bool] = []
    done = threading.Event()

    def watch() -> None:
        with EmotionClient(ClientOptions(address=server)) as client:
            while not done.is_set():
                health.append(client.health(timeout_s=2))
                done.wait(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert cmd_loadtest(args) == 1  # shed requests are errors to the client that sent them
    finally:
        done.set()
        watcher.join()
    assert len(health) >= 4 and all(health)  # health checks are never shed nor queued
    report = _check_outputs(out)
    assert report["requests"] == pytest.approx(40, abs=2)
    assert set(report["errors"]) == {"RESOURCE_EXHAUSTED"}
    assert report["shed"] == report["errors"]["RESOURCE_EXHAUSTED"] >= report["requests"] - 14
    # Admitted: the adaptive limit now (12 at most; lower when earlier answers here took over
    # gateway.target_latency_s, as on a CPU without AVX-512), every one of them answered.
    assert report["ok"] >= 1 and report["ok"] + report["shed"] == report["requests"]
    assert report["shed_latency_ms"]["p99"] < 1000
    assert "shed at capacity" in (out / "report.md").read_text()
