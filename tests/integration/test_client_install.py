"""The client distribution alone (`pip install ./clients` in a fresh venv) against the real server.

`make client-venv` (part of `make test`) builds `.client-venv` before the tests enter the
loopback-only network namespace, where no package index can be reached.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLIENT_VENV = REPO / ".client-venv"


@pytest.fixture(scope="module")
def emer() -> Path:
    command = CLIENT_VENV / "bin" / "emer"
    if not command.exists():
        message = f"{CLIENT_VENV} is missing: run `make client-venv`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return command


def _run(emer: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Run from outside the checkout, so nothing but the installed distribution can be imported.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EMER_ADDRESS")}
    return subprocess.run(
        [str(emer), *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


def test_the_client_venv_holds_no_server_dependency(emer: Path, tmp_path: Path) -> None:
    listed = subprocess.run(
        [str(CLIENT_VENV / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "emer-client" in names
    assert not names & {"torch", "ray", "vllm", "emer-serve", "av", "opencv-python-headless"}
    code = "import importlib.util as u; print(u.find_spec('services'))"
    spec = subprocess.run(
        [str(CLIENT_VENV / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert spec.stdout.strip() == "None"


def test_installed_client_talks_to_the_server(emer: Path, server: str, tmp_path: Path) -> None:
    health = _run(emer, "--address", server, "health", cwd=tmp_path)
    assert health.returncode == 0, health.stderr
    assert health.stdout.strip() == "SERVING"

    analyzed = _run(
        emer,
        "--address",
        server,
        "analyze",
        "--json",
        "--subtitle",
        "Thanks a lot for ruining my birthday.",
        cwd=tmp_path,
    )
    assert analyzed.returncode == 0, analyzed.stderr
    answer = json.loads(analyzed.stdout)
    words = [label["word"] for label in answer["labels"]]
    assert "grateful" not in words and {"annoyed", "sarcastic", "angry"} & set(words)
    assert answer["explanation"].startswith("In the text")


def test_serve_says_the_server_is_not_installed(emer: Path, tmp_path: Path) -> None:
    served = _run(emer, "serve", "--port", "1", cwd=tmp_path)
    assert served.returncode == 2
    assert "server is not installed" in served.stderr
