"""The KubeRay manifests and the Dockerfiles pass scripts/k8s_check.py, and each of its checks
catches the mistake it is there for (planted in copies under tmp_path).

Needs kubectl (fetched once by the checker into .tools/, or $KUBECTL) and the KubeRay CRDs
($KUBERAY_SCHEMAS, default ../shared/schemas/kuberay); without them these tests are skipped
locally and fail under CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import jsonschema
import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import k8s_check  # noqa: E402
from k8s_checks import crd_schema, images, serve_config, tools  # noqa: E402
from k8s_checks.problems import fmt_path  # noqa: E402


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def kubectl() -> Path:
    try:
        return tools.find_kubectl()
    except tools.ToolError as e:
        _unavailable(str(e))


@pytest.fixture(scope="session")
def crds() -> Path:
    folder = crd_schema.schemas_dir()
    if not folder.is_dir():
        _unavailable(f"KubeRay CRDs not found at {folder} (set KUBERAY_SCHEMAS)")
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of deploy/k8s to break."""
    shutil.copytree(REPO / "deploy" / "k8s", tmp_path / "k8s")
    return tmp_path / "k8s"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def problems(tree: Path, overlay: str, kubectl: Path, crds: Path) -> list[str]:
    _, found = k8s_check.check_overlay(tree / "overlays" / overlay, kubectl, crds)
    return [str(p) for p in found]


def test_shipped_manifests_and_images_pass(kubectl: Path, crds: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "k8s_check.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECTL": str(kubectl), "KUBERAY_SCHEMAS": str(crds)},
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "overlays/cpu: 6 objects, ok" in run.stdout
    assert "overlays/gpu: 7 objects, ok" in run.stdout
    assert "deploy/docker: ok" in run.stdout


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_overlays_serve_the_same_app_as_the_serve_profiles(overlay: str) -> None:
    """The overlays run the application of deploy/serve-<overlay>.yaml (what `emer serve` and
    the integration tests exercise); only placement and sizes differ."""
    k8s = yaml.safe_load(
        (REPO / "deploy" / "k8s" / "overlays" / overlay / "serve-config.yaml").read_text()
    )
    local = yaml.safe_load((REPO / "deploy" / f"serve-{overlay}.yaml").read_text())
    assert k8s["applications"][0]["args"] == local["applications"][0]["args"]
    assert k8s["grpc_options"] == local["grpc_options"]


@pytest.mark.parametrize(
    ("overlay", "old", "new", "expected"),
    [
        (
            "cpu",
            "max_ongoing_requests: 8",
            "max_ongoing_request: 8",
            "serve-config.yaml: RayService/emer: spec.serveConfigV2.applications[0]."
            "deployments[1].max_ongoing_request: unknown key 'max_ongoing_request'",
        ),
        # autoscaling_config is typed `dict | AutoscalingConfig`: the dict is still checked.
        (
            "gpu",
            "target_ongoing_requests: 4}",
            "target_ongoing_request: 4}",
            "deployments[1].autoscaling_config.target_ongoing_request: unknown key",
        ),
        ("cpu", "  port: 8000", "  prot: 8000", "http_options.prot: unknown key"),
    ],
)
def test_misspelt_serve_key_is_caught(
    tree: Path, kubectl: Path, crds: Path, overlay: str, old: str, new: str, expected: str
) -> None:
    serve_config = tree / "overlays" / overlay / "serve-config.yaml"
    edit(serve_config, old, new)
    # Why the check exists: Ray's own schema accepts the typo and would deploy the default.
    ServeDeploySchema.model_validate(yaml.safe_load(serve_config.read_text()))
    found = problems(tree, overlay, kubectl, crds)
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "base/rayservice.yaml",
            "                - name: EMER_AUTH_TOKEN_FILE\n"
            "                  value: /etc/emer/auth/tokens\n",
            "",
            "head pods: no EMER_AUTH_TOKEN_FILE",
        ),
        (
            "overlays/gpu/gpu-worker-group.yaml",
            "              - {name: api-tokens, mountPath: /etc/emer/auth, readOnly: true}\n",
            "",
            "gpu pods: EMER_AUTH_TOKEN_FILE=/etc/emer/auth/tokens but /etc/emer/auth is not",
        ),
        (
            "base/rayservice.yaml",
            "secret: {secretName: emer-api-tokens,",
            "secret: {secretName: emer-api-token,",
            "the token file's Secret 'emer-api-token' is not part of the overlay",
        ),
    ],
)
def test_a_pod_without_the_token_file_is_caught(
    tree: Path, kubectl: Path, crds: Path, file: str, old: str, new: str, expected: str
) -> None:
    edit(tree / file, old, new)
    overlay = "gpu" if "gpu" in file else "cpu"
    found = problems(tree, overlay, kubectl, crds)
    assert any(expected in p for p in found), found


def test_invalid_app_args_are_caught(tree: Path, kubectl: Path, crds: Path) -> None:
    edit(tree / "overlays" / "cpu" / "serve-config.yaml", "max_subtitle_chars", "max_subtitle_char")
    found = problems(tree, "cpu", kubectl, crds)
    assert any(
        "applications[0].args.gateway.max_subtitle_char: Extra inputs are not permitted" in p
        for p in found
    ), found


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "        replicas: 1\n",
            '        replicas: "two"\n',
            "workerGroupSpecs[0].replicas: 'two' is not of type 'integer'",
        ),
        # rayStartParams values are strings in the CRD.
        ('num-cpus: "0"', "num-cpus: 0", "rayStartParams.num-cpus: 0 is not of type 'string'"),
        # Strict: the API server would prune an unknown field without a word.
        (
            "excludeHeadPodFromServeSvc: true",
            "excludeHeadPodFromServeService: true",
            "'excludeHeadPodFromServeService' was unexpected",
        ),
    ],
)
def test_rayservice_schema_errors_are_caught(
    tree: Path, kubectl: Path, crds: Path, old: str, new: str, expected: str
) -> None:
    edit(tree / "base" / "rayservice.yaml", old, new)
    for overlay in ("cpu", "gpu"):
        found = problems(tree, overlay, kubectl, crds)
        assert any(p.startswith(f"{tree}/base/rayservice.yaml: ") and expected in p for p in found)


def test_missing_deployment_is_caught(tree: Path, kubectl: Path, crds: Path) -> None:
    serve_config = tree / "overlays" / "gpu" / "serve-config.yaml"
    edit(
        serve_config,
        "      - name: TextClues\n"
        "        max_ongoing_requests: 32\n"
        "        autoscaling_config: {min_replicas: 2, max_replicas: 2, target_ongoing_requests: 8}"
        "\n        health_check_period_s: 2\n        health_check_timeout_s: 5\n"
        "        ray_actor_options: {num_cpus: 1, num_gpus: 0.1}\n",
        "",
    )
    found = problems(tree, "gpu", kubectl, crds)
    assert any("deployments: deployment TextClues is missing" in p for p in found), found


def test_gpu_overlay_without_gpus_is_caught(tree: Path, kubectl: Path, crds: Path) -> None:
    group = tree / "overlays" / "gpu" / "gpu-worker-group.yaml"
    edit(group, 'memory: 32Gi, nvidia.com/gpu: "1"}', "memory: 32Gi}")
    edit(group, 'memory: 32Gi, nvidia.com/gpu: "1"}', "memory: 32Gi}")
    found = problems(tree, "gpu", kubectl, crds)
    assert any("workerGroupSpecs: no worker group requests nvidia.com/gpu" in p for p in found)
    assert any(
        "deployments[4].ray_actor_options: Explainer needs num_cpus=1, num_gpus=0.4; "
        "no worker group offers it" in p
        for p in found
    ), found


def test_a_plan_with_no_room_to_restart_is_caught(tree: Path, kubectl: Path, crds: Path) -> None:
    # 4 cpu workers x 4 CPUs = 16; AudioClues up to 8 replicas of 1 CPU makes the plan 18.
    edit(
        tree / "overlays" / "cpu" / "serve-config.yaml",
        "      - name: AudioClues\n"
        "        max_ongoing_requests: 8\n"
        "        autoscaling_config: {min_replicas: 2, max_replicas: 4,",
        "      - name: AudioClues\n"
        "        max_ongoing_requests: 8\n"
        "        autoscaling_config: {min_replicas: 2, max_replicas: 8,",
    )
    found = problems(tree, "cpu", kubectl, crds)
    assert any(
        "need 18 CPU" in p and "AudioClues 8x1" in p and "but there are 16" in p for p in found
    ), found


def test_an_llm_too_big_for_its_gpu_share_is_caught(tree: Path, kubectl: Path, crds: Path) -> None:
    # What the GPU profile shipped before: the bf16 7B model in 0.4 of a 24 GB L4.
    edit(
        tree / "overlays" / "gpu" / "serve-config.yaml",
        "model: Qwen/Qwen2.5-7B-Instruct-AWQ",
        "model: Qwen/Qwen2.5-7B-Instruct",
    )
    found = problems(tree, "gpu", kubectl, crds)
    assert any(
        "llm.gpu_memory_utilization: Qwen/Qwen2.5-7B-Instruct does not fit on group gpu's 22 GiB"
        in p
        and "weights 14.2" in p
        for p in found
    ), found


def test_the_llm_memory_share_must_stay_within_its_gpu_share(
    tree: Path, kubectl: Path, crds: Path
) -> None:
    edit(
        tree / "overlays" / "gpu" / "serve-config.yaml",
        "gpu_memory_utilization: 0.4",
        "gpu_memory_utilization: 0.6",
    )
    found = problems(tree, "gpu", kubectl, crds)
    assert any("0.6 of the GPU's memory, but the Explainer's num_gpus is 0.4" in p for p in found)


def test_a_gpu_group_must_say_which_gpu_it_is_sized_for(
    tree: Path, kubectl: Path, crds: Path
) -> None:
    group = tree / "overlays" / "gpu" / "gpu-worker-group.yaml"
    edit(group, 'emer.dev/gpu-memory-gib: "22"', 'emer.dev/other: "22"')
    found = problems(tree, "gpu", kubectl, crds)
    assert any("does not say which GPU it is for" in p for p in found), found
    # A nodeSelector on a known GPU label does.
    edit(
        group,
        "        tolerations:",
        "        nodeSelector: {cloud.google.com/gke-accelerator: nvidia-a100-80gb}\n"
        "        tolerations:",
    )
    assert not [p for p in problems(tree, "gpu", kubectl, crds) if "GPU it is for" in p]


def test_clients_must_reach_the_service_over_tls(tree: Path, kubectl: Path, crds: Path) -> None:
    ingress = tree / "base" / "ingress.yaml"
    edit(ingress, "    - hosts: [emer.example.com]\n      secretName: emer-tls\n", "    []\n")
    found = problems(tree, "cpu", kubectl, crds)
    assert any("'emer.example.com' has no tls entry with a secretName" in p for p in found), found


def test_the_ingress_must_speak_grpc_to_the_serve_port(
    tree: Path, kubectl: Path, crds: Path
) -> None:
    ingress = tree / "base" / "ingress.yaml"
    edit(ingress, 'backend-protocol: "GRPC"', 'backend-protocol: "HTTP"')
    edit(ingress, "port: {name: serve-grpc}", "port: {name: serve}")
    found = problems(tree, "cpu", kubectl, crds)
    assert any('backend-protocol: "GRPC"' in p for p in found), found
    assert any("must route to the serve Service's 'serve-grpc' port" in p for p in found), found


def test_gpu_requests_must_equal_limits(tree: Path, kubectl: Path, crds: Path) -> None:
    group = tree / "overlays" / "gpu" / "gpu-worker-group.yaml"
    edit(
        group,
        'limits: {cpu: "8", memory: 32Gi, nvidia.com/gpu: "1"}',
        'limits: {cpu: "8", memory: 32Gi, nvidia.com/gpu: "2"}',
    )
    found = problems(tree, "gpu", kubectl, crds)
    assert any("nvidia.com/gpu requests must equal limits" in p for p in found), found


def test_gpu_overlay_models_must_use_gpus(tree: Path, kubectl: Path, crds: Path) -> None:
    edit(
        tree / "overlays" / "gpu" / "serve-config.yaml",
        "num_cpus: 1, num_gpus: 0.25",
        "num_cpus: 1",
    )
    found = problems(tree, "gpu", kubectl, crds)
    assert any("AudioClues must request num_gpus in the GPU overlay" in p for p in found), found


def test_grpc_port_must_reach_the_serve_service(tree: Path, kubectl: Path, crds: Path) -> None:
    edit(
        tree / "base" / "rayservice.yaml", "        - name: serve-grpc\n          port: 50051\n", ""
    )
    found = problems(tree, "cpu", kubectl, crds)
    assert any("spec.serveService.spec.ports: needs port 'serve-grpc' = 50051" in p for p in found)


def test_grpc_options_must_match_the_pods(tree: Path, kubectl: Path, crds: Path) -> None:
    edit(tree / "overlays" / "cpu" / "serve-config.yaml", "port: 50051", "port: 50052")
    found = problems(tree, "cpu", kubectl, crds)
    assert any(
        "headGroupSpec.template.spec.containers[0].ports: needs port 'serve-grpc' = 50052" in p
        for p in found
    )
    assert any("readinessProbe: must be a grpc probe on 50052" in p for p in found), found


def test_grpc_servicer_functions_are_checked(tree: Path, kubectl: Path, crds: Path) -> None:
    edit(
        tree / "overlays" / "cpu" / "serve-config.yaml",
        "    - services.gateway.proxy_hooks.add_HealthServicer_to_server\n",
        "",
    )
    found = problems(tree, "cpu", kubectl, crds)
    assert any("grpc_options.grpc_servicer_functions: must be" in p for p in found), found


def test_podmonitor_must_scrape_a_named_pod_port(tree: Path, kubectl: Path, crds: Path) -> None:
    edit(tree / "base" / "podmonitor.yaml", "- port: metrics", "- port: metricz")
    found = problems(tree, "cpu", kubectl, crds)
    assert any(
        "podMetricsEndpoints[0].port: 'metricz' is not a port of the head pods" in p for p in found
    )
    edit(tree / "base" / "podmonitor.yaml", "interval: 15s", "intervall: 15s")
    found = problems(tree, "cpu", kubectl, crds)
    assert any("'intervall' was unexpected" in p for p in found), found


def test_core_objects_are_validated_strictly(tree: Path, kubectl: Path, crds: Path) -> None:
    edit(tree / "overlays" / "gpu" / "models-pvc.yaml", "accessModes:", "accessMode:")
    found = problems(tree, "gpu", kubectl, crds)
    assert any("models-pvc.yaml: PersistentVolumeClaim/emer-models" in p for p in found), found


def test_committed_secret_value_is_caught(tree: Path, kubectl: Path, crds: Path) -> None:
    edit(tree / "base" / "secret.yaml", 'HF_TOKEN: ""', 'HF_TOKEN: "hf_xyz"')
    found = problems(tree, "cpu", kubectl, crds)
    assert any("stringData.HF_TOKEN: secret value committed to a file" in p for p in found)


def test_dockerfile_checks(tmp_path: Path) -> None:
    try:
        tools.find_hadolint()
    except tools.ToolError as e:
        _unavailable(str(e))
    docker = tmp_path / "docker"
    shutil.copytree(REPO / "deploy" / "docker", docker)
    shutil.copy(REPO / ".dockerignore", tmp_path / ".dockerignore")
    for name in ("pyproject.toml", "README.md"):
        (tmp_path / name).write_text("")
    for name in ("protos", "services", "clients"):
        (tmp_path / name).mkdir()
    assert images.check_images(docker, tmp_path) == []

    edit(docker / "Dockerfile.cpu", "USER 1000:1000", "USER root")
    edit(
        docker / "Dockerfile.gpu",
        "rayproject/ray:2.60.0-py311-cu128 AS build",
        "rayproject/ray:2.9.0-py311-cu128 AS build",
    )
    edit(tmp_path / ".dockerignore", "!services/\n", "")
    found = [str(p) for p in images.check_images(docker, tmp_path)]
    assert any("Dockerfile.cpu:" in p and "DL3002" in p for p in found), found
    assert any(
        "Dockerfile.cpu: USER: the final stage must run as a non-root user" in p for p in found
    )
    assert any("Dockerfile.gpu:" in p and "FROM: Ray image must be 2.60" in p for p in found)
    assert any("COPY: services is not let through by .dockerignore" in p for p in found), found


def test_structural_schema_translation() -> None:
    """Hand-written cases for the CRD-to-JSON-Schema rules, independent of KubeRay's CRD."""
    schema = crd_schema.structural_to_jsonschema(
        {
            "type": "object",
            "properties": {
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "note": {"type": "string", "nullable": True},
                "free": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "env": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "size": {"type": "integer", "format": "int32"},
            },
        }
    )
    validator = crd_schema._CrdValidator(schema, format_checker=crd_schema._format_checker())

    def errors(instance: dict[str, Any]) -> list[str]:
        return [e.message for e in validator.iter_errors(instance)]

    assert errors({"port": 8000, "note": None, "free": {"b": 1}, "env": [{"name": "A"}]}) == []
    assert errors({"port": "http"}) == []
    assert errors({"port": 1.5})
    assert errors({"typo": 1}) == ["Additional properties are not allowed ('typo' was unexpected)"]
    assert errors({"env": [{"name": "A"}, {"name": "A"}]}) == [
        "duplicate item (name='A'); item 0 has the same"
    ]
    assert errors({"size": 2**31})


def test_unknown_keys_walks_ray_models() -> None:
    raw = {
        "http_options": {"hots": "0.0.0.0"},
        "applications": [
            {
                "name": "emer",
                "import_path": "services.app:build_app",
                "args": {"anything": "goes to AppConfig"},
                "deployments": [
                    {
                        "name": "AudioClues",
                        "ray_actor_options": {"num_cpu": 1},
                        "autoscaling_config": {"max_replica": 2},
                    }
                ],
            }
        ],
    }
    found = {fmt_path(path) for path, _ in serve_config.unknown_keys(raw, ServeDeploySchema)}
    assert found == {
        "http_options.hots",
        "applications[0].deployments[0].ray_actor_options.num_cpu",
        "applications[0].deployments[0].autoscaling_config.max_replica",
    }


def _minimal_crd_schema(node: Any) -> Any:
    """A second, deliberately simple reading of the CRD: int-or-string and nullable only."""
    if isinstance(node, list):
        return [_minimal_crd_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _minimal_crd_schema(v) for k, v in node.items() if k not in ("nullable",)}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _render(kubectl: Path, overlay: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(kubectl), "kustomize", str(overlay)], capture_output=True, text=True, check=True
    ).stdout
    return [o for o in yaml.safe_load_all(out) if o and o["kind"] == "RayService"]


def test_rendered_rayservices_match_the_crd_independently(
    tree: Path, kubectl: Path, crds: Path
) -> None:
    crd = yaml.load(
        (crds / "ray.io_rayservices.yaml").read_text(),
        Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader),
    )
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    validator = jsonschema.Draft202012Validator(
        _minimal_crd_schema(v1["schema"]["openAPIV3Schema"])
    )
    for overlay in ("cpu", "gpu"):
        (rayservice,) = _render(kubectl, REPO / "deploy" / "k8s" / "overlays" / overlay)
        assert [e.message for e in validator.iter_errors(rayservice)] == []
        assert "applications" in yaml.safe_load(rayservice["spec"]["serveConfigV2"])

    edit(tree / "base" / "rayservice.yaml", "        replicas: 1\n", '        replicas: "two"\n')
    (broken,) = _render(kubectl, tree / "overlays" / "cpu")
    assert [list(e.absolute_path) for e in validator.iter_errors(broken)] == [
        ["spec", "rayClusterConfig", "workerGroupSpecs", 0, "replicas"]
    ]
