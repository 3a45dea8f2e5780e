"""Action-unit-like geometry of a face from the 468-point MediaPipe face mesh.

Distances are measured in an eye-aligned frame and normalised by the distance between the eyes,
so they do not depend on the face's size or in-plane tilt; head yaw and pitch come from the
mesh's 3-D points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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
