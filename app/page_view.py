"""What a citation opens: the cited PDF page rendered with the passage highlighted, the
figure itself, or, for formats without pages to draw (DOCX, PPTX, HTML, text), the passage
in its surrounding text.

A view may highlight only part of the chunk (the quote shown above an answer): the text
asked for is used only when it is found in the chunk's own text, and it is located on the
page through the chunk's alignment, so the same words elsewhere on the page stay unmarked.

Page renders are cached as PNG next to the stored original (``files/<sha>.pdf`` ->
``files/pages/<sha>/<page>.png``), so whatever removes the original removes them too
(app.removal); the highlight is drawn on a copy per request, so one cached page serves
every passage on it.
"""

from __future__ import annotations

import difflib
import io
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypedDict

import pymupdf as fitz
from PIL import Image, ImageDraw

from app.models import Chunk, ChunkKind, Document
from ingest.loaders import is_multi_column

# 1.5 × 72 dpi: a whole A4 page is readable in the side panel and stays ~100-200 KB as PNG.
ZOOM = 1.5
HIGHLIGHT_RGBA = (255, 214, 0, 96)  # translucent yellow: the text stays readable under it
_CONTEXT_CHARS = 500
_TOKEN_RE = re.compile(r"[^\W_]+(?:[-'.][^\W_]+)*", re.UNICODE)


@dataclass(frozen=True)
class SourceView:
    """One cited source ready to show: `png` is the page or figure; `passage` is always the
    chunk text; `before`/`after` surround it for passage views. `highlight` is the part of
    the passage that is highlighted when only part of it is (a verified quote), else None
    (the whole passage)."""

    chunk_id: int
    filename: str
    page: int | None
    kind: Literal["page", "figure", "passage"]
    passage: str
    png: bytes | None = None
    # Highlighted rectangles in image pixels (x0, y0, x1, y1), for page views.
    highlights: list[tuple[float, float, float, float]] = field(default_factory=list)
    before: str = ""
    after: str = ""
    highlight: str | None = None

    def marked(self) -> tuple[str, str, str]:
        """The passage as (text before the highlight, highlighted text, text after it)."""
        if self.highlight:
            span = find_in_passage(self.passage, self.highlight)
            if span is not None:
                start, end = span
                return self.passage[:start], self.passage[start:end], self.passage[end:]
        return "", self.passage, ""


class _SourceFields(TypedDict):
    """The SourceView fields every kind of view has, from the chunk and its document."""

    chunk_id: int
    filename: str
    page: int | None
    passage: str


def page_cache_dir(original: Path) -> Path:
    """Where the page renders of a stored original are cached."""
    return original.parent / "pages" / original.name.split(".")[0]


def forget_pages(original: Path) -> None:
    """Drop the cached renders of an original that is gone."""
    shutil.rmtree(page_cache_dir(original), ignore_errors=True)


def find_in_passage(passage: str, text: str | None) -> tuple[int, int] | None:
    """Where `text` stands in `passage` (character offsets), or None when it does not.

    Exact first; then word for word with any whitespace between the words (a quote taken
    from a line-wrapped passage). Anything else, however close, is not the passage's text."""
    if not text or not text.strip():
        return None
    start = passage.find(text)
    if start >= 0:
        return start, start + len(text)
    words = text.split()
    found = re.search(r"\s+".join(re.escape(w) for w in words), passage)
    return (found.start(), found.end()) if found else None


def view(document: Document, chunk: Chunk, highlight: str | None = None) -> SourceView:
    """What source `chunk` opens. highlight: text to highlight instead of the whole chunk;
    ignored unless it is part of the chunk's text (it may come from a request)."""
    span = find_in_passage(chunk.text, highlight) if chunk.kind != ChunkKind.image else None
    verified = chunk.text[span[0] : span[1]] if span else None
    base: _SourceFields = dict(chunk_id=chunk.id, filename=document.filename, page=chunk.page, passage=chunk.text)
    if chunk.kind == ChunkKind.image and chunk.image_path and Path(chunk.image_path).is_file():
        return SourceView(kind="figure", png=Path(chunk.image_path).read_bytes(), **base)
    original = Path(document.stored_path) if document.stored_path else None
    if original is None or not original.is_file():
        return SourceView(kind="passage", highlight=verified, **base)
    if document.mime == "application/pdf" and chunk.page:
        png, rects, partial = highlighted_page(original, chunk.page, chunk.text, span)
        return SourceView(kind="page", png=png, highlights=rects, highlight=verified if partial else None, **base)
    before, after = _context(original, document.mime, chunk)
    return SourceView(kind="passage", before=before, after=after, highlight=verified, **base)


def highlighted_page(
    pdf_path: Path, page_number: int, passage: str, span: tuple[int, int] | None = None
) -> tuple[bytes, list[tuple[float, float, float, float]], bool]:
    """The page as PNG with the passage (or only its characters `span`) highlighted, the
    highlighted boxes, and whether only the span is highlighted: a span whose words cannot
    be placed on the page falls back to the whole passage."""
    with fitz.open(pdf_path, filetype="pdf") as pdf:
        if not 1 <= page_number <= pdf.page_count:
            raise ValueError(f"{pdf_path.name} has no page {page_number}")
        page = pdf[page_number - 1]
        located = locate_passage(page, passage, span) if span else []
        partial = bool(located)
        if not partial:
            located = locate_passage(page, passage)
        rects = [fitz.Rect(r) * ZOOM for r in located]
        cached = page_cache_dir(pdf_path) / f"{page_number}.png"
        if not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            part_file = cached.with_name(f"{cached.stem}.{uuid.uuid4().hex}.part")  # one per writer: two may race
            page.get_pixmap(matrix=fitz.Matrix(ZOOM, ZOOM), alpha=False).save(str(part_file), output="png")
            part_file.replace(cached)  # atomic: a concurrent reader never sees half a PNG
    boxes = [(r.x0, r.y0, r.x1, r.y1) for r in rects]
    return draw_highlights(cached.read_bytes(), boxes), boxes, partial


def draw_highlights(png: bytes, boxes: list[tuple[float, float, float, float]]) -> bytes:
    page = Image.open(io.BytesIO(png)).convert("RGBA")
    overlay = Image.new("RGBA", page.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle((x0 - 2, y0 - 1, x1 + 2, y1 + 1), fill=HIGHLIGHT_RGBA)
    out = io.BytesIO()
    Image.alpha_composite(page, overlay).convert("RGB").save(out, format="PNG", optimize=False)
    return out.getvalue()


_ROW_LABEL_RE = re.compile(r"(^|\| )([^|:\n]{1,80}): ", re.MULTILINE)


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN_RE.findall(text)]


def locate_passage(page: fitz.Page, passage: str, span: tuple[int, int] | None = None) -> list[fitz.Rect]:
    """One rectangle per page line that holds words of the passage.

    The passage's words are aligned with the page's words in reading order (difflib), so
    whitespace, line wraps, Markdown table pipes and running headers removed at ingest do
    not matter; matched runs shorter than three words (a stray "the") are ignored unless
    the passage itself is that short. span: only the passage's words within these
    character offsets are marked (placed through the whole passage's alignment)."""
    # A table row's column labels ("State: Texas | Totals: 146,982") stand once in the page's
    # header, not before each value: only the values are aligned.
    labels = [m.span(2) for m in _ROW_LABEL_RE.finditer(passage)] if " | " in passage else []
    found = [m for m in _TOKEN_RE.finditer(passage) if not any(start <= m.start() < end for start, end in labels)]
    wanted = [m.group(0).lower() for m in found]
    if not wanted:
        return []
    keep = (
        set(range(len(wanted))) if span is None else {i for i, m in enumerate(found) if m.start() < span[1] and m.end() > span[0]}
    )
    # The page's words in the order ingestion read them (column by column on multi-column pages).
    words = page.get_text("words", sort=not is_multi_column(page))  # x0, y0, x1, y1, text, block, line, word
    page_tokens: list[str] = []
    owner: list[int] = []  # page token index -> word index
    for index, word in enumerate(words):
        for token in _tokens(word[4]):
            page_tokens.append(token)
            owner.append(index)
    matcher = difflib.SequenceMatcher(None, page_tokens, wanted, autojunk=False)
    shortest = min(3, len(wanted))
    matched: set[int] = set()
    for block in matcher.get_matching_blocks():
        if block.size >= shortest:
            matched.update(owner[block.a + i] for i in range(block.size) if block.b + i in keep)
    lines: dict[tuple[int, int], fitz.Rect] = {}
    for index in sorted(matched):
        x0, y0, x1, y1, _text, block_no, line_no, _ = words[index]
        key = (block_no, line_no)
        rect = fitz.Rect(x0, y0, x1, y1)
        lines[key] = lines[key] | rect if key in lines else rect
    return sorted(lines.values(), key=lambda r: (r.y0, r.x0))


def _context(original: Path, mime: str | None, chunk: Chunk) -> tuple[str, str]:
    """The text around a passage of a DOCX/PPTX/HTML/text file, re-read from the original.
    Empty when the offsets no longer point at the passage (e.g. a parser changed since)."""
    if chunk.char_start is None or chunk.char_end is None or not mime:
        return "", ""
    from ingest.loaders import parse_file
    from ingest.types import IngestError

    try:
        parsed = parse_file(original, mime)
    except IngestError:
        return "", ""
    page = next((p for p in parsed.pages if p.page == chunk.page), None)
    if page is None or " ".join(page.text[chunk.char_start : chunk.char_end].split()) != chunk.text:
        return "", ""
    before = page.text[max(0, chunk.char_start - _CONTEXT_CHARS) : chunk.char_start]
    after = page.text[chunk.char_end : chunk.char_end + _CONTEXT_CHARS]
    return before, after
