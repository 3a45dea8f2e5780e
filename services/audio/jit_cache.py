"""librosa's numba kernels compiled once, by one process, before any audio replica starts.

librosa caches its numba kernels on disk (`cache=True`, next to its sources or in
`NUMBA_CACHE_DIR`). A guvectorize kernel is cached as two files written separately, and when
two processes compile it at the same moment the pair can come from different processes; every
later process that loads the pair dies with SIGSEGV (numba/numba#10128, open; librosa#1998).
Two AudioClues replicas starting together on a fresh install do exactly that: measured here,
the first `emer serve` after `make setup` worked and every later start failed with
"Failed to update the deployments ['AudioClues']" (SIGSEGV in `librosa.pyin`).

Two guards:
- every replica compiles (or loads) the kernels under a file lock (`compile_lock`), so
  replicas on one machine or in one pod never compile at the same moment;
- the launcher (and the image build) runs the audio model's own pitch path once in a child
  process before Ray starts (`warm_jit_cache`). With a healthy cache the child only loads it (a
  few seconds); with none it compiles alone; when the child crashes the cache was poisoned
  before (by an older install, or another program): its kernel files are removed and the child
  runs again.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

_CACHE_SUFFIXES = (".nbi", ".nbc")


def librosa_cache_files() -> list[Path]:
    """numba cache files of librosa's kernels, wherever numba keeps them."""
    import librosa

    roots = [Path(librosa.__file__).resolve().parent]
    if os.environ.get("NUMBA_CACHE_DIR"):
        roots.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    return [
        path
        for root in roots
        if root.is_dir()
        for path in root.rglob("*")
        if path.suffix in _CACHE_SUFFIXES and path.is_file()
    ]


@contextmanager
def compile_lock() -> Iterator[None]:
    """Hold a machine-wide lock while librosa's kernels compile or load (one process at a time).

    The lock file sits in the temporary directory that the processes of one machine (or one
    pod) share; the lock goes with the process if it dies.
    """
    path = Path(tempfile.gettempdir()) / "emer-serve-librosa-jit.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_child(timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.audio.jit_cache"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def warm_jit_cache(timeout_s: float = 300.0) -> None:
    """Leave librosa's kernel cache complete and loadable (see the module docstring).

    Raises RuntimeError when the pitch path fails even with an empty cache (a broken install,
    not a cache problem).
    """
    first = _run_child(timeout_s)
    if first.returncode == 0:
        return
    stale = librosa_cache_files()
    logger.warning(
        "librosa's numba kernels failed to load (exit %s): removing %d cached kernel files "
        "and compiling them again",
        first.returncode,
        len(stale),
    )
    for path in stale:
        path.unlink(missing_ok=True)
    second = _run_child(timeout_s)
    if second.returncode != 0:
        raise RuntimeError(
            "the audio model's pitch tracker (librosa.pyin on numba) fails in this install "
            f"(exit {second.returncode}): {second.stderr.strip()[-2000:]}"
        )


def _exercise() -> None:
    """Run the pitch and feature path of the embedded audio model once (what a replica runs)."""
    from services.audio.prosody import exercise_pitch_path  # no torch: a quick child

    with compile_lock():
        exercise_pitch_path()


if __name__ == "__main__":
    _exercise()
