"""Loaders for text-like formats: plain text and Markdown, HTML, DOCX and PPTX.

Deliberately small libraries rather than `unstructured`: its partitioners pull spaCy and
NLTK, which fetch language data from the internet on first use (impossible offline), and
installing it here would downgrade `filelock`. python-docx / python-pptx read the Office
XML directly; HTML goes through the standard library's tolerant `html.parser`.
"""

from __future__ import annotations

import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

from ingest.types import IngestError, PageText, ParsedFile, TableText

# Plain text has no pages; one "page" per ~3,000 characters (about a printed page), cut at
# a paragraph or line break, gives citations a place to point at in long files.
TEXT_PAGE_CHARS = 3000
# Office files are zip archives; refuse archives that would inflate past this (zip bombs).
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024


def decode_utf8(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"the text is not valid UTF-8 (byte {exc.start}); save it as UTF-8 and upload it again") from exc
    if "\x00" in text:
        raise IngestError("the file contains NUL bytes: it is binary, not text")
    return text


def paginate(text: str, page_chars: int = TEXT_PAGE_CHARS) -> list[PageText]:
    """Split text into pages of at most about page_chars, at a blank line, else a line break, else a space."""
    pages: list[PageText] = []
    rest = text.replace("\r\n", "\n").replace("\r", "\n")
    while rest.strip():
        if len(rest) <= page_chars:
            cut = len(rest)
        else:
            window = rest[:page_chars]
            cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
            cut = cut if cut > page_chars // 2 else page_chars
        pages.append(PageText(page=len(pages) + 1, text=rest[:cut]))
        rest = rest[cut:]
    return pages


def parse_text(path: Path, mime: str) -> ParsedFile:
    pages = paginate(decode_utf8(path.read_bytes()))
    return ParsedFile(mime=mime, page_count=max(1, len(pages)), pages=pages)


class _HtmlText(HTMLParser):
    """Visible text of an HTML page: scripts, styles and other invisible parts dropped,
    block elements on their own lines (headings and paragraphs end a chunking unit)."""

    _SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}
    _BLOCK = {"p", "div", "section", "article", "header", "footer", "li", "ul", "ol", "tr", "table", "br", "hr",
              "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "dd", "dt", "title", "main", "nav", "aside"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)

    def text(self) -> str:
        body = "".join(self.parts)
        lines = [" ".join(line.split()) for line in body.split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
        title = " ".join(self.title.split())
        return f"{title}\n\n{text}" if title and not text.startswith(title) else text


def parse_html(path: Path, mime: str) -> ParsedFile:
    raw = path.read_bytes()
    # Pages often lie about or omit their charset; undecodable bytes become U+FFFD rather
    # than failing the whole page.
    parser = _HtmlText()
    parser.feed(raw.decode("utf-8-sig", errors="replace"))
    parser.close()
    text = parser.text()
    return ParsedFile(mime=mime, page_count=1, pages=[PageText(page=1, text=text)] if text else [])


def check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(f"the Office file is damaged (not a readable zip archive: {exc})") from exc
    if inflated > MAX_UNZIPPED_BYTES:
        raise IngestError(f"the Office file would unpack to {inflated / 1e9:.1f} GB, over the {MAX_UNZIPPED_BYTES >> 20} MB limit")


def parse_docx(path: Path, mime: str) -> ParsedFile:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_zip(path)
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors... for broken files
        raise IngestError(f"the DOCX file is damaged or not a Word document ({exc})") from exc
    blocks: list[str] = []
    tables: list[TableText] = []
    # Body order matters (a heading, then its paragraphs and tables), so walk the body XML.
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = paragraph.text.strip()
            if not text:
                continue
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            level = re.match(r"Heading (\d)", style)
            # Headings keep a Markdown marker and stand alone, so a chunk starts at a section.
            blocks.append(("#" * int(level.group(1)) + " " + text) if level else ("# " + text if style == "Title" else text))
        elif tag == "tbl":
            # Tables become their own chunks (see ingest.chunking.chunk_tables), not page text.
            table = Table(element, document)
            tables.append(TableText(page=1, rows=[[cell.text for cell in row.cells] for row in table.rows]))
    text = "\n\n".join(blocks)
    return ParsedFile(mime=mime, page_count=1, pages=[PageText(page=1, text=text)] if text else [], tables=tables)


def parse_pptx(path: Path, mime: str) -> ParsedFile:
    from pptx import Presentation

    check_zip(path)
    try:
        presentation = Presentation(str(path))
    except Exception as exc:
        raise IngestError(f"the PPTX file is damaged or not a PowerPoint presentation ({exc})") from exc
    parsed = ParsedFile(mime=mime, page_count=len(presentation.slides))
    for number, slide in enumerate(presentation.slides, start=1):
        blocks: list[str] = []
        # Top-to-bottom, left-to-right: the order a reader takes in a slide.
        shapes = sorted(slide.shapes, key=lambda s: ((s.top or 0), (s.left or 0)))
        for shape in shapes:
            if shape.has_text_frame and shape.text_frame.text.strip():
                blocks.append(shape.text_frame.text.strip())
            elif getattr(shape, "has_table", False) and shape.has_table:
                rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
                parsed.tables.append(TableText(page=number, rows=rows))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                blocks.append(f"Speaker notes: {notes}")
        if blocks:
            parsed.pages.append(PageText(page=number, text="\n\n".join(blocks)))
    if parsed.page_count == 0:
        raise IngestError("the presentation has no slides")
    return parsed
