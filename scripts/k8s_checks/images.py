"""The images: the Dockerfiles (hadolint, Ray base image, non-root user) and .dockerignore."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .problems import Problem, display
from .tools import ToolError, find_hadolint


def check_images(docker_dir: Path, context: Path) -> list[Problem]:
    import ray

    problems: list[Problem] = []
    dockerfiles = sorted(docker_dir.glob("Dockerfile.*"))
    if not dockerfiles:
        return [Problem(display(docker_dir), "", "", "no Dockerfile.* here")]
    hadolint = find_hadolint()
    run = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json", *map(str, dockerfiles)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        findings = json.loads(run.stdout or "[]")
    except json.JSONDecodeError as e:
        raise ToolError(f"hadolint: {run.stderr.strip() or e}") from e
    for f in findings:
        if f.get("level") in ("error", "warning"):
            problems.append(
                Problem(f"{display(Path(f['file']))}:{f['line']}", "", f["code"], f["message"])
            )
    allowed = dockerignore_allowlist(context / ".dockerignore")
    for dockerfile in dockerfiles:
        where = display(dockerfile)
        user: str | None = None
        for lineno, instruction, args in dockerfile_instructions(dockerfile):
            if instruction == "FROM":
                image = next(a for a in args.split() if not a.startswith("--"))
                # Ray in the base image must be the Ray the project pins (and rayVersion).
                ray_image = "rayproject/ray:"
                if image.startswith(ray_image) and not image.startswith(
                    f"{ray_image}{ray.__version__}-"
                ):
                    message = f"Ray image must be {ray.__version__}"
                    problems.append(Problem(f"{where}:{lineno}", "", "FROM", message))
                user = None  # USER does not carry over into a new stage
            elif instruction == "USER":
                user = args.split(":")[0].strip()
            elif instruction in ("COPY", "ADD") and "--from=" not in args:
                sources = [a for a in args.split() if not a.startswith("--")][:-1]
                for src in sources:
                    if allowed is None or not any(_under(src, a) for a in allowed):
                        problems.append(
                            Problem(
                                f"{where}:{lineno}",
                                "",
                                instruction,
                                f"{src} is not let through by .dockerignore (an allowlist: "
                                "`*` then `!path` lines)",
                            )
                        )
                    elif not (context / src).exists():
                        problems.append(
                            Problem(f"{where}:{lineno}", "", instruction, f"{src} does not exist")
                        )
        if user in (None, "root", "0"):
            problems.append(
                Problem(where, "", "USER", "the final stage must run as a non-root user")
            )
    return problems


def dockerfile_instructions(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with continuation lines joined."""
    pending, start = "", 0
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = lineno
        if stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            yield start, word.upper(), rest.strip()
            pending = ""


def dockerignore_allowlist(path: Path) -> list[str] | None:
    """The `!path` entries of an allowlist-style .dockerignore (first rule `*`), else None."""
    if not path.exists():
        return None
    rules = [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    if not rules or rules[0] != "*":
        return None
    return [r[1:].strip("/") for r in rules if r.startswith("!")]


def _under(src: str, allowed: str) -> bool:
    src = src.removeprefix("./").rstrip("/")
    return src == allowed or src.startswith(allowed + "/")
