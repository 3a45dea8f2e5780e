"""`emer loadtest`: the generator against an in-process no-op target (no Ray) and a short run
against the real service (Ray; runs inside the loopback-only network namespace)."""

from __future__ import annotations

import argparse
import json
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
