"""Where prepared models are looked for: the env, the checkout's .models, the user's cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common import model_files


def test_models_dir_from_env_checkout_or_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMER_MODELS", str(tmp_path / "chosen"))
    assert model_files.default_models_dir() == tmp_path / "chosen"

    monkeypatch.delenv("EMER_MODELS")
    checkout = tmp_path / "checkout" / ".models"
    checkout.mkdir(parents=True)
    monkeypatch.setattr(model_files, "CHECKOUT_MODELS", checkout)
    assert model_files.default_models_dir() == checkout

    # An installed server (no checkout around it) keeps its models in the user's cache.
    monkeypatch.setattr(model_files, "CHECKOUT_MODELS", tmp_path / "site-packages" / ".models")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert model_files.default_models_dir() == tmp_path / "cache" / "emer-serve" / "models"
