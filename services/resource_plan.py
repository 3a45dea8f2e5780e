"""Does a Serve config leave room to restart any replica? (`emer serve` warns, k8s-check fails.)

Ray places a replica only where its `num_cpus` / `num_gpus` are free. If the deployments at
their autoscaling maximum want more than the node (or cluster) has, some replicas stay pending,
and when a replica dies its freed share goes to whichever pending replica asks first: the dead
deployment's replacement may wait for minutes (seen under load on 2 cores: the gateway, the
explainer and the clue models each stayed down). The rule that prevents it:

    sum over deployments of max_replicas * num_cpus  +  the largest num_cpus  <=  CPUs

(and the same for GPUs): every deployment fits at its maximum, and one more replica of the
biggest can start while the one it replaces is still shutting down. `num_cpus` is only Ray's
bookkeeping here (the models' threads are set by their own config and OMP_NUM_THREADS), so
fractional shares cost nothing but must add up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Demand:
    """What one deployment can ask Ray for at its autoscaling maximum."""

    deployment: str
    max_replicas: int
    cpus: float  # per replica
    gpus: float  # per replica


@dataclass(frozen=True)
class Plan:
    demands: tuple[Demand, ...]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Plan:
        """The demands of every deployment of every application in a Serve config (as loaded
        from YAML). A deployment without `ray_actor_options.num_cpus` counts Serve's default of
        1 CPU; `num_replicas: auto` counts Serve's default maximum for it (100), which no node
        fits, so the plan says so."""
        demands = []
        for app in config.get("applications") or []:
            for d in app.get("deployments") or []:
                options = d.get("ray_actor_options") or {}
                autoscaling = d.get("autoscaling_config")
                replicas = d.get("num_replicas", 1)
                if autoscaling:
                    most = int(autoscaling.get("max_replicas", 1))
                elif replicas == "auto":
                    most = 100
                else:
                    most = int(replicas)
                demands.append(
                    Demand(
                        str(d.get("name")),
                        most,
                        float(options.get("num_cpus", 1.0)),
                        float(options.get("num_gpus", 0.0)),
                    )
                )
        return cls(tuple(demands))

    @property
    def cpus_needed(self) -> float:
        return _needed([(d.max_replicas, d.cpus) for d in self.demands])

    @property
    def gpus_needed(self) -> float:
        return _needed([(d.max_replicas, d.gpus) for d in self.demands])

    def problems(self, cpus: float, gpus: float = 0.0) -> list[str]:
        """Why `cpus` / `gpus` (a node's or a cluster's) cannot hold this plan (empty: they can)."""
        found = []
        for kind, needed, have in (
            ("CPU", self.cpus_needed, cpus),
            ("GPU", self.gpus_needed, gpus),
        ):
            if needed > have + 1e-9:
                found.append(
                    f"the deployments at max_replicas plus one restart need {needed:g} {kind} "
                    f"({self.breakdown(kind)}), but there are {have:g}: a replica that dies under "
                    "load may find no room to restart"
                )
        return found

    def breakdown(self, kind: str = "CPU") -> str:
        parts = [
            f"{d.deployment} {d.max_replicas}x{share:g}"
            for d in self.demands
            if (share := d.cpus if kind == "CPU" else d.gpus) > 0
        ]
        largest = max((d.cpus if kind == "CPU" else d.gpus) for d in self.demands)
        return " + ".join(parts) + f" + restart {largest:g}"

    def summary(self, cpus: float, gpus: float = 0.0) -> str:
        """One line for the operator at start-up."""
        problems = self.problems(cpus, gpus)
        if problems:
            return "WARNING resource plan: " + "; ".join(problems)
        line = f"resource plan: {self.cpus_needed:g} of {cpus:g} CPUs at max_replicas + restart"
        if self.gpus_needed:
            line += f", {self.gpus_needed:g} of {gpus:g} GPUs"
        return line + " (every replica can be restarted)"


def _needed(shares: list[tuple[int, float]]) -> float:
    if not shares:
        return 0.0
    total = sum(n * share for n, share in shares)
    largest = max(share for _, share in shares)
    return round(total + largest if total else 0.0, 6)
