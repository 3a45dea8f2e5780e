"""The shipped Serve config files are valid and build the application."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

import services
from services.app import DEPLOYMENT_NAMES, GRPC_SERVICER_FUNCTIONS
from services.config import AppConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize("name", ["serve-cpu.yaml", "serve-gpu.yaml"])
def test_serve_config_is_valid(name: str) -> None:
    raw = yaml.safe_load((DEPLOY / name).read_text())
    schema = ServeDeploySchema.model_validate(raw)
    app = schema.applications[0]
    assert app.import_path == "services.app:build_app"
    AppConfig.from_args(app.args)  # args validate (extra keys rejected)
    assert {d.name for d in app.deployments} == set(DEPLOYMENT_NAMES)
    for d in app.deployments:
        assert isinstance(d.max_ongoing_requests, int)
    assert schema.grpc_options.grpc_servicer_functions == GRPC_SERVICER_FUNCTIONS
    for fn in schema.grpc_options.grpc_servicer_functions:
        module, attr = fn.rsplit(".", 1)
        assert callable(getattr(__import__(module, fromlist=[attr]), attr))


def test_gpu_profile_puts_models_on_gpus() -> None:
    raw = yaml.safe_load((DEPLOY / "serve-gpu.yaml").read_text())
    deployments = {d["name"]: d for d in raw["applications"][0]["deployments"]}
    for name in ("AudioClues", "VisualClues", "TextClues", "Explainer"):
        assert deployments[name]["ray_actor_options"]["num_gpus"] > 0


def test_misspelt_args_are_rejected() -> None:
    with pytest.raises(ValueError, match="invalid emer-serve application args"):
        AppConfig.from_args({"gateway": {"max_media_byte": 10}})
    with pytest.raises(ValueError):
        AppConfig.from_args({"audio": {"backend": "nope"}})


def test_the_default_serve_config_ships_inside_the_server_package() -> None:
    from services.launcher import DEFAULT_CONFIG

    # An installed server has no checkout around it: the default must be package data.
    services_dir = Path(services.__file__).resolve().parent
    assert DEFAULT_CONFIG.is_relative_to(services_dir) and DEFAULT_CONFIG.is_file()
    # The checkout's deploy/ paths that the docs use are the same files.
    for name in ("serve-cpu.yaml", "serve-cpu-quality.yaml", "serve-gpu.yaml"):
        assert (DEPLOY / name).resolve() == (DEFAULT_CONFIG.parent / name).resolve()
