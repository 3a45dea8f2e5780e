"""The deterministic explainer and the emotion-wheel vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
from emer_eval.vocabulary import EmotionVocabulary, load_vocabulary

from services.common.types import BASIC_EMOTIONS, Clue, Modality, Transcript
from services.explainer.composer import compose, fuse


def clue(modality: Modality, top: str, p: float, valence: float, arousal: float, text: str) -> Clue:
    rest = (1 - p) / 6
    return Clue(
        modality,
        True,
        description=[text],
        emotion_scores={e: (p if e == top else rest) for e in BASIC_EMOTIONS},
        valence=valence,
        arousal=arousal,
    )


@pytest.fixture(scope="module")
def vocab(emer_data: Path) -> EmotionVocabulary:
    v = load_vocabulary(str(emer_data / "emer" / "wheel"))
    assert v is not None
    return v


def test_vocabulary_maps_words_through_forms_to_wheel_categories(vocab: EmotionVocabulary) -> None:
    # From the MER wheel files: happiness -> happy (wheel1 level1), angry -> mad.
    assert vocab.category("happiness", "wheel1", "level1") == "happy"
    assert vocab.category("Angry", "wheel1", "level1") == "mad"
    assert "wheel2/level1:sad" in vocab.categories("sad")
    assert not vocab.is_emotion("table")
    assert vocab.categories("neutral") == []


def test_excited_speaker_with_smile(vocab: EmotionVocabulary) -> None:
    visual = clue(Modality.VISUAL, "happy", 0.8, 0.7, 0.5, "The person smiles broadly.")
    audio = clue(Modality.AUDIO, "happy", 0.4, 0.3, 0.8, "The voice is loud and fast.")
    text = clue(Modality.TEXT, "happy", 0.7, 0.8, 0.5, "The words are joyful.")
    tr = Transcript("We won!", "en", [], "subtitle")
    ex = compose(audio, visual, text, tr, vocab)
    assert ex.basic_category == "happy"
    words = [lab.word for lab in ex.labels]
    assert words[:2] == ["happy", "excited"]
    assert ex.text.startswith("In the video, the person smiles broadly.")
    assert "In the audio" in ex.text and '"We won!"' in ex.text and "Therefore" in ex.text
    happy = ex.labels[0]
    assert set(happy.modalities) == {Modality.VISUAL, Modality.AUDIO, Modality.TEXT}
    assert "wheel1/level1:happy" in happy.wheel_categories
    assert ex.valence > 0.4 and ex.arousal > 0.4


def test_unavailable_modality_is_named_and_ignored_in_fusion() -> None:
    visual = Clue.unavailable(Modality.VISUAL, "no face detected in the 20 sampled frames")
    text = clue(Modality.TEXT, "sad", 0.8, -0.7, -0.4, "The words are sad.")
    scores, valence, _ = fuse([visual, text])
    assert max(scores, key=lambda k: scores[k]) == "sad" and valence < 0
    ex = compose(None, visual, text, Transcript("I miss her.", "en", [], "subtitle"), None)
    assert "no facial clue could be read (no face detected" in ex.text
    assert "In the audio" not in ex.text  # not requested, not mentioned
    assert ex.labels[0].word == "sad"
    assert ex.warnings  # no wheel configured


def test_mixed_anger_and_sadness_gives_frustrated() -> None:
    visual = clue(Modality.VISUAL, "sad", 0.6, -0.5, 0.1, "The brows are lowered.")
    text = clue(Modality.TEXT, "angry", 0.6, -0.6, 0.4, "The words are angry.")
    ex = compose(
        None, visual, text, Transcript("Why would you do that?", "en", [], "subtitle"), None
    )
    words = {lab.word for lab in ex.labels}
    assert {"sad", "frustrated"} <= words and words & {"angry", "annoyed"}


def test_no_available_clue_is_neutral() -> None:
    scores, valence, arousal = fuse([Clue.unavailable(Modality.TEXT, "no text")])
    assert scores["neutral"] == 1.0 and valence == 0.0 and arousal == 0.0


def test_a_chinese_line_keeps_its_own_full_stop() -> None:
    text = clue(Modality.TEXT, "happy", 0.7, 0.5, 0.3, "The words clearly express joy.")
    line = "今天我非常高兴，因为我的朋友来看我。"
    ex = compose(None, None, text, Transcript(line, "zh", [], "subtitle"), None)
    assert f'"{line}"' in ex.text  # no "." added after "。"
    assert "。." not in ex.text
