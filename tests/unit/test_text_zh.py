"""The Chinese subtitle reader (services/text/chinese.py) on its own: categories, negation,
reproach, the Clue contract, and that every lexicon word has a basic category."""

from __future__ import annotations

import time

import pytest

from services.common.types import BASIC_EMOTIONS, Modality
from services.common.zh_lexicon import ZH_EMOTION
from services.text.chinese import BASIC_OF, NAME, ChineseTextReader

NEGATIVE = {"angry", "disgust", "fear", "sad"}


@pytest.fixture(scope="module")
def reader() -> ChineseTextReader:
    return ChineseTextReader()


def top(scores: dict[str, float]) -> str:
    return max(scores, key=lambda k: scores[k])


def test_every_lexicon_word_has_a_basic_category() -> None:
    missing = {e for forms in ZH_EMOTION.values() for e in forms if e not in BASIC_OF}
    assert not missing, sorted(missing)
    assert set(BASIC_OF.values()) <= set(BASIC_EMOTIONS)


def test_happy_subtitle(reader: ChineseTextReader) -> None:
    clue = reader.analyze("我太高兴了，我们终于赢了！")
    assert clue.available and clue.modality == Modality.TEXT
    assert top(clue.emotion_scores) == "happy"
    assert clue.valence > 0.3 and clue.arousal > 0.3  # "!" and "太" add arousal
    assert sum(clue.emotion_scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert set(clue.emotion_scores) == set(BASIC_EMOTIONS)
    assert clue.model is not None and clue.model.name == NAME
    assert clue.description[-1] == "Read as Chinese."
    assert "joy" in clue.description[0]


def test_reproach_is_negative(reader: ChineseTextReader) -> None:
    # No negative word at all, and "信任" (trust) is positive: the reproach decides.
    clue = reader.analyze("你怎么能这样对我？我那么信任你。")
    assert top(clue.emotion_scores) in NEGATIVE
    assert clue.valence < -0.2
    assert clue.measurements["reproach_markers"] >= 1
    assert clue.measurements["surface_valence"] > clue.valence
    assert len(clue.observations) == 2  # one per sentence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我好害怕，怎么办？", "fear"),
        ("真的吗？你要结婚了？", "surprise"),
        ("你太过分了，我受够了！", "angry"),
        ("我有点失望。", "sad"),
        ("真恶心，我讨厌这种人。", "disgust"),
        ("明天下午三点开会。", "neutral"),
    ],
)
def test_categories(reader: ChineseTextReader, text: str, expected: str) -> None:
    assert top(reader.analyze(text).emotion_scores) == expected


def test_negation(reader: ChineseTextReader) -> None:
    calm = reader.analyze("他并不生气。")
    assert top(calm.emotion_scores) != "angry"
    assert calm.emotion_scores["angry"] < reader.analyze("他很生气。").emotion_scores["angry"]
    # A negated positive word reads negative.
    unhappy = reader.analyze("我一点也不快乐。")
    assert top(unhappy.emotion_scores) in NEGATIVE and unhappy.valence < 0


def test_cheap(reader: ChineseTextReader) -> None:
    text = "你怎么能这样对我？我那么信任你。我太高兴了，我们终于赢了！" * 3
    started = time.perf_counter()
    for _ in range(50):
        reader.analyze(text)
    assert (time.perf_counter() - started) / 50 < 0.02  # milliseconds, not a model
