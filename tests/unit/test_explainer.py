"""The explainer core: LLM streaming, label merging and every fallback to the composer.

The LLM is a ScriptedEngine (a test double with the LLMEngine protocol); the real vLLM engine
is exercised in test_llm.py and the integration tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from emer_eval.vocabulary import EmotionVocabulary, load_vocabulary

from services.common.errors import NotConfiguredError
from services.common.types import BASIC_EMOTIONS, Clue, Modality, Transcript
from services.explainer.composer import COMPOSER_INFO, Explanation
from services.explainer.explainer import ExplainerCore
from services.explainer.llm import LLMUnavailableError
from tests.scripted_engine import ScriptedEngine

LLM_TEXT = (
    "In the video, the man smiles and his eyes light up. In the audio, his voice is loud and "
    "lively. In the text, he says they won. Therefore, he feels joyful and excited about it."
)


def clue(modality: Modality, top: str, p: float, valence: float, arousal: float) -> Clue:
    rest = (1 - p) / 6
    return Clue(
        modality,
        True,
        description=[f"The {modality.value} clue suggests {top}."],
        emotion_scores={e: (p if e == top else rest) for e in BASIC_EMOTIONS},
        valence=valence,
        arousal=arousal,
    )


CLUES = (
    clue(Modality.AUDIO, "happy", 0.5, 0.4, 0.7),
    clue(Modality.VISUAL, "happy", 0.8, 0.7, 0.5),
    clue(Modality.TEXT, "happy", 0.7, 0.8, 0.4),
    Transcript("We won!", "en", [], "subtitle"),
)


@pytest.fixture(scope="module")
def vocab(emer_data: Path) -> EmotionVocabulary:
    v = load_vocabulary(str(emer_data / "emer" / "wheel"))
    assert v is not None
    return v


def run_stream(core: ExplainerCore) -> tuple[list[str], Explanation]:
    async def go() -> tuple[list[str], Explanation]:
        deltas: list[str] = []
        async for item in core.explain_stream(*CLUES):
            if isinstance(item, Explanation):
                return deltas, item
            deltas.append(item)
        raise AssertionError("no explanation")

    return asyncio.run(go())


def test_llm_writes_and_streams_the_explanation(vocab: EmotionVocabulary) -> None:
    engine = ScriptedEngine(reply=lambda _p: LLM_TEXT.removeprefix("In the video, "))
    deltas, ex = run_stream(ExplainerCore(vocab, engine, llm_writes="description"))
    # One delta per checked sentence (a client never sees a sentence the check drops); the
    # prompt's prefix comes first.
    assert len(deltas) == 4 and "".join(deltas) == LLM_TEXT
    assert ex.text == LLM_TEXT and ex.model.backend == "scripted"
    assert "prompts-" in ex.model.version  # the prompt version is part of the model info
    words = [lab.word for lab in ex.labels]
    assert words[0] == "happy"  # fused clue labels first
    assert "joyful" in words  # stated by the LLM and in the same wheel category
    # two calls: the lexical-clue step, then the merged description
    assert [c.kind for c in engine.calls] == ["generate", "generate"]
    assert not ex.warnings


def test_small_model_writes_only_the_conclusion(vocab: EmotionVocabulary) -> None:
    engine = ScriptedEngine(reply=lambda _p: "joyful, as the visual clue suggests.")
    deltas, ex = run_stream(ExplainerCore(vocab, engine))
    text = "".join(deltas)
    assert text.startswith("In the video, the visual clue suggests happy.")
    assert text.endswith("Therefore, the main character feels joyful, as the visual clue suggests.")
    assert ex.text == text.strip() and len(engine.calls) == 1
    assert "happy" in str(engine.calls[0].prompt)  # the fused estimate is given


def test_llm_cannot_add_an_emotion_the_clues_contradict(vocab: EmotionVocabulary) -> None:
    engine = ScriptedEngine(reply=lambda _p: "Therefore, he feels furious and disgusted.")
    _, ex = run_stream(ExplainerCore(vocab, engine))
    words = {lab.word for lab in ex.labels}
    assert "happy" in words and not words & {"furious", "disgusted"}


@pytest.mark.parametrize(
    ("engine", "warning"),
    [
        (ScriptedEngine(fail=LLMUnavailableError("engine died")), "failed"),
        (ScriptedEngine(reply=lambda _p: "x " * 50, delay_s=1.0), "timed out"),
        (ScriptedEngine(reply=lambda _p: ""), "wrote nothing"),
    ],
)
def test_engine_failure_falls_back_to_the_composer(
    vocab: EmotionVocabulary, engine: ScriptedEngine, warning: str
) -> None:
    core = ExplainerCore(vocab, engine, request_timeout_s=0.5, disambiguate_text=False)
    deltas, ex = run_stream(core)
    assert ex.model == COMPOSER_INFO
    assert ex.text.startswith("In the video") and "Therefore" in ex.text
    assert any(warning in w and "composer" in w for w in ex.warnings)
    assert deltas  # the composer's sentences are streamed too


def test_engine_failing_mid_stream_keeps_what_was_written(vocab: EmotionVocabulary) -> None:
    engine = ScriptedEngine(
        reply=lambda _p: LLM_TEXT.removeprefix("In the video, "),
        fail=LLMUnavailableError("x"),
        fail_after=12,  # the first sentence and one word of the second
    )
    core = ExplainerCore(vocab, engine, disambiguate_text=False, llm_writes="description")
    deltas, ex = run_stream(core)
    # The complete, checked sentence stays; the unfinished one is not shown; the composer's
    # conclusion closes the description.
    assert ex.text == "".join(deltas).strip()
    assert ex.text.startswith("In the video, the man smiles and his eyes light up. Therefore")
    assert any("cut short" in w for w in ex.warnings)


def test_engine_that_did_not_start_is_reported(vocab: EmotionVocabulary) -> None:
    core = ExplainerCore(vocab, None, engine_problem="the engine did not start: OSError")
    _, ex = run_stream(core)
    assert ex.model == COMPOSER_INFO
    assert any("did not start" in w for w in ex.warnings)
    assert [m.name for m in core.models] == ["emer-composer", "emer-extractor"]


def test_extract_lets_the_llm_choose_only_among_candidates(vocab: EmotionVocabulary) -> None:
    description = (
        "In the video, the woman frowns. In the audio, her voice is sharp. Therefore, she seems "
        "angry and a bit disappointed, though not sad."
    )
    engine = ScriptedEngine(json_reply=lambda _m, _s: '["disappointed", "elated"]')
    result = asyncio.run(ExplainerCore(vocab, engine, select_labels=True).extract(description))
    words = [lab.word for lab in result.labels]
    assert words == ["disappointed"]  # "elated" is not a candidate: dropped
    assert all(lab.wheel_categories for lab in result.labels)
    assert any(m.backend == "scripted" for m in result.models)
    plain = asyncio.run(ExplainerCore(vocab, None).extract(description))
    assert {"angry", "disappointed"} <= {lab.word for lab in plain.labels}
    assert "sad" not in {lab.word for lab in plain.labels}  # negated


def test_extract_without_vocabulary_is_a_precondition_error() -> None:
    with pytest.raises(NotConfiguredError):
        asyncio.run(ExplainerCore(None, None).extract("Therefore, he is happy."))


def test_from_config_carries_every_explainer_setting() -> None:
    from services.explainer.config import ExplainerConfig

    config = ExplainerConfig.model_validate(
        {
            "backend": "composer",
            "llm_writes": "description",
            "select_labels": True,
            "disambiguate_text": False,
            "llm": {"max_tokens": 77, "request_timeout_s": 9.0},
        }
    )
    core = ExplainerCore.from_config(config, None, engine_problem="off")
    assert (core.llm_writes, core.select_labels, core.disambiguate_text) == (
        "description",
        True,
        False,
    )
    assert (core.max_tokens, core.request_timeout_s, core.engine_problem) == (77, 9.0, "off")
    assert core.vocabulary is not None and core.engine is None


SARCASM = (
    clue(Modality.AUDIO, "angry", 0.5, -0.4, 0.7),
    clue(Modality.VISUAL, "angry", 0.8, -0.6, 0.6),
    Clue(
        Modality.TEXT,
        True,
        description=["The words clearly express joy ('Thanks a lot, great job.')."],
        emotion_scores={e: (0.7 if e == "happy" else 0.05) for e in BASIC_EMOTIONS},
        valence=0.7,
        arousal=0.3,
        measurements={"surface_valence": 0.7},
    ),
    Transcript("Thanks a lot, great job.", "en", [], "subtitle"),
)


def run_clues(core: ExplainerCore, clues: tuple) -> tuple[list[str], Explanation]:  # type: ignore[type-arg]
    async def go() -> tuple[list[str], Explanation]:
        deltas: list[str] = []
        async for item in core.explain_stream(*clues):
            if isinstance(item, Explanation):
                return deltas, item
            deltas.append(item)
        raise AssertionError("no explanation")

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("I am happy.", "first person"),
        ("joy and optimism.", "which no clue supports"),
        ("anxious about tomorrow's impending doom.", "which no clue says"),
        ("she is annoyed at her boss at the party.", "which no clue mentions"),
        ("the clues show what the person feels.", "names no emotional state"),
    ],
)
def test_unsupported_conclusion_is_replaced_and_said(
    vocab: EmotionVocabulary, reply: str, problem: str
) -> None:
    engine = ScriptedEngine(reply=lambda _p: reply)
    deltas, ex = run_clues(ExplainerCore(vocab, engine), SARCASM)
    assert reply not in "".join(deltas)  # never streamed
    assert ex.model == COMPOSER_INFO and ex.text == "".join(deltas).strip()
    assert any("not used" in w and problem in w for w in ex.warnings), ex.warnings
    assert {"annoyed", "sarcastic"} <= {lab.word for lab in ex.labels}


def test_grounded_conclusion_is_kept(vocab: EmotionVocabulary) -> None:
    reply = "annoyed and sarcastic, as the frown shows."
    engine = ScriptedEngine(reply=lambda _p: reply)
    _, ex = run_clues(ExplainerCore(vocab, engine), SARCASM)
    assert ex.text.endswith("Therefore, the main character feels " + reply), ex.warnings
    assert not ex.warnings
    assert ex.model.backend == "scripted"
    # The LLM sees the clues in the structured form, with the reading of the words.
    prompt = str(engine.calls[0].prompt)
    assert "- Face: anger (0.80)" in prompt and "sarcastic" in prompt


def test_description_mode_drops_only_the_unsupported_sentence(vocab: EmotionVocabulary) -> None:
    reply = (
        "the man frowns. In the audio, his voice is tense. His mother is at the party. "
        "Therefore, he is annoyed and sarcastic."
    )
    engine = ScriptedEngine(reply=lambda _p: reply)
    core = ExplainerCore(vocab, engine, llm_writes="description", disambiguate_text=False)
    deltas, ex = run_clues(core, SARCASM)
    assert "mother" not in "".join(deltas) and "mother" not in ex.text
    assert ex.text.startswith("In the video, the man frowns.") and "annoyed" in ex.text
    assert any("dropped" in w and "mother" in w for w in ex.warnings)
