"""Chinese subtitle reader: jieba + the Chinese emotion lexicon, negation-aware, no model.

MER subtitles are Mandarin, and the English embedded model (MiniLM prototypes + VADER) reads
them as noise. This reader segments the text with jieba, finds the emotion words of the shared
lexicon (services/common/zh_lexicon.py: each Chinese word with its English words), drops negated
ones ("我并不生气"), counts hedged ones half, and adds the conventional markers of spoken Chinese
(interjections "哈哈" / "呜呜" / "天哪", reproaches "你怎么能" / "凭什么", exclamations "太好了").
The English words map onto BASIC_EMOTIONS through `BASIC_OF`, a small table written here.
It returns the same `Clue` shape as the English model: basic scores, valence, arousal,
per-sentence observations and plain English sentences, one of them "Read as Chinese.".
Reading a subtitle takes well under a millisecond after the tokenizer is loaded (about 1 s).
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass, field

import numpy as np

from services.common import zh_lexicon as zh
from services.common.types import BASIC_EMOTIONS, Clue, Modality, ModelInfo, Observation

NAME = "emer-text-zh-lexicon"
LEXICON_VERSION = "1"

# English word of the lexicon -> basic category. General, by the usual sense of each word:
# joy, pride, relief and affection are happy; worry and nervousness fear; disappointment,
# helplessness, guilt and loneliness sad; displeasure, impatience, mockery and reproach angry;
# contempt and aversion disgust; astonishment, confusion and curiosity surprise; calm,
# seriousness and politeness neutral.
_BASIC_SPEC = {
    "happy": """happy joyful joy blissful excited ecstatic smug satisfied contented gratified
        relieved relaxed comfortable reassured anticipation hopeful eager enthusiastic optimistic
        positive confident proud determined brave grateful moved admiration appreciative
        adoration respectful love fond affectionate tender warm friendly caring sympathetic
        comforting encouraging supportive trust sincere amused humorous teasing joking playful
        mischievous coquettish self-deprecating humble interested""",
    "fear": """nervous uneasy anxious worried flustered panic afraid terrified frightened timid
        wary cautious hesitant uncertain""",
    "sad": """sad grief heartbroken anguish sorrow sentimental wistful melancholy depressed
        dejected frustrated disappointed despair broken helpless lonely empty nostalgic unhappy
        reluctant tired weary bored aggrieved wronged hurt ashamed guilty apologetic regretful
        regret embarrassed awkward shy negative envious""",
    "angry": """angry indignant furious resentful hatred hostile discontent dissatisfied
        complaining reproachful sarcastic mocking provocative threatening severe
        assertive aggressive stubborn defiant rebellious resistant irritated troubled annoyed
        impatient irritable jealous suspicious doubt questioning""",
    "disgust": """disgusted dislike contemptuous disdainful arrogant cold indifferent""",
    "surprise": """surprised shocked stunned incredulous confused curious speechless awe
        conflicted""",
    "neutral": """calm serious focused polite""",
}
BASIC_OF: dict[str, str] = {w: b for b, spec in _BASIC_SPEC.items() for w in spec.split()}
BASIC_OF["at a loss"] = "fear"

# Valence and arousal of each basic category (the circumplex places of the seven).
VALENCE = {
    "angry": -0.6,
    "disgust": -0.6,
    "fear": -0.6,
    "happy": 0.7,
    "sad": -0.6,
    "surprise": 0.1,
    "neutral": 0.0,
}
AROUSAL = {
    "angry": 0.6,
    "disgust": 0.2,
    "fear": 0.5,
    "happy": 0.4,
    "sad": -0.3,
    "surprise": 0.6,
    "neutral": -0.2,
}

# Conventional markers of spoken Chinese (found as substrings: colloquial forms segment
# unevenly). Written from general knowledge of the language.
SPEECH_CUES: dict[str, str] = {
    # Only forms that are not parts of ordinary words ("切" is in "一切", "完了" in "吃完了").
    **dict.fromkeys(
        zh.words("哈哈 嘻嘻 呵呵呵 太好了 太棒了 真棒 好棒 万岁 谢谢 多谢 恭喜 赢了"), "happy"
    ),
    **dict.fromkeys(zh.words("呜呜 唉 算了吧 对不起 真倒霉"), "sad"),
    **dict.fromkeys(zh.words("天哪 天啊 我的天 不会吧 真的吗 竟然 居然 什么？ 啊？"), "surprise"),
    **dict.fromkeys(zh.words("救命 糟了 糟糕 怎么办 吓死"), "fear"),
    **dict.fromkeys(zh.words("呸 真恶心"), "disgust"),
    **dict.fromkeys(zh.words("滚开 你滚 闭嘴 受够了 烦死了 气死 混蛋 可恶 该死"), "angry"),
}
# Reproaches: questions that blame rather than ask, and appeals to broken trust or promises
# ("你怎么能这样对我？", "我那么信任你", "你答应过我的").
_REPROACH = re.compile(
    r"怎么能|怎么可以|怎么敢|凭什么|你竟然|你居然|你到底|为什么要这样|为什么这么对|有没有良心|"
    r"(?:那么|这么|一直)(?:信任|相信)你|你答应过|你不是说|你说过|你骗|骗了我|背叛"
)
# Logits: one emotion word adds CUE_WEIGHT to its category against NEUTRAL_BIAS, so a single
# plain "高兴" reads about 0.7 happy, a hedged "有点失望" still mostly sad, and a text without
# any cue about 0.4 neutral (the rest spread evenly).
CUE_WEIGHT = 3.0
HEDGED_FACTOR = 0.7
CUE_CAP = 3
# A negated positive word ("我一点也不快乐") reads as sad more than as angry.
NEGATED_POSITIVE_SAD = 0.7
NEGATED_POSITIVE_ANGRY = 0.3
NEUTRAL_BIAS = 1.5
QUESTION_WEIGHT = 1.0
REPROACH_WEIGHT = 3.0

_SENTENCE = re.compile(r"[^。！？!?；;…\n]+[。！？!?；;…]*")


def split_sentences(text: str) -> list[str]:
    """Sentences of a Chinese text (the end punctuation stays with its sentence)."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()] or [text.strip()]


@dataclass
class _Found:
    """What one text unit says: emotion words per category, markers and counts."""

    words: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)  # zh, en, w
    negated_positive: list[str] = field(default_factory=list)
    reproach: list[str] = field(default_factory=list)
    question: bool = False
    exclamations: int = 0
    intensifiers: int = 0
    tokens: int = 0

    def add(self, basic: str, word: str, english: str, weight: float) -> None:
        self.words.setdefault(basic, []).append((word, english, weight))


def _negated(tokens: list[str], i: int) -> bool:
    j = i - 1
    while j >= 0 and i - j <= 4:
        t = tokens[j]
        if zh.CLAUSE_BREAK.fullmatch(t[:1]) or not t.strip():
            return False
        if t in zh.NEGATORS:
            return True
        if t not in zh.NEGATION_BRIDGE and t not in zh.HEDGES:
            return False
        j -= 1
    return False


def read_unit(text: str) -> _Found:
    """The emotion words and markers of one text unit."""
    found = _Found()
    found.reproach = _REPROACH.findall(text)
    # The words of a reproach do not count for their own sense: "我那么信任你" appeals to
    # broken trust, it does not express trust.
    text_read = _REPROACH.sub(lambda m: "，" * len(m.group(0)), text)
    tokens = zh.segment(text_read)
    found.tokens = sum(1 for t in tokens if t.strip() and not zh.CLAUSE_BREAK.fullmatch(t[:1]))
    for i, token in enumerate(tokens):
        if token in zh.INTENSIFIERS:
            found.intensifiers += 1
        english = zh.ZH_EMOTION.get(token)
        if not english:
            continue
        basic = BASIC_OF.get(english[0])
        if basic is None:
            continue
        if _negated(tokens, i):
            if basic == "happy":
                found.negated_positive.append("".join(tokens[max(0, i - 2) : i + 1]))
            continue  # a negated negative word ("不生气") simply does not count
        hedged = any(t in zh.HEDGES for t in tokens[max(0, i - 3) : i])
        found.add(basic, token, english[0], HEDGED_FACTOR if hedged else 1.0)
    for cue, basic in SPEECH_CUES.items():
        if cue in text_read:
            found.add(basic, cue, "", 1.0)
    found.question = "？" in text or "?" in text
    found.exclamations = text.count("！") + text.count("!")
    return found


def _evidence(found: _Found, *, pragmatics: bool = True) -> np.ndarray:
    """What the words add to each category's logit (0 where nothing speaks for it)."""
    add = np.zeros(len(BASIC_EMOTIONS))
    idx = {b: i for i, b in enumerate(BASIC_EMOTIONS)}
    for basic, words in found.words.items():
        weights = sorted((w for _, _, w in words), reverse=True)[:CUE_CAP]
        add[idx[basic]] += CUE_WEIGHT * sum(weights)
    negated = CUE_WEIGHT * min(len(found.negated_positive), CUE_CAP)
    add[idx["sad"]] += NEGATED_POSITIVE_SAD * negated
    add[idx["angry"]] += NEGATED_POSITIVE_ANGRY * negated
    if found.reproach and pragmatics:
        add[idx["angry"]] += REPROACH_WEIGHT
        add[idx["sad"]] += REPROACH_WEIGHT / 2
    elif found.question:
        add[idx["surprise"]] += QUESTION_WEIGHT
    return add


def _probs(add: np.ndarray) -> np.ndarray:
    logits = add.copy()
    logits[BASIC_EMOTIONS.index("neutral")] += NEUTRAL_BIAS
    exp = np.exp(logits - logits.max())
    out: np.ndarray = exp / exp.sum()
    return out


def _mean_of(add: np.ndarray, table: dict[str, float]) -> float:
    """The evidence-weighted mean of `table` (0 for a text that shows nothing)."""
    values = np.array([table[b] for b in BASIC_EMOTIONS])
    return float(add @ values / (add.sum() + 1.0))


def _tone(valence: float) -> str:
    if valence >= 0.4:
        return "clearly positive"
    if valence >= 0.1:
        return "positive"
    if valence <= -0.4:
        return "clearly negative"
    if valence <= -0.1:
        return "negative"
    return "neutral"


class ChineseTextReader:
    """Reads a Chinese subtitle into a text Clue (see the module docstring)."""

    def __init__(self) -> None:
        zh.tokenizer()  # load jieba's dictionary now, not on the first request
        self.info = ModelInfo(
            role="text",
            name=NAME,
            version=f"jieba {_version('jieba')}; lexicon v{LEXICON_VERSION}",
            backend="embedded",
        )

    def analyze(self, text: str) -> Clue:
        text = text.strip()
        sentences = split_sentences(text)
        whole = read_unit(text)
        evidence = _evidence(whole)
        scores = {b: float(p) for b, p in zip(BASIC_EMOTIONS, _probs(evidence), strict=True)}
        valence = _mean_of(evidence, VALENCE)
        # Valence of the words as they read, without the reproach markers: the explainer
        # compares it with the face and the voice (like the English model's).
        surface_valence = _mean_of(_evidence(whole, pragmatics=False), VALENCE)
        sentence_count = max(len(sentences), 1)
        arousal = _mean_of(evidence, AROUSAL)
        arousal += 0.3 * min(1.0, whole.exclamations / sentence_count)
        arousal += 0.1 * min(1.0, whole.intensifiers / 3.0)
        observations = [
            Observation(
                start_s=0.0,
                end_s=0.0,
                text=s,
                emotion_scores={
                    b: float(p)
                    for b, p in zip(BASIC_EMOTIONS, _probs(_evidence(read_unit(s))), strict=True)
                },
            )
            for s in (sentences if len(sentences) > 1 else [text])
        ]
        measurements = {
            "sentence_count": float(len(sentences)),
            "sentences_analysed": float(len(observations)),
            "word_count": float(whole.tokens),
            "exclamation_count": float(whole.exclamations),
            "question": float(whole.question),
            "intensifier_count": float(whole.intensifiers),
            "cue_word_count": float(sum(len(v) for v in whole.words.values())),
            "negated_positive_count": float(len(whole.negated_positive)),
            "surface_valence": surface_valence,
            "reproach_markers": float(len(whole.reproach)),
            "polarity_unreliable": float(bool(whole.reproach)),
        }
        return Clue(
            modality=Modality.TEXT,
            available=True,
            description=self._describe(scores, whole, valence),
            emotion_scores=scores,
            valence=float(np.clip(valence, -1.0, 1.0)),
            arousal=float(np.clip(arousal, -1.0, 1.0)),
            observations=observations,
            measurements=measurements,
            model=self.info,
        )

    @staticmethod
    def _describe(scores: dict[str, float], found: _Found, valence: float) -> list[str]:
        ranked = sorted(BASIC_EMOTIONS, key=lambda b: scores[b], reverse=True)
        top = ranked[0]
        tone = _tone(valence)
        lines: list[str] = []
        if top == "neutral":
            lines.append(
                f"The words are mostly matter-of-fact, with no clear emotion; the tone is {tone}."
            )
        else:
            p = scores[top]
            verb = "clearly express" if p >= 0.6 else "express" if p >= 0.35 else "suggest some"
            shown = [f"{w} '{e}'" if e else w for w, e, _ in found.words.get(top, [])[:3]]
            what = {"happy": "joy", "sad": "sadness", "angry": "anger", "fear": "fear",
                    "disgust": "disgust", "surprise": "surprise"}[top]  # fmt: skip
            evidence = f" ({', '.join(shown)})" if shown else ""
            lines.append(f"The words {verb} {what}{evidence}; the tone is {tone}.")
        if found.reproach:
            lines.append(f"The line reproaches rather than asks ('{found.reproach[0]}').")
        if found.negated_positive:
            lines.append(
                f"A positive word is negated ('{found.negated_positive[0]}'), which reads as "
                "negative."
            )
        if found.exclamations:
            lines.append("The exclamation marks make it sound intense.")
        lines.append("Read as Chinese.")
        return lines


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
