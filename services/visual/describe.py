"""How one face track reads over the clip: scores, cues, movement and sentences.

`summarise_track` turns the sampled frames of one person (expression probabilities and landmark
cues per frame) into what the clue says of them: clip scores weighted towards expressive frames,
the beginning / middle / end segments, the peak moment, how the expression changes, head
movement, valence/arousal and measurements. Identity is never described.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from services.common.types import Observation
from services.visual import timeline
from services.visual.cues import FaceCues


@dataclass
class FrameFace:
    """What one sampled frame shows of one face."""

    t: float
    n_faces: int
    box: np.ndarray  # x0, y0, x1, y1 in frame pixels
    face_size: float  # box side in pixels, to normalise movement
    probs: np.ndarray  # over BASIC_EMOTIONS
    cues: FaceCues | None
    precropped: bool


# Where each basic category sits on the valence/arousal plane (circumplex, rounded from
# Russell 1980 and the NRC VAD lexicon); the clip's values are the score-weighted mean.
_VA: dict[str, tuple[float, float]] = {
    "angry": (-0.6, 0.7),
    "disgust": (-0.7, 0.2),
    "fear": (-0.6, 0.6),
    "happy": (0.8, 0.4),
    "sad": (-0.7, -0.4),
    "surprise": (0.3, 0.7),
    "neutral": (0.0, -0.3),
}

# ----------------------------------------------------------------------------------------------
# Turning cues into words. Reference values are rough population figures for frontal faces
# (medians over FER2013 faces and portrait photos); they only pick words, never scores.

_NEUTRAL_MOUTH_WIDTH = 0.78  # mouth width / eye distance at rest
_NEUTRAL_BROW = 0.37  # brow height / eye distance at rest
_NEUTRAL_PITCH = -8.0  # the mesh's forehead-chin vector leans back a little on frontal faces

_SEGMENT_NAMES = ("At the beginning", "In the middle", "By the end")
_NOUNS = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "a neutral state",
}
# (slight, clear, strong) wording of each category as what the person does.
_PHRASES = {
    "angry": ("frowns slightly", "frowns and looks angry", "glares angrily"),
    "disgust": ("looks slightly put off", "looks disgusted", "grimaces in disgust"),
    "fear": ("looks slightly uneasy", "looks afraid", "looks frightened"),
    "happy": ("smiles slightly", "smiles", "smiles broadly"),
    "sad": ("looks slightly sad", "looks sad", "looks very sad"),
    "surprise": ("looks slightly surprised", "looks surprised", "looks astonished"),
    "neutral": (
        "keeps a mostly neutral expression",
        "keeps a neutral expression",
        "keeps a calm, neutral expression",
    ),
}


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def cue_intensities(cues: FaceCues) -> dict[str, float]:
    """0-1 intensities (and signed angles) of the action-unit-like cues of one face."""
    return {
        "smile_intensity": _clip01(
            0.7 * (cues.mouth_width - _NEUTRAL_MOUTH_WIDTH - 0.02) / 0.2
            + 0.3 * cues.corner_lift / 0.08
        ),
        "mouth_corners_down": _clip01(-cues.corner_lift / 0.1),
        "mouth_open": _clip01((cues.mouth_open - 0.05) / 0.45),
        "brow_raise": _clip01((cues.brow_height - _NEUTRAL_BROW - 0.02) / 0.08),
        "brow_lower": _clip01((_NEUTRAL_BROW - 0.02 - cues.brow_height) / 0.06),
        "eye_open": float(cues.eye_open),
        "head_yaw": float(cues.yaw),
        "head_pitch": float(cues.pitch - _NEUTRAL_PITCH),
        "head_roll": float(cues.roll),
    }


def cue_words(cue: dict[str, float]) -> list[str]:
    """Short phrases for the cues that stand out in (averaged) intensities."""
    words = []
    if cue.get("brow_raise", 0.0) >= 0.5:
        words.append("eyebrows raised")
    elif cue.get("brow_lower", 0.0) >= 0.5:
        words.append("eyebrows lowered")
    eye = cue.get("eye_open")
    if eye is not None:
        if eye < 0.12:
            words.append("eyes closed")
        elif eye < 0.2:
            words.append("eyes narrowed")
        elif eye > 0.4:
            words.append("eyes wide open")
    mouth = cue.get("mouth_open", 0.0)
    if mouth >= 0.6:
        words.append("mouth wide open")
    elif mouth >= 0.25:
        words.append("mouth open")
    elif mouth >= 0.1:
        words.append("lips parted")
    if cue.get("smile_intensity", 0.0) < 0.2 and cue.get("mouth_corners_down", 0.0) >= 0.5:
        words.append("mouth corners turned down")
    yaw, pitch = cue.get("head_yaw", 0.0), cue.get("head_pitch", 0.0)
    if abs(yaw) >= 20:
        words.append("head turned to the side")
    if pitch >= 15:
        words.append("head lowered")
    elif pitch <= -15:
        words.append("head raised")
    if abs(cue.get("head_roll", 0.0)) >= 15:
        words.append("head tilted")
    return words


def expression_phrase(scores: dict[str, float], cue: dict[str, float]) -> str:
    """'smiles broadly, with a hint of surprise' from averaged scores and cue intensities."""
    ranked = sorted(scores, key=lambda e: -scores[e])
    top, p = ranked[0], scores[ranked[0]]
    strength = 0 if p < 0.45 else (1 if p < 0.7 else 2)
    if top == "happy":
        # A smile's size is visible geometry: let the lip-corner pull set the adverb too.
        smile = cue.get("smile_intensity")
        if smile is not None:
            strength = max(strength, 2 if smile >= 0.6 else 1 if smile >= 0.3 else 0)
    phrase = _PHRASES[top][strength]
    second = ranked[1]
    if scores[second] >= 0.2 and second != "neutral":
        phrase += f", with a hint of {_NOUNS[second]}"
    return phrase


def _mean_cues(faces: list[FrameFace]) -> dict[str, float]:
    rows = [cue_intensities(f.cues) for f in faces if f.cues is not None]
    if not rows:
        return {}
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _scores(faces: list[FrameFace]) -> dict[str, float]:
    return timeline.clip_scores(np.array([f.probs for f in faces]))


def _movement(faces: list[FrameFace]) -> tuple[float, str | None]:
    """Head motion in face widths per second, and a sentence about it (None for stills)."""
    if len(faces) < 2:
        return 0.0, None
    speeds = []
    for a, b in itertools.pairwise(faces):
        dt = b.t - a.t
        if dt <= 0:
            continue  # frames without a time order (a burst of stills): no speed to measure
        shift = np.linalg.norm((b.box[:2] + b.box[2:]) / 2 - (a.box[:2] + a.box[2:]) / 2)
        speeds.append(float(shift) / max((a.face_size + b.face_size) / 2, 1.0) / dt)
    if not speeds:
        return 0.0, None
    motion = float(np.median(speeds))
    yaws = [f.cues.yaw for f in faces if f.cues is not None]
    pitches = [f.cues.pitch for f in faces if f.cues is not None]
    yaw_range = float(np.ptp(yaws)) if len(yaws) >= 2 else 0.0
    pitch_range = float(np.ptp(pitches)) if len(pitches) >= 2 else 0.0
    turning = []
    if pitch_range >= 12 and pitch_range > yaw_range:
        turning.append("nodding or lowering and raising the head")
    elif yaw_range >= 15:
        turning.append("turning the head from side to side")
    if motion < 0.1 and not turning:
        return motion, "The head stays mostly still."
    amount = "a lot" if motion >= 0.4 else "a little" if motion < 0.2 else "noticeably"
    sentence = f"The head moves {amount}"
    if turning:
        sentence += ", " + turning[0]
    return motion, sentence + "."


def _valence_arousal(
    scores: dict[str, float], cue: dict[str, float], motion: float
) -> tuple[float, float]:
    valence = sum(p * _VA[e][0] for e, p in scores.items())
    arousal = sum(p * _VA[e][1] for e, p in scores.items())
    # Visible activation: an open mouth, wide eyes or a moving head add arousal; a big smile
    # adds a little valence beyond what the classifier already gave.
    arousal += 0.15 * cue.get("mouth_open", 0.0) + 0.2 * min(motion / 0.5, 1.0)
    valence += 0.1 * (cue.get("smile_intensity", 0.0) - 0.3)
    return float(np.clip(valence, -1, 1)), float(np.clip(arousal, -1, 1))


_CUE_MEASUREMENTS = (
    "smile_intensity",
    "mouth_open",
    "brow_lower",
    "brow_raise",
    "eye_open",
    "mouth_corners_down",
    "head_yaw",
    "head_pitch",
    "head_roll",
)


@dataclass
class TrackSummary:
    """What the clue says of one face track."""

    description: list[str]
    scores: dict[str, float]
    valence: float
    arousal: float
    observations: list[Observation] = field(default_factory=list)
    measurements: dict[str, float] = field(default_factory=dict)


def segments(
    faces: list[FrameFace], duration: float
) -> list[tuple[str, float, float, list[FrameFace]]]:
    """Beginning / middle / end thirds of the clip (one segment for stills and short clips)."""
    end = max(duration, faces[-1].t)
    if len(faces) < 3 or end <= 0:
        return [("", 0.0, end, faces)]
    bounds = [0.0, end / 3, 2 * end / 3, end]
    out = []
    for i, name in enumerate(_SEGMENT_NAMES):
        lo, hi = bounds[i], bounds[i + 1]
        members = [f for f in faces if lo <= f.t < hi or (i == 2 and f.t >= hi)]
        out.append((name, lo, hi, members))
    return out


def mouth_spread(faces: list[FrameFace], min_frames: int) -> float | None:
    """Standard deviation of the mouth opening over the landmark frames (None: too few)."""
    values = [f.cues.mouth_open for f in faces if f.cues is not None]
    return float(np.std(values)) if len(values) >= min_frames else None


def summarise_track(
    faces: list[FrameFace], visible: int, n_sampled: int, duration: float
) -> TrackSummary:
    """The sentences, scores and measurements of one face over the clip.

    `faces`: the frames of the track that were analysed, in time order; `visible`: the sampled
    frames it was detected in (more than `faces` for a secondary person analysed at a lower rate).
    """
    scores = _scores(faces)
    cue = _mean_cues(faces)
    motion, movement = _movement(faces)
    valence, arousal = _valence_arousal(scores, cue, motion)
    still = n_sampled == 1
    description: list[str] = []
    if not still:
        description.append(f"A face is visible in {visible} of the {n_sampled} sampled frames.")
    observations: list[Observation] = []
    for name, lo, hi, members in segments(faces, duration):
        subject = f"{name}, the person" if name else "The person"
        if not members:
            text = f"{name}, the face is not visible."
            observations.append(Observation(lo, hi, text))
            description.append(text)
            continue
        seg_scores = _scores(members)
        seg_cue = _mean_cues(members)
        text = f"{subject} {expression_phrase(seg_scores, seg_cue)}"
        details = cue_words(seg_cue)
        if details:
            text += " (" + ", ".join(details) + ")"
        text += "."
        description.append(text)
        observations.append(Observation(lo, hi, text, seg_scores))
    measurements: dict[str, float] = {}
    if len(faces) >= 2:
        times = [f.t for f in faces]
        probs = np.array([f.probs for f in faces])
        if len(faces) >= 3:
            description.append(timeline.course_sentence(timeline.course(times, probs)))
        peak = timeline.peak(times, probs)
        description.append(timeline.peak_sentence(peak))
        measurements["peak_time_s"] = round(peak.t, 3)
        measurements["peak_expressiveness"] = round(peak.expressiveness, 4)
    if movement:
        description.append(movement)
    ranked = sorted(scores, key=lambda e: -scores[e])
    summary = f"Overall, the face suggests {_NOUNS[ranked[0]]} ({scores[ranked[0]]:.2f})"
    if scores[ranked[1]] >= 0.15:
        summary += f", followed by {_NOUNS[ranked[1]]} ({scores[ranked[1]]:.2f})"
    description.append(summary + ".")
    measurements.update(
        {
            "landmark_frames": float(sum(f.cues is not None for f in faces)),
            "precropped_frames": float(sum(f.precropped for f in faces)),
            "head_motion": motion,
        }
    )
    for key in _CUE_MEASUREMENTS:
        if key in cue:
            measurements[key] = round(cue[key], 4)
    return TrackSummary(description, scores, valence, arousal, observations, measurements)
