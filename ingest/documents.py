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

from ingest.types import Heading, IngestError, PageText, ParsedFile, TableText

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


# ATX headings ("## Hotels") and setext ones (a line underlined with === or ---).
_ATX_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_SETEXT_RE = re.compile(r"^ {0,3}(\S[^\n]*)\n {0,3}(=+|-{3,})[ \t]*$", re.MULTILINE)
_FENCE_RE = re.compile(r"^ {0,3}(```|~~~).*?(?:^ {0,3}\1[^\n]*$|\Z)", re.MULTILINE | re.DOTALL)


def markdown_headings(text: str) -> list[Heading]:
    """Markdown headings with their offsets; lines inside fenced code blocks are not headings."""
    fenced = [match.span() for match in _FENCE_RE.finditer(text)]

    def in_fence(offset: int) -> bool:
        return any(start <= offset < end for start, end in fenced)

    found = [Heading(m.start(), len(m.group(1)), m.group(2).strip()) for m in _ATX_RE.finditer(text)]
    found += [
        Heading(m.start(), 1 if m.group(2)[0] == "=" else 2, m.group(1).strip())
        for m in _SETEXT_RE.finditer(text)
        if not m.group(1).lstrip().startswith(("#", "|", "-", "*", ">"))
    ]
    return sorted((h for h in found if not in_fence(h.start)), key=lambda h: h.start)


def _with_headings(pages: list[PageText], headings: list[Heading]) -> list[PageText]:
    """Give each page of consecutively cut text the headings that fall on it, page-relative."""
    result, offset = [], 0
    for page in pages:
        end = offset + len(page.text)
        own = tuple(Heading(h.start - offset, h.level, h.title) for h in headings if offset <= h.start < end)
        result.append(PageText(page=page.page, text=page.text, headings=own))
        offset = end
    return result


def parse_text(path: Path, mime: str) -> ParsedFile:
    text = decode_utf8(path.read_bytes()).replace("\r\n", "\n").replace("\r", "\n")
    pages = _with_headings(paginate(text), markdown_headings(text))
    return ParsedFile(mime=mime, page_count=max(1, len(pages)), pages=pages)


_HEADING_MARK = "\ue000"  # a private-use character: never in real page text


class _HtmlText(HTMLParser):
    """Visible text of an HTML page: scripts, styles and other invisible parts dropped,
    block elements on their own lines (headings and paragraphs end a chunking unit)."""

    _SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}
    _BLOCK = {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "li",
        "ul",
        "ol",
        "tr",
        "table",
        "br",
        "hr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "blockquote",
        "dd",
        "dt",
        "title",
        "main",
        "nav",
        "aside",
    }
    _HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

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
            if tag in self._HEADINGS and not self._skipping:
                # A marker the text() pass turns into a Heading at this offset.
                self.parts.append(f"{_HEADING_MARK}{tag[1]}")
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

    def text(self) -> tuple[str, list[Heading]]:
        body = "".join(self.parts).replace(_HEADING_MARK, " " + _HEADING_MARK)
        lines = [" ".join(line.split()) for line in body.split("\n")]
        marked = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
        text, headings, position = "", [], 0
        for match in re.finditer(_HEADING_MARK + r"(\d) ?", marked):
            text += marked[position : match.start()]
            line_end = marked.find("\n", match.end())
            heading_title = marked[match.end() : line_end if line_end >= 0 else len(marked)].replace(_HEADING_MARK, "")
            if heading_title.strip():
                headings.append(Heading(len(text), int(match.group(1)), heading_title.strip()))
            position = match.end()
        text = (text + marked[position:]).strip()
        title = " ".join(self.title.split())
        if title and not text.startswith(title):
            prefix = f"{title}\n\n"
            text = prefix + text
            # The page title heads everything, above any h1.
            headings = [Heading(0, 0, title)] + [Heading(h.start + len(prefix), h.level, h.title) for h in headings]
        return text, headings


def parse_html(path: Path, mime: str) -> ParsedFile:
    raw = path.read_bytes()
    # Pages often lie about or omit their charset; undecodable bytes become U+FFFD rather
    # than failing the whole page.
    parser = _HtmlText()
    parser.feed(raw.decode("utf-8-sig", errors="replace"))
    parser.close()
    text, headings = parser.text()
    return ParsedFile(mime=mime, page_count=1, pages=[PageText(page=1, text=text, headings=tuple(headings))] if text else [])


def check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(f"the Office file is damaged (not a readable zip archive: {exc})") from exc
    if inflated > MAX_UNZIPPED_BYTES:
        raise IngestError(
            f"the Office file would unpack to {inflated / 1e9:.1f} GB, over the {MAX_UNZIPPED_BYTES >> 20} MB limit"
        )


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
    headings: list[Heading] = []
    tables: list[TableText] = []
    offset = 0  # where the next block starts in the page text ("\n\n".join(blocks))
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
            if level or style == "Title":
                depth = int(level.group(1)) if level else 0  # the document title is above every Heading 1
                headings.append(Heading(offset, depth, text))
                text = "#" * max(1, depth) + " " + text
            blocks.append(text)
            offset += len(text) + 2
        elif tag == "tbl":
            # Tables become their own chunks (see ingest.chunking.chunk_tables), not page text.
            table = Table(element, document)
            rows = [[cell.text for cell in row.cells] for row in table.rows]
            tables.append(TableText(page=1, rows=rows, anchor=max(0, offset - 2)))
    text = "\n\n".join(blocks)
    pages = [PageText(page=1, text=text, headings=tuple(headings))] if text else []
    return ParsedFile(mime=mime, page_count=1, pages=pages, tables=tables)


def parse_pptx(path: Path, mime: str) -> ParsedFile:
    from pptx import Presentation
    from pptx.enum.shapes import PP_PLACEHOLDER

    check_zip(path)
    try:
        presentation = Presentation(str(path))
    except Exception as exc:
        raise IngestError(f"the PPTX file is damaged or not a PowerPoint presentation ({exc})") from exc
    parsed = ParsedFile(mime=mime, page_count=len(presentation.slides))
    for number, slide in enumerate(presentation.slides, start=1):
        blocks: list[str] = []
        headings: list[Heading] = []
        # Top-to-bottom, left-to-right: the order a reader takes in a slide.
        shapes = sorted(slide.shapes, key=lambda s: ((s.top or 0), (s.left or 0)))
        for shape in shapes:
            if shape.has_text_frame and shape.text_frame.text.strip():
                if shape.is_placeholder and shape.placeholder_format.type in (PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE):
                    # The slide title heads the slide: its chunks carry it as their section.
                    headings.append(Heading(sum(len(b) + 2 for b in blocks), 1, shape.text_frame.text.strip()))
                blocks.append(shape.text_frame.text.strip())
            elif getattr(shape, "has_table", False) and shape.has_table:
                rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
                parsed.tables.append(TableText(page=number, rows=rows))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                blocks.append(f"Speaker notes: {notes}")
        if blocks:
            parsed.pages.append(PageText(page=number, text="\n\n".join(blocks), headings=tuple(headings)))
    if parsed.page_count == 0:
        raise IngestError("the presentation has no slides")
    return parsed
