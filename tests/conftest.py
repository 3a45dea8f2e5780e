"""Shared test fixtures. Real data comes from EMER_DATA (default ../shared/data).

Under CI (CI=true) a test that needs the data fails when it is missing instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.local_server import local_server

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

    from services.text.embedded import bundled_encoder_path

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


@pytest.fixture(scope="module")
def server(emer_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real service for an integration module: `emer serve` (local Ray, every deployment,
    the default Serve config) started once per module. Ray advertises the machine's address, so
    these tests run inside a loopback-only network namespace (`make test`)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    try:
        with local_server(log, env={"EMER_DATA": str(emer_data)}) as address:
            yield address
    except (RuntimeError, TimeoutError) as e:
        pytest.fail(str(e))
