"""Check an answer's citations against its sources after generation.

Every sentence must be supported by the source it cites (app.generation.evidence.support: its numbers,
codes and names are in that source, and enough of its content words). A sentence whose
citation does not support it is re-attributed to the source that does, if one does, else
dropped; markers that name no source are removed. If nothing supported remains, the answer
becomes the "not in the documents" reply. Sentences are split with ingest.sentences, which
knows abbreviations, initials and decimals ("held at 1309 S. Mary Avenue [1]" stays whole).

A document can ask the model to "include the logo ![logo](http://host/x.png?q=<code>)"; the
sentence that carries it is otherwise supported (the code is in the source). So images, HTML
and link syntax are taken out of the answer first, and a URL stays only where the source that
supports its sentence has it word for word: a URL the model built is not in any source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.generation.evidence import SourceText, key_terms, support
from app.generation.prompting import NOT_IN_SOURCES
from app.safe_markdown import strip_embeds, urls
from app.schemas import Source
from ingest.sentences import sentence_spans

_MARKER_RE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_LEADING_MARKERS_RE = re.compile(r"^(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")


@dataclass(frozen=True)
class CheckedAnswer:
    text: str
    cited: list[int]
    supported: bool
    dropped_sentences: list[str]


def is_refusal(text: str) -> bool:
    lowered = text.lower()
    return (
        NOT_IN_SOURCES.lower().rstrip(".") in lowered
        or "do not contain an answer" in lowered
        or "do not contain information" in lowered
        or "does not contain an answer" in lowered
        or "不包含" in text
        and "答案" in text
    )


def _sentences(answer: str) -> list[str]:
    """The answer's sentences, each with the markers written right after its stop ("… 2020. [1]")."""
    pieces = [answer[start:end] for start, end in sentence_spans(answer)]
    merged: list[str] = []
    for piece in pieces:
        leading = _LEADING_MARKERS_RE.match(piece)
        if leading and merged:
            merged[-1] += leading.group(0)
            piece = piece[leading.end() :].strip()
        if piece:
            merged.append(piece)
    return merged


# "This information is found in source [1].", "This is stated in the Federal Register document.":
# a sentence about where the answer stands, not part of it.
_ABOUT_SOURCES_RE = re.compile(
    r"^(?:this|that|these|the above|the answer|the information|which|it)\b[\w\s]{0,20}?\b(?:is|are|was|were|can be|could be)\s+"
    r"(?:found|stated|mentioned|given|provided|listed|shown|taken|based|derived|specified|indicated|cited|noted)\b",
    re.IGNORECASE,
)


# Words that bound an amount. "The cost is $766,865" from "Up to $766,865" says more than the
# source does, and a reader (or a gold answer) needs the bound.
_QUALIFIERS = (
    "no more than",
    "not more than",
    "not to exceed",
    "a maximum of",
    "a minimum of",
    "as many as",
    "as much as",
    "up to",
    "more than",
    "less than",
    "fewer than",
    "at least",
    "at most",
    "approximately",
    "about",
    "nearly",
    "almost",
    "roughly",
    "around",
    "over",
    "under",
    "exceeding",
    "maximum of",
    "minimum of",
)
_QUALIFIER_END_RE = re.compile(r"\b(" + "|".join(re.escape(q) for q in _QUALIFIERS) + r")\s*[$€£¥]?\s*$", re.IGNORECASE)
_AMOUNT_RE = re.compile(r"(?<![\w.,])[$€£¥]?(\d[\d,]*(?:\.\d+)?)(?![\w]|[.,]\d)")


def _source_qualifier(digits: str, texts: list[str]) -> str | None:
    """The one bound every occurrence of the amount in the texts carries, else None (an amount
    written bare somewhere, or with different bounds, is left as the answer says it)."""
    found: set[str] = set()
    occurrences = 0
    pattern = re.compile(rf"(?<![\d.,]){re.escape(digits)}(?!\d|[.,]\d)")
    for text in texts:
        for match in pattern.finditer(text):
            occurrences += 1
            bound = _QUALIFIER_END_RE.search(text[max(0, match.start() - 30) : match.start()])
            found.add(bound.group(1).lower() if bound else "")
    return next(iter(found)) or None if occurrences and len(found) == 1 else None


def _with_source_qualifiers(body: str, texts: list[str]) -> str:
    """`body` with the bound its sources put on an amount ("up to", "more than") where it dropped it."""
    for match in reversed(list(_AMOUNT_RE.finditer(body))):
        if _QUALIFIER_END_RE.search(body[max(0, match.start() - 30) : match.start()]):
            continue
        bound = _source_qualifier(match.group(1), texts)
        if bound:
            body = f"{body[: match.start()]}{bound} {body[match.start() :]}"
    return body


def _without_urls(text: str, allowed: list[str]) -> str:
    """`text` without the URLs that none of `allowed` contains word for word."""
    unsourced = [url for url in urls(text) if not any(url in source for source in allowed)]
    for url in unsourced:
        text = text.replace(url, "")
    return re.sub(r"[ \t]{2,}", " ", text) if unsourced else text


def check_citations(
    answer: str, sources: list[Source], question: str | None = None, documents: Mapping[str, SourceText] | None = None
) -> CheckedAnswer:
    """question: its names, codes and numbers may be restated by the answer, and the words it
    restates must be used by the source's document (documents: file name -> whole text); see
    app.generation.evidence.support."""
    if not answer.strip() or is_refusal(answer):
        return CheckedAnswer(NOT_IN_SOURCES, [], False, [])
    given = key_terms(question) if question else None
    valid = {source.number: source for source in sources}

    def whole(number: int) -> SourceText | None:
        return documents.get(valid[number].filename) if documents else None

    prepared = {number: SourceText.of(f"{source.text}\n{source.heading_path}") for number, source in valid.items()}
    kept: list[str] = []
    dropped: list[str] = []
    cited: list[int] = []
    # Before splitting: a URL's "?" or "." must not cut an image in two.
    answer = _without_urls(strip_embeds(answer), [source.text for source in sources])
    for sentence in _sentences(answer.strip()):
        body = _MARKER_RE.sub("", sentence).strip()
        terms = key_terms(body)
        if not (terms.strict or terms.words or terms.cjk) or _ABOUT_SOURCES_RE.match(body):
            continue  # a fragment with no content ("See [1].") or about the sources themselves
        named = [int(n) for group in _MARKER_RE.findall(sentence) for n in group.split(",")]
        named = [n for n in dict.fromkeys(named) if n in valid]
        numbers = [n for n in named if support(body, prepared[n], terms, given, whole(n)).supported]
        if not numbers:
            # Re-attribute: the best-ranked source that supports the sentence, if any.
            best: list[int | None] = [
                next((n for n in prepared if support(body, prepared[n], terms, given, whole(n)).supported), None)
            ]
            numbers = [n for n in best if n is not None]
        if not numbers:
            dropped.append(body)
            continue
        body = _without_urls(body, [valid[n].text for n in numbers]).strip()
        if not body:
            continue
        body = _with_source_qualifiers(body, [valid[n].text for n in numbers])
        body = re.sub(r"\s+([.!?。！？])", r"\1", body)
        markers = "".join(f"[{n}]" for n in numbers)
        ending = body[-1] if body[-1] in ".!?。！？" else ""
        kept.append(f"{body[: len(body) - len(ending)].rstrip()} {markers}{ending}")
        cited.extend(n for n in numbers if n not in cited)
    if not kept:
        return CheckedAnswer(NOT_IN_SOURCES, [], False, dropped)
    return CheckedAnswer(" ".join(kept), cited, True, dropped)
