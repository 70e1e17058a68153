"""Turn an uploaded file into page texts and images.

PDFs are read with PyMuPDF: it keeps exact page numbers, extracts embedded images with
their placement (so captions under a figure can be attached) and is an order of magnitude
faster than pdfminer-based parsers, which matters on 2-core machines.
"""

from __future__ import annotations

import dataclasses
import io
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pymupdf as fitz
from PIL import Image, ImageSequence, UnidentifiedImageError

from ingest import pdf_structure
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
EXTENSIONS = {PDF_MIME: ".pdf", PNG_MIME: ".png", JPEG_MIME: ".jpg", TIFF_MIME: ".tif", WEBP_MIME: ".webp",
              TEXT_MIME: ".txt", HTML_MIME: ".html", DOCX_MIME: ".docx", PPTX_MIME: ".pptx"}
# A multi-page TIFF (a fax, a scanned binder) is indexed up to this many pages.
MAX_IMAGE_FRAMES = 500

# Refuse decompression bombs loudly instead of letting Pillow allocate gigabytes.
MAX_IMAGE_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

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


def parse_file(path: Path, mime: str, ocr: OcrReader | None = None) -> ParsedFile:
    """`ocr` reads scanned PDF pages; without it they are kept as full-page figures."""
    if mime == PDF_MIME:
        return parse_pdf(path, ocr)
    if mime in IMAGE_MIMES:
        return parse_image(path, mime)
    from ingest import documents

    text_parsers = {TEXT_MIME: documents.parse_text, HTML_MIME: documents.parse_html,
                    DOCX_MIME: documents.parse_docx, PPTX_MIME: documents.parse_pptx}
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
            for page_index, page in enumerate(document):
                page_number = page_index + 1
                if ocr is not None and _is_scanned(page):
                    parsed.pages.append(PageText(page=page_number, text=ocr(_render_for_ocr(page))))
                    continue
                tables = _page_tables(page, page_number)
                text = _text_outside(page, [bbox for bbox, _ in tables]) if tables else page.get_text("text", sort=True)
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


def _page_tables(page: fitz.Page, page_number: int) -> list[tuple[fitz.Rect, TableText]]:
    if sum(len(drawing["items"]) for drawing in page.get_cdrawings()) < _MIN_TABLE_STROKES:
        return []
    # PyMuPDF 2 runs its ONNX layout model here (~0.7 s a page on 2 cores). It is needed:
    # tables ruled only horizontally (as in samples/) are found by the layout model, not
    # by use_layout=False with either the "lines" or the "text" strategy.
    tables = page.find_tables().tables
    if not tables:
        return []
    # Cell text from the page's words (read once): Table.extract()/to_markdown() drop the
    # spaces between words in these PDFs ("180EUR"), and get_textbox per cell re-reads the
    # whole page each time (~60 ms a cell).
    words = page.get_text("words", sort=True)
    blocks = [b for b in page.get_text("blocks") if b[6] == 0]
    found = []
    for table in tables:
        rows = [[_cell_text(cell, words) for cell in table.header.cells]] if table.header.external else []
        rows += [[_cell_text(cell, words) for cell in row.cells] for row in table.rows]
        if len(rows) >= 2:
            bbox = fitz.Rect(table.bbox)
            found.append((bbox, TableText(page=page_number, rows=rows, context=_text_above(bbox, blocks))))
    return found


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


def _cell_text(cell, words: list[tuple]) -> str:
    if not cell:
        return ""  # a slot covered by a merged cell
    x0, y0, x1, y1 = cell
    return " ".join(w[4] for w in words if x0 <= (w[0] + w[2]) / 2 <= x1 and y0 <= (w[1] + w[3]) / 2 <= y1)


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
            parts.append(page.get_text("text", sort=True, clip=fitz.Rect(page_rect.x0, top, page_rect.x1, box.y0)))
        for side in (fitz.Rect(page_rect.x0, box.y0, box.x0, box.y1), fitz.Rect(box.x1, box.y0, page_rect.x1, box.y1)):
            if side.width > 1:
                parts.append(page.get_text("text", sort=True, clip=side))
        top = max(top, box.y1)
    parts.append(page.get_text("text", sort=True, clip=fitz.Rect(page_rect.x0, top, page_rect.x1, page_rect.y1)))
    return "\n".join(part for part in parts if part.strip())


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
            png = pixmap.tobytes("png")
        except Exception:
            # One undecodable image must not lose the page's text.
            continue
        rects = page.get_image_rects(xref)
        caption = _caption_near(rects[0], text_blocks) if rects else ""
        context = _text_above(rects[0], text_blocks) if rects else ""
        image = ExtractedImage(page=page_number, png_bytes=png, width=pixmap.width, height=pixmap.height, caption=caption,
                               context="" if context == caption else context)
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
                    rgb = frame.convert("RGB")
                    buffer = io.BytesIO()
                    rgb.save(buffer, format="PNG")  # encoded at once: 500 decoded pages would not fit in memory
                    images.append(ExtractedImage(page=number, png_bytes=buffer.getvalue(), width=rgb.width,
                                                 height=rgb.height, standalone=single))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(exc) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise IngestError(f"not a readable image ({exc})") from exc
    return ParsedFile(mime=mime, page_count=len(images), pages=[], images=images)
