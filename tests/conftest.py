"""Shared test fixtures. Real data comes from EMER_DATA (default ../shared/data).

Under CI (CI=true) a test that needs the data fails when it is missing instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from services.local_server import local_server

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def emer_data() -> Path:
    root = data_root()
    if not (root / "README.md").exists():
        message = f"EMER_DATA not found at {root} (set EMER_DATA to the shared data folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 1-layer BERT classifier with emotion labels, saved locally."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from services.text.prototypes import bundled_encoder_path

    folder = tmp_path_factory.mktemp("tiny-text-clf")
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_encoder_path()))
    labels = ["anger", "joy", "curiosity", "neutral", "sadness", "remorse", "LABEL_6"]
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class _SharedServer:
    """One `emer serve` for every integration module that only sends requests to it (starting
    one costs about two minutes). Modules marked `own_server` (they kill replicas) start their
    own; the shared one is stopped as soon as the run leaves its modules (pytest_runtest_teardown
    below), so two servers never compete for the two cores."""

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self._failed = ""  # why it did not start: said again to every module, not retried
        self.address = ""

    def get(self, log: Path, data: Path) -> str:
        if self._failed:
            raise RuntimeError(self._failed)
        if self._stack is None:
            stack = ExitStack()
            try:
                self.address = stack.enter_context(local_server(log, env={"EMER_DATA": str(data)}))
            except (RuntimeError, TimeoutError) as e:
                self._failed = str(e)
                raise
            self._stack = stack
        return self.address

    def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()


_shared_server = _SharedServer()


def _uses_shared_server(item: pytest.Item) -> bool:
    return "server" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
        "own_server"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the shared server's tests one after another, where the first of them was."""
    shared = [item for item in items if _uses_shared_server(item)]
    if shared:
        first = items.index(shared[0])
        rest = [item for item in items if not _uses_shared_server(item)]
        items[:] = rest[:first] + shared + rest[first:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # the item's module fixtures (clients, proxies on the server) are torn down first
    if _uses_shared_server(item) and (nextitem is None or not _uses_shared_server(nextitem)):
        _shared_server.stop()


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, emer_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The real service: `emer serve` (local Ray, every deployment, the default Serve config),
    shared by the integration modules, or the module's own when it is marked `own_server`. Ray
    advertises the machine's address, so these tests run inside a loopback-only network
    namespace (`make test`)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    try:
        if request.node.get_closest_marker("own_server") is None:
            yield _shared_server.get(log, emer_data)
            return
        with local_server(log, env={"EMER_DATA": str(emer_data)}) as address:
            yield address
    except (RuntimeError, TimeoutError) as e:
        pytest.fail(str(e))
