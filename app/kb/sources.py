"""Opening a cited source: its page or figure, and a figure's thumbnail, for readers only."""

from __future__ import annotations

from pathlib import Path

from app.db import Database
from app.kb import repository
from app.kb.access import Access
from app.kb.errors import Hidden, NotFound
from app.models import Chunk, ChunkKind, Document, DocumentStatus, User
from app.page_view import SourceView
from app.page_view import view as page_view
from ingest.thumbnails import ensure_thumbnail


class Sources:
    def __init__(self, database: Database, access: Access) -> None:
        self.database = database
        self.access = access

    def view(self, user: User, chunk_id: int, highlight: str | None = None) -> SourceView:
        chunk, document = self.readable_chunk(user, chunk_id)
        return page_view(document, chunk, highlight)

    def thumbnail(self, user: User, chunk_id: int) -> Path:
        chunk, _document = self.readable_chunk(user, chunk_id)
        if chunk.kind != ChunkKind.image or not chunk.image_path:
            raise NotFound(f"source {chunk_id} is a passage of text, not a figure: it has no thumbnail")
        try:
            return ensure_thumbnail(Path(chunk.image_path))
        except FileNotFoundError as exc:
            raise NotFound(f"source {chunk_id}: {exc}") from None

    def readable_chunk(self, user: User, chunk_id: int) -> tuple[Chunk, Document]:
        """The chunk and its document, if ready and in a collection `user` may read; to anyone
        else a chunk of an unreadable collection does not exist."""
        with self.database.session() as session:
            row = repository.chunk_with_document(session, chunk_id)
        if row is None or row[1].status != DocumentStatus.ready:
            raise NotFound(f"no source {chunk_id}")
        chunk, document = row
        if chunk.collection_id not in {c.id for c in self.access.readable_collections(user)}:
            raise Hidden(f"no source {chunk_id}")
        return chunk, document
