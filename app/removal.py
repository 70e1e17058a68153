"""Removing documents: their chunk rows, their vectors and the files only they use
(stored originals with their page renders, figures with their thumbnails).

Order matters for "nothing lost": SQL first (one transaction), then the indexes are
synced from SQL (IndexManager.sync drops vectors whose chunk rows are gone), and only
then are files deleted, each only if no remaining document still needs it. A crash in
between leaves at worst an orphaned file, never a chunk pointing at a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from app.indexes import IndexManager, bump_index_version
from app.models import Chunk, Document
from app.page_view import forget_pages
from ingest.thumbnails import thumbnail_path


@dataclass
class PendingRemoval:
    """What a removal inside a session has to clean up once that session has committed."""

    collection_id: int
    document_ids: list[int] = field(default_factory=list)
    shas: set[str] = field(default_factory=set)
    spaces: set[str] = field(default_factory=set)
    files: set[Path] = field(default_factory=set)  # stored originals and figure images (their thumbnails follow)
    chunks: int = 0


@dataclass(frozen=True)
class RemovalResult:
    document_ids: list[int]
    chunks: int
    files_deleted: list[Path]


def remove_in_session(session: Session, documents: list[Document]) -> PendingRemoval:
    """Delete the documents' rows and chunks in `session` (not yet committed)."""
    pending = PendingRemoval(collection_id=documents[0].collection_id if documents else 0)
    for document in documents:
        pending.document_ids.append(document.id)
        pending.shas.add(document.sha256)
        if document.stored_path:
            pending.files.add(Path(document.stored_path))
        for space, image_path in session.execute(
            select(Chunk.vector_space, Chunk.image_path).where(Chunk.document_id == document.id)
        ):
            if space:
                pending.spaces.add(space)
            if image_path:
                pending.files.add(Path(image_path))
    if pending.document_ids:
        # A DELETE always gives a CursorResult; Session.execute is typed as returning a plain Result.
        deleted = cast(CursorResult[Any], session.execute(delete(Chunk).where(Chunk.document_id.in_(pending.document_ids))))
        pending.chunks = deleted.rowcount
        session.execute(delete(Document).where(Document.id.in_(pending.document_ids)))
        bump_index_version(session, pending.collection_id)
    return pending


def finish_removal(session_factory, indexes: IndexManager, pending: PendingRemoval) -> RemovalResult:
    """After the commit: drop the vectors, then the files no remaining document uses.

    Originals and figures are named by content hash and shared by every document (in any
    collection) with the same bytes, so a file goes only when its hash is no longer used.
    """
    for space in sorted(pending.spaces or set(indexes.dims)):
        indexes.sync(pending.collection_id, space)
    with session_factory() as session:
        still_used = set(session.scalars(select(Document.sha256).where(Document.sha256.in_(pending.shas))))
        names = [str(p) for p in pending.files]
        referenced = {Path(p) for p in session.scalars(select(Document.stored_path).where(Document.stored_path.in_(names)))}
        referenced |= {Path(p) for p in session.scalars(select(Chunk.image_path).where(Chunk.image_path.in_(names)))}
    deleted: list[Path] = []
    for path in sorted(pending.files):
        sha = path.name.split("-")[0].split(".")[0]
        if sha in still_used or path in referenced:
            continue
        # A figure's thumbnail goes with it (an original has none: its unlink finds nothing).
        for gone in (path, thumbnail_path(path)):
            try:
                gone.unlink()
                deleted.append(gone)
            except FileNotFoundError:
                pass
        forget_pages(path)  # cached page renders of an original go with it
    return RemovalResult(document_ids=pending.document_ids, chunks=pending.chunks, files_deleted=deleted)
