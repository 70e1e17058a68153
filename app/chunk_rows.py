"""A parsed file's chunk rows with their vectors: what ingestion stores and `kb reindex` stages.

One builder for both, so a re-index (here or on its Ray workers) chunks and embeds exactly as
ingestion does. It needs settings and models, never the database.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.indexes import IMAGE_SPACE, TEXT_SPACE
from app.models import Chunk, ChunkKind
from app.settings import Settings
from ingest.chunking import chunk_file, embedding_text, figure_heading_paths
from ingest.reading import FileReader, InProcessReader, ReadOptions
from ingest.thumbnails import ensure_thumbnail
from ingest.types import IngestError, ParsedFile


def read_options(settings: Settings) -> ReadOptions:
    from ingest.embedders import torch_threads

    return ReadOptions(
        ocr_engine=settings.ocr_engine,
        ocr_threads=torch_threads(settings.model_threads),
        ocr_scanned_pages=settings.ocr_scanned_pages,
        ocr_images=settings.ocr_images,
        min_image_side_px=settings.min_image_side_px,
        niceness=settings.ingest_niceness,
    )


class ChunkBuilder:
    def __init__(self, settings: Settings, models, reader: FileReader | None = None) -> None:
        self.settings = settings
        self.models = models  # app.model_set.ModelSet; typed loosely to keep model imports lazy
        self.reader = reader or InProcessReader(read_options(settings), lambda: models.ocr)

    def rows(
        self,
        parsed: ParsedFile,
        sha: str,
        filename: str,
        chunk_tokens: int | None = None,
        chunk_overlap_tokens: int | None = None,
        text_embedder_name: str | None = None,
    ) -> tuple[list[Chunk], list[Chunk]]:
        """Unsaved chunk rows with their embeddings; chunk size/overlap and the text embedder
        are the collection's (None: the settings' defaults)."""
        text_embedder = self.models.text_embedder_for(text_embedder_name)
        chunk_tokens = chunk_tokens or self.settings.chunk_tokens
        overlap = chunk_overlap_tokens if chunk_overlap_tokens is not None else self.settings.chunk_overlap_tokens
        max_tokens = min(chunk_tokens, text_embedder.max_tokens - 8)
        pieces = chunk_file(
            parsed,
            count_tokens=text_embedder.count_tokens,
            max_tokens=max_tokens,
            overlap_tokens=min(overlap, max_tokens // 2),
            # Tables get the embedder's whole window (its vectors see no further), so most stay one chunk.
            table_max_tokens=text_embedder.max_tokens - 8,
        )
        if not pieces and not parsed.images:
            raise IngestError("no text or images found (nothing readable, even by OCR)")
        images = parsed.images  # the reader kept the figures big enough to matter
        descriptions = [self._describe_figure(filename, image) for image in images]
        # One embedder call for the file's chunks and figure descriptions: a call of its own
        # for one or two short descriptions cost a fifth of the file's embedding time
        # (benchmarks/RESULTS.md, "Ingest at the naive pipeline's speed").
        vectors = text_embedder.embed([embedding_text(p) for p in pieces] + descriptions)
        text_vectors, description_vectors = vectors[: len(pieces)], vectors[len(pieces) :]
        text_rows = [
            Chunk(
                page=p.page,
                kind=ChunkKind.text,
                ordinal=p.ordinal,
                text=p.text,
                char_start=p.char_start,
                char_end=p.char_end,
                heading_path=p.heading_path,
                vector_space=TEXT_SPACE,
                embedding=vector.tobytes(),
            )
            for p, vector in zip(pieces, text_vectors)
        ]
        figure_rows: list[Chunk] = []
        if images:
            figure_files = [self._save_figure(sha, ordinal, image) for ordinal, image in enumerate(images)]
            paths = figure_heading_paths(parsed)
            # Every figure is findable by its words (caption, OCR text, file name) in the text space,
            # and, with a CLIP model configured, by what it shows in the image space.
            spaces = [(TEXT_SPACE, description_vectors)]
            clip = self.models.image_embedder
            if clip is not None:
                spaces.append((IMAGE_SPACE, clip.embed_images([image.png_bytes for image in images])))
            for space, vectors in spaces:
                figure_rows += [
                    Chunk(
                        page=image.page,
                        kind=ChunkKind.image,
                        ordinal=ordinal,
                        text=text,
                        image_path=str(figure_file),
                        heading_path=paths[ordinal],
                        vector_space=space,
                        embedding=vector.tobytes(),
                    )
                    for ordinal, (image, text, vector, figure_file) in enumerate(zip(images, descriptions, vectors, figure_files))
                ]
        return text_rows, figure_rows

    def parse(self, stored: Path, mime: str) -> ParsedFile:
        """Read one stored file with this builder's reader, in this process."""
        return self.reader.result(self.reader.submit(stored, mime), stored, mime)

    @staticmethod
    def _describe_figure(filename: str, image) -> str:
        parts = [part for part in (image.caption, image.context) if part]
        if image.ocr_text:
            parts.append(f"Text in the image: {image.ocr_text}")
        where = f"page {image.page} of {filename}" if image.page and not image.standalone else filename
        name_words = " ".join(re.split(r"[-_./\s]+", filename.rsplit(".", 1)[0]))  # "/": synced files keep their folders
        parts.append(f"Figure on {where} ({name_words}).")
        return " ".join(parts)

    def _save_figure(self, sha: str, ordinal: int, image) -> Path:
        figure_file = self.settings.figures_dir / f"{sha}-{ordinal}.png"
        if not figure_file.exists():
            figure_file.parent.mkdir(parents=True, exist_ok=True)
            figure_file.write_bytes(image.png_bytes)
        ensure_thumbnail(figure_file, image.png_bytes)  # also for a figure stored before thumbnails existed
        return figure_file
