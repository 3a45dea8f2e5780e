"""The deterministic label extractor: behaviour on hand-written descriptions and on the dev set."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from emer_eval.metrics import read_openset_csv, wheel_metric
from emer_eval.vocabulary import EmotionVocabulary, load_vocabulary

from services.explainer.extraction import (
    ExtractedLabel,
    ExtractionConfig,
    Extractor,
    candidate_labels,
    extract_labels,
    faithful_form,
    split_sentences,
)


@pytest.fixture(scope="module")
def vocab(emer_data: Path) -> EmotionVocabulary:
    v = load_vocabulary(str(emer_data / "emer" / "wheel"))
    assert v is not None
    return v


def words(text: str, vocab: EmotionVocabulary) -> list[str]:
    return [label.word for label in extract_labels(text, vocab)]


def test_conclusion_wins_over_evidence(vocab: EmotionVocabulary) -> None:
    text = (
        "In the video, the man frowns at first and looks a bit annoyed. "
        "In the audio, his voice is loud. "
        'In the text, the subtitle says: "We won the match!" '
        "Based on his smile at the end, we can infer that he is happy and excited. "
        "Therefore, this sentence expresses his joy."
    )
    labels = extract_labels(text, vocab)
    assert all(isinstance(label, ExtractedLabel) for label in labels)
    got = [label.word for label in labels]
    assert "happy" in got and "excited" in got
    assert "annoyed" not in got  # evidence only, and only "a bit"
    assert all(0 < label.confidence <= 1 for label in labels)
    happy = next(label for label in labels if label.word == "happy")
    assert happy.evidence_sentence.startswith("Based on his smile")


def test_negation(vocab: EmotionVocabulary) -> None:
    text = "In the video, the man smiles. Therefore, he does not seem angry; he appears happy."
    assert words(text, vocab) == ["happy"]
    text = "Therefore, she shows no sign of sadness, but she is clearly annoyed."
    assert words(text, vocab) == ["annoyed"]
    text = "Overall, she speaks without any nervousness and seems relieved."
    assert words(text, vocab) == ["relieved"]
    # "not only ... but also" is no negation.
    text = "Therefore, he is not only surprised but also delighted."
    assert set(words(text, vocab)) == {"surprised", "delighted"}


def test_other_character(vocab: EmotionVocabulary) -> None:
    text = "Therefore, the other person seems angry, while she remains happy."
    assert words(text, vocab) == ["happy"]
    text = "Based on the other person's anger, we can infer that he feels guilty."
    assert words(text, vocab) == ["guilty"]


def test_hedge_lowers_confidence_only(vocab: EmotionVocabulary) -> None:
    plain = extract_labels("Therefore, the person is frustrated.", vocab)
    hedged = extract_labels("Therefore, the person is a bit frustrated.", vocab)
    assert [x.word for x in plain] == [x.word for x in hedged] == ["frustrated"]
    assert hedged[0].confidence < plain[0].confidence


def test_non_emotion_forms_are_ignored(vocab: EmotionVocabulary) -> None:
    # "person", "content", "facial", "open", "bit" are in the word-form map but are no emotions.
    assert vocab.is_emotion("bit") and vocab.is_emotion("content") and vocab.is_emotion("person")
    text = (
        "In the video, the person has an open mouth and a neutral facial expression. "
        "In the text, the subtitle content is a bit short. "
        "Therefore, the person is engaged in a conversation."
    )
    assert words(text, vocab) == []


def test_no_emotion_gives_empty_list(vocab: EmotionVocabulary) -> None:
    text = (
        "In the video, a man stands in a room. In the audio, it is impossible to determine "
        'the emotional state. In the text, the subtitle says "Hello."'
    )
    assert words(text, vocab) == []
    assert words("", vocab) == []


def test_quoted_speech_is_not_the_describer(vocab: EmotionVocabulary) -> None:
    text = (
        'In the text, the subtitle says "I am so angry and sad!" Therefore, she is joking happily.'
    )
    assert "angry" not in words(text, vocab) and "sad" not in words(text, vocab)


def test_synonyms_are_one_label_and_list_is_capped(vocab: EmotionVocabulary) -> None:
    text = (
        "Therefore, he feels anger; he is angry, happy, sad, worried, surprised, "
        "disgusted and scared."
    )
    got = words(text, vocab)
    assert not ({"anger", "angry"} <= set(got))
    assert len(got) <= ExtractionConfig().max_labels


def test_missing_space_after_full_stop_splits() -> None:
    text = 'She said "Wait. Stop." and left.In the audio, the tone is flat.'
    assert split_sentences(text) == [
        'She said "Wait. Stop." and left.',
        "In the audio, the tone is flat.",
    ]


def test_composer_style_conclusion(vocab: EmotionVocabulary) -> None:
    text = (
        "In the video, the person smiles broadly. In the audio, the voice is loud and fast. "
        'In the text, the person says: "We won!" The words are joyful. Therefore, judging '
        "mainly from the audio, text and visual clues, the person most likely feels happy and "
        "excited, with high energy and a positive tone overall."
    )
    got = words(text, vocab)
    assert got[:2] == ["happy", "excited"] and "judging" not in got


def test_candidates_are_a_ranked_superset(vocab: EmotionVocabulary) -> None:
    text = (
        "In the video, the man looks a bit annoyed. "
        "Based on his smile, we can infer that he is happy and relieved."
    )
    chosen = [x.word for x in extract_labels(text, vocab)]
    candidates = [x.word for x in candidate_labels(text, vocab)]
    assert candidates[: len(chosen)] == chosen
    assert "annoyed" in candidates and "annoyed" not in chosen


# --- dev set ----------------------------------------------------------------------------------


def _naive(text: str, vocab: EmotionVocabulary) -> list[str]:
    """Every vocabulary word form anywhere in the text (the BRIEF's naive baseline)."""
    tokens = re.findall(r"[a-z]+(?:[-'][a-z]+)*", text.lower())
    longest = max(len(k.split()) for k in vocab.format_mapping)
    found = {
        " ".join(tokens[i : i + n])
        for i in range(len(tokens))
        for n in range(1, min(longest, len(tokens) - i) + 1)
    }
    return sorted(found & vocab.format_mapping.keys())


def test_dev_descriptions_beat_the_baselines(emer_data: Path, vocab: EmotionVocabulary) -> None:
    emer = emer_data / "emer"
    with (emer / "emer-fine-descriptions.csv").open(newline="", encoding="utf-8") as handle:
        descriptions = {row["name"]: row["english"] for row in csv.DictReader(handle)}
    assert len(descriptions) == 230
    gold_all = read_openset_csv(emer / "check-openset.csv")
    gold = {n: gold_all[n] for n in descriptions}
    extractor = Extractor(vocab)

    naive = wheel_metric(gold, {n: _naive(t, vocab) for n, t in descriptions.items()}, vocab)
    last_two = wheel_metric(
        gold,
        {
            n: _naive(" ".join(re.split(r"(?<=[.!?])\s+", t.strip())[-2:]), vocab)
            for n, t in descriptions.items()
        },
        vocab,
    )
    rules = wheel_metric(
        gold,
        {n: [x.word for x in extractor.extract(t)] for n, t in descriptions.items()},
        vocab,
    )
    # The BRIEF's measurements: naive 56.5 / 38.0, last two sentences ~63 / ~47.
    assert round(naive.level1_f, 1) == 56.5 and round(naive.level2_f, 1) == 38.0
    assert last_two.level1_f > 62 and last_two.level2_f > 46
    # Measured 77.5 / 66.8 (docs/labels.md); 71.6 / 61.1 on held-out data before the
    # faithful-form rule.
    assert rules.level1_f >= 72 and rules.level2_f >= 60
    assert rules.level1_f > last_two.level1_f + 5 and rules.level2_f > last_two.level2_f + 5


def test_faithful_forms_keep_inflections_and_drop_string_edits(vocab: EmotionVocabulary) -> None:
    def ok(form: str) -> bool:
        return faithful_form(form, vocab.format_mapping[form])

    # Inflections, affect words and derived emotion nouns stay.
    for form in ("angrier", "happiness", "sadness", "curiosity", "worried", "frustration"):
        if form in vocab.format_mapping:
            assert ok(form), form
    # Unrelated words the automatic form map turned into emotions are dropped.
    for form in ("balances", "distancing", "invented", "person", "living"):
        assert form in vocab.format_mapping
        assert not ok(form), form


def test_unseen_non_emotion_form_is_not_a_label(vocab: EmotionVocabulary) -> None:
    # "balances" (-> balanced) and "distancing" (-> distanced) are in no stop list.
    text = (
        "In the video, the woman sits at a table. "
        "Therefore, she balances her words while distancing herself, and she feels anxious."
    )
    assert words(text, vocab) == ["anxious"]


def test_every_wheel_gets_a_label_the_description_names(vocab: EmotionVocabulary) -> None:
    # "dissatisfaction" sits on no level of wheel3 or wheel5: alone, the answer would read as
    # no answer there. The evidence names "annoyed", which every wheel places.
    text = (
        "In the video, the woman frowns and looks annoyed. "
        "In the audio, her voice is sharp. "
        "Therefore, she expresses dissatisfaction."
    )
    got = words(text, vocab)
    assert got[0] == "dissatisfaction"
    assert "annoyed" in got
    for wheel in ("wheel3", "wheel5"):
        assert any(vocab.category(w, wheel, "level1") for w in got), wheel
    # Nothing is invented: without a candidate the wheel stays uncovered.
    alone = words("Therefore, she expresses dissatisfaction.", vocab)
    assert alone == ["dissatisfaction"]
    uncovered = Extractor(vocab, ExtractionConfig(cover_wheels=False))
    assert [label.word for label in uncovered.extract(text)] == ["dissatisfaction"]
