"""Data passed out of the ingest stage: what a file contained and what gets indexed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Heading:
    """A section heading inside a page's text: chunks start at headings and carry their path."""

    start: int  # character offset of the heading line in the page text
    level: int  # 1 = outermost (a document title or h1)
    title: str


@dataclass(frozen=True)
class PageText:
    page: int  # 1-based
    text: str
    headings: tuple[Heading, ...] = ()  # in text order


@dataclass(frozen=True)
class TableText:
    """A table as rows of cell texts; the first row is the header (unless `header` is False).
    Indexed as its own chunks (ingest.chunking.table_lines says how they read)."""

    page: int
    rows: list[list[str]]
    # The text just above the table (its title or lead-in sentence): a bare grid of cells
    # says "Munich | 180 EUR" but not that these are hotel caps, so every piece carries it.
    context: str = ""
    # Where the table sits in its page's text (an offset; the section there is the table's),
    # -1 before the page's first character, None after its last.
    anchor: int | None = None
    # False: rows[0] is a body row too (a form of label/value pairs, or a table continued
    # from an earlier page whose header could not be carried over).
    header: bool = True


@dataclass(frozen=True)
class ExtractedImage:
    page: int  # 1-based page of a PDF; 1 for a standalone image file
    png_bytes: bytes
    width: int
    height: int
    caption: str = ""
    # The sentence or two just above the figure ("The wiring of the pump is shown below."):
    # what the document says about it when the caption does not.
    context: str = ""
    standalone: bool = False  # the whole file is this image
    ocr_text: str = ""  # words read from the pixels (ingest.reading), whitespace collapsed
    # Where the figure sits in its page's text, as TableText.anchor: its section is the
    # figure's heading path (None: the page's end, e.g. a slide's picture under its title).
    anchor: int | None = None


@dataclass
class ParsedFile:
    mime: str
    page_count: int
    pages: list[PageText] = field(default_factory=list)
    images: list[ExtractedImage] = field(default_factory=list)
    tables: list[TableText] = field(default_factory=list)


@dataclass
class TextChunk:
    page: int
    ordinal: int
    text: str
    char_start: int | None  # offsets into the page text; None for table chunks (rendered, not quoted)
    char_end: int | None
    heading_path: str = ""  # "Travel policy > Hotels": the headings the chunk sits under


@dataclass
class EmbeddedFile:
    """A parsed file turned into index-ready chunks with their vectors (rows aligned)."""

    parsed: ParsedFile
    text_chunks: list[TextChunk]
    text_vectors: np.ndarray  # (n_text, d_text) float32, L2-normalised
    image_vectors: np.ndarray  # (n_images, d_image) float32, L2-normalised


class IngestError(Exception):
    """A file that cannot be ingested; the message is shown to the user as the reason."""
