"""The server as a user installs it: wheels of emer-serve and emer-client (not editable), run by
their `emer-serve` command from a folder outside the checkout.

`make server-venv` (part of `make test`) builds `.server-venv` with the two wheels; their
dependencies come from the full install (a .pth file, see the Makefile), so nothing of the
checkout's own code can be imported there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from emer_proto import emotion_pb2 as pb

from clients.client import EmotionClient
from clients.options import ClientOptions
from services.local_server import local_server

pytestmark = [pytest.mark.integration, pytest.mark.own_server]

REPO = Path(__file__).resolve().parents[2]
SERVER_VENV = REPO / ".server-venv"


@pytest.fixture(scope="module")
def installed_python() -> Path:
    python = SERVER_VENV / "bin" / "python"
    if not (SERVER_VENV / "bin" / "emer-serve").exists():
        message = f"{SERVER_VENV} is missing: run `make server-venv`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return python


def test_the_installed_packages_are_not_the_checkout(
    installed_python: Path, tmp_path: Path
) -> None:
    code = (
        "import sys, services, clients, emer_eval, emer_proto\n"
        "for m in (services, clients, emer_eval, emer_proto): print(m.__file__)\n"
        "print('PATH', *sys.path, sep='\\n')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run(
        [str(installed_python), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    ).stdout.splitlines()
    modules, path = found[:4], found[5:]
    site = SERVER_VENV / "lib"
    assert all(Path(m).is_relative_to(site) for m in modules), modules
    assert str(REPO) not in path and str(REPO / "clients") not in path


def test_every_data_file_of_the_server_is_in_the_wheel(installed_python: Path) -> None:
    """Prompts, profiles, the text head...: a file the package reads at run time and the wheel
    lacks would only show on an installed server (the text head falls back silently)."""
    tracked = subprocess.run(
        ["git", "ls-files", "services"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split()
    data = [f for f in tracked if not f.endswith(".py")]
    assert data  # prompts, profiles, the text model's head and prototypes
    site = next((SERVER_VENV / "lib").glob("python3*/site-packages"))
    missing = [f for f in data if not (site / f).is_file()]
    assert missing == [], f"not in the emer-serve wheel (pyproject package-data): {missing}"


def test_installed_server_starts_outside_the_checkout(
    installed_python: Path, emer_data: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "PYTHONPATH": None,  # nothing from the checkout on the path: only the installed wheels
        "EMER_DATA": str(emer_data.resolve()),
        # The models `make setup` prepared (an installed server's default is the user's cache).
        "EMER_MODELS": str(REPO / ".models"),
    }
    server = local_server(
        tmp_path / "serve.log",
        command=[str(SERVER_VENV / "bin" / "emer-serve")],
        cwd=elsewhere,
        env=env,
    )
    try:
        with server as address, EmotionClient(ClientOptions(address=address)) as client:
            assert client.health(timeout_s=10)
            answer = client.analyze(
                pb.AnalyzeRequest(subtitle="Thanks a lot for ruining my birthday.")
            )
    except (RuntimeError, TimeoutError) as e:  # it did not start: say why
        pytest.fail(str(e))
    words = [label.word for label in answer.labels]
    assert "grateful" not in words and {"annoyed", "sarcastic", "angry"} & set(words)
    assert answer.explanation.startswith("In the text")
