"""Check an answer's citations against its sources after generation.

Every sentence must end up citing at least one real source: markers that name no source
are removed; a sentence without a marker gets the source that shares the most content
words with it, if any shares enough; a sentence no source supports is dropped. If
nothing supported remains, the answer becomes the "not in the documents" reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.prompting import NOT_IN_SOURCES
from app.schemas import Source

_MARKER_RE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# A sentence ends at . ! ? followed by optional [n] markers and then a space or the end, so
# decimals (2.5 Nm, 0.30 EUR) and codes (v1.2) stay inside their sentence.
_SENTENCE_RE = re.compile(r"\S.*?(?:[.!?。！？](?:\s*\[\d+(?:\s*,\s*\d+)*\])*(?=\s|$)|$)", re.DOTALL)
_WORD_RE = re.compile(r"[\w-]+", re.UNICODE)
_STOPWORDS = frozenset(
    "the a an and or of to in on for with by at from is are was were be been it this that these those as "
    "its their there which what who whom when where how why can could should would will may might must do does did "
    "not no yes than then so such into about over under per each any all some more most other also only".split()
)
MIN_SUPPORT = 0.4


@dataclass(frozen=True)
class CheckedAnswer:
    text: str
    cited: list[int]
    supported: bool
    dropped_sentences: list[str]


def _content_words(text: str) -> set[str]:
    return {w for w in (m.group(0).lower() for m in _WORD_RE.finditer(text)) if w not in _STOPWORDS and len(w) > 1}


def is_refusal(text: str) -> bool:
    lowered = text.lower()
    return NOT_IN_SOURCES.lower().rstrip(".") in lowered or "do not contain an answer" in lowered


def check_citations(answer: str, sources: list[Source]) -> CheckedAnswer:
    if not answer.strip() or is_refusal(answer):
        return CheckedAnswer(NOT_IN_SOURCES, [], False, [])
    valid = {source.number: source for source in sources}
    source_words = {number: _content_words(source.text) for number, source in valid.items()}
    kept: list[str] = []
    dropped: list[str] = []
    cited: list[int] = []
    for match in _SENTENCE_RE.finditer(answer.strip()):
        sentence = match.group(0).strip()
        if not _content_words(_MARKER_RE.sub("", sentence)):
            continue
        numbers = [int(n) for group in _MARKER_RE.findall(sentence) for n in group.split(",")]
        numbers = [n for n in dict.fromkeys(numbers) if n in valid]
        body = _MARKER_RE.sub("", sentence).strip()
        if not numbers:
            words = _content_words(body)
            best, overlap = None, 0.0
            for number, candidate in source_words.items():
                share = len(words & candidate) / len(words)
                if share > overlap:
                    best, overlap = number, share
            if best is None or overlap < MIN_SUPPORT:
                dropped.append(body)
                continue
            numbers = [best]
        body = re.sub(r"\s+([.!?])", r"\1", body)
        markers = "".join(f"[{n}]" for n in numbers)
        ending = body[-1] if body[-1] in ".!?。！？" else ""
        kept.append(f"{body[: len(body) - len(ending)].rstrip()} {markers}{ending}")
        cited.extend(n for n in numbers if n not in cited)
    if not kept:
        return CheckedAnswer(NOT_IN_SOURCES, [], False, dropped)
    return CheckedAnswer(" ".join(kept), cited, True, dropped)
