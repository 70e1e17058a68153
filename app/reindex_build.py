"""One document built from its stored original: parsed, chunked and embedded.

The parse + chunk + embed stage of `kb reindex`, run in the driver or in Ray workers, and of
`kb ingest --ray` (app.ingestion) in Ray workers. Results are plain data (no ORM objects, no
database), so a worker can return them; a re-index writes them under the job's staging folder,
where a rerun after a kill finds them, and an ingest stores them at once.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

from app.models import Chunk, ChunkKind
from app.settings import Settings
from ingest.reading import FileReader
from ingest.types import IngestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DocumentTask:
    """A document to build (a ready one to rebuild, or an accepted upload): where its stored
    original is and what it is."""

    document_id: int
    sha256: str
    filename: str
    mime: str
    stored_path: str
    chunk_tokens: int | None = None  # the collection's chunking; None: the settings' default
    chunk_overlap_tokens: int | None = None
    # The embedder the collection will have after the swap (its own, or the one a re-index
    # moves it to); None: the settings' default.
    text_embedder: str | None = None


@dataclass(frozen=True)
class StagedChunk:
    page: int | None
    kind: str
    ordinal: int
    text: str
    char_start: int | None
    char_end: int | None
    image_path: str | None
    heading_path: str
    vector_space: str
    embedding: bytes  # float32, as stored in the chunks table

    def row(self, document_id: int | None = None, collection_id: int | None = None) -> Chunk:
        """The unsaved chunk row, as ChunkBuilder.rows would have built it."""
        return Chunk(
            document_id=document_id,
            collection_id=collection_id,
            page=self.page,
            kind=ChunkKind(self.kind),
            ordinal=self.ordinal,
            text=self.text,
            char_start=self.char_start,
            char_end=self.char_end,
            image_path=self.image_path,
            heading_path=self.heading_path,
            vector_space=self.vector_space,
            embedding=self.embedding,
        )


@dataclass
class StagedDocument:
    document_id: int
    sha256: str
    filename: str
    page_count: int | None = None
    chunks: list[StagedChunk] = field(default_factory=list)
    error: str | None = None  # the document keeps its old chunks; this says why

    def to_json(self) -> str:
        data = asdict(self)
        data["chunks"] = [{**c, "embedding": base64.b64encode(c["embedding"]).decode("ascii")} for c in data["chunks"]]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> StagedDocument:
        data = json.loads(text)
        chunks = [StagedChunk(**{**c, "embedding": base64.b64decode(c["embedding"])}) for c in data.pop("chunks")]
        return cls(**data, chunks=chunks)

    def write(self, path: Path) -> None:
        """Atomically: a kill mid-write leaves no half file that a rerun would trust."""
        partial = path.with_suffix(".part")
        partial.write_text(self.to_json(), encoding="utf-8")
        os.replace(partial, path)


def build_document(
    task: DocumentTask, settings: Settings, models, reader: FileReader | None = None, reading: Future | None = None
) -> StagedDocument:
    """Parse, chunk and embed one stored original exactly as ingestion does; `reading` is the
    original already submitted to `reader` (parse workers), else it is read here.

    Any failure is returned as the result's error rather than raised: one bad document
    must not stop the job, and it stays on its old chunks."""
    from app.chunk_rows import ChunkBuilder  # here, not at import: Ray workers import this module lazily

    staged = StagedDocument(document_id=task.document_id, sha256=task.sha256, filename=task.filename)
    stored = Path(task.stored_path) if task.stored_path else None
    if stored is None or not stored.is_file():
        staged.error = f"the stored original {task.stored_path or '(none recorded)'} is missing; ingest the file again"
        return staged
    try:
        builder = ChunkBuilder(settings, models, reader)
        if reading is not None:
            assert reader is not None  # `reading` was submitted to `reader` (see the docstring)
            parsed = reader.result(reading, stored, task.mime)
        else:
            parsed = builder.parse(stored, task.mime)
        text_rows, image_rows = builder.rows(
            parsed, task.sha256, task.filename, task.chunk_tokens, task.chunk_overlap_tokens, task.text_embedder
        )
    except IngestError as exc:
        staged.error = str(exc)
        return staged
    except Exception as exc:  # a bug must not sink the job either; it is recorded
        log.exception("unexpected error re-indexing %s", task.filename)
        staged.error = f"internal error: {exc}"
        return staged
    staged.page_count = parsed.page_count
    staged.chunks = [
        StagedChunk(
            page=row.page,
            kind=row.kind.value,
            ordinal=row.ordinal,
            text=row.text,
            char_start=row.char_start,
            char_end=row.char_end,
            image_path=row.image_path,
            heading_path=row.heading_path,
            # ChunkBuilder.rows sets both on every row it builds; the columns are nullable only in SQL.
            vector_space=cast(str, row.vector_space),
            embedding=cast(bytes, row.embedding),
        )
        for row in text_rows + image_rows
    ]
    return staged
