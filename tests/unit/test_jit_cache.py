"""librosa's numba kernel cache: compiled by one process at a time, healed when poisoned."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from services.audio import jit_cache


def test_warm_leaves_a_cache_that_loads() -> None:
    jit_cache.warm_jit_cache()
    assert jit_cache.librosa_cache_files(), "librosa's kernels were not cached"
    # A fresh process now loads the kernels instead of crashing or compiling them again.
    child = subprocess.run(
        [sys.executable, "-m", "services.audio.jit_cache"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]


def test_a_crashing_cache_is_removed_and_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poisoned = [tmp_path / "pitch._pi_wrapper-430.py311.1.nbc", tmp_path / "x.py311.nbi"]
    for path in poisoned:
        path.write_bytes(b"from another process")
    runs = iter([-11, 0])  # SIGSEGV loading the pair, then a clean compile
    monkeypatch.setattr(jit_cache, "librosa_cache_files", lambda: poisoned)
    monkeypatch.setattr(
        jit_cache,
        "_run_child",
        lambda timeout_s: subprocess.CompletedProcess([], next(runs), "", ""),
    )
    jit_cache.warm_jit_cache()
    assert not any(path.exists() for path in poisoned)


def test_a_pitch_path_that_fails_on_an_empty_cache_is_an_install_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jit_cache, "librosa_cache_files", lambda: [])
    monkeypatch.setattr(
        jit_cache,
        "_run_child",
        lambda timeout_s: subprocess.CompletedProcess([], 1, "", "ImportError: numba"),
    )
    with pytest.raises(RuntimeError, match="pitch tracker"):
        jit_cache.warm_jit_cache()


def test_compile_lock_excludes_other_processes() -> None:
    lock = Path(tempfile.gettempdir()) / "emer-serve-librosa-jit.lock"
    # A second open file description (as another process has) cannot take it.
    with jit_cache.compile_lock(), lock.open("a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with lock.open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
