"""Face tracks across sampled frames and the choice of the main character.

Tracking reuses the detections the frames already got (no extra model runs): each detection
joins the live track whose last box it overlaps (IoU) or lies close to at a similar size, greedy
by best match, so a person keeps one id while they move; a track survives a few frames without a
detection (a blink of the detector, a head turn). Ids are "person-1", "person-2", ... in order of
first appearance (left to right within a frame).

The main character is the person whose mouth moves clearly more than everyone else's, as a
speaker's does, when the face mesh can measure it; otherwise the largest, most frontal face over
the clip (see `choose_main`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A mouth counts as moving like a speaker's when the spread (standard deviation over the sampled
# frames) of its opening (inner-lip gap / mouth width) reaches this and exceeds every other
# face's by MOUTH_RATIO. A still face reads about 0.005-0.015 (mesh noise); speech opens the mouth
# from ~0 to 0.2-0.4, a spread of 0.05-0.15.
MOUTH_SPREAD_MIN = 0.03
MOUTH_RATIO = 1.5
MOUTH_MIN_FRAMES = 4  # landmark frames a face needs for its mouth movement to be measured


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _match(a: np.ndarray, b: np.ndarray) -> float:
    """How well box b continues box a: > 0 when it can be the same face, higher is better."""
    overlap = iou(a, b)
    if overlap >= 0.2:
        return 1.0 + overlap
    side_a = max(a[2] - a[0], a[3] - a[1])
    side_b = max(b[2] - b[0], b[3] - b[1])
    if max(side_a, side_b) > 1.6 * max(min(side_a, side_b), 1e-6):
        return 0.0
    centre_a = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
    centre_b = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    distance = float(np.linalg.norm(centre_a - centre_b)) / ((side_a + side_b) / 2)
    return max(0.0, 1.0 - distance / 0.75)


def track_boxes(boxes: list[list[np.ndarray]], max_gap: int = 3) -> list[list[tuple[int, int]]]:
    """Face tracks from per-frame boxes, as (frame index, box index) pairs in time order.

    `max_gap`: sampled frames a track may go without a detection and still be continued. Tracks
    are returned in order of first appearance, ties (same frame) from left to right.
    """
    tracks: list[list[tuple[int, int]]] = []
    for f, frame_boxes in enumerate(boxes):
        live = [i for i, tr in enumerate(tracks) if f - tr[-1][0] <= max_gap + 1]
        pairs = []
        for i in live:
            last_f, last_b = tracks[i][-1]
            for b, box in enumerate(frame_boxes):
                score = _match(boxes[last_f][last_b], box)
                if score > 0:
                    pairs.append((score, i, b))
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        for _, i, b in sorted(pairs, reverse=True):
            if i in used_tracks or b in used_boxes:
                continue
            tracks[i].append((f, b))
            used_tracks.add(i)
            used_boxes.add(b)
        new = [b for b in range(len(frame_boxes)) if b not in used_boxes]
        for b in sorted(new, key=lambda b: float(frame_boxes[b][0] + frame_boxes[b][2])):
            tracks.append([(f, b)])
    return tracks


@dataclass
class TrackStats:
    """What the main-character rule looks at for one track."""

    person_id: str
    mouth_spread: float | None  # std of the mouth opening, None when not measurable
    area: float  # mean face-box area as a fraction of the frame, over the frames it is seen in
    frontal: float  # mean cos(yaw) over its landmark frames (1 = facing the camera)
    frames: int  # sampled frames it is seen in
    sampled: int  # sampled frames of the clip

    @property
    def prominence(self) -> float:
        """Size x frontality x presence: a large face seen facing the camera all along wins."""
        return self.area * self.frontal * self.frames / max(self.sampled, 1)


def choose_main(stats: list[TrackStats]) -> tuple[int, str]:
    """Index of the main character among the tracks, and the reason in words.

    Rule: the person whose mouth moves clearly the most (the speaker), when the mouth movement of
    at least two faces can be measured; else the largest, most frontal face over the clip.
    """
    if len(stats) == 1:
        return 0, "the only face in the clip"
    measured = [(s.mouth_spread, i) for i, s in enumerate(stats) if s.mouth_spread is not None]
    if len(measured) >= 2:
        ranked = sorted(measured, reverse=True)
        (top, i), (second, _) = ranked[0], ranked[1]
        if top >= MOUTH_SPREAD_MIN and top >= MOUTH_RATIO * second:
            return i, (
                f"their mouth moves the most, as when speaking (mouth-opening spread {top:.2f} "
                f"against at most {second:.2f} for the others)"
            )
    best = max(range(len(stats)), key=lambda i: stats[i].prominence)
    s = stats[best]
    return best, (
        "no mouth moves clearly more than the others' (as when speaking), so the largest and "
        f"most frontal face over the clip is chosen (on average {s.area:.0%} of the frame, "
        f"visible in {s.frames} of {s.sampled} frames)"
    )
