"""The checks of scripts/k8s_check.py, one module per job (the script is the entry point).

- problems: Problem (one thing wrong, by file, object and path), fmt_path, display;
- tools: finding or fetching kubectl and hadolint, ToolError (exit status 2);
- render: `kubectl kustomize` an overlay into Manifests that know their source file;
- crd_schema: CRD structural schemas as strict JSON Schema validators, the PodMonitor schema;
- objects: every rendered object against its schema, core objects with kubernetes-validate,
  committed Secret values;
- serve_config: serveConfigV2 against Ray's ServeDeploySchema, the app args and our rules;
- rayservice: that the RayService's cluster can run its Serve config (ports, groups, GPUs, LLM);
- access: what reaches the pods: PodMonitor scraping, the TLS Ingress, the auth token file;
- images: the Dockerfiles (hadolint, base image, non-root user) and .dockerignore.

Imported as `k8s_checks` with scripts/ on sys.path (the script's own folder; the tests add it).
"""
