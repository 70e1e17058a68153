"""Section headings of a PDF: from its outline when it has one, else from type size and weight.

Most generated PDFs (reports, policies, manuals) have no outline but set headings in a
larger or bold font. The body size is the size most characters use; a short line set
clearly larger is a heading, one level per distinct larger size (largest = 1), and a short
bold line standing alone at body size is the lowest level.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pymupdf as fitz

from ingest.types import Heading

_LARGER = 1.15  # a heading is at least this much larger than body text
_MAX_HEADING_WORDS = 20
_MAX_BOLD_HEADING_WORDS = 12
MAX_LEVEL = 6


@dataclass(frozen=True)
class StyledLine:
    text: str
    size: float
    bold: bool
    y0: float
    alone: bool  # the only line of its text block


@dataclass(frozen=True)
class PlacedHeading:
    """A heading found on a page, before it is located in the page's final text."""

    y0: float
    level: int
    title: str
    first_line: str


def styled_lines(page: fitz.Page) -> list[StyledLine]:
    lines: list[StyledLine] = []
    # TEXTFLAGS_TEXT: no image blocks, so no image is decoded just to read font sizes.
    for block in page.get_text("dict", flags=fitz.TEXTFLAGS_TEXT)["blocks"]:
        block_lines = block.get("lines", [])
        for line in block_lines:
            spans = [span for span in line["spans"] if span["text"].strip()]
            if not spans:
                continue
            text = " ".join("".join(span["text"] for span in line["spans"]).split())
            size = max(spans, key=lambda span: len(span["text"]))["size"]
            bold = all(span["flags"] & 16 or "bold" in span["font"].lower() for span in spans)
            lines.append(StyledLine(text, round(size, 1), bold, line["bbox"][1], len(block_lines) == 1))
    return lines


def body_size(lines_by_page: dict[int, list[StyledLine]]) -> float:
    sizes: Counter[float] = Counter()
    for lines in lines_by_page.values():
        for line in lines:
            sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _is_heading(line: StyledLine, body: float) -> str | None:
    """'size' or 'bold' when the line reads as a heading, else None."""
    words = line.text.split()
    if not any(ch.isalpha() for ch in line.text):
        return None
    if line.size >= body * _LARGER and len(words) <= _MAX_HEADING_WORDS:
        return "size"
    if (
        line.bold
        and line.alone
        and abs(line.size - body) < 0.6
        and len(words) <= _MAX_BOLD_HEADING_WORDS
        and not line.text.endswith((".", ":", ",", ";"))
    ):
        return "bold"
    return None


def headings_by_style(lines_by_page: dict[int, list[StyledLine]]) -> dict[int, list[PlacedHeading]]:
    body = body_size(lines_by_page)
    if not body:
        return {}
    marked = {page: [(line, _is_heading(line, body)) for line in lines] for page, lines in lines_by_page.items()}
    sizes = sorted({line.size for lines in marked.values() for line, kind in lines if kind == "size"}, reverse=True)
    level_of = {size: min(rank, MAX_LEVEL) for rank, size in enumerate(sizes, start=1)}
    bold_level = min(len(sizes) + 1, MAX_LEVEL)
    found: dict[int, list[PlacedHeading]] = {}
    for page, lines in marked.items():
        placed: list[PlacedHeading] = []
        previous: StyledLine | None = None
        for line, kind in lines:
            if kind is None:
                previous = None
                continue
            level = level_of[line.size] if kind == "size" else bold_level
            # A title wrapped over two lines is one heading: same size, right below the last.
            if (
                previous is not None
                and placed
                and placed[-1].level == level
                and line.size == previous.size
                and 0 < line.y0 - previous.y0 < line.size * 2
            ):
                last = placed[-1]
                placed[-1] = PlacedHeading(last.y0, level, f"{last.title} {line.text}", last.first_line)
            else:
                placed.append(PlacedHeading(line.y0, level, line.text, line.text))
            previous = line
        if placed:
            found[page] = placed
    return found


def headings_from_outline(toc: list[list], page_lines: dict[int, list[StyledLine]]) -> dict[int, list[PlacedHeading]]:
    """Outline entries [level, title, page] placed at the line that starts their title, if any."""
    found: dict[int, list[PlacedHeading]] = {}
    for level, title, page, *_ in toc:
        title = " ".join(str(title).split())
        if not title or page < 1:
            continue
        key = title.lower()
        line = next((ln for ln in page_lines.get(page, []) if len(ln.text) >= 3 and key.startswith(ln.text.lower())), None)
        found.setdefault(page, []).append(
            PlacedHeading(line.y0 if line else -1.0, min(max(1, level), MAX_LEVEL), title, line.text if line else "")
        )
    return found


def locate(text: str, placed: list[PlacedHeading]) -> tuple[Heading, ...]:
    """Offsets of the headings in the page's extracted text, matched line by line in order.
    An outline entry with no matching line heads the page from its top; a styled line that
    is not in the text (a running header stripped, a table cell) is no heading."""
    offsets: list[tuple[int, str]] = []
    position = 0
    for line in text.splitlines(keepends=True):
        offsets.append((position, " ".join(line.split())))
        position += len(line)
    headings: list[Heading] = []
    cursor = 0
    for heading in sorted(placed, key=lambda h: h.y0):
        if not heading.first_line:
            headings.append(Heading(0, heading.level, heading.title))
            continue
        for index in range(cursor, len(offsets)):
            if offsets[index][1] == heading.first_line:
                headings.append(Heading(offsets[index][0], heading.level, heading.title))
                cursor = index + 1
                break
    return tuple(sorted(headings, key=lambda h: h.start))


def heading_anchor(top_y0: float, placed: list[PlacedHeading], located: tuple[Heading, ...]) -> int:
    """The offset of the last located heading above a table or figure (whose top is at
    top_y0) on its page, or -1 (the section in force when the page starts)."""
    by_title = {h.title: h.start for h in located}
    above = [h for h in placed if h.y0 < top_y0 and h.title in by_title]
    return by_title[max(above, key=lambda h: h.y0).title] if above else -1
