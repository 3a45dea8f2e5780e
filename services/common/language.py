"""Which language a text is written in, from its script (no model, microseconds).

Only what the readers of this project need: Chinese ("zh") against English ("en", any Latin
text), and the scripts that neither reads (Japanese kana, Korean hangul, other letters), so that
they get an honest "cannot read this" instead of a reading of the wrong language.
"""

from __future__ import annotations

import unicodedata

# CJK ideographs (unified, extension A, compatibility): Chinese, also used inside Japanese.
_HAN = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
_KANA = ((0x3040, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9D))
_HANGUL = ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F))


def _in(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


def script_counts(text: str) -> dict[str, int]:
    """Letters of `text` by script: han, kana, hangul, latin, other (digits, marks and
    punctuation do not count)."""
    counts = {"han": 0, "kana": 0, "hangul": 0, "latin": 0, "other": 0}
    for ch in text:
        code = ord(ch)
        if _in(code, _HAN):
            counts["han"] += 1
        elif _in(code, _KANA):
            counts["kana"] += 1
        elif _in(code, _HANGUL):
            counts["hangul"] += 1
        elif ch.isalpha():
            latin = ch.isascii() or "LATIN" in unicodedata.name(ch, "")
            counts["latin" if latin else "other"] += 1
    return counts


def detect_language(text: str) -> str:
    """ "zh" when most letters are Chinese characters, "ja" / "ko" for kana / hangul text, "und"
    (undetermined) for other scripts (Cyrillic, Arabic, Greek ...), otherwise "en".

    A text without letters (digits, emoji) is "en": the English readers find nothing in it and
    say so, which is the right answer. Latin text is "en" whatever its language: telling English
    from French needs more than the script.
    """
    c = script_counts(text)
    letters = sum(c.values())
    if not letters:
        return "en"
    cjk = c["han"] + c["kana"]
    # Japanese mixes kanji and kana; Chinese has no kana (a stray one is a typo or an emoticon).
    if c["kana"] >= max(2, 0.1 * cjk) and cjk >= 0.3 * letters:
        return "ja"
    if c["hangul"] >= 0.3 * letters:
        return "ko"
    if c["han"] >= 0.3 * letters:
        return "zh"
    if c["other"] > c["latin"]:
        return "und"
    return "en"


def is_chinese(language: str) -> bool:
    """True for "zh" and its regional forms ("zh-CN", "zh_TW", "zh-Hans")."""
    lang = language.strip().lower().replace("_", "-")
    return lang == "zh" or lang.startswith("zh-")


def is_english(language: str) -> bool:
    lang = language.strip().lower().replace("_", "-")
    return lang == "en" or lang.startswith("en-")
