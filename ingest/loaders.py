"""Turn an uploaded file into page texts and images.

PDFs are read with PyMuPDF: it keeps exact page numbers, extracts embedded images with
their placement (so captions under a figure can be attached) and is an order of magnitude
faster than pdfminer-based parsers, which matters on 2-core machines.
"""

from __future__ import annotations

import bisect
import dataclasses
import io
import math
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import cast

import pymupdf as fitz
from PIL import Image, ImageSequence, UnidentifiedImageError
from pymupdf.table import TABLE_DETECTOR_FLAGS

from ingest import pdf_structure
from ingest.pixels import MAX_IMAGE_PIXELS, WORKING_MAX_PIXELS, scaled_rgb
from ingest.types import ExtractedImage, IngestError, PageText, ParsedFile, TableText

# Reads the text in a PNG image (ingest.ocr engines' `read`); given to the PDF parser so
# scanned pages become page text.
OcrReader = Callable[[bytes], str]

PDF_MIME = "application/pdf"
PNG_MIME = "image/png"
JPEG_MIME = "image/jpeg"
TIFF_MIME = "image/tiff"
WEBP_MIME = "image/webp"
IMAGE_MIMES = (PNG_MIME, JPEG_MIME, TIFF_MIME, WEBP_MIME)
TEXT_MIME = "text/plain"  # plain text and Markdown: both are read as text, headings kept
HTML_MIME = "text/html"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
SUPPORTED_MIMES = (PDF_MIME, *IMAGE_MIMES, TEXT_MIME, HTML_MIME, DOCX_MIME, PPTX_MIME)
# What a stored original is called after its content hash.
EXTENSIONS = {
    PDF_MIME: ".pdf",
    PNG_MIME: ".png",
    JPEG_MIME: ".jpg",
    TIFF_MIME: ".tif",
    WEBP_MIME: ".webp",
    TEXT_MIME: ".txt",
    HTML_MIME: ".html",
    DOCX_MIME: ".docx",
    PPTX_MIME: ".pptx",
}
# A multi-page TIFF (a fax, a scanned binder) is indexed up to this many pages.
MAX_IMAGE_FRAMES = 500

# Decompression bombs are refused loudly (MAX_IMAGE_PIXELS, also Pillow's limit) instead of
# letting Pillow allocate gigabytes; images under it are decoded scaled down (ingest.pixels).

_CAPTION_RE = re.compile(r"^\s*(fig(ure)?\.?|chart|diagram|image|photo|table)\s*\d*[:.]", re.IGNORECASE)


def sniff_mime(head: bytes, path: Path | None = None) -> str | None:
    """Identify a file by its content, never by its name.

    `head` is the first bytes (2 KiB are plenty); `path` is needed only to tell Office files
    apart, which are zip archives whose member names say what they are.
    """
    if not head:
        return None
    if head.startswith(b"%PDF-"):
        return PDF_MIME
    # Some PDF writers put junk before the header; the spec allows it within the first 1 KiB.
    if b"%PDF-" in head[:1024]:
        return PDF_MIME
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG_MIME
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG_MIME
    if head.startswith((b"II*\x00", b"MM\x00*")):  # little- and big-endian TIFF
        return TIFF_MIME
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP_MIME
    if head.startswith(b"PK\x03\x04"):
        return _office_mime(path) if path is not None else None
    text = _as_text(head)
    if text is None:
        return None
    if re.match(r"\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html[\s>])", text, re.IGNORECASE | re.DOTALL):
        return HTML_MIME
    return TEXT_MIME


# C0 control characters other than tab, line feed, vertical tab, form feed and carriage return.
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def _as_text(head: bytes) -> str | None:
    """The head decoded, if it reads as UTF-8 text (a multi-byte character cut at the end is fine)."""
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return None
        text = head[: exc.start].decode("utf-8-sig")
    return None if _BINARY_CONTROLS.search(text) else text


def _office_mime(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None
    if "[Content_Types].xml" not in names:
        return None  # a plain zip archive, not an Office document
    if any(name.startswith("word/") for name in names):
        return DOCX_MIME
    if any(name.startswith("ppt/") for name in names):
        return PPTX_MIME
    return None


def safe_filename(name: str) -> str:
    """The display/storage name of an upload: no directories, no control characters."""
    base = name.replace("\\", "/").split("/")[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return base[:255] or "unnamed"


def safe_relative_name(name: str) -> str:
    """The display name of a file found in a synced folder: its path inside that folder
    ("hr/travel.pdf"), each part cleaned as by safe_filename; never absolute, never "..".
    Only shown and compared, never used as a path (stored files are named by hash)."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".", "..")]
    return "/".join(safe_filename(part) for part in parts)[:512] or "unnamed"


def parse_file(path: Path, mime: str, ocr: OcrReader | None = None) -> ParsedFile:
    """`ocr` reads scanned PDF pages; without it they are kept as full-page figures."""
    if mime == PDF_MIME:
        return parse_pdf(path, ocr)
    if mime in IMAGE_MIMES:
        return parse_image(path, mime)
    from ingest import documents

    text_parsers = {
        TEXT_MIME: documents.parse_text,
        HTML_MIME: documents.parse_html,
        DOCX_MIME: documents.parse_docx,
        PPTX_MIME: documents.parse_pptx,
    }
    if mime in text_parsers:
        return text_parsers[mime](path, mime)
    raise IngestError(f"unsupported file type {mime}")


_DAMAGE_MARKERS = ("cannot load content stream", "premature end of data", "cannot find object", "object out of range")


def parse_pdf(path: Path, ocr: OcrReader | None = None) -> ParsedFile:
    fitz.TOOLS.reset_mupdf_warnings()
    try:
        document = fitz.open(path, filetype="pdf")
    except Exception as exc:  # PyMuPDF raises several private types for broken files
        raise IngestError(f"not a readable PDF ({exc})") from exc
    with document:
        if document.needs_pass:
            raise IngestError("the PDF is encrypted with a password; upload an unlocked copy")
        if document.page_count == 0:
            raise IngestError("the PDF has no pages")
        parsed = ParsedFile(mime=PDF_MIME, page_count=document.page_count)
        lines_by_page: dict[int, list[pdf_structure.StyledLine]] = {}
        table_tops: list[float] = []  # y0 of each of parsed.tables, to place it under its heading
        image_tops: list[float] = []  # the same for parsed.images
        try:
            # Document iterates through __getitem__, whose overloads mypy cannot iterate with
            for page_index, page in enumerate(cast(Iterable[fitz.Page], document)):
                page_number = page_index + 1
                if page.rotation:
                    # Shown turned (a landscape table on a portrait page): read it as shown.
                    # Words come in the unturned page's coordinates, so its table cells and
                    # text lines would otherwise be read across, column by column.
                    page.remove_rotation()
                if ocr is not None and _is_scanned(page):
                    parsed.pages.append(PageText(page=page_number, text=ocr(_render_for_ocr(page))))
                    continue
                tables = _page_tables(page, page_number)
                if tables and parsed.tables:
                    tables[0] = (tables[0][0], _continue_header(parsed.tables[-1], tables[0][1]))
                text = _text_outside(page, [bbox for bbox, _ in tables]) if tables else _reading_text(page)
                parsed.pages.append(PageText(page=page_number, text=text))
                parsed.tables.extend(table for _, table in tables)
                table_tops.extend(bbox.y0 for bbox, _ in tables)
                for image, top in _page_images(document, page, page_number):
                    parsed.images.append(image)
                    image_tops.append(top)
                if text.strip():  # font styles of a blank page cost ~5 ms and say nothing
                    lines_by_page[page_number] = pdf_structure.styled_lines(page)
        except Exception as exc:
            raise IngestError(f"the PDF is damaged and could not be read past page {len(parsed.pages)} ({exc})") from exc
        _strip_running_lines(parsed.pages)
        _add_headings(parsed, document.get_toc(), lines_by_page, table_tops, image_tops)
        if document.is_repaired:
            # MuPDF rebuilt a broken file; pages it could not recover come back blank.
            # Indexing a silently partial document would hide the damage, so refuse it.
            with_images = {image.page for image in parsed.images}
            blank = [p.page for p in parsed.pages if not p.text.strip() and p.page not in with_images]
            warnings = fitz.TOOLS.mupdf_warnings().lower()
            if any(marker in warnings for marker in _DAMAGE_MARKERS):
                raise IngestError("the PDF is damaged (truncated or corrupt): part of its content could not be read")
            if blank:
                raise IngestError(
                    f"the PDF is damaged (truncated or corrupt): {len(blank)} of {document.page_count} pages are unreadable"
                )
    return parsed


def _add_headings(parsed: ParsedFile, toc: list, lines_by_page: dict, table_tops: list[float], image_tops: list[float]) -> None:
    """Section headings on the pages (outline first, else type styles); tables and figures anchored under them."""
    placed = pdf_structure.headings_from_outline(toc, lines_by_page) if toc else pdf_structure.headings_by_style(lines_by_page)
    located: dict[int, tuple] = {}
    for index, page in enumerate(parsed.pages):
        if page.page in placed:
            located[page.page] = pdf_structure.locate(page.text, placed[page.page])
            parsed.pages[index] = dataclasses.replace(page, headings=located[page.page])
    for index, (table, top) in enumerate(zip(parsed.tables, table_tops)):
        anchor = pdf_structure.heading_anchor(top, placed.get(table.page, []), located.get(table.page, ()))
        parsed.tables[index] = dataclasses.replace(table, anchor=anchor)
    for index, (image, top) in enumerate(zip(parsed.images, image_tops)):
        anchor = pdf_structure.heading_anchor(top, placed.get(image.page, []), located.get(image.page, ()))
        parsed.images[index] = dataclasses.replace(image, anchor=anchor)


# A page whose text layer has fewer characters than this and whose images cover most of it
# is a scan (or a photo of a page): its words exist only as pixels.
_SCAN_MAX_TEXT_CHARS = 20
_SCAN_MIN_IMAGE_COVER = 0.6
# Pages are rendered for OCR at this resolution, capped so a poster-sized page stays small.
_OCR_DPI = 200
_OCR_MAX_SIDE_PX = 3000


def _is_scanned(page: fitz.Page) -> bool:
    if len("".join(page.get_text("text").split())) >= _SCAN_MAX_TEXT_CHARS:
        return False
    area = abs(page.rect)
    if not area:
        return False
    covered = 0.0
    for info in page.get_image_info():
        covered += abs(fitz.Rect(info["bbox"]) & page.rect)
    return covered / area >= _SCAN_MIN_IMAGE_COVER


def _render_for_ocr(page: fitz.Page) -> bytes:
    zoom = min(_OCR_DPI / 72, _OCR_MAX_SIDE_PX / max(page.rect.width, page.rect.height))
    return page.get_pixmap(matrix=fitz.Matrix(zoom, zoom), colorspace=fitz.csGRAY, alpha=False).tobytes("png")


# Ruled tables need a handful of line segments; pages with fewer (a header rule, a footer
# rule) skip find_tables, which costs ~0.7 s a page on a busy 2-core machine.
_MIN_TABLE_STROKES = 4
# Horizontal rules this close (points) and of the same extent are one table's row lines: a
# row of up to three wrapped lines of 11-pt type fits; a page's header rule above a table
# lies farther away.
_MAX_RULE_GAP = 48.0
_MIN_RULE_WIDTH = 20.0


def _page_tables(page: fitz.Page, page_number: int) -> list[tuple[fitz.Rect, TableText]]:
    """The page's tables, each with the area it covers (left out of the page text).

    find_tables also fires on forms, page frames and ruled running text; what reads as
    text (mostly empty cells, one giant cell, prose in cells) is not returned, so it stays
    page text, and so do a table's title and footnote rows."""
    items = [item for drawing in page.get_cdrawings() for item in drawing["items"]]
    if len(items) < _MIN_TABLE_STROKES:
        return []
    # Cell text from the page's words (read once): Table.extract()/to_markdown() drop the
    # spaces between words in these PDFs ("180EUR"), and get_textbox per cell re-reads the
    # whole page each time (~60 ms a cell).
    words = page.get_text("words", sort=True)
    boxes = _ruled_table_boxes(page, items)
    if boxes:
        # Every stroke of the page is a ruled band's (or a lone header/footer rule): the
        # bands are where its tables are, and PyMuPDF's layout model, which would only say
        # so, is skipped (~0.3 s a page; benchmarks/RESULTS.md). A band that does not read
        # as a table sends the page down the full path after all.
        found = _read_tables(page, page_number, _tables_in(page, boxes), words)
        if len(found) == len(boxes):
            return found
    # PyMuPDF 2 runs its ONNX layout model here (~0.7 s a page on 2 cores). It is needed
    # where rules do not mark the table out: tables ruled only horizontally are found by the
    # layout model (or by the bands above), not by use_layout=False with either the "lines"
    # or the "text" strategy.
    tables = page.find_tables().tables
    return _read_tables(page, page_number, tables, words) if tables else []


def _read_tables(page: fitz.Page, page_number: int, tables, words: list[tuple]) -> list[tuple[fitz.Rect, TableText]]:
    found = []
    for table in tables:
        try:
            read = _read_table(page, table, words)
        except Exception:  # an odd grid must not lose the page: its words stay page text
            read = None
        if read is not None:
            bbox, rows, header, context = read
            found.append((bbox, TableText(page=page_number, rows=rows, context=context, header=header)))
    return found


def _ruled_table_boxes(page: fitz.Page, items: list[tuple]) -> list[fitz.Rect]:
    """Where a page's tables are, when its vector graphics say so plainly: each run of three
    or more horizontal rules of one extent, close together (row lines), is a table, its
    area that of the words between the first and the last rule (what the layout model
    returns for such a table). Empty (ask the layout model) when strokes outside the bands
    would have sent the page to table detection on their own, or a band holds no words."""
    rules: list[tuple[float, float, float]] = []  # (y, x0, x1)
    for item in items:
        if item[0] == "l" and abs(item[1][1] - item[2][1]) < 1 and abs(item[1][0] - item[2][0]) >= _MIN_RULE_WIDTH:
            rules.append((item[1][1], min(item[1][0], item[2][0]), max(item[1][0], item[2][0])))
        elif item[0] == "re" and fitz.Rect(item[1]).height <= 3 and fitz.Rect(item[1]).width >= _MIN_RULE_WIDTH:
            rect = fitz.Rect(item[1])
            rules.append(((rect.y0 + rect.y1) / 2, rect.x0, rect.x1))
    rules.sort()
    bands: list[list[tuple[float, float, float]]] = []
    for rule in rules:
        last = bands[-1][-1] if bands else None
        if last and rule[0] - last[0] <= _MAX_RULE_GAP and abs(rule[1] - last[1]) < 3 and abs(rule[2] - last[2]) < 3:
            bands[-1].append(rule)
        else:
            bands.append([rule])
    areas = [fitz.Rect(band[0][1], band[0][0], band[0][2], band[-1][0]) for band in bands if len(band) >= 3]
    if not areas:
        return []
    outside = 0
    for item in items:
        points = [fitz.Point(p) for p in item[1:] if isinstance(p, tuple) and len(p) == 2]
        if item[0] in ("re", "qu"):
            rect = fitz.Rect(item[1]) if item[0] == "re" else fitz.Quad(item[1]).rect
            points = [rect.tl, rect.br]
        corners = points
        if not any(all(corner in area + (-1, -1, 1, 1) for corner in corners) for area in areas):
            outside += 1
    if outside >= _MIN_TABLE_STROKES:
        return []
    # Words as find_tables and its layout model see them (its text flags, glyph boxes the
    # height of the letters, not of the font's line): the same area to the point.
    small = bool(fitz.TOOLS.set_small_glyph_heights())
    fitz.TOOLS.set_small_glyph_heights(True)
    try:
        words = page.get_text("words", flags=TABLE_DETECTOR_FLAGS)
    finally:
        fitz.TOOLS.set_small_glyph_heights(small)
    boxes = []
    for area in areas:
        box = fitz.Rect()
        for word in words:
            if area.x0 <= (word[0] + word[2]) / 2 <= area.x1 and area.y0 <= (word[1] + word[3]) / 2 <= area.y1:
                box |= fitz.Rect(word[:4])
        if box.is_empty:
            return []
        boxes.append(box)
    return boxes


def _tables_in(page: fitz.Page, boxes: list[fitz.Rect]) -> list:
    """find_tables with `boxes` standing in for its layout model's table areas: the same
    line finder and grid reading within them, without the model (a shadowing attribute on
    this page object only; tests/test_tables.py checks the result equals the model's on
    the sample tables)."""

    def layout(**_) -> None:
        page.layout_information = [(*tuple(box), "table") for box in boxes]  # type: ignore[assignment,arg-type]

    page.get_layout = layout  # type: ignore[method-assign]
    try:
        found = page.find_tables()
    finally:
        del page.get_layout
    return found.tables if found is not None else []


def _continue_header(previous: TableText, table: TableText) -> TableText:
    """A table going on from the previous page without repeating its header gets that header."""
    if table.header or not previous.header or previous.page != table.page - 1:
        return table
    if len(previous.rows[0]) != max(len(row) for row in table.rows):
        return table
    context = table.context or previous.context
    return dataclasses.replace(table, rows=[previous.rows[0], *table.rows], header=True, context=context)


_CJK_RE = re.compile(r"[\u2e80-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
# A number, amount, percentage or date: a row made of these is data, not column names.
_VALUE_RE = re.compile(r"[-–+(]?[$€£¥]?\s?\d[\d\s,.:/\-]*%?\)?\.?")
_YEAR_RE = re.compile(r"(19|20)\d\d")


def _join(parts) -> str:
    """Texts joined with a space, except between two CJK characters (a wrapped 公路技术/等级)."""
    text = ""
    for part in parts:
        part = " ".join(part.split())
        if not part:
            continue
        if text and not (_CJK_RE.match(text[-1]) and _CJK_RE.match(part[0])):
            text += " "
        text += part
    return text


def _clean_word(text: str) -> str:
    """A word without dot leaders ("AFM revisions ........ $85"): they are layout, not text."""
    if re.fullmatch(r"[.…·]{2,}", text):
        return ""
    return re.sub(r"(?<=\S)(?:\.{3,}|…+)$", "", text)


def _ends_in_number(words: list[tuple]) -> bool:
    """A cell's words end with an amount ("18,870", "Up to $766,865.", "37,499.96")."""
    return bool(words) and _VALUE_RE.fullmatch(max(words, key=lambda w: w[2])[4]) is not None


def _is_value(cell: str) -> bool:
    return bool(cell) and _VALUE_RE.fullmatch(cell) is not None and _YEAR_RE.fullmatch(cell) is None


def _phrases(line: list[tuple]) -> list[list[tuple]]:
    """A line's words (x-sorted) in runs set apart by more than a wide space: one cell's text each."""
    gap = 0.5 * sorted(w[3] - w[1] for w in line)[len(line) // 2]
    runs = [[line[0]]]
    for word in line[1:]:
        if word[0] - runs[-1][-1][2] > gap:
            runs.append([])
        runs[-1].append(word)
    return runs


def _text_lines(words: list[tuple]) -> list[list[tuple]]:
    """Words grouped into visual lines (by vertical centre), top to bottom, each x-sorted."""
    lines: list[list[tuple]] = []
    for word in sorted(words, key=lambda w: (w[1] + w[3]) / 2):
        centre = (word[1] + word[3]) / 2
        if lines:
            first = lines[-1][0]
            if centre - (first[1] + first[3]) / 2 <= 0.5 * (first[3] - first[1]):
                lines[-1].append(word)
                continue
        lines.append([word])
    return [sorted(line, key=lambda w: w[0]) for line in lines]


class _Grid:
    """A detected table as a grid of slots (detector rows x columns). A merged cell is one
    owner of several slots; words belong to the slot their centre falls in."""

    def __init__(self, table, words: list[tuple]) -> None:
        rows = ([(table.header.bbox, table.header.cells)] if table.header.external else []) + [
            (row.bbox, row.cells) for row in table.rows
        ]
        self.n_rows, self.n_cols = len(rows), table.col_count
        self.rect = fitz.Rect(table.bbox)
        for bbox, _ in rows:
            self.rect |= fitz.Rect(bbox)
        # Column edges: the left edge most cells starting in that column agree on.
        lefts = []
        for col in range(self.n_cols):
            starts = sorted(cells[col][0] for _, cells in rows if col < len(cells) and cells[col])
            lefts.append(starts[len(starts) // 2] if starts else None)
        self.xs = [self.rect.x0]
        for left in lefts[1:]:
            self.xs.append(max(self.xs[-1], left if left is not None else self.xs[-1]))
        self.xs.append(self.rect.x1)
        self.ys = [bbox[1] for bbox, _ in rows] + [rows[-1][0][3]]
        # Slot owners: a cell, or for a slot a merged cell covers (None), the cell covering it.
        self.boxes: list[fitz.Rect] = []
        self.owner: list[list[int]] = []
        for r, (_, cells) in enumerate(rows):
            owners = []
            for c in range(self.n_cols):
                cell = cells[c] if c < len(cells) else None
                if cell:
                    self.boxes.append(fitz.Rect(cell))
                    owners.append(len(self.boxes) - 1)
                    continue
                centre = fitz.Point((self.xs[c] + self.xs[c + 1]) / 2, (self.ys[r] + self.ys[r + 1]) / 2)
                near = ([owners[c - 1]] if c else []) + ([self.owner[r - 1][c]] if r else [])  # the usual merges
                covering = next((i for i in near + list(range(len(self.boxes))) if centre in self.boxes[i]), None)
                if covering is None:  # an empty slot of its own
                    self.boxes.append(fitz.Rect(self.xs[c], self.ys[r], self.xs[c + 1], self.ys[r + 1]))
                    covering = len(self.boxes) - 1
                owners.append(covering)
            self.owner.append(owners)
        self.span: dict[int, tuple[int, int, int, int]] = {}  # owner -> first row, last row, first col, last col
        for r in range(self.n_rows):
            for c in range(self.n_cols):
                o = self.owner[r][c]
                r0, r1, c0, c1 = self.span.get(o, (r, r, c, c))
                self.span[o] = (min(r0, r), max(r1, r), min(c0, c), max(c1, c))
        # Words by slot (centre inside the table's area), dot leaders dropped.
        self.words: dict[tuple[int, int], list[tuple]] = {}
        area = self.rect + (-1, -1, 1, 1)
        for word in words:
            cx, cy = (word[0] + word[2]) / 2, (word[1] + word[3]) / 2
            text = _clean_word(word[4])
            if not text or not (area.x0 <= cx <= area.x1 and area.y0 <= cy <= area.y1):
                continue
            r = min(max(bisect.bisect_right(self.ys, cy) - 1, 0), self.n_rows - 1)
            c = min(max(bisect.bisect_right(self.xs, cx) - 1, 0), self.n_cols - 1)
            self.words.setdefault((r, c), []).append((*word[:4], text))

    def row_words(self, r: int) -> list[tuple]:
        return [w for c in range(self.n_cols) for w in self.words.get((r, c), [])]

    def column_of(self, word: tuple) -> int:
        return min(max(bisect.bisect_right(self.xs, (word[0] + word[2]) / 2) - 1, 0), self.n_cols - 1)

    def owner_words(self, o: int) -> list[tuple]:
        r0, r1, c0, c1 = self.span[o]
        return [
            w for r in range(r0, r1 + 1) for c in range(c0, c1 + 1) if self.owner[r][c] == o for w in self.words.get((r, c), [])
        ]

    def filled_owners(self, r: int) -> set[int]:
        return {self.owner[r][c] for c in range(self.n_cols) if self.words.get((r, c))}

    def spans_row(self, o: int) -> bool:
        """The owner covers (nearly) the table's whole width: a title, a note or a section row."""
        _, _, c0, c1 = self.span[o]
        return c1 - c0 + 1 >= max(2, 0.75 * self.n_cols)


def _line_text(words: list[tuple]) -> str:
    return _join(w[4] for w in words)


def _lines_text(words: list[tuple]) -> str:
    return _join(_line_text(line) for line in _text_lines(words))


def _is_prose(grid: _Grid, o: int) -> bool:
    """An owner cell holding running text (a note, a caption) rather than columns of values."""
    lines = _text_lines(grid.owner_words(o))
    split = sum(1 for line in lines if len(_phrases(line)) >= 2)
    return split < 0.3 * len(lines)


def _read_table(page: fitz.Page, table, words: list[tuple]) -> tuple[fitz.Rect, list[list[str]], bool, str] | None:
    """(area, rows, whether rows[0] is the header, context) of a detected table, or None
    when it reads as text."""
    grid = _Grid(table, words)
    filled = [r for r in range(grid.n_rows) if grid.row_words(r)]
    if not filled:
        return None
    above = _table_context(page, fitz.Rect(table.bbox), words)
    squeezed = "".join(above.split())
    # Title rows on top (one cell across the table, or the caption printed above it), notes
    # and empty rows at the bottom: page text, not table rows.
    first, last = filled[0], filled[-1]
    titles: list[str] = []
    while first < last:
        owners = grid.filled_owners(first)
        text = _lines_text(grid.row_words(first))
        across = len(owners) == 1 and grid.spans_row(next(iter(owners)))
        caption = grid.n_cols >= 3 and len(owners) <= max(2, grid.n_cols // 3) and "".join(text.split()) in squeezed
        if not (across or caption):
            break
        titles.append(text)
        first += 1
        while first < last and not grid.row_words(first):
            first += 1
    while last > first:
        owners = grid.filled_owners(last)
        if grid.row_words(last) and not (
            len(owners) == 1 and grid.spans_row(next(iter(owners))) and _is_prose(grid, next(iter(owners)))
        ):
            break
        last -= 1
    header_rows = _header_rows(grid, first, last)
    names = _column_names(grid, header_rows) if header_rows else []
    body_start = header_rows[-1] + 1 if header_rows else first
    body: list[list[str]] = []
    for r in range(body_start, last + 1):
        body.extend(_body_rows(grid, r))
    body = [row for row in body if any(row)]
    if not body:
        return None
    # Columns with neither a name nor a value (a page frame's margins) go.
    keep = [c for c in range(grid.n_cols) if any(row[c] for row in body)]
    body = [[row[c] for c in keep] for row in body]
    names = [names[c] for c in keep] if names else []
    if _reads_as_text(body):
        return None
    header = bool(names)
    if header and len(keep) == 2 and not _styled_header(page, grid, header_rows, body_start, last):
        # Two columns without a header set apart: label/value pairs, the first row one of them.
        body.insert(0, names)
        names, header = [], False
    bbox = fitz.Rect(grid.rect.x0, grid.ys[first], grid.rect.x1, grid.ys[last + 1]) & grid.rect
    context = _join(titles) or above
    rows = ([names] if header else []) + body
    return bbox, rows, header, context


def _header_rows(grid: _Grid, first: int, last: int) -> list[int]:
    """The rows naming the columns: the first row unless it holds values (a continued table,
    a form), with the rows below it its cells reach down into (a two-level header)."""
    words = grid.row_words(first)
    cells = [_lines_text(ws) for c in range(grid.n_cols) if (ws := grid.words.get((first, c)))]
    if not words or first >= last:
        return []
    values = sum(1 for cell in cells if _is_value(cell))
    if values * 2 >= len(cells) or any(cell.endswith(":") for cell in cells):
        return []
    rows = [first]
    header_owners = set(grid.owner[first])
    while rows[-1] + 1 < last and len(rows) < 4:
        below = rows[-1] + 1
        if not any(o in header_owners for o in grid.owner[below]):
            break
        rows.append(below)
        header_owners |= set(grid.owner[below])
    return rows


def _column_names(grid: _Grid, header_rows: list[int]) -> list[str]:
    """Each column's name, its header rows' texts joined ("Pre-Pawn" over "Handgun": "Pre-Pawn Handgun").

    A header cell across several columns names all of them by a line of one phrase (a group
    label) and each one by a line of several phrases (sub-headers set in one merged cell)."""
    parts: list[list[str]] = [[] for _ in range(grid.n_cols)]
    seen: set[int] = set()
    for r in header_rows:
        for c in range(grid.n_cols):
            o = grid.owner[r][c]
            if o in seen:
                continue
            seen.add(o)
            r0, r1, c0, c1 = grid.span[o]
            owned = [col for col in range(c0, c1 + 1) if any(grid.owner[row][col] == o for row in header_rows)]
            texts: dict[int, list[str]] = {col: [] for col in owned}
            for line in _text_lines(grid.owner_words(o)):
                phrases = _phrases(line)
                if len(owned) == 1 or len(phrases) == 1:
                    for col in owned:
                        texts[col].append(_line_text(line))
                    continue
                for phrase in phrases:
                    col = min(owned, key=lambda k: abs((grid.xs[k] + grid.xs[k + 1]) / 2 - (phrase[0][0] + phrase[-1][2]) / 2))
                    texts[col].append(_line_text(phrase))
            for col, lines in texts.items():
                if lines:
                    parts[col].append(_join(lines))
    return [" ".join(p) for p in parts]


def _body_rows(grid: _Grid, r: int) -> list[list[str]]:
    """The table rows one detector row holds: several when its lines are separate records
    (a band of five states shaded alike), one when extra lines only continue some cells."""
    owners = grid.filled_owners(r)
    if len(owners) == 1 and grid.spans_row(o := next(iter(owners))) and _is_prose(grid, o):
        return [[_lines_text(grid.owner_words(o))] + [""] * (grid.n_cols - 1)]  # a note across the table
    own: list[tuple] = []  # words of cells confined to this row
    filled_down: dict[int, str] = {}  # a cell merged down a column (a row label for several rows)
    for c in range(grid.n_cols):
        o = grid.owner[r][c]
        r0, r1, c0, c1 = grid.span[o]
        if r1 > r0 and c1 == c0:
            filled_down[c] = _lines_text(grid.owner_words(o))
        else:
            own.extend(grid.words.get((r, c), []))
    lines = _text_lines(own)
    columns = [{grid.column_of(w) for w in line} for line in lines]
    widest = max((len(cols) for cols in columns), default=0)
    leftmost = min(min(cols) for cols in columns) if columns else 0  # where a record's label sits
    full = [i for i, cols in enumerate(columns) if len(cols) >= 2 and 2 * len(cols) >= widest and leftmost in cols]
    records: list[list[list[tuple]]] = [lines]
    if len(full) >= 2 and any(
        all(_ends_in_number([w for w in lines[i] if grid.column_of(w) == c]) for i in full) for c in range(grid.n_cols)
    ):
        # Records (a column of numbers, one on each full line): one per full line; a line
        # that fills only a cell or two continues the record above (a wrapped cell), or
        # the first one if it comes before it. Without such a column the lines are cells
        # wrapped side by side ("Check grid connection, wait" / "5 minutes for reconnect").
        records = [lines[: full[0] + 1]]
        for i in range(full[0] + 1, len(lines)):
            if i in full:
                records.append([lines[i]])
            else:
                records[-1].append(lines[i])
    rows = []
    start = 0
    for record in records:
        cells: list[list[str]] = [[] for _ in range(grid.n_cols)]
        for index, line in enumerate(record, start=start):
            if index in full:
                by_col: dict[int, list[tuple]] = {}
                for word in line:
                    by_col.setdefault(grid.column_of(word), []).append(word)
                for c, ws in by_col.items():
                    cells[c].append(_line_text(ws))
            else:  # a continuation line: an overflowing phrase stays in the cell it starts in
                for phrase in _phrases(line):
                    cells[grid.column_of(phrase[0])].append(_line_text(phrase))
        start += len(record)
        row = [_join(parts) for parts in cells]
        for c, text in filled_down.items():
            row[c] = text
        rows.append(row)
    return rows


def _reads_as_text(body: list[list[str]]) -> bool:
    """A detected "table" that is really text: mostly empty cells (a form's boxes, a page
    frame), one giant cell, or cells of running prose."""
    width = max(len(row) for row in body)
    cells = [cell for row in body for cell in row if cell]
    if width < 2 or not cells:
        return True
    if len(cells) < 0.35 * width * len(body):
        return True
    sizes = sorted(len(cell) for cell in cells)
    if sizes[-1] >= 200 and sizes[-1] >= 0.5 * sum(sizes):
        return True
    prose = sum(1 for cell in cells if len(cell.split()) >= 20)
    return prose * 2 >= len(cells) or (width <= 2 and sorted(len(c.split()) for c in cells)[len(cells) // 2] >= 12)


def _styled_header(page: fitz.Page, grid: _Grid, header_rows: list[int], body_start: int, last: int) -> bool:
    """Whether the header rows are set apart in type (bold where the body is not)."""

    def bold_share(y0: float, y1: float) -> float:
        spans = [
            s
            for block in page.get_text("dict", clip=fitz.Rect(grid.rect.x0, y0, grid.rect.x1, y1))["blocks"]
            for line in block.get("lines", [])
            for s in line["spans"]
            if s["text"].strip()
        ]
        if not spans:
            return 0.0
        bold = sum(len(s["text"]) for s in spans if s["flags"] & 16 or "bold" in s["font"].lower())
        return bold / sum(len(s["text"]) for s in spans)

    head = bold_share(grid.ys[header_rows[0]], grid.ys[header_rows[-1] + 1])
    body = bold_share(grid.ys[body_start], grid.ys[last + 1])
    return head >= 0.6 and body <= 0.4


def _table_context(page: fitz.Page, rect: fitz.Rect, words: list[tuple], max_gap: float = 60.0, max_chars: int = 300) -> str:
    """The lines of the text block just above a table (its caption or lead-in), as
    _text_above, but only the lines above it: a caption's block may run into the header."""
    lines: dict[tuple[int, int], list[tuple]] = {}
    for word in words:
        lines.setdefault((word[5], word[6]), []).append(word)
    above = []
    for key, ws in lines.items():
        x0 = min(w[0] for w in ws)
        x1, y1 = max(w[2] for w in ws), max(w[3] for w in ws)
        if y1 <= rect.y0 + 2 and rect.y0 - y1 < max_gap and x0 < rect.x1 and x1 > rect.x0:
            above.append((y1, key))
    if not above:
        return ""
    block = max(above)[1][0]
    text = _join(" ".join(w[4] for w in lines[key]) for _, key in sorted(above, key=lambda a: a[1]) if key[0] == block)
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    cut = tail.find(". ")
    return tail[cut + 2 :] if cut >= 0 else tail  # start at a sentence, not mid-word


def _text_above(rect: fitz.Rect, blocks: list[tuple], max_gap: float = 60.0, max_chars: int = 300) -> str:
    """The last sentence or two of the text block that ends just above `rect`."""
    above = [b for b in blocks if b[3] <= rect.y0 + 2 and rect.y0 - b[3] < max_gap and b[0] < rect.x1 and b[2] > rect.x0]
    if not above:
        return ""
    text = " ".join(max(above, key=lambda b: b[3])[4].split())
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    cut = tail.find(". ")
    return tail[cut + 2 :] if cut >= 0 else tail  # start at a sentence, not mid-word


def _text_outside(page: fitz.Page, boxes: list[fitz.Rect]) -> str:
    """The page's text without the tables (those are indexed as table chunks).

    Read band by band, top to bottom, with the same extraction as pages without tables
    (so running headers and footers still look alike and get stripped): full-width bands
    between tables, and within a table's height the strips to its left and right.
    """
    page_rect = page.rect
    parts: list[str] = []
    top = page_rect.y0
    for box in sorted(boxes, key=lambda b: b.y0):
        if box.y0 > top:
            parts.append(_reading_text(page, clip=fitz.Rect(page_rect.x0, top, page_rect.x1, box.y0)))
        for side in (fitz.Rect(page_rect.x0, box.y0, box.x0, box.y1), fitz.Rect(box.x1, box.y0, page_rect.x1, box.y1)):
            if side.width > 1:
                parts.append(_reading_text(page, clip=side))
        top = max(top, box.y1)
    parts.append(_reading_text(page, clip=fitz.Rect(page_rect.x0, top, page_rect.x1, page_rect.y1)))
    return "\n".join(part for part in parts if part.strip())


def _reading_text(page: fitz.Page, clip: fitz.Rect | None = None) -> str:
    """The page's text in reading order. Sorting lines top to bottom (sort=True) suits one
    column but interleaves the lines of multi-column pages (the Federal Register's three
    columns became "You may view Before acting on this proposal, the FAA AGENCY: …"); there
    the PDF's own block order, which runs column by column, is kept."""
    return page.get_text("text", sort=not is_multi_column(page, clip), clip=clip)


def is_multi_column(page: fitz.Page, clip: fitz.Rect | None = None) -> bool:
    """Whether the page (or the clip of it) sets its text in two or more columns."""
    return _is_multi_column([b for b in page.get_text("blocks", clip=clip) if b[6] == 0 and b[4].strip()], clip or page.rect)


def _is_multi_column(blocks: list[tuple], area: fitz.Rect) -> bool:
    """Two or more narrow text blocks side by side over a good part of the area's height."""
    narrow = [b for b in blocks if (b[2] - b[0]) < 0.45 * area.width and len(b[4].split()) >= 8]
    side_by_side = 0
    for index, left in enumerate(narrow):
        for right in narrow[index + 1 :]:
            a, b = (left, right) if left[0] <= right[0] else (right, left)
            overlap = min(a[3], b[3]) - max(a[1], b[1])
            if a[2] <= b[0] + 2 and overlap > 0.5 * min(a[3] - a[1], b[3] - b[1]):
                side_by_side += 1
    return side_by_side >= 2


def _running_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).lower()


def _strip_running_lines(pages: list[PageText]) -> None:
    """Drop running headers and footers ("Acme GmbH", "Page 3 of 9"): lines that recur,
    numbers aside, on most pages. They carry no content and pollute every chunk."""
    if len(pages) < 3:
        return
    counts: dict[str, int] = {}
    for page in pages:
        for key in {_running_key(line) for line in page.text.splitlines() if line.strip()}:
            counts[key] = counts.get(key, 0) + 1
    running = {key for key, count in counts.items() if count >= max(3, 0.6 * len(pages))}
    if not running:
        return
    for index, page in enumerate(pages):
        # One copy per page is the running line; a second copy is content (the document's
        # title on page 1, set large under a small running header of the same words).
        kept, dropped = [], set()
        for line in page.text.splitlines():
            key = _running_key(line) if line.strip() else ""
            if key in running and key not in dropped:
                dropped.add(key)
                continue
            kept.append(line)
        pages[index] = PageText(page=page.page, text="\n".join(kept))


def _page_images(document: fitz.Document, page: fitz.Page, page_number: int) -> list[tuple[ExtractedImage, float]]:
    """The page's figures, each with the top of its first placement (where it sits among the headings)."""
    images: list[tuple[ExtractedImage, float]] = []
    seen: set[int] = set()
    text_blocks = [b for b in page.get_text("blocks") if b[6] == 0]
    for info in page.get_images(full=True):
        xref = info[0]
        if xref in seen:
            continue
        seen.add(xref)
        if info[2] * info[3] > MAX_IMAGE_PIXELS:
            continue  # decoding it would take gigabytes; the page's text is still indexed
        try:
            pixmap = fitz.Pixmap(document, xref)
            if pixmap.n - pixmap.alpha >= 4:  # CMYK and friends: convert before PNG encoding
                pixmap = fitz.Pixmap(fitz.csRGB, pixmap)
            if pixmap.width < 32 or pixmap.height < 32:
                continue
            if pixmap.width * pixmap.height > WORKING_MAX_PIXELS:
                # Halved until within bounds, as standalone images are (ingest.pixels): OCR,
                # thumbnail and embedding then work on the smaller figure.
                pixmap.shrink(math.ceil(math.log2(pixmap.width * pixmap.height / WORKING_MAX_PIXELS) / 2))
            png = pixmap.tobytes("png")
        except Exception:
            # One undecodable image must not lose the page's text.
            continue
        rects = page.get_image_rects(xref)
        caption = _caption_near(rects[0], text_blocks) if rects else ""
        context = _text_above(rects[0], text_blocks) if rects else ""
        image = ExtractedImage(
            page=page_number,
            png_bytes=png,
            width=pixmap.width,
            height=pixmap.height,
            caption=caption,
            context="" if context == caption else context,
        )
        images.append((image, rects[0].y0 if rects else 0.0))
    return images


def _caption_near(rect: fitz.Rect, text_blocks: list[tuple]) -> str:
    """The text block just below (or else just above) a figure that reads like a caption."""
    below = sorted((b for b in text_blocks if b[1] >= rect.y1 - 2 and b[1] - rect.y1 < 60), key=lambda b: b[1])
    above = sorted((b for b in text_blocks if b[3] <= rect.y0 + 2 and rect.y0 - b[3] < 40), key=lambda b: -b[3])
    for block in below + above:
        text = " ".join(block[4].split())
        if _CAPTION_RE.match(text):
            return text
    return ""


def _too_large(exc: Exception) -> IngestError:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many pixels"
    return IngestError(
        f"the image is too large to index: {size}, over the {MAX_IMAGE_PIXELS // 1_000_000}-megapixel limit; "
        "downscale it and upload it again"
    )


def parse_image(path: Path, mime: str) -> ParsedFile:
    """A standalone image, or one image per page of a multi-page TIFF."""
    try:
        # Pillow only warns between 1x and 2x its limit; refuse there too, before decoding a byte.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.verify()
            images: list[ExtractedImage] = []
            with Image.open(path) as image:
                # Pages of a TIFF are pages; frames of an animated WebP are not, the first stands for it.
                frames = ImageSequence.Iterator(image) if mime == TIFF_MIME else [image]
                single = mime != TIFF_MIME or getattr(image, "n_frames", 1) == 1
                for number, frame in enumerate(frames, start=1):
                    if number > MAX_IMAGE_FRAMES:
                        raise IngestError(f"the image has more than {MAX_IMAGE_FRAMES} pages; split it and upload the parts")
                    # Each TIFF page has its own size: check it before decoding it.
                    if frame.width * frame.height > MAX_IMAGE_PIXELS:
                        raise Image.DecompressionBombError(f"page {number} ({frame.width * frame.height} pixels)")
                    rgb = scaled_rgb(frame)
                    buffer = io.BytesIO()
                    rgb.save(buffer, format="PNG")  # encoded at once: 500 decoded pages would not fit in memory
                    images.append(
                        ExtractedImage(
                            page=number, png_bytes=buffer.getvalue(), width=rgb.width, height=rgb.height, standalone=single
                        )
                    )
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(exc) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise IngestError(f"not a readable image ({exc})") from exc
    return ParsedFile(mime=mime, page_count=len(images), pages=[], images=images)
