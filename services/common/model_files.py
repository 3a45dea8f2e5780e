"""The models cache and the files that registry packages ship models in, for the set-up steps
that assemble them (`services.explainer.prepare_model`, `services.audio.prepare_asr`)."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

# Where `make setup` puts the models when the server runs from a checkout (editable install).
CHECKOUT_MODELS = Path(__file__).resolve().parents[2] / ".models"


def default_models_dir() -> Path:
    """The models cache: `$EMER_MODELS`; else the checkout's `.models` when the server runs from
    a checkout that has one; else the user's cache (`$XDG_CACHE_HOME/emer-serve/models`, by
    default `~/.cache/emer-serve/models`), for an installed server run from anywhere."""
    env = os.environ.get("EMER_MODELS")
    if env:
        return Path(env)
    if CHECKOUT_MODELS.is_dir():
        return CHECKOUT_MODELS
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "emer-serve" / "models"


def package_file(package: str, rel: str, what: str, install_hint: str) -> Path:
    """A file inside an installed package, found without importing the package (nothing of
    theirs runs here; some import CLIs or frameworks we do not install)."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} of {what} is not installed: {install_hint}")
    path = Path(next(iter(found.submodule_search_locations))) / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {package} package")
    return path


def sha256_files(paths: Sequence[Path]) -> str:
    """sha256 of the files concatenated in order (= of the file their parts make up)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@contextmanager
def locked(models_dir: Path, name: str) -> Iterator[None]:
    """An exclusive lock on `name` in the models cache: concurrent set-ups wait, not race."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with (models_dir / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
