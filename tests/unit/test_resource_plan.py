"""The resource plan: every deployment at max_replicas plus one restart must fit."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.resource_plan import Plan

REPO = Path(__file__).resolve().parents[2]


def _config(*deployments: dict[str, object]) -> dict[str, object]:
    return {"applications": [{"name": "emer", "deployments": list(deployments)}]}


def test_shipped_one_node_profiles_leave_room_to_restart_on_two_cores() -> None:
    for name in ("serve-cpu.yaml", "serve-cpu-quality.yaml"):
        plan = Plan.from_config(yaml.safe_load((REPO / "deploy" / name).read_text()))
        assert plan.problems(cpus=2.0) == [], name
        assert plan.cpus_needed <= 2.0


def test_autoscaled_shares_that_take_every_cpu_are_refused() -> None:
    # The old default: 0.25 + 2x0.5 + 2x0.5 + 2x0.25 + 0.25 = 3.0, + 0.5 restart.
    plan = Plan.from_config(
        _config(
            {"name": "EmotionGateway", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.25}},
            {
                "name": "AudioClues",
                "autoscaling_config": {"min_replicas": 1, "max_replicas": 2},
                "ray_actor_options": {"num_cpus": 0.5},
            },
            {
                "name": "VisualClues",
                "autoscaling_config": {"min_replicas": 1, "max_replicas": 2},
                "ray_actor_options": {"num_cpus": 0.5},
            },
        )
    )
    assert plan.cpus_needed == 2.75
    (problem,) = plan.problems(cpus=2.0)
    assert "need 2.75 CPU" in problem and "but there are 2" in problem
    assert "AudioClues 2x0.5" in problem and "restart 0.5" in problem
    assert plan.summary(2.0).startswith("WARNING resource plan")
    assert "every replica can be restarted" in plan.summary(4.0)


def test_missing_num_cpus_counts_serves_default_of_one_and_gpus_count_too() -> None:
    plan = Plan.from_config(
        _config(
            {"name": "A", "num_replicas": 2},
            {"name": "B", "num_replicas": 1, "ray_actor_options": {"num_cpus": 1, "num_gpus": 0.5}},
        )
    )
    assert plan.cpus_needed == 4.0  # 2x1 + 1 + restart 1
    assert plan.gpus_needed == 1.0  # 0.5 + restart 0.5
    assert plan.problems(cpus=4.0, gpus=1.0) == []
    assert any("GPU" in p for p in plan.problems(cpus=4.0, gpus=0.5))
