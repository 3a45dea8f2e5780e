"""Prosody measurements of one clip: level conditioning, energy, spectra, pitch (pyin over
speech only), voice quality, and the clip-level `ProsodyFeatures` they sum up to.

Everything here is relative to the clip (levels in dB against its own loudness, pitch in
semitones against its own median) so the features do not carry one speaker's absolute pitch or
the recording's gain: see docs/models/audio.md.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from math import gcd

import librosa
import numpy as np
import scipy.signal

from services.common.types import AudioClip

SAMPLE_RATE = 16_000
HOP = 160  # 10 ms analysis grid for energy and spectra
N_FFT = 512  # 32 ms window, 31.25 Hz bins
PITCH_HOP = 320  # pyin on a 20 ms grid: ~3x cheaper than 10 ms and enough for prosody
PITCH_FRAME = 1024  # 64 ms: holds >= 2 periods down to 55 Hz
FMIN_HZ = 55.0
FMAX_HZ = 800.0  # excited female speech goes above 500 Hz
SILENCE_DBFS = -90.0  # floor for log energies of digital silence
# pyin's prior over yin thresholds. librosa's default Beta(2, 18) (mean 0.1) calls harsh,
# pressed or noisy voices (shouted anger, strong fear) unvoiced for whole clips; Beta(2, 10)
# keeps them voiced.
PYIN_BETA = (2.0, 10.0)


@dataclass
class ProsodyFeatures:
    """Prosodic measurements of one window (the whole clip or one speech segment)."""

    start_s: float
    end_s: float
    speech_s: float
    n_segments: int
    voiced_ratio: float  # voiced frames / speech frames
    pitch_median_hz: float  # NaN when nothing was voiced
    pitch_range_st: float  # 10th..90th percentile, semitones
    pitch_std_st: float
    pitch_end_slope_st: float  # last voiced 300 ms against the 300 ms before, semitones
    loudness_db: float  # mean dBFS of speech as received (depends on gain: reported, not scored)
    loudness_range_db: float  # 10th..95th percentile over speech frames
    snr_db: float  # loud speech over the clip's background floor
    alpha_ratio_db: float  # energy 1-5 kHz over 50 Hz-1 kHz (higher = flatter = more effort)
    hammarberg_db: float  # peak 0-2 kHz minus peak 2-5 kHz (lower = more effort)
    spectral_slope_0_500: float  # dB per kHz
    spectral_slope_500_1500: float  # dB per kHz
    spectral_centroid_hz: float
    hnr_db: float
    jitter_like_pct: float  # frame-to-frame pitch change (20 ms grid, not cycle jitter)
    shimmer_like_db: float  # frame-to-frame level change on voiced 10 ms frames
    # dB of alpha ratio gained per dB of loudness over the voiced frames: how much brighter the
    # voice gets when it gets louder. A fixed filter (a dark voice, a dull microphone) shifts the
    # alpha ratio itself but not this slope.
    alpha_level_slope: float
    speech_rate_sps: float  # syllable nuclei per second of speech
    pause_ratio: float  # silence between first and last speech / that span
    longest_pause_s: float
    pauses: list[tuple[float, float]] = field(default_factory=list)  # the long ones

    def measurements(self) -> dict[str, float]:
        """The scalar measurements, rounded; a measurement that could not be made is absent."""
        out: dict[str, float] = {}
        for key, value in (
            ("duration_s", self.end_s - self.start_s),
            ("speech_s", self.speech_s),
            ("n_speech_segments", float(self.n_segments)),
            ("voiced_ratio", self.voiced_ratio),
            ("pitch_mean_hz", self.pitch_median_hz),
            ("pitch_range_st", self.pitch_range_st),
            ("pitch_std_st", self.pitch_std_st),
            ("pitch_end_slope_st", self.pitch_end_slope_st),
            ("loudness_db", self.loudness_db),
            ("loudness_range_db", self.loudness_range_db),
            ("snr_db", self.snr_db),
            ("alpha_ratio_db", self.alpha_ratio_db),
            ("hammarberg_db", self.hammarberg_db),
            ("spectral_slope_0_500", self.spectral_slope_0_500),
            ("spectral_slope_500_1500", self.spectral_slope_500_1500),
            ("spectral_centroid_hz", self.spectral_centroid_hz),
            ("hnr_db", self.hnr_db),
            ("jitter_like_pct", self.jitter_like_pct),
            ("shimmer_like_db", self.shimmer_like_db),
            ("alpha_level_slope", self.alpha_level_slope),
            ("speech_rate_sps", self.speech_rate_sps),
            ("pause_ratio", self.pause_ratio),
            ("longest_pause_s", self.longest_pause_s),
        ):
            if math.isfinite(value):
                out[key] = round(float(value), 3)
        return out


def to_mono_16k(clip: AudioClip) -> np.ndarray:
    """Float32 mono at 16 kHz, finite and within [-1, 1] (the gateway already sends that)."""
    y = np.asarray(clip.samples, dtype=np.float32)
    if y.ndim > 1:
        # (n, ch) or (ch, n): average the channels, whichever axis is shorter
        y = y.mean(axis=int(np.argmin(y.shape)))
    y = np.nan_to_num(y, nan=0.0, posinf=1.0, neginf=-1.0)
    sr = int(clip.sample_rate)
    if sr <= 0:
        return np.zeros(0, dtype=np.float32)
    if sr != SAMPLE_RATE and len(y):
        g = gcd(sr, SAMPLE_RATE)
        y = scipy.signal.resample_poly(y, SAMPLE_RATE // g, sr // g).astype(np.float32)
    return np.clip(y, -1.0, 1.0)


_HIGHPASS = scipy.signal.butter(4, 50.0, btype="highpass", fs=SAMPLE_RATE, output="sos")


def highpass(y: np.ndarray) -> np.ndarray:
    """Remove DC offset and rumble below 50 Hz.

    Some recordings carry a DC offset or infrasonic drift; it swamps yin's difference function,
    and pyin then calls a whole clip unvoiced.
    """
    if len(y) < 64:
        return y - y.mean() if len(y) else y
    return np.asarray(scipy.signal.sosfiltfilt(_HIGHPASS, y.astype(np.float64)), dtype=np.float32)


def normalize_level(y: np.ndarray, max_gain_db: float = 60.0) -> tuple[np.ndarray, float]:
    """Scale `y` so its 99.9th-percentile magnitude is -6 dBFS; returns (scaled, gain in dB).

    silero-vad and the level-based syllable detector are level dependent, so every clip is
    analysed at the same level; the gain is capped so that faint hiss is not blown up into
    something that looks like speech.
    """
    if len(y) == 0:
        return y, 0.0
    peak = float(np.percentile(np.abs(y), 99.9))
    if peak <= 1e-6:
        return y, 0.0
    gain_db = float(np.clip(20.0 * np.log10(0.5 / peak), -20.0, max_gain_db))
    return np.clip(y * np.float32(10.0 ** (gain_db / 20.0)), -1.0, 1.0), gain_db


def _db(power: np.ndarray) -> np.ndarray:
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-12)), SILENCE_DBFS)


def _nanpct(x: np.ndarray, q: float) -> float:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, q)) if len(x) else float("nan")


def _slope_db_per_khz(spec_db: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Least-squares slope of the dB spectrum between lo and hi Hz, per frame (columns)."""
    band = (freqs >= lo) & (freqs <= hi)
    f = freqs[band] / 1000.0
    f = f - f.mean()
    s = spec_db[band]
    return np.asarray((f[:, None] * (s - s.mean(axis=0))).sum(axis=0) / (f**2).sum())


def _hnr_per_frame(y: np.ndarray, centers: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """Harmonics-to-noise ratio (dB) from the normalised autocorrelation at the pitch period.

    Praat's method: the frame's autocorrelation divided by the window's own autocorrelation,
    read at the lag of the detected period (best within +-10 %).
    """
    if len(centers) == 0:
        return np.zeros(0)
    win = np.hanning(PITCH_FRAME)
    half = PITCH_FRAME // 2
    padded = np.pad(y.astype(np.float64), (half, half))
    idx = centers[:, None] + np.arange(PITCH_FRAME)[None, :]  # centers are in unpadded samples
    frames = padded[idx]
    frames = (frames - frames.mean(axis=1, keepdims=True)) * win
    n = 2 * PITCH_FRAME
    acf = np.fft.irfft(np.abs(np.fft.rfft(frames, n=n, axis=1)) ** 2, n=n, axis=1)[:, :PITCH_FRAME]
    wacf = np.fft.irfft(np.abs(np.fft.rfft(win, n=n)) ** 2, n=n)[:PITCH_FRAME]
    norm = acf / np.maximum(acf[:, :1], 1e-12) / np.maximum(wacf / wacf[0], 1e-3)
    period = SAMPLE_RATE / f0
    lo = np.clip(np.floor(period * 0.9).astype(int), 2, PITCH_FRAME // 2 - 1)
    hi = np.clip(np.ceil(period * 1.1).astype(int), 3, PITCH_FRAME // 2)
    r = np.array([norm[i, lo[i] : hi[i] + 1].max() for i in range(len(centers))])
    r = np.clip(r, 1e-3, 0.999)
    return np.asarray(10.0 * np.log10(r / (1.0 - r)))


def _hnr_chunked(y: np.ndarray, centers: np.ndarray, f0: np.ndarray) -> np.ndarray:
    # 512 frames at a time keeps the (frames x 2048) float64 work arrays under ~10 MB
    out = [_hnr_per_frame(y, centers[i : i + 512], f0[i : i + 512]) for i in range(0, len(f0), 512)]
    return np.concatenate(out) if out else np.zeros(0)


@dataclass
class Tracks:
    """Frame-level analysis of one clip, computed once and summarised over any time window."""

    duration_s: float
    gain_db: float
    segments: list[tuple[float, float]]
    times: np.ndarray  # 10 ms grid, frame centres in seconds
    speech: np.ndarray  # bool per frame
    frame_db: np.ndarray  # dBFS per frame (of the level-normalised signal)
    alpha: np.ndarray  # per-frame spectral measures (used on voiced speech frames only)
    hammarberg: np.ndarray
    slope_lo: np.ndarray
    slope_hi: np.ndarray
    centroid: np.ndarray
    voiced: np.ndarray  # bool per 10 ms frame: pyin found a pitch inside speech
    pitch_t: np.ndarray  # voiced 20 ms pitch frames inside speech: time (s), f0 (Hz), HNR (dB)
    pitch_f0: np.ndarray
    pitch_hnr: np.ndarray
    nuclei_t: np.ndarray  # times of syllable nuclei
    floor_db: float


def speech_windows(
    segments: list[tuple[float, float]], max_block_s: float = 30.0
) -> list[tuple[float, float]]:
    """Merge speech segments less than 1 s apart into windows of at most `max_block_s`.

    pyin (and the huggingface classifier) run per window: bounded memory on long clips, and
    long silences are skipped.
    """
    blocks: list[tuple[float, float]] = []
    for s, e in segments:
        if blocks and e - blocks[-1][0] <= max_block_s and s - blocks[-1][1] < 1.0:
            blocks[-1] = (blocks[-1][0], e)
        else:
            blocks.append((s, e))
    return blocks


def compute_tracks(
    y: np.ndarray, segments: list[tuple[float, float]], *, gain_db: float = 0.0
) -> Tracks:
    """Frame-level energy, spectral shape, pitch, HNR and syllable nuclei of 16 kHz mono `y`.

    `segments` are the speech segments in seconds (sorted); `gain_db` is the gain that
    `normalize_level` applied, so that reported loudness is that of the input as received.
    """
    n = len(y)
    window = scipy.signal.get_window("hann", 400, fftbins=True)  # librosa's STFT window
    win = np.zeros(N_FFT)
    win[(N_FFT - 400) // 2 : (N_FFT - 400) // 2 + 400] = window
    padded = np.pad(y.astype(np.float32), (N_FFT // 2, N_FFT // 2))
    n_frames = 1 + n // HOP
    view = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    b_lo, b_hi = (freqs >= 50) & (freqs < 1000), (freqs >= 1000) & (freqs < 5000)
    h_lo, h_hi = freqs < 2000, (freqs >= 2000) & (freqs < 5000)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("db", "a", "h", "sl", "sh", "c")}
    # Parseval on the one-sided spectrum gives the window-weighted mean square; x2 puts a
    # full-scale sine at 0 dBFS
    ms_scale = 2.0 * 2.0 / (N_FFT * float((window**2).sum()))
    for i in range(0, n_frames, 2000):  # 20 s of frames at a time bounds memory on long clips
        p = np.abs(np.fft.rfft(view[i : i + 2000] * win, axis=1)).T.astype(np.float64) ** 2
        cols["db"].append(_db(ms_scale * p.sum(axis=0)))
        cols["a"].append(_db(p[b_hi].sum(0)) - _db(p[b_lo].sum(0)))
        cols["h"].append(_db(p[h_lo].max(0)) - _db(p[h_hi].max(0)))
        p_db = _db(p)
        cols["sl"].append(_slope_db_per_khz(p_db, freqs, 0, 500))
        cols["sh"].append(_slope_db_per_khz(p_db, freqs, 500, 1500))
        cols["c"].append((freqs[:, None] * p).sum(0) / np.maximum(p.sum(0), 1e-12))
    arr = {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}
    times = np.arange(n_frames) * HOP / SAMPLE_RATE
    speech = np.zeros(n_frames, dtype=bool)
    for s, e in segments:
        speech |= (times >= s) & (times < e)

    # pitch: pyin over speech only, in bounded blocks
    pt: list[np.ndarray] = []
    pf: list[np.ndarray] = []
    for s, e in speech_windows(segments):
        a = max(0, int((s - 0.1) * SAMPLE_RATE))
        b = min(n, int((e + 0.1) * SAMPLE_RATE))
        if b - a < PITCH_HOP:
            continue
        f0, voiced_flag, _ = librosa.pyin(
            y[a:b],
            fmin=FMIN_HZ,
            fmax=FMAX_HZ,
            sr=SAMPLE_RATE,
            frame_length=PITCH_FRAME,
            hop_length=PITCH_HOP,
            resolution=0.2,  # 5 bins per semitone: ~3x faster than the default, same prosody
            beta_parameters=PYIN_BETA,
            center=True,
        )
        t = (a + np.arange(len(f0)) * PITCH_HOP) / SAMPLE_RATE
        ok = voiced_flag & np.isfinite(f0) & (t < n / SAMPLE_RATE)
        pt.append(t[ok])
        pf.append(f0[ok])
    pitch_t = np.concatenate(pt) if pt else np.zeros(0)
    pitch_f0 = np.concatenate(pf) if pf else np.zeros(0)
    # pyin sometimes 'hears' a pitch in breaths or hum next to speech: keep speech frames only
    in_speech = np.zeros(len(pitch_t), dtype=bool)
    for s, e in segments:
        in_speech |= (pitch_t >= s) & (pitch_t < e)
    pitch_t, pitch_f0 = pitch_t[in_speech], pitch_f0[in_speech]
    centers = np.round(pitch_t * SAMPLE_RATE).astype(int)
    pitch_hnr = _hnr_chunked(y, centers, pitch_f0)
    voiced = np.zeros(n_frames, dtype=bool)
    grid = np.round(pitch_t * SAMPLE_RATE / HOP).astype(int)
    for k in range(2):  # each 20 ms pitch frame covers two 10 ms frames
        idx = grid + k
        voiced[idx[idx < n_frames]] = True
    voiced &= speech

    # syllable nuclei: voiced peaks of the smoothed level (after de Jong & Wempe 2009)
    frame_db = arr["db"]
    nuclei = np.zeros(0)
    if speech.any():
        smooth = np.convolve(frame_db, np.ones(5) / 5.0, mode="same")
        peaks, _ = scipy.signal.find_peaks(smooth, prominence=2.0, distance=10)
        top = _nanpct(frame_db[speech], 95)
        near_voiced = np.convolve(voiced.astype(float), np.ones(5), mode="same") > 0
        ok = speech[peaks] & near_voiced[peaks] & (smooth[peaks] > top - 25.0)
        nuclei = times[peaks[ok]]
    return Tracks(
        duration_s=n / SAMPLE_RATE,
        gain_db=gain_db,
        segments=list(segments),
        times=times,
        speech=speech,
        frame_db=frame_db,
        alpha=arr["a"],
        hammarberg=arr["h"],
        slope_lo=arr["sl"],
        slope_hi=arr["sh"],
        centroid=arr["c"],
        voiced=voiced,
        pitch_t=pitch_t,
        pitch_f0=pitch_f0,
        pitch_hnr=pitch_hnr,
        nuclei_t=nuclei,
        floor_db=_nanpct(frame_db, 5),
    )


def summarize(
    tr: Tracks, start_s: float = 0.0, end_s: float | None = None, *, long_pause_s: float = 0.5
) -> ProsodyFeatures:
    """Prosodic measurements over [start_s, end_s) (default: the whole clip)."""
    end = tr.duration_s if end_s is None else end_s
    nan = float("nan")
    win = (tr.times >= start_s) & (tr.times < end)
    speech = tr.speech & win
    voiced = tr.voiced & win
    segs = [(max(s, start_s), min(e, end)) for s, e in tr.segments if e > start_s and s < end]
    speech_s = float(sum(e - s for s, e in segs))

    pm = (tr.pitch_t >= start_s) & (tr.pitch_t < end)
    pt, f0, hnr_f = tr.pitch_t[pm], tr.pitch_f0[pm], tr.pitch_hnr[pm]
    pitch_median = pitch_range = pitch_std = end_slope = jitter = hnr = nan
    if len(f0) >= 3:
        st = 12.0 * np.log2(f0 / 100.0)
        pitch_median = float(np.median(f0))
        pitch_range = _nanpct(st, 90) - _nanpct(st, 10)
        pitch_std = float(np.std(st))
        last = pt[-1]
        tail = pt >= last - 0.3
        before = (pt < last - 0.3) & (pt >= last - 0.6)
        if before.sum() >= 2:
            end_slope = float(np.median(st[tail]) - np.median(st[before]))
        consecutive = np.abs(np.diff(pt) - PITCH_HOP / SAMPLE_RATE) < 1e-3
        rel = np.abs(np.diff(f0)) / f0[:-1]
        rel = rel[consecutive & (rel < 0.2)]  # octave jumps are tracking errors, not movement
        jitter = float(100.0 * np.mean(rel)) if len(rel) else nan
        hnr = float(np.median(hnr_f))

    loud = loud_range = snr = shimmer = nan
    sp_db = tr.frame_db[speech]
    if len(sp_db):
        loud = float(np.mean(sp_db)) - tr.gain_db
        loud_range = _nanpct(sp_db, 95) - _nanpct(sp_db, 10)
        snr = _nanpct(sp_db, 90) - tr.floor_db
    pairs = voiced[:-1] & voiced[1:]
    if pairs.any():
        shimmer = float(np.mean(np.abs(np.diff(tr.frame_db)[pairs])))

    alpha = hamm = s_lo = s_hi = cent = alpha_slope = nan
    if voiced.sum() >= 3:
        alpha = float(np.median(tr.alpha[voiced]))
        level = tr.frame_db[voiced]
        if voiced.sum() >= 5 and float(np.std(level)) > 0.5:
            alpha_slope = float(np.polyfit(level, tr.alpha[voiced], 1)[0])
        hamm = float(np.median(tr.hammarberg[voiced]))
        s_lo = float(np.median(tr.slope_lo[voiced]))
        s_hi = float(np.median(tr.slope_hi[voiced]))
        cent = float(np.median(tr.centroid[voiced]))

    n_nuclei = int(((tr.nuclei_t >= start_s) & (tr.nuclei_t < end)).sum())
    rate = n_nuclei / speech_s if speech_s > 0 else nan

    gaps = [(e0, s1) for (_, e0), (s1, _) in itertools.pairwise(segs)]
    span = segs[-1][1] - segs[0][0] if segs else 0.0
    pause_ratio = sum(b - a for a, b in gaps) / span if span > 0 else nan

    return ProsodyFeatures(
        start_s=start_s,
        end_s=end,
        speech_s=speech_s,
        n_segments=len(segs),
        voiced_ratio=float(voiced.sum()) / max(1, int(speech.sum())),
        pitch_median_hz=pitch_median,
        pitch_range_st=pitch_range,
        pitch_std_st=pitch_std,
        pitch_end_slope_st=end_slope,
        loudness_db=loud,
        loudness_range_db=loud_range,
        snr_db=snr,
        alpha_ratio_db=alpha,
        hammarberg_db=hamm,
        spectral_slope_0_500=s_lo,
        spectral_slope_500_1500=s_hi,
        spectral_centroid_hz=cent,
        hnr_db=hnr,
        jitter_like_pct=jitter,
        shimmer_like_db=shimmer,
        alpha_level_slope=alpha_slope,
        speech_rate_sps=rate,
        pause_ratio=pause_ratio,
        longest_pause_s=max((b - a for a, b in gaps), default=0.0),
        pauses=[(a, b) for a, b in gaps if b - a >= long_pause_s],
    )


def exercise_pitch_path() -> None:
    """Run pyin and every prosody feature once on a synthetic voice: compiles librosa's numba
    kernels, or loads them from its cache (`services.audio.jit_cache`)."""
    y = synthetic_voice()
    compute_tracks(y, [(0.1, len(y) / SAMPLE_RATE - 0.1)])


def synthetic_voice(seconds: float = 1.5) -> np.ndarray:
    """A harmonic tone with a pitch glide: enough to exercise every feature path."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 140.0 + 40.0 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    y = sum(np.sin(k * phase) / k for k in range(1, 12))
    rng = np.random.default_rng(0)
    y = 0.2 * y / np.max(np.abs(y)) + 0.01 * rng.standard_normal(len(t))
    return np.asarray(y, dtype=np.float32)
