"""The EMER metrics: reference figures from MERTools and small hand-computed cases."""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from emer_eval.metrics import (
    WHEELS,
    openset_metric,
    parse_label_list,
    read_openset_csv,
    read_synonym_zip,
    reference_tokens,
    wheel_category,
    wheel_metric,
    write_openset_csv,
)
from emer_eval.vocabulary import EmotionVocabulary, load_vocabulary

from clients.eval_commands import register


@pytest.fixture(scope="module")
def emer(emer_data: Path) -> Path:
    return emer_data / "emer"


@pytest.fixture(scope="module")
def vocab(emer: Path) -> EmotionVocabulary:
    v = load_vocabulary(str(emer / "wheel"))
    assert v is not None
    return v


# --- reference figures (MERTools MER2024 main-ov.py and MER2025/2026 wheel metric) -----------


def test_wheel_metric_reproduces_reference(emer: Path, vocab: EmotionVocabulary) -> None:
    gold = read_openset_csv(emer / "check-openset.csv")
    pred = read_openset_csv(emer / "predict-openset.csv")
    assert len(gold) == len(pred) == 332
    result = wheel_metric(gold, pred, vocab)
    assert round(result.level1_f, 2) == 55.46
    assert round(result.level2_f, 2) == 42.46
    assert set(result.per_wheel) == {"level1", "level2"}
    assert set(result.per_wheel["level1"]) == set(WHEELS)
    assert result.missing_predictions == [] and result.extra_predictions == []


def test_openset_metric_reproduces_reference(emer: Path) -> None:
    gold = read_openset_csv(emer / "check-openset.csv")
    pred = read_openset_csv(emer / "predict-openset.csv")
    result = openset_metric(gold, pred, emer / "openset-synonym.zip")
    assert result.samples == 332
    assert round(result.accuracy, 5) == 0.58178
    assert round(result.recall, 5) == 0.49779
    assert round(result.mean, 5) == 0.53978


def test_openset_reference_splits_words_on_quotes() -> None:
    # The reference parser splits "don't believe" into "don" and "t believe", and the shipped
    # synonym groups were generated from those pieces.
    assert reference_tokens(["don't believe", "doubt"]) == ["don", "t believe", "doubt"]
    groups = {"s": [["t believe", "doubt"], ["displeasure", "don"]]}
    gold = {"s": ["doubt", "displeasure"]}
    pred = {"s": ["don't believe"]}
    assert openset_metric(gold, pred, groups).accuracy == 1.0
    assert openset_metric(gold, pred, groups, split_quotes=False).accuracy == 0.0


# --- hand-computed cases ----------------------------------------------------------------------


def test_identical_prediction_scores_100(vocab: EmotionVocabulary) -> None:
    gold = {"a": ["happy", "angry"], "b": ["worried"]}
    result = wheel_metric(gold, dict(gold), vocab)
    assert result.level1_f == pytest.approx(100.0)
    assert result.level2_f == pytest.approx(100.0)


def test_empty_prediction_scores_zero(vocab: EmotionVocabulary) -> None:
    gold = {"a": ["happy"]}
    preds: list[dict[str, list[str]]] = [{"a": []}, {}]
    for pred in preds:
        result = wheel_metric(gold, pred, vocab)
        assert result.level1_f == 0.0 and result.level2_f == 0.0
    assert wheel_metric(gold, {}, vocab).missing_predictions == ["a"]


def test_unmapped_labels_are_dropped(vocab: EmotionVocabulary) -> None:
    assert wheel_category("table", vocab, "wheel1", "level1") is None
    gold = {"a": ["happy"], "skipped": ["table"]}  # mapped gold empty: sample skipped
    pred = {"a": ["happy", "table", "xyzzy"], "skipped": ["happy"]}
    result = wheel_metric(gold, pred, vocab)
    assert result.level1_f == pytest.approx(100.0)
    assert all(s.samples == 1 for s in result.per_wheel["level1"].values())


def test_half_right_prediction(vocab: EmotionVocabulary) -> None:
    # wheel1 level1: happy -> happy, angry -> mad. P = {happy, mad}, G = {happy}:
    # precision 1/2, recall 1, F = 2/3.
    assert wheel_category("happy", vocab, "wheel1", "level1") == "happy"
    assert wheel_category("angry", vocab, "wheel1", "level1") == "mad"
    result = wheel_metric({"a": ["happy"]}, {"a": ["happy", "angry"]}, vocab)
    s = result.per_wheel["level1"]["wheel1"]
    assert (s.precision, s.recall) == pytest.approx((50.0, 100.0))
    assert s.f == pytest.approx(200 / 3)


def test_wheel_category_tie_break_is_on_the_wheel_word(vocab: EmotionVocabulary) -> None:
    # "worried" has synonyms in several wheel4 level2 categories; the reference takes the
    # alphabetically first synonym that the wheel knows, not the first category.
    word, wheel, level = "worried", "wheel4", "level2"
    table = vocab.wheels[wheel][level]
    synonyms = sorted(
        w for base in vocab.format_mapping[word] for w in vocab.raw_mapping.get(base, [])
    )
    first = next(w for w in synonyms if w in table)
    assert wheel_category(word, vocab, wheel, level) == table[first] == "worried"
    assert sorted({table[w] for w in synonyms if w in table})[0] != "worried"


def test_openset_hand_case() -> None:
    groups = {"a": [["happy", "joyful"], ["sad"]], "b": [["angry"]]}
    gold = {"a": ["Joyful", "sad"], "b": ["angry"]}
    pred = {"a": ["happy"], "b": []}
    result = openset_metric(gold, pred, groups)
    # a: G = {happy, sad}, P = {happy}: accuracy 1, recall 1/2. b: empty prediction: 0, 0.
    assert result.samples == 2
    assert result.accuracy == pytest.approx(0.5)
    assert result.recall == pytest.approx(0.25)
    assert result.mean == pytest.approx(0.375)


# --- files ------------------------------------------------------------------------------------


def test_parse_label_list() -> None:
    assert parse_label_list("['happy', \"don't care\"]") == ["happy", "don't care"]
    assert parse_label_list("") == []
    assert parse_label_list("[]") == []
    for bad in ("[happy", "happy", "__import__('os')", "[1, 2]", "{'a': 1}"):
        with pytest.raises(ValueError):
            parse_label_list(bad)


def test_bad_csv_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "pred.csv"
    path.write_text("name,openset\na,\"['happy']\"\nb,\"['sad'\"\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 3 \(sample b\)"):
        read_openset_csv(path)
    path.write_text("name,labels\na,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        read_openset_csv(path)
    path.write_text("name,openset\na,['x']\na,['y']\n", encoding="utf-8")
    with pytest.raises(ValueError, match="appears twice"):
        read_openset_csv(path)


def test_csv_round_trip(tmp_path: Path) -> None:
    labels = {"a": ["happy", "don't care"], "b": []}
    write_openset_csv(tmp_path / "p.csv", labels)
    assert read_openset_csv(tmp_path / "p.csv") == labels


def test_synonym_zip_rejects_bad_members(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as z, z.open("openset-synonym/s1.npy", "w") as f:
        np.save(f, np.array("[['happy', 'joyful']]"))
    assert read_synonym_zip(good) == {"s1": [["happy", "joyful"]]}
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z, z.open("openset-synonym/s1.npy", "w") as f:
        np.save(f, np.array("[['happy'"))
    with pytest.raises(ValueError, match=r"s1\.npy"):
        read_synonym_zip(bad)


# --- the `emer eval` commands -----------------------------------------------------------------


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="emer")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_eval_commands(emer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold, pred = str(emer / "check-openset.csv"), str(emer / "predict-openset.csv")
    wheel_dir = str(emer / "wheel")
    assert _run(["eval", "wheel", "--gold", gold, "--pred", pred, "--wheel-dir", wheel_dir]) == 0
    assert "level1 F 55.46   level2 F 42.46" in capsys.readouterr().out
    argv = ["eval", "wheel", "--gold", gold, "--pred", pred, "--wheel-dir", wheel_dir, "--json"]
    assert _run(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert round(doc["level1_f"], 2) == 55.46 and round(doc["level2_f"], 2) == 42.46
    assert set(doc["per_wheel"]["level2"]) == set(WHEELS)
    synonyms = str(emer / "openset-synonym.zip")
    argv = ["eval", "openset", "--gold", gold, "--pred", pred, "--synonyms", synonyms, "--json"]
    assert _run(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["accuracy"], doc["recall"], doc["mean"]) == (0.58178, 0.49779, 0.53978)

    bad = tmp_path / "bad.csv"
    bad.write_text("name,openset\nx,[oops\n", encoding="utf-8")
    assert _run(["eval", "wheel", "--gold", gold, "--pred", str(bad)]) == 2
    assert "line 2 (sample x)" in capsys.readouterr().err
    assert _run(["eval", "openset", "--gold", gold, "--pred", pred, "--synonyms", gold]) == 2
    assert "not a zip" in capsys.readouterr().err
    missing = str(tmp_path / "missing.csv")
    assert _run(["eval", "wheel", "--gold", missing, "--pred", pred]) == 2
    assert "no such file" in capsys.readouterr().err
    no_wheel = ["eval", "wheel", "--gold", gold, "--pred", pred, "--wheel-dir", str(tmp_path)]
    assert _run(no_wheel) == 2
    assert "wheel_mapping.npz not found" in capsys.readouterr().err
