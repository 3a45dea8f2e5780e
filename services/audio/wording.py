"""The audio clue's words: sentences that describe the voice, and observations over time."""

from __future__ import annotations

import math

from services.audio.prosody import ProsodyFeatures, Tracks, summarize
from services.audio.scoring import HIGH_AROUSAL, LOW_AROUSAL, VoiceScores, feature_z, score
from services.common.types import Observation

_AROUSAL_READING = {
    "angry": "anger or irritation",
    "happy": "excitement or joy",
    "fear": "fear or anxiety",
    "surprise": "surprise or excitement",
    "sad": "sadness or tiredness",
    "neutral": "calm or a neutral mood",
    "disgust": "displeasure or distaste",
}


def _top(emotions: dict[str, float], group: tuple[str, ...]) -> str:
    return max(group, key=lambda c: emotions[c])


def describe(f: ProsodyFeatures, s: VoiceScores) -> list[str]:
    """Plain sentences about the voice and what it suggests."""
    z = feature_z(f)
    effort = (z["alpha_ratio_db"] - z["hammarberg_db"]) / 2.0
    parts: list[str] = []
    if effort > 0.6:
        parts.append("loud and tense")
    elif effort < -0.6:
        parts.append("soft and relaxed")
    else:
        parts.append("moderately loud")
    if math.isfinite(f.pitch_median_hz):
        hz = f"about {f.pitch_median_hz:.0f} Hz"
        if f.pitch_median_hz >= 250:
            parts.append(f"high-pitched ({hz})")
        elif f.pitch_median_hz < 120:
            parts.append(f"low-pitched ({hz})")
        else:
            parts.append(f"medium-pitched ({hz})")
    with_: list[str] = []
    if math.isfinite(f.pitch_range_st):
        if f.pitch_range_st >= 8:
            with_.append("a wide pitch range")
        elif f.pitch_range_st < 4:
            with_.append("a narrow, flat pitch range")
        else:
            with_.append("a moderate pitch range")
    if math.isfinite(f.speech_rate_sps):
        if f.speech_rate_sps > 5.5:
            with_.append("fast speech")
        elif f.speech_rate_sps < 2.5:
            with_.append("slow speech")
        else:
            with_.append("a moderate pace")
    sentence = "The speaker's voice is " + ", ".join(parts)
    if with_:
        sentence += ", with " + _join(with_)
    sentences = [sentence + "."]

    quality: list[str] = []
    if math.isfinite(f.hnr_db) and f.hnr_db < 6:
        quality.append("sounds rough or breathy")
    elif math.isfinite(f.hnr_db) and f.hnr_db > 14:
        quality.append("sounds clear and steady")
    if math.isfinite(f.loudness_range_db) and f.loudness_range_db > 33:
        quality.append("has strong, emphatic changes in loudness")
    elif math.isfinite(f.loudness_range_db) and f.loudness_range_db < 22:
        quality.append("keeps an even loudness")
    if quality:
        sentences.append("The voice " + _join(quality) + ".")
    if math.isfinite(f.pitch_end_slope_st):
        if f.pitch_end_slope_st >= 2:
            sentences.append("The pitch rises at the end, as in a question or surprise.")
        elif f.pitch_end_slope_st <= -3:
            sentences.append("The pitch falls at the end, as in a firm statement.")
    if f.pauses:
        longest = max(b - a for a, b in f.pauses)
        n = len(f.pauses)
        sentences.append(
            f"There {'is' if n == 1 else 'are'} {n} long pause{'' if n == 1 else 's'} "
            f"(the longest {longest:.1f} s), which can mean hesitation or careful speech."
        )
    if s.arousal > 0.3:
        lead = _top(s.emotions, HIGH_AROUSAL)
        sentences.append(
            f"Together this suggests high arousal, most like {_AROUSAL_READING[lead]}."
        )
    elif s.arousal < -0.3:
        lead = _top(s.emotions, LOW_AROUSAL)
        sentences.append(f"Together this suggests low arousal, most like {_AROUSAL_READING[lead]}.")
    else:
        sentences.append("Together this suggests moderate arousal, neither excited nor subdued.")
    return sentences


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _arousal_words(arousal: float) -> str:
    if arousal > 0.3:
        return "sounds tense or excited (high arousal)"
    if arousal < -0.3:
        return "sounds calm or subdued (low arousal)"
    return "sounds moderately engaged"


def observe(tr: Tracks, clip: ProsodyFeatures, *, long_pause_s: float) -> list[Observation]:
    """One observation per speech segment (and per long pause), in time order."""
    obs: list[Observation] = []
    several = len(tr.segments) > 1
    for start, end in tr.segments:
        seg = summarize(tr, start, end, long_pause_s=long_pause_s)
        sc = score(seg)
        notes: list[str] = []
        if several:
            if math.isfinite(seg.loudness_db) and math.isfinite(clip.loudness_db):
                diff = seg.loudness_db - clip.loudness_db
                if diff >= 3:
                    notes.append(f"louder than the rest (+{diff:.0f} dB)")
                elif diff <= -3:
                    notes.append(f"quieter than the rest ({diff:.0f} dB)")
            if math.isfinite(seg.pitch_median_hz) and math.isfinite(clip.pitch_median_hz):
                d_st = 12.0 * math.log2(seg.pitch_median_hz / clip.pitch_median_hz)
                if d_st >= 2:
                    notes.append(f"higher pitch (+{d_st:.0f} semitones)")
                elif d_st <= -2:
                    notes.append(f"lower pitch ({d_st:.0f} semitones)")
        if math.isfinite(seg.pitch_range_st) and seg.pitch_range_st >= 8:
            notes.append("wide pitch movement")
        if math.isfinite(seg.pitch_end_slope_st):
            if seg.pitch_end_slope_st >= 2:
                notes.append("pitch rises at the end")
            elif seg.pitch_end_slope_st <= -3:
                notes.append("pitch falls at the end")
        text = "Speech: " + ", ".join([*notes, _arousal_words(sc.arousal)]) + "."
        obs.append(
            Observation(
                start_s=round(start, 2), end_s=round(end, 2), text=text, emotion_scores=sc.emotions
            )
        )
    for a, b in clip.pauses:
        obs.append(
            Observation(start_s=round(a, 2), end_s=round(b, 2), text=f"Long pause ({b - a:.1f} s).")
        )
    obs.sort(key=lambda o: o.start_s)
    return obs
