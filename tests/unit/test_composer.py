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


def _scores(**given: float) -> dict[str, float]:
    assert sum(given.values()) == pytest.approx(1.0)
    return {e: given.get(e, 0.0) for e in BASIC_EMOTIONS}


def test_the_answer_is_a_category_some_clue_read_first() -> None:
    # An angry voice and sad words, each with neutral as its runner-up: their mix puts
    # neutral first, though no clue read neutral first.
    audio = Clue(
        Modality.AUDIO,
        True,
        description=["The voice is loud and tense."],
        emotion_scores=_scores(
            angry=0.37, neutral=0.31, sad=0.12, happy=0.08, fear=0.05, surprise=0.04, disgust=0.03
        ),
        valence=-0.2,
        arousal=0.5,
    )
    text = Clue(
        Modality.TEXT,
        True,
        description=["The words suggest some grief."],
        emotion_scores=_scores(
            sad=0.34, neutral=0.30, angry=0.14, happy=0.08, fear=0.06, surprise=0.04, disgust=0.04
        ),
        valence=-0.3,
        arousal=-0.1,
    )
    scores, _, _ = fuse([audio, text])
    assert max(scores, key=lambda k: scores[k]) == "neutral"
    ex = compose(audio, None, text, Transcript("Nobody came.", "en", [], "subtitle"), None)
    assert ex.basic_category in {"sad", "angry"}
    assert ex.labels[0].word != "neutral"
    # The fused scores are reported as they are: only the answer keeps to what a clue said.
    assert max(ex.basic_scores, key=lambda k: ex.basic_scores[k]) == "neutral"


def test_the_demo_recording_of_a_let_down_speaker_is_not_neutral(
    vocab: EmotionVocabulary,
) -> None:
    """demo/inputs/waited.wav through the embedded audio and text models: an irritated voice,
    resigned words ("... nobody came. I guess it does not matter anymore.")."""
    from services.audio import AudioConfig
    from services.audio import load_model as load_audio
    from services.media.decode import DecodeOptions, MediaKind, decode_media
    from services.text import TextConfig
    from services.text import load_model as load_text

    wav = Path(__file__).resolve().parents[2] / "demo" / "inputs" / "waited.wav"
    clip = decode_media(wav.read_bytes(), MediaKind.AUDIO, DecodeOptions()).audio
    assert clip is not None
    heard = load_audio(AudioConfig()).analyze(clip, transcribe=True)
    assert heard.transcript is not None and "nobody came" in heard.transcript.text.lower()
    text = load_text(TextConfig()).analyze(heard.transcript.text)
    ex = compose(heard.clue, None, text, heard.transcript, vocab)
    assert ex.basic_category != "neutral" and ex.labels[0].word != "neutral", ex.labels
