"""Face tracks, the main character and the expression over time, on real FER2013 faces.

The clips are built here from the shared FER2013 faces, upscaled and placed on a grey
background (BlazeFace finds them from ~200 px), at 5 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.common.models import VisualClueModel
from services.common.types import Clue, Person, VideoFrames
from services.visual import VisualConfig, load_model
from services.visual.tracking import TrackStats, choose_main, track_boxes

FacesByLabel = dict[str, list[np.ndarray]]
FPS = 5


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def place(canvas: np.ndarray, face: np.ndarray, side: int, x: int, y: int) -> None:
    canvas[y : y + side, x : x + side] = cv2.resize(
        face, (side, side), interpolation=cv2.INTER_CUBIC
    )


def clip(frames: list[np.ndarray]) -> VideoFrames:
    return VideoFrames(
        frames=frames,
        timestamps=[i / FPS for i in range(len(frames))],
        duration_s=len(frames) / FPS,
    )


def main_person(clue: Clue) -> Person:
    mains = [p for p in clue.persons if p.main_character]
    assert len(mains) == 1, [p.person_id for p in clue.persons]
    return mains[0]


@pytest.fixture(scope="module")
def model() -> Iterator[VisualClueModel]:
    visual = load_model(VisualConfig())
    visual.warmup()
    yield visual


@pytest.fixture(scope="module")
def fer_faces(emer_data: Path) -> FacesByLabel:
    faces: FacesByLabel = {}
    for path in sorted((emer_data / "faces" / "fer2013").glob("*.jpg")):
        faces.setdefault(path.name.split("_")[0], []).append(read_rgb(path))
    assert sum(len(v) for v in faces.values()) >= 100
    return faces


def _in_frame(model: VisualClueModel, face: np.ndarray) -> Clue:
    canvas = np.full((480, 640, 3), 96, np.uint8)
    place(canvas, face, 220, 380, 120)
    return model.analyze(VideoFrames([canvas], [0.0], 0.0))


@pytest.fixture(scope="module")
def mouths(model: VisualClueModel, fer_faces: FacesByLabel) -> tuple[np.ndarray, np.ndarray]:
    """A closed-mouth neutral face and an open-mouth surprised one, by the clue's own mouth cue.

    Shown in turn at one place they make a face whose mouth opens and closes, as in speech.
    """

    def opening(face: np.ndarray) -> float:
        clue = _in_frame(model, face)
        assert clue.available
        return clue.measurements.get("mouth_open", float("nan"))

    closed = min(fer_faces["neutral"], key=lambda f: np.nan_to_num(opening(f), nan=9.0))
    wide = max(fer_faces["surprise"], key=lambda f: np.nan_to_num(opening(f), nan=-9.0))
    assert opening(wide) > opening(closed) + 0.3
    return closed, wide


def two_person_clip(
    left: list[np.ndarray], right: list[np.ndarray], left_side: int, right_side: int, n: int = 10
) -> list[np.ndarray]:
    """n frames (2 s at 5 fps): one face on each side, drifting a little; the lists cycle."""
    frames = []
    for i in range(n):
        canvas = np.full((480, 640, 3), 96, np.uint8)
        place(canvas, left[i % len(left)], left_side, 20 + 2 * i, 100 + i)
        place(canvas, right[i % len(right)], right_side, 620 - right_side - 2 * i, 130)
        frames.append(canvas)
    return frames


def test_two_faces_two_tracks_and_the_speaker_is_the_main_character(
    model: VisualClueModel, fer_faces: FacesByLabel, mouths: tuple[np.ndarray, np.ndarray]
) -> None:
    """The larger face stays still; the smaller one's mouth opens and closes: it is the speaker."""
    still_face = fer_faces["happy"][0]
    frames = two_person_clip([still_face], list(mouths), left_side=260, right_side=220)
    clue = model.analyze(clip(frames))
    assert clue.available
    assert [p.person_id for p in clue.persons] == ["person-1", "person-2"]  # left appears first
    assert clue.measurements["tracks"] == 2 and clue.measurements["max_faces"] == 2
    for person in clue.persons:
        # One id per person over the whole clip: no track was split or swapped.
        assert person.start_s == 0.0 and person.end_s == pytest.approx(1.8)
        assert "visible in 10 of the 10 sampled frames" in person.description[0]
    main = main_person(clue)
    assert main.person_id == "person-2"
    assert "mouth moves the most" in main.main_character_reason
    # The clue names its main character and the rule, then is the main character's own.
    assert "person-2, the main character" in clue.description[0]
    assert main.main_character_reason in clue.description[0]
    assert clue.description[1:] == main.description
    assert clue.emotion_scores == main.emotion_scores
    other = next(p for p in clue.persons if not p.main_character)
    assert other.main_character_reason == ""
    assert max(other.emotion_scores, key=lambda e: other.emotion_scores[e]) == "happy"


def test_without_mouth_movement_the_largest_face_is_the_main_character(
    model: VisualClueModel, fer_faces: FacesByLabel, mouths: tuple[np.ndarray, np.ndarray]
) -> None:
    closed, _ = mouths
    frames = two_person_clip([fer_faces["happy"][0]], [closed], left_side=200, right_side=280)
    clue = model.analyze(clip(frames))
    assert [p.person_id for p in clue.persons] == ["person-1", "person-2"]
    main = main_person(clue)
    assert main.person_id == "person-2"  # the larger face, on the right
    assert "largest and most frontal" in main.main_character_reason
    assert clue.emotion_scores == main.emotion_scores


def test_a_person_missing_for_two_frames_keeps_their_id(
    model: VisualClueModel, fer_faces: FacesByLabel
) -> None:
    frames = two_person_clip([fer_faces["happy"][0]], [fer_faces["sad"][0]], 260, 220)
    for i in (4, 5):
        frames[i][:, 330:] = 96  # the right-hand person leaves the frame briefly
    clue = model.analyze(clip(frames))
    assert len(clue.persons) == 2
    right = clue.persons[1]
    assert (right.start_s, right.end_s) == (0.0, pytest.approx(1.8))
    assert "visible in 8 of the 10 sampled frames" in right.description[0]


def test_one_face_gives_one_person(model: VisualClueModel, fer_faces: FacesByLabel) -> None:
    frames = []
    for i in range(10):
        canvas = np.full((480, 640, 3), 96, np.uint8)
        place(canvas, fer_faces["happy"][1], 240, 150 + 5 * i, 100)
        frames.append(canvas)
    clue = model.analyze(clip(frames))
    assert len(clue.persons) == 1
    person = clue.persons[0]
    assert person.person_id == "person-1" and person.main_character
    assert person.main_character_reason == "the only face in the clip"
    assert clue.description == person.description
    assert clue.emotion_scores == person.emotion_scores
    assert clue.measurements["tracks"] == 1


def test_still_image_is_one_person(model: VisualClueModel, fer_faces: FacesByLabel) -> None:
    clue = model.analyze(VideoFrames([fer_faces["sad"][0]], [0.0], 0.0))
    assert len(clue.persons) == 1 and clue.persons[0].main_character
    assert (clue.persons[0].start_s, clue.persons[0].end_s) == (0.0, 0.0)


def test_peak_moment_and_change_in_a_neutral_then_happy_clip(
    model: VisualClueModel, fer_faces: FacesByLabel
) -> None:
    """2 s neutral, then 2 s smiling: the peak is in the smile, the change is dated."""

    def score(face: np.ndarray, label: str) -> float:
        return _in_frame(model, face).emotion_scores[label]

    neutral = max(fer_faces["neutral"], key=lambda f: score(f, "neutral"))
    happy = max(fer_faces["happy"], key=lambda f: score(f, "happy"))
    frames = []
    for i in range(20):
        canvas = np.full((480, 640, 3), 96, np.uint8)
        place(canvas, neutral if i < 10 else happy, 240, 200 + 3 * i, 100)
        frames.append(canvas)
    clue = model.analyze(clip(frames))
    assert clue.measurements["peak_time_s"] >= 2.0
    assert clue.measurements["peak_expressiveness"] > 0.5
    text = " ".join(clue.description)
    assert "The most expressive moment is at" in text and "a smile (happy" in text
    assert "a neutral face at first, then a smile from 2.0 s" in text
    # Expressive frames weigh more than neutral ones: half smiling reads as smiling.
    assert max(clue.emotion_scores, key=lambda e: clue.emotion_scores[e]) == "happy"


def test_tracker_follows_boxes_through_gaps_and_order_changes() -> None:
    left = [np.array([10.0 + 3 * i, 50, 110 + 3 * i, 150]) for i in range(6)]
    right = [np.array([300.0 - 3 * i, 60, 380 - 3 * i, 140]) for i in range(6)]
    frames = [[left[0], right[0]], [right[1], left[1]], [left[2]], [left[3]], [right[4], left[4]]]
    tracks = track_boxes(frames, max_gap=2)
    assert len(tracks) == 2
    assert tracks[0] == [(0, 0), (1, 1), (2, 0), (3, 0), (4, 1)]
    assert tracks[1] == [(0, 1), (1, 0), (4, 0)]
    # Beyond the gap allowance the returning face starts a new track.
    assert len(track_boxes(frames, max_gap=1)) == 3


def test_main_character_rule() -> None:
    big = TrackStats("person-1", 0.01, area=0.2, frontal=1.0, frames=10, sampled=10)
    speaker = TrackStats("person-2", 0.08, area=0.05, frontal=0.9, frames=10, sampled=10)
    assert choose_main([big, speaker])[0] == 1
    quiet = TrackStats("person-2", 0.012, area=0.05, frontal=0.9, frames=10, sampled=10)
    index, reason = choose_main([big, quiet])
    assert index == 0 and "largest and most frontal" in reason
    # A large face seen only briefly loses to one present all along.
    brief = TrackStats("person-1", None, area=0.2, frontal=1.0, frames=2, sampled=10)
    steady = TrackStats("person-2", None, area=0.1, frontal=1.0, frames=10, sampled=10)
    assert choose_main([brief, steady])[0] == 1
