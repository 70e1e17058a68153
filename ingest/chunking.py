"""Split page text into overlapping chunks of about N tokens that never cross a page.

Units are sentences (or hard-wrapped pieces of over-long sentences); a chunk is a run of
whole units, so citations point at readable text and char offsets map back to the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ingest.types import PageText, TableText, TextChunk

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


def chunk_pages(
    pages: Sequence[PageText],
    count_tokens: TokenCounter = approximate_token_counter,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
) -> list[TextChunk]:
    if max_tokens <= 0 or overlap_tokens < 0 or overlap_tokens >= max_tokens:
        raise ValueError("need 0 <= overlap_tokens < max_tokens")
    chunks: list[TextChunk] = []
    for page in pages:
        spans = _split_long_units(page.text, _units(page.text), count_tokens, max_tokens)
        if not spans:
            continue
        sizes = count_tokens([page.text[s:e] for s, e in spans])
        start_unit = 0
        while start_unit < len(spans):
            end_unit, used = start_unit, 0
            while end_unit < len(spans) and (used + sizes[end_unit] <= max_tokens or end_unit == start_unit):
                used += sizes[end_unit]
                end_unit += 1
            char_start, char_end = spans[start_unit][0], spans[end_unit - 1][1]
            text = " ".join(page.text[char_start:char_end].split())
            if text:
                chunks.append(TextChunk(page=page.page, ordinal=len(chunks), text=text, char_start=char_start, char_end=char_end))
            if end_unit >= len(spans):
                break
            # Step back over whole units worth about overlap_tokens, but always move forward.
            next_start, carried = end_unit, 0
            while next_start - 1 > start_unit and carried + sizes[next_start - 1] <= overlap_tokens:
                next_start -= 1
                carried += sizes[next_start]
            start_unit = next_start
    return chunks


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
) -> list[TextChunk]:
    """One chunk per table, in Markdown. A table over max_tokens is cut between rows, never
    inside one, and every piece repeats the header so its columns still have names. A single
    row over the budget stays whole (the embedder then sees only its start)."""
    chunks: list[TextChunk] = []
    for table in tables:
        lines = table_markdown(table.rows)
        if not lines:
            continue
        head, body = lines[:2], lines[2:]
        head_tokens = sum(count_tokens(head + ([table.context] if table.context else [])))
        sizes = count_tokens(body)
        group: list[str] = []
        used = head_tokens
        for line, size in zip(body, sizes):
            if group and used + size > max_tokens:
                chunks.append(_table_chunk(table, first_ordinal + len(chunks), head + group))
                group, used = [], head_tokens
            group.append(line)
            used += size
        if group or not body:
            chunks.append(_table_chunk(table, first_ordinal + len(chunks), head + group))
    return chunks


def _table_chunk(table: TableText, ordinal: int, lines: list[str]) -> TextChunk:
    text = "\n".join(([table.context] if table.context else []) + lines)
    return TextChunk(page=table.page, ordinal=ordinal, text=text, char_start=None, char_end=None)
