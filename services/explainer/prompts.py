"""The explainer's prompts: versioned text files rendered into chat messages.

Prompts live in `services/explainer/prompts/<version>/<name>.txt` so a wording change is a new
version folder (reviewable, and recorded in every answer's `ModelInfo.version`), never a silent
edit of an old one. File format:

    # comment lines at the top (what the prompt is for, where it comes from)
    [system]
    system message
    [user]
    user message with $placeholders
    [assistant]
    optional start of the answer, which the model continues

The assistant section steers small models into the EMER form ("In the video, ..."): the engine
continues that message instead of starting a new one, so the caller must put
`PromptTemplate.response_prefix` in front of the generated text.

Placeholders use `string.Template` (`$name`): clue text and subtitles are full of braces and
percent signs, which `str.format` would misread. Rendering fails when a placeholder has no value.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from string import Template

from services.common.types import Clue, ModelInfo, Transcript

PROMPT_VERSION = "v2"
PROMPT_NAMES = ("lexical_disambiguation", "merge_description", "conclusion", "label_extraction")
# Each clue is cut to this many characters so that three clues plus the instructions stay well
# inside a 2,048-token context (about 4 characters per token for English).
MAX_CLUE_CHARS = 1200
MAX_DESCRIPTION_CHARS = 4000

_PACKAGE = "services.explainer"
_SECTION = re.compile(r"^\[(system|user|assistant)\]\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str
    system: str
    user: str
    response_prefix: str  # "" = the model starts its answer freely
    sha256: str  # of the file: tells two edits of one version apart in logs

    @property
    def placeholders(self) -> set[str]:
        found: set[str] = set()
        for text in (self.system, self.user):
            for m in Template.pattern.finditer(text):
                name = m.group("named") or m.group("braced")
                if name:
                    found.add(name)
        return found

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with every placeholder filled; KeyError names a missing one."""
        messages = []
        if self.system:
            messages.append({"role": "system", "content": Template(self.system).substitute(values)})
        messages.append({"role": "user", "content": Template(self.user).substitute(values)})
        if self.response_prefix:
            messages.append({"role": "assistant", "content": self.response_prefix})
        return messages


def available_versions() -> list[str]:
    root = resources.files(_PACKAGE).joinpath("prompts")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


def parse_prompt(name: str, version: str, text: str) -> PromptTemplate:
    lines = text.splitlines()
    while lines and lines[0].startswith("#"):  # only the header: a prompt may quote a "#"
        lines.pop(0)
    body = "\n".join(lines)
    parts = _SECTION.split(body)
    # parts = [preamble, "system", text, "user", text, "assistant", text] (system, assistant
    # optional)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if "user" not in sections or parts[0].strip():
        raise ValueError(f"prompt {version}/{name}: needs a [user] section and nothing before it")
    return PromptTemplate(
        name=name,
        version=version,
        system=sections.get("system", ""),
        user=sections["user"],
        response_prefix=sections.get("assistant", ""),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


@cache
def load_prompt(name: str, version: str = PROMPT_VERSION) -> PromptTemplate:
    """The prompt `name` of `version`; FileNotFoundError names what is missing."""
    path = resources.files(_PACKAGE).joinpath("prompts", version, f"{name}.txt")
    if not path.is_file():
        raise FileNotFoundError(f"no prompt {version}/{name} (versions: {available_versions()})")
    return parse_prompt(name, version, path.read_text(encoding="utf-8"))


def prompt_model_info(engine: ModelInfo, version: str = PROMPT_VERSION) -> ModelInfo:
    """The engine's ModelInfo with the prompt version in it: the same weights with other prompts
    give other explanations, so clients must be able to tell them apart."""
    return replace(engine, version=f"{engine.version}+prompts-{version}")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def clue_text(clue: Clue | None) -> str:
    """A clue as prompt text; a missing clue says so rather than leaving a blank to fill."""
    if clue is None:
        return "not requested."
    if not clue.available:
        reason = f" ({clue.unavailable_reason})" if clue.unavailable_reason else ""
        return f"not available{reason}."
    body = " ".join(s.strip() for s in clue.description if s.strip())
    return _clip(body, MAX_CLUE_CHARS) if body else "no clue could be read."


def subtitle_text(transcript: Transcript | str | None) -> str:
    text = transcript.text if isinstance(transcript, Transcript) else (transcript or "")
    # The template quotes the subtitle: straight double quotes inside would end it early.
    return _clip(text.replace('"', "'"), MAX_CLUE_CHARS) if text.strip() else "(no speech)"


def lexical_disambiguation_messages(
    transcript: Transcript | str | None,
    visual: Clue | None,
    audio: Clue | None,
    version: str = PROMPT_VERSION,
) -> list[dict[str, str]]:
    return load_prompt("lexical_disambiguation", version).render(
        subtitle=subtitle_text(transcript),
        visual_clue=clue_text(visual),
        acoustic_clue=clue_text(audio),
    )


def merge_description_messages(
    visual: Clue | None,
    audio: Clue | None,
    lexical_clue: str,
    transcript: Transcript | str | None,
    version: str = PROMPT_VERSION,
) -> list[dict[str, str]]:
    """`lexical_clue`: the LLM's disambiguated reading of the subtitle, or the text clue's
    sentences when that step is skipped."""
    return load_prompt("merge_description", version).render(
        visual_clue=clue_text(visual),
        acoustic_clue=clue_text(audio),
        subtitle=subtitle_text(transcript),
        lexical_clue=_clip(lexical_clue, MAX_CLUE_CHARS) if lexical_clue.strip() else "none.",
    )


def label_extraction_messages(
    description: str, version: str = PROMPT_VERSION
) -> list[dict[str, str]]:
    return load_prompt("label_extraction", version).render(
        description=_clip(description, MAX_DESCRIPTION_CHARS)
    )


def conclusion_messages(
    clues: str, emotions: str, version: str = PROMPT_VERSION
) -> list[dict[str, str]]:
    """Only the "Therefore, ..." sentence, reasoning over `clues` (v1: the composer's clue
    paragraphs; v2: `structured_clues`)."""
    # Line by line: the structured form's lines must stay lines.
    lines = [_clip(line, MAX_CLUE_CHARS) for line in clues.splitlines() if line.strip()]
    return load_prompt("conclusion", version).render(
        clues=_clip_lines(lines, MAX_DESCRIPTION_CHARS), emotions=emotions
    )


def _clip_lines(lines: list[str], limit: int) -> str:
    """The lines, as many as fit in `limit` characters (at least the first, clipped)."""
    kept: list[str] = []
    used = 0
    for line in lines:
        if kept and used + len(line) + 1 > limit:
            break
        kept.append(line if kept else _clip(line, limit))
        used += len(line) + 1
    return "\n".join(kept)


# How the structured form names each modality, and the composer paragraph that words it.
_STRUCTURED = (
    ("Face", "In the video, "),
    ("Voice", "In the audio, "),
    ("Words", "In the text, "),
)
_NOUN = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "no clear emotion",
}
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(?:\s|$)")


def structured_clues(paragraphs: list[str], clues: list[Clue | None]) -> str:
    """The clues as short lines a small model can use: one per modality, its leading emotion
    with the score and the first sentence of the composer's paragraph for it (the words' line
    keeps the whole paragraph: it carries the reading with the face and the voice).

    `paragraphs`: the composer's clue paragraphs ("In the video, ..."); `clues`: the clues in
    the order face, voice, words (None = not requested).
    """
    lines = []
    for (name, lead), clue in zip(_STRUCTURED, clues, strict=True):
        paragraph = next((p for p in paragraphs if p.startswith(lead)), "")
        if clue is None or not paragraph:
            continue
        body = paragraph[len(lead) :]
        body = body[0].upper() + body[1:] if body else body
        if not clue.available or not clue.emotion_scores:
            lines.append(f"- {name}: {body}")
            continue
        if name != "Words":
            m = _FIRST_SENTENCE.match(body)
            body = m.group(1) if m else body
        top = max(clue.emotion_scores, key=lambda k: clue.emotion_scores[k])
        lines.append(f"- {name}: {_NOUN.get(top, top)} ({clue.emotion_scores[top]:.2f}). {body}")
    return "\n".join(lines)
