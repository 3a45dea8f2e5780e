"""The explainer LLM: model preparation, prompts, the scripted double, LLM label selection and
the real vLLM engine on the embedded SmolLM2-135M (tests marked `llm`: one engine for the
module, ~40 s on 2 cores; they run in `make test`)."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from pathlib import Path

import pytest

from services.common.types import Clue, Modality, ModelInfo, Transcript
from services.explainer import prepare_model, prompts
from services.explainer.config import LLMConfig
from services.explainer.llm import (
    GenerationParams,
    LLMEngine,
    LLMRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
    TextDelta,
)
from services.explainer.llm_labels import (
    candidate_schema,
    extract_labels_llm,
    merge_selection,
    normalise_candidates,
    parse_selection,
    select_labels_llm,
)
from services.explainer.vllm_engine import VLLMEngine
from tests.scripted_engine import ScriptedEngine

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# --- prepare_model -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """The converted embedded model (converts once, ~20-45 s, only when `make setup` has not)."""
    return prepare_model.ensure_model()


@pytest.fixture(scope="session")
def gguf_sha() -> str:
    return prepare_model.sha256_file(prepare_model.bundled_gguf())


def _cheap_copy(src: Path, dst: Path) -> Path:
    """A copy that links the large files: tampering replaces a file, never writes through."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.stat().st_size > 1 << 20:
            (dst / f.name).symlink_to(f.resolve())
        else:
            shutil.copy2(f, dst / f.name)
    return dst


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _leftovers(models_dir: Path) -> list[str]:
    return [p.name for p in models_dir.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_converted_model_verifies_against_its_manifest(embedded_model: Path, gguf_sha: str) -> None:
    assert prepare_model.verify(embedded_model, gguf_sha) == []
    manifest = json.loads((embedded_model / prepare_model.MANIFEST).read_text())
    assert manifest["gguf_sha256"] == gguf_sha
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(manifest["files"])
    config = json.loads((embedded_model / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (embedded_model / "chat_template.jinja").is_file()


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (lambda d: _replace(d / "config.json", b"{}"), "config.json does not match its checksum"),
        (lambda d: _replace(d / "model.safetensors", b"x"), "model.safetensors does not match"),
        (lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (lambda d: (d / "extra.safetensors").write_bytes(b"x"), "extra.safetensors is not in"),
        (lambda d: (d / prepare_model.MANIFEST).unlink(), "emer-manifest.json is missing"),
        (lambda d: _replace(d / prepare_model.MANIFEST, b"{"), "unreadable"),
    ],
)
def test_verify_names_what_was_tampered_with(
    embedded_model: Path, gguf_sha: str, tmp_path: Path, tamper: object, problem: str
) -> None:
    copy = _cheap_copy(embedded_model, tmp_path / "m")
    assert prepare_model.verify(copy, gguf_sha) == []
    tamper(copy)  # type: ignore[operator]
    problems = prepare_model.verify(copy, gguf_sha)
    assert any(problem in p for p in problems), problems


def test_verify_rejects_a_conversion_of_another_gguf(embedded_model: Path) -> None:
    assert "converted from a different GGUF file" in prepare_model.verify(embedded_model, "0" * 64)


def test_ensure_model_skips_a_verified_folder(
    embedded_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    _cheap_copy(embedded_model, models / prepare_model.MODEL_SUBDIR)

    def no_conversion(gguf: Path, out: Path) -> None:
        raise AssertionError("a verified folder must not be converted again")

    monkeypatch.setattr(prepare_model, "convert", no_conversion)
    assert prepare_model.ensure_model(models) == models / prepare_model.MODEL_SUBDIR


@pytest.fixture()
def fake_conversion(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, list[Path]]:
    """A tiny GGUF stand-in and a converter that records its calls (the real one costs ~45 s)."""
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF tiny")
    calls: list[Path] = []

    def convert(src: Path, out: Path) -> None:
        calls.append(out)
        (out / "config.json").write_text(json.dumps({"n": len(calls)}))
        (out / "model.safetensors").write_bytes(b"w" * 10)

    monkeypatch.setattr(prepare_model, "convert", convert)
    return gguf, calls


def test_ensure_model_is_idempotent_and_reconverts_on_mismatch(
    fake_conversion: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    gguf, calls = fake_conversion
    models = tmp_path / "models"
    path = prepare_model.ensure_model(models, gguf=gguf)
    assert path == models / prepare_model.MODEL_SUBDIR
    assert len(calls) == 1 and calls[0] != path  # written elsewhere, then renamed into place
    prepare_model.ensure_model(models, gguf=gguf)
    assert len(calls) == 1
    (path / "model.safetensors").write_bytes(b"tampered")
    prepare_model.ensure_model(models, gguf=gguf)
    assert len(calls) == 2
    assert prepare_model.verify(path, prepare_model.sha256_file(gguf)) == []
    gguf.write_bytes(b"GGUF another release")  # a new bundled file means a new conversion
    prepare_model.ensure_model(models, gguf=gguf)
    assert len(calls) == 3
    assert _leftovers(models) == []


def test_failed_conversion_keeps_the_previous_folder(
    fake_conversion: tuple[Path, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf, _ = fake_conversion
    models = tmp_path / "models"
    path = prepare_model.ensure_model(models, gguf=gguf)

    def broken(src: Path, out: Path) -> None:
        (out / "config.json").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(prepare_model, "convert", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare_model.ensure_model(models, gguf=gguf, force=True)
    assert prepare_model.verify(path, prepare_model.sha256_file(gguf)) == []
    assert _leftovers(models) == []


def test_default_model_path_follows_emer_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EMER_MODELS", str(tmp_path))
    assert prepare_model.default_model_path() == tmp_path / "smollm2-135m-instruct"


# --- prompts -------------------------------------------------------------------------------------

VISUAL = Clue(Modality.VISUAL, True, description=["He frowns, then smiles broadly."])
AUDIO = Clue(Modality.AUDIO, True, description=["He laughs while speaking; the pitch is high."])
SUBTITLE = Transcript('How would I know! I "really" don\'t.', "en", [], "subtitle")


def test_every_prompt_of_the_current_version_loads() -> None:
    assert prompts.PROMPT_VERSION in prompts.available_versions()
    expected = {
        "lexical_disambiguation": {"subtitle", "visual_clue", "acoustic_clue"},
        "merge_description": {"subtitle", "visual_clue", "acoustic_clue", "lexical_clue"},
        "conclusion": {"clues", "emotions"},
        "label_extraction": {"description"},
    }
    for name in prompts.PROMPT_NAMES:
        template = prompts.load_prompt(name)
        assert template.version == prompts.PROMPT_VERSION
        assert template.placeholders == expected[name]
        assert len(template.sha256) == 64


def test_lexical_prompt_carries_the_clues_and_steers_the_answer() -> None:
    messages = prompts.lexical_disambiguation_messages(SUBTITLE, VISUAL, AUDIO)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    user = messages[1]["content"]
    # Double quotes inside the subtitle would close the quoted line early.
    assert "How would I know! I 'really' don't." in user
    assert "He frowns, then smiles broadly." in user and "He laughs while speaking" in user
    assert "teasing" in user  # the paper's example of a line read with the face and voice
    assert messages[2]["content"] == "In the text,"


def test_conclusion_prompt_carries_the_clue_paragraphs() -> None:
    messages = prompts.conclusion_messages("In the video, he smiles.", "happy, excited")
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert "In the video, he smiles." in messages[1]["content"]
    assert "happy, excited" in messages[1]["content"]
    # v2 pre-fills the subject and verb: with only "Therefore," SmolLM2 looped on the word.
    assert messages[2]["content"] == "Therefore, the main character feels"


def test_merge_prompt_asks_for_the_emer_form_and_marks_missing_clues() -> None:
    audio_down = Clue.unavailable(Modality.AUDIO, "no audio track")
    messages = prompts.merge_description_messages(VISUAL, audio_down, "", None)
    user = messages[1]["content"]
    assert '"In the video, ..."' in user and '"Therefore, ..."' in user
    assert "Acoustic clue: not available (no audio track)." in user
    assert 'Subtitle: "(no speech)"' in user and "Lexical clue: none." in user
    assert messages[-1] == {"role": "assistant", "content": "In the video,"}


def test_label_prompt_is_the_emer_extraction_prompt() -> None:
    messages = prompts.label_extraction_messages("He is happy and a bit nervous.")
    user = messages[-1]["content"]
    assert messages[-1]["role"] == "user"
    assert "output only the clearly identifiable emotional categories in a list format" in user
    assert "If none are identified, please output an empty list." in user
    assert user.endswith("Input: He is happy and a bit nervous.; Output:")


def test_rendering_keeps_braces_and_dollars_of_the_clues_and_clips_long_ones() -> None:
    odd = Clue(Modality.VISUAL, True, description=["{face} costs $5 at 100% {0}"])
    user = prompts.merge_description_messages(odd, None, "x", "hi")[1]["content"]
    assert "{face} costs $5 at 100% {0}" in user
    assert "Acoustic clue: not requested." in user
    long = Clue(Modality.VISUAL, True, description=["word " * 2000])
    text = prompts.clue_text(long)
    assert len(text) == prompts.MAX_CLUE_CHARS and text.endswith("...")


def test_prompt_errors_are_explicit() -> None:
    with pytest.raises(KeyError):
        prompts.load_prompt("label_extraction").render()
    with pytest.raises(FileNotFoundError, match="v999"):
        prompts.load_prompt("label_extraction", "v999")
    with pytest.raises(ValueError, match="needs a \\[user\\] section"):
        prompts.parse_prompt("x", "v1", "[system]\nonly a system message\n")


def test_model_info_records_the_prompt_version() -> None:
    engine = ModelInfo(role="explainer", name="SmolLM2-135M-Instruct", version="w1", backend="vllm")
    info = prompts.prompt_model_info(engine)
    assert info.version == f"w1+prompts-{prompts.PROMPT_VERSION}"
    assert (info.name, info.backend) == (engine.name, engine.backend)


# --- ScriptedEngine ------------------------------------------------------------------------------


def test_scripted_engine_streams_its_reply_and_counts_cancellations() -> None:
    engine = ScriptedEngine(reply=lambda p: "In the video, he smiles.")
    assert isinstance(engine, LLMEngine)

    async def scenario() -> tuple[list[str], list[str]]:
        full = [d async for d in engine.generate("x")]
        part: list[str] = []
        async with aclosing(engine.generate("x")) as stream:
            async for delta in stream:
                part.append(delta)
                if len(part) == 2:
                    break
        return full, part

    full, part = asyncio.run(scenario())
    assert "".join(full) == "In the video, he smiles." and len(full) == 5
    assert part == ["In", " the"]
    assert engine.cancelled == 1 and engine.delivered == 7
    assert [c.kind for c in engine.calls] == ["generate", "generate"]


def test_scripted_engine_injects_failures_and_health() -> None:
    async def collect(engine: ScriptedEngine) -> list[str]:
        return [d async for d in engine.generate("x")]

    with pytest.raises(LLMUnavailableError):
        asyncio.run(collect(ScriptedEngine(fail=LLMUnavailableError("down"))))
    partial: list[str] = []

    async def until_failure() -> None:
        async for d in ScriptedEngine(fail=LLMTimeoutError("slow"), fail_after=2).generate("a b c"):
            partial.append(d)

    with pytest.raises(LLMTimeoutError):
        asyncio.run(until_failure())
    assert len(partial) == 2
    with pytest.raises(LLMUnavailableError):
        asyncio.run(ScriptedEngine(healthy=False).check_health())
    engine = ScriptedEngine()
    engine.shutdown()
    with pytest.raises(LLMUnavailableError):
        asyncio.run(collect(engine))


def test_scripted_json_default_is_valid_for_the_schema() -> None:
    schema = candidate_schema(["happy", "sad"])
    raw = asyncio.run(ScriptedEngine().complete_json([], schema, 16))
    assert json.loads(raw) == ["happy", "sad"]


# --- LLM label selection (scripted) --------------------------------------------------------------

CANDIDATES = ["happy", "teasing", "relaxed"]


def _engine_answering(raw: str) -> ScriptedEngine:
    return ScriptedEngine(json_reply=lambda messages, schema: raw)


def test_label_schema_is_an_enum_array_without_unique_items() -> None:
    schema = candidate_schema(CANDIDATES)
    assert schema["items"]["enum"] == CANDIDATES and schema["maxItems"] == 3
    assert "uniqueItems" not in json.dumps(schema)  # xgrammar rejects it


def test_llm_chooses_among_candidates_in_its_order() -> None:
    engine = _engine_answering('["teasing", "happy", "teasing"]')
    words = asyncio.run(extract_labels_llm(engine, "He teases her, happily.", CANDIDATES))
    assert words == ["teasing", "happy"]
    call = engine.calls[0]
    assert call.kind == "complete_json" and call.json_schema == candidate_schema(CANDIDATES)
    assert "He teases her, happily." in call.prompt[-1]["content"]  # type: ignore[index]


def test_llm_can_never_add_a_word() -> None:
    words = asyncio.run(
        extract_labels_llm(_engine_answering('["furious", "relaxed"]'), "d", CANDIDATES)
    )
    assert words == ["relaxed"]
    # Nothing usable: the candidates stand (an empty answer would score 0).
    selection = asyncio.run(select_labels_llm(_engine_answering('["furious"]'), "d", CANDIDATES))
    assert selection.words == CANDIDATES and selection.fallback == "llm chose none"


def test_no_candidates_means_no_labels_and_no_call() -> None:
    engine = ScriptedEngine()
    assert asyncio.run(extract_labels_llm(engine, "Nothing to see.", [])) == []
    assert asyncio.run(extract_labels_llm(engine, "Only joy.", ["joy"])) == ["joy"]
    assert engine.calls == []


def test_llm_failure_returns_the_candidates() -> None:
    engine = ScriptedEngine(fail=LLMUnavailableError("engine core died"))
    selection = asyncio.run(select_labels_llm(engine, "d", CANDIDATES))
    assert selection.words == CANDIDATES
    assert selection.fallback is not None and "engine core died" in selection.fallback


def test_a_cut_answer_is_still_read() -> None:
    assert parse_selection('["relaxed", "hap', CANDIDATES) == ["relaxed"]
    assert parse_selection('{"labels": ["happy"]}', CANDIDATES) == []


def test_merge_policies() -> None:
    assert merge_selection(CANDIDATES, ["relaxed"], "select") == ["relaxed"]
    assert merge_selection(CANDIDATES, ["relaxed"], "reorder") == ["relaxed", "happy", "teasing"]
    assert merge_selection(CANDIDATES, [], "select") == CANDIDATES
    assert normalise_candidates(["Happy", "happy ", "", "Sad"]) == ["happy", "sad"]


def test_llm_selection_stays_inside_the_extractor_candidates(emer_data: Path) -> None:
    from emer_eval.vocabulary import EmotionVocabulary

    from services.explainer.extraction import extract_labels

    vocabulary = EmotionVocabulary.load(emer_data / "emer" / "wheel")
    description = (
        "In the video, he smiles and laughs. In the audio, his tone is light and teasing. "
        "Therefore, he is happy and relaxed, with a hint of teasing."
    )
    candidates = [label.word for label in extract_labels(description, vocabulary)]
    assert candidates
    engine = _engine_answering(json.dumps(["angry", *reversed(candidates)]))
    words = asyncio.run(extract_labels_llm(engine, description, candidates))
    assert words and set(words) <= set(candidates)


# --- the real engine (vLLM, embedded SmolLM2-135M) -----------------------------------------------

MESSAGES = [{"role": "user", "content": "Describe a happy person in two sentences."}]


@pytest.fixture(scope="module")
def real(embedded_model: Path) -> Iterator[tuple[VLLMEngine, asyncio.AbstractEventLoop]]:
    """One engine for the module, on one event loop (AsyncLLM binds its output loop to it)."""
    loop = asyncio.new_event_loop()
    config = LLMConfig(max_num_seqs=8, health_probe_interval_s=0)
    engine = loop.run_until_complete(VLLMEngine.start(config))
    yield engine, loop
    engine.shutdown()
    # What asyncio.run does on exit: let vLLM's background tasks see their cancellation.
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


@pytest.mark.llm
def test_real_engine_streams_several_deltas(
    real: tuple[VLLMEngine, asyncio.AbstractEventLoop],
) -> None:
    engine, loop = real

    async def run() -> list[str]:
        return [d async for d in engine.generate(MESSAGES, GenerationParams(max_tokens=24))]

    deltas = loop.run_until_complete(run())
    assert len(deltas) >= 5 and "".join(deltas).strip()
    # The stream interval (LLMConfig default 4): the first token at once, then 4 per delta.
    pieces = [d for d in deltas if isinstance(d, TextDelta)]
    assert len(pieces) == len(deltas)
    assert pieces[0].tokens == 1
    assert all(d.tokens == 4 for d in pieces[1:-1])
    assert sum(d.tokens for d in pieces) <= 24
    assert engine.info.backend == "vllm" and engine.info.name == "SmolLM2-135M-Instruct"
    assert engine.num_active_requests == 0


@pytest.mark.llm
def test_real_engine_continues_a_final_assistant_message(
    real: tuple[VLLMEngine, asyncio.AbstractEventLoop],
) -> None:
    engine, _ = real
    ids = engine.prompt_token_ids([*MESSAGES, {"role": "assistant", "content": "In the video,"}])
    text = engine.async_llm.get_tokenizer().decode(ids)
    assert text.endswith("<|im_start|>assistant\nIn the video,")


@pytest.mark.llm
def test_real_engine_guided_json_is_restricted_to_the_enum(
    real: tuple[VLLMEngine, asyncio.AbstractEventLoop],
) -> None:
    engine, loop = real
    enum = ["happy", "sad", "teasing"]
    messages = [{"role": "user", "content": "He laughs and jokes. List his emotions as JSON."}]
    raw = loop.run_until_complete(engine.complete_json(messages, candidate_schema(enum), 40))
    value = json.loads(raw)
    assert isinstance(value, list) and value and set(value) <= set(enum)
    description = "In the video, he smiles. Therefore, he is happy and a bit nervous."
    words = loop.run_until_complete(extract_labels_llm(engine, description, ["happy", "nervous"]))
    assert words and set(words) <= {"happy", "nervous"}


@pytest.mark.llm
def test_real_engine_cancellation_aborts_the_request(
    real: tuple[VLLMEngine, asyncio.AbstractEventLoop],
) -> None:
    engine, loop = real
    endless = GenerationParams(max_tokens=1500, ignore_eos=True)

    async def core_goes_idle() -> bool:
        # The abort reaches the engine-core process asynchronously; 1,500 tokens would keep
        # it busy for about a minute.
        for _ in range(50):
            if not await engine.scheduler_busy():
                return True
            await asyncio.sleep(0.02)
        return False

    async def close_early() -> tuple[bool, int, bool]:
        got = 0
        busy = False
        async with aclosing(engine.generate(MESSAGES, endless)) as stream:
            async for _ in stream:
                got += 1
                if got == 3:
                    busy = await engine.scheduler_busy()
                    break
        # Closing the stream dropped the request from the front end at once...
        front = engine.num_active_requests
        # ...and the engine core stops generating its tokens.
        return busy, front, await core_goes_idle()

    assert loop.run_until_complete(close_early()) == (True, 0, True)

    async def cancel_consumer() -> tuple[int, int, bool]:
        seen: list[str] = []

        async def consume() -> None:
            async for delta in engine.generate(MESSAGES, endless):
                seen.append(delta)

        task = asyncio.create_task(consume())
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        during = engine.num_active_requests
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return during, engine.num_active_requests, await core_goes_idle()

    assert loop.run_until_complete(cancel_consumer()) == (1, 0, True)


@pytest.mark.llm
def test_real_engine_times_out_and_rejects_oversized_prompts(
    real: tuple[VLLMEngine, asyncio.AbstractEventLoop],
) -> None:
    engine, loop = real

    async def slow() -> None:
        params = GenerationParams(max_tokens=1500, ignore_eos=True, timeout_s=0.3)
        async for _ in engine.generate(MESSAGES, params):
            pass

    with pytest.raises(LLMTimeoutError):
        loop.run_until_complete(slow())
    assert engine.num_active_requests == 0

    async def oversized() -> None:
        async for _ in engine.generate("word " * 3000):
            pass

    with pytest.raises(LLMRequestError, match="context"):
        loop.run_until_complete(oversized())


@pytest.mark.llm
def test_real_engine_batches_concurrent_streams_and_stays_healthy(
    real: tuple[VLLMEngine, asyncio.AbstractEventLoop],
) -> None:
    engine, loop = real

    async def many() -> list[str]:
        async def one(i: int) -> str:
            params = GenerationParams(max_tokens=16, ignore_eos=True, request_id=f"t-{i}")
            return "".join([d async for d in engine.generate(MESSAGES, params)])

        return await asyncio.gather(*(one(i) for i in range(6)))

    texts = loop.run_until_complete(many())
    assert len(texts) == 6 and all(texts)
    loop.run_until_complete(engine.check_health())  # probes the model (interval 0)


@pytest.mark.llm
def test_engine_start_fails_fast_on_a_wrong_device_or_timeout() -> None:
    with pytest.raises(LLMUnavailableError, match="device"):
        asyncio.run(VLLMEngine.start(LLMConfig(device="cuda")))
    with pytest.raises(LLMTimeoutError):
        asyncio.run(VLLMEngine.start(LLMConfig(startup_timeout_s=0.001)))


def test_text_delta_keeps_its_token_count_across_processes() -> None:
    delta = TextDelta(" happy and", tokens=2)
    copy = pickle.loads(pickle.dumps(delta))  # what Ray does between replicas
    assert copy == " happy and" and copy.tokens == 2 and isinstance(copy, str)


def test_measured_counts_tokens_not_deltas(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.common import prometheus as metrics

    seen: list[tuple[str, float]] = []
    monkeypatch.setattr(
        metrics, "_record", lambda name, _kind, value, tags=None: seen.append((name, value))
    )

    clock = iter([10.0, 10.5, 12.5])  # start, first delta, end of the stream
    monkeypatch.setattr(metrics.time, "perf_counter", lambda: next(clock))

    async def stream() -> AsyncIterator[str]:
        yield TextDelta("She", tokens=1)
        yield TextDelta(" is very", tokens=2)
        yield ""  # empty deltas count nothing
        yield " happy"  # a plain string counts one token

    async def consume() -> list[str]:
        return [d async for d in metrics.measured(stream())]

    assert "".join(asyncio.run(consume())) == "She is very happy"
    # TTFT 0.5 s; three tokens after the first delta, over the 2 s after it.
    assert seen == [("ttft", 500.0), ("tps", 1.5)]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("flags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni", "float32"),  # Ice Lake
        ("flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni", "bfloat16"),  # Zen 4, Cooper Lake
        ("flags\t\t: fpu avx512f amx_bf16 amx_tile", "bfloat16"),  # Sapphire Rapids
        ("Features\t: fp asimd bf16 i8mm", "bfloat16"),  # aarch64 (Graviton 3)
        ("Features\t: fp asimd", "float32"),
    ],
)
def test_auto_dtype_follows_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str, expected: str
) -> None:
    """Without native bf16 vLLM converts every operand: "auto" picks float32 there."""
    from services.explainer import vllm_engine

    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\n{flags}\n\nprocessor\t: 1\n{flags}\n")
    read = vllm_engine.cpu_has_native_bf16
    monkeypatch.setattr(vllm_engine, "cpu_has_native_bf16", lambda: read(info))
    assert vllm_engine.resolve_dtype("auto", "cpu") == expected
    assert vllm_engine.resolve_dtype("auto", "cuda") == "auto"
    assert vllm_engine.resolve_dtype("float16", "cpu") == "float16"


def test_unreadable_cpuinfo_keeps_bfloat16(tmp_path: Path) -> None:
    from services.explainer.vllm_engine import cpu_has_native_bf16

    assert cpu_has_native_bf16(tmp_path / "missing")
