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

# A unit ends at . ! ? followed by whitespace (so 2.5 and v1.2 stay whole), at the Chinese
# stops 。！？； (with a closing quote or bracket after them), or at a blank line (a paragraph or
# table-row break); single newlines are mere line wraps.
_UNIT_RE = re.compile(r"\S.*?(?:[.!?](?=\s)|[。！？；][”’」』）)\]]*|\n[ \t]*\n|$)", re.DOTALL)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR_RE = re.compile(f"[{_CJK}]")
# Counted one token each by the fallback: Chinese characters, ideographic and full-width
# punctuation and forms ("。", "，", "ＳＸ"). Exact counts, so units add up to their chunk.
_ONE_TOKEN_RE = re.compile(f"[{_CJK}\u3000-\u303f\uff00-\uffef]")
# What a long unit may be cut between: one Chinese character (with the punctuation after it),
# or one run of anything else without spaces, so a number ("1,234.56"), a code ("SX-400",
# "ＳＸ－４００") or a Latin word is never cut inside.
_ATOM_RE = re.compile(f"[{_CJK}][^\\s{_CJK}\\w]*|[^\\s{_CJK}]+")
# Where a cut reads best inside a Chinese sentence: after a clause mark, or at a space.
_CLAUSE_END = tuple("，、：,;:")


def approximate_token_counter(texts: Sequence[str]) -> list[int]:
    """Fallback when no tokenizer is at hand: about 1.3 word-pieces per word and one per
    Chinese character (Chinese has no spaces: a whole paragraph would count as one word)."""
    counts = []
    for text in texts:
        chinese = len(_ONE_TOKEN_RE.findall(text))
        words = len(_ONE_TOKEN_RE.sub(" ", text).split())
        counts.append(max(1, chinese + round(words * 1.3)))
    return counts


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
                    chunks.append(
                        TextChunk(
                            page=page.page,
                            ordinal=len(chunks),
                            text=text,
                            char_start=char_start,
                            char_end=char_end,
                            heading_path=path,
                        )
                    )
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
    """Cut units longer than max_tokens (tables, run-on lines, a Chinese sentence or a
    paragraph without stops) between atoms: words, or Chinese characters, never inside a
    number or a code. A cut goes after a clause mark or a space where one is in the second
    half of the piece, so pieces end like phrases."""
    if not spans:
        return spans
    sizes = count_tokens([text[s:e] for s, e in spans])
    result: list[tuple[int, int]] = []
    for (start, end), size in zip(spans, sizes):
        if size <= max_tokens:
            result.append((start, end))
            continue
        atoms = [(start + s, start + e) for s, e in (m.span() for m in _ATOM_RE.finditer(text[start:end]))]
        weights = count_tokens([text[s:e] for s, e in atoms])
        # Atoms counted alone add up to more than the unit counted whole (a tokenizer merges
        # neighbours); scale the budget so a piece of the unit, counted whole, still fits.
        budget = max_tokens * 0.9 * sum(weights) / size
        piece_start, used, good_cut = 0, 0.0, None
        for index, weight in enumerate(weights):
            if index > piece_start and used + weight > budget:
                cut = good_cut if good_cut is not None and good_cut > piece_start + (index - piece_start) // 2 else index
                result.append((atoms[piece_start][0], atoms[cut - 1][1]))
                piece_start, good_cut = cut, None
                used = sum(weights[cut:index])
            used += weight
            atom_text = text[atoms[index][0] : atoms[index][1]]
            spaced = index + 1 < len(atoms) and atoms[index + 1][0] > atoms[index][1]
            if atom_text.endswith(_CLAUSE_END) or (spaced and _CJK_CHAR_RE.search(atom_text)):
                good_cut = index + 1
        result.append((atoms[piece_start][0], atoms[-1][1]))
    return result


# Column names that say nothing about the values ("Parameter | Value"): such a two-column
# table is a list of label/value pairs and reads best as "label: value" lines.
_GENERIC_NAMES = {
    "parameter",
    "parameters",
    "value",
    "values",
    "item",
    "items",
    "description",
    "field",
    "fields",
    "property",
    "attribute",
    "key",
    "name",
    "setting",
    "settings",
    "specification",
    "specifications",
    "characteristic",
    "feature",
    "detail",
    "details",
    "data",
    "information",
    "info",
    "label",
    "entry",
    "参数",
    "数值",
    "项目",
    "内容",
    "名称",
    "值",
    "说明",
    "指标",
}


def _cell(text: object) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def table_lines(table: TableText) -> tuple[list[str], list[str]]:
    """A table as text a small model can answer from: (head lines, one line per body row).

    Every value carries its column's name, so a row still reads alone in a piece of a long
    table: the head names the columns once ("| State | Permit | Handgun |") and each row is
    "State: Texas | Permit: 21,550 | Handgun: 56,941" (empty cells left out, cells never run
    together). A two-column table without a header, or with one that names nothing
    ("Parameter | Value"), is a list of pairs: "Maximum DC input voltage: 600 V". Rows of a
    table without a header keep their cells apart with " | "."""
    rows = [[_cell(cell) for cell in row] for row in table.rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return [], []
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    names: list[str] = []
    if table.header and len(rows) > 1:  # a lone row names nothing: it is the table's content
        names, rows = [name.rstrip(":").strip() for name in rows[0]], rows[1:]
    if width == 2 and (not names or all(name.lower() in _GENERIC_NAMES for name in names)):
        return [], [_pair(label, value) for label, value in rows]
    if not names:
        return [], [_unnamed(row) for row in rows]
    head = ["| " + " | ".join(names) + " |"]
    body = []
    for row in rows:
        filled = [(name, value) for name, value in zip(names, row) if value]
        if len(filled) == 1 and width >= 3:  # a row across the table: a section label or a note
            body.append(filled[0][1])
        elif filled:
            body.append(" | ".join(f"{name}: {value}" if name else value for name, value in filled))
    return head, body


def _pair(label: str, value: str) -> str:
    if not (label and value):
        return label or value
    return f"{label} {value}" if label.endswith(":") else f"{label}: {value}"


def _unnamed(row: list[str]) -> str:
    """Cells apart; a label cell ending in a colon ("Name:") joined to the value after it."""
    parts: list[str] = []
    for cell in row:
        if not cell:
            continue
        if parts and parts[-1].endswith(":"):
            parts[-1] = f"{parts[-1]} {cell}"
        else:
            parts.append(cell)
    return " | ".join(parts)


def chunk_tables(
    tables: Sequence[TableText],
    count_tokens: TokenCounter = approximate_token_counter,
    max_tokens: int = 200,
    first_ordinal: int = 0,
    sections: SectionMap | None = None,
) -> list[TextChunk]:
    """Table chunks (see table_lines). A table over max_tokens is cut between rows, never
    inside one, and every piece repeats the context and the head (left out where it leaves
    no room for a row), so its columns still have names. A single row over the budget stays
    whole (the embedder then sees only its start). The budget includes the heading path,
    which the embedder sees above the table."""
    chunks: list[TextChunk] = []
    for table in tables:
        head, body = table_lines(table)
        if not body:
            continue
        path = sections.path_at(table.page, table.anchor) if sections is not None else ""
        sizes = count_tokens(body)
        head_tokens = sum(count_tokens(head + [part for part in (table.context, path) if part]))
        if head and head_tokens + max(sizes) > max_tokens:
            # A wide table: the head would crowd its rows out of the embedder's window, and
            # each row names its columns anyway.
            head = []
            head_tokens = sum(count_tokens([part for part in (table.context, path) if part]))
        group: list[str] = []
        used = head_tokens
        for line, size in zip(body, sizes):
            if group and used + size > max_tokens:
                chunks.append(_table_chunk(table, first_ordinal + len(chunks), head + group, path))
                group, used = [], head_tokens
            group.append(line)
            used += size
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
