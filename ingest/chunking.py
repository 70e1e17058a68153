"""Split page text into overlapping chunks of about N tokens that never cross a page or a heading.

Units are sentences (or hard-wrapped pieces of over-long sentences); a chunk is a run of
whole units, so citations point at readable text and char offsets map back to the page.
Each chunk carries the path of headings it sits under ("Travel policy > Hotels").
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence

from ingest.types import PageText, ParsedFile, TableText, TextChunk

TokenCounter = Callable[[Sequence[str]], list[int]]

# A unit ends at . ! ? followed by whitespace (so 2.5 and v1.2 stay whole), at CJK 。！？,
# or at a blank line (a paragraph or table-row break); single newlines are mere line wraps.
_UNIT_RE = re.compile(r"\S.*?(?:[.!?](?=\s)|[。！？]|\n[ \t]*\n|$)", re.DOTALL)


def approximate_token_counter(texts: Sequence[str]) -> list[int]:
    """Fallback when no tokenizer is at hand: about 1.3 word-pieces per word."""
    return [max(1, round(len(text.split()) * 1.3)) for text in texts]


def _units(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _UNIT_RE.finditer(text):
        start, end = match.span()
        if text[start:end].strip():
            spans.append((start, end))
    return spans


PATH_SEPARATOR = " > "


class SectionMap:
    """The heading path in force at any (page, offset) of a document.

    Sections run across pages: a heading on page 2 still heads the text of page 3 until a
    heading of the same or a higher level replaces it.
    """

    def __init__(self, pages: Sequence[PageText]) -> None:
        self._keys: list[tuple[int, int]] = []
        self._paths: list[str] = []
        stack: list[tuple[int, str]] = []
        for page in pages:
            for heading in sorted(page.headings, key=lambda h: h.start):
                title = " ".join(heading.title.split())
                if not title:
                    continue
                while stack and stack[-1][0] >= heading.level:
                    stack.pop()
                stack.append((heading.level, title))
                self._keys.append((page.page, heading.start))
                self._paths.append(PATH_SEPARATOR.join(t for _, t in stack))

    def path_at(self, page: int, offset: int | None) -> str:
        """The path at `offset` of `page` (None: the page's end; -1: before its first character)."""
        key = (page, offset if offset is not None else 1 << 62)
        position = bisect.bisect_right(self._keys, key)
        return self._paths[position - 1] if position else ""


def _words(text: str) -> str:
    return " ".join(text.replace("#", " ").split()).lower()


def _segments(page: PageText) -> list[tuple[int, int]]:
    """The page cut at its headings. A heading with no text of its own before the next one
    ("# Policy" right above "## Hotels") stays with the next, so no chunk is a bare title."""
    text = page.text
    by_start = {h.start: h for h in page.headings}
    cuts = sorted(start for start in by_start if 0 < start < len(text))
    bounds = [0] + cuts + [len(text)]
    segments: list[tuple[int, int]] = []
    pending: int | None = None  # start of a bare heading waiting for the text under it
    for begin, finish in zip(bounds, bounds[1:]):
        start = begin if pending is None else pending
        heading = by_start.get(begin)
        if heading is not None and finish < len(text) and _words(text[begin:finish]) == _words(heading.title):
            pending = start
            continue
        pending = None
        if text[start:finish].strip():
            segments.append((start, finish))
    return segments


def chunk_pages(
    pages: Sequence[PageText],
    count_tokens: TokenCounter = approximate_token_counter,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
) -> list[TextChunk]:
    """Chunks of whole sentences, never across a page or a heading, each with its heading path."""
    if max_tokens <= 0 or overlap_tokens < 0 or overlap_tokens >= max_tokens:
        raise ValueError("need 0 <= overlap_tokens < max_tokens")
    sections = SectionMap(pages)
    chunks: list[TextChunk] = []
    for page in pages:
        for seg_start, seg_end in _segments(page):
            segment = page.text[seg_start:seg_end]
            spans = [(seg_start + s, seg_start + e) for s, e in _units(segment)]
            spans = _split_long_units(page.text, spans, count_tokens, max_tokens)
            for char_start, char_end in _pack(page.text, spans, count_tokens, max_tokens, overlap_tokens):
                text = " ".join(page.text[char_start:char_end].split())
                if text:
                    path = sections.path_at(page.page, char_end - 1)
                    chunks.append(TextChunk(page=page.page, ordinal=len(chunks), text=text, char_start=char_start,
                                            char_end=char_end, heading_path=path))
    return chunks


def _pack(
    text: str, spans: list[tuple[int, int]], count_tokens: TokenCounter, max_tokens: int, overlap_tokens: int
) -> list[tuple[int, int]]:
    """Runs of whole units of at most max_tokens, consecutive runs sharing about overlap_tokens."""
    if not spans:
        return []
    sizes = count_tokens([text[s:e] for s, e in spans])
    runs: list[tuple[int, int]] = []
    start_unit = 0
    while start_unit < len(spans):
        end_unit, used = start_unit, 0
        while end_unit < len(spans) and (used + sizes[end_unit] <= max_tokens or end_unit == start_unit):
            used += sizes[end_unit]
            end_unit += 1
        runs.append((spans[start_unit][0], spans[end_unit - 1][1]))
        if end_unit >= len(spans):
            break
        # Step back over whole units worth about overlap_tokens, but always move forward.
        next_start, carried = end_unit, 0
        while next_start - 1 > start_unit and carried + sizes[next_start - 1] <= overlap_tokens:
            next_start -= 1
            carried += sizes[next_start]
        start_unit = next_start
    return runs


def embedding_text(chunk: TextChunk) -> str:
    """What the embedder sees: the chunk under its own section's heading, so a passage that
    never names its topic ("the cap is 180 EUR") is still found by a question about that
    section. Only the innermost heading: with the whole path, every chunk of a document
    repeated its title, and the sample questions ranked worse (benchmarks/RESULTS.md)."""
    section = chunk.heading_path.rsplit(PATH_SEPARATOR, 1)[-1]
    if not section or chunk.text.startswith(section) or chunk.text.lstrip("# ").startswith(section):
        return chunk.text
    return f"{section}\n{chunk.text}"


def _split_long_units(
    text: str, spans: list[tuple[int, int]], count_tokens: TokenCounter, max_tokens: int
) -> list[tuple[int, int]]:
    """Cut units longer than max_tokens (tables, run-on lines) at word boundaries."""
    if not spans:
        return spans
    sizes = count_tokens([text[s:e] for s, e in spans])
    result: list[tuple[int, int]] = []
    for (start, end), size in zip(spans, sizes):
        if size <= max_tokens:
            result.append((start, end))
            continue
        words = [m.span() for m in re.finditer(r"\S+", text[start:end])]
        per_piece = max(1, int(len(words) * max_tokens / size * 0.9))
        for index in range(0, len(words), per_piece):
            piece = words[index : index + per_piece]
            result.append((start + piece[0][0], start + piece[-1][1]))
    return result


def table_markdown(rows: Sequence[Sequence[str]]) -> list[str]:
    """Markdown lines of a table: header, separator, then one line per body row."""
    cells = [[" ".join(str(cell or "").split()).replace("|", "\\|") for cell in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return []
    width = max(len(row) for row in cells)
    cells = [row + [""] * (width - len(row)) for row in cells]
    return ["| " + " | ".join(row) + " |" for row in cells[:1]] + ["|" + " --- |" * width] + [
        "| " + " | ".join(row) + " |" for row in cells[1:]
    ]


def chunk_tables(
    tables: Sequence[TableText],
    count_tokens: TokenCounter = approximate_token_counter,
    max_tokens: int = 200,
    first_ordinal: int = 0,
    sections: SectionMap | None = None,
) -> list[TextChunk]:
    """One chunk per table, in Markdown. A table over max_tokens is cut between rows, never
    inside one, and every piece repeats the header so its columns still have names. A single
    row over the budget stays whole (the embedder then sees only its start). The budget
    includes the heading path, which the embedder sees above the table."""
    chunks: list[TextChunk] = []
    for table in tables:
        lines = table_markdown(table.rows)
        if not lines:
            continue
        path = sections.path_at(table.page, table.anchor) if sections is not None else ""
        head, body = lines[:2], lines[2:]
        head_tokens = sum(count_tokens(head + [part for part in (table.context, path) if part]))
        sizes = count_tokens(body)
        group: list[str] = []
        used = head_tokens
        for line, size in zip(body, sizes):
            if group and used + size > max_tokens:
                chunks.append(_table_chunk(table, first_ordinal + len(chunks), head + group, path))
                group, used = [], head_tokens
            group.append(line)
            used += size
        if group or not body:
            chunks.append(_table_chunk(table, first_ordinal + len(chunks), head + group, path))
    return chunks


def _table_chunk(table: TableText, ordinal: int, lines: list[str], path: str) -> TextChunk:
    text = "\n".join(([table.context] if table.context else []) + lines)
    return TextChunk(page=table.page, ordinal=ordinal, text=text, char_start=None, char_end=None, heading_path=path)


def chunk_file(
    parsed: ParsedFile,
    count_tokens: TokenCounter,
    max_tokens: int,
    overlap_tokens: int,
    table_max_tokens: int,
) -> list[TextChunk]:
    """Every text and table chunk of a parsed file, numbered in one sequence, with heading paths."""
    pieces = chunk_pages(parsed.pages, count_tokens, max_tokens, overlap_tokens)
    return pieces + chunk_tables(parsed.tables, count_tokens, table_max_tokens, len(pieces), SectionMap(parsed.pages))


def figure_heading_paths(parsed: ParsedFile) -> list[str]:
    """The section each of parsed.images sits in (a standalone image file has none)."""
    sections = SectionMap(parsed.pages)
    return ["" if image.standalone else sections.path_at(image.page, image.anchor) for image in parsed.images]
