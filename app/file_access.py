"""Which stored files a user may fetch by path (the UI's file routes serve files by path).

The rule is the API's: a figure, or its thumbnail, is readable by whoever may read a
collection holding a ready document with that figure. Any other file under the data
directory (originals, page renders, indexes, the database) is never served by path.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.models import Chunk, Document, DocumentStatus, User
from app.service import KnowledgeBase
from ingest.thumbnails import thumbnail_path


def in_data_dir(kb: KnowledgeBase, path: Path) -> bool:
    return path.resolve().is_relative_to(kb.settings.data_dir.resolve())


def may_read_file(kb: KnowledgeBase, user: User, path: Path) -> bool:
    wanted = path.resolve()
    if wanted.parent != kb.settings.figures_dir.resolve():
        return False
    # Figures are <sha>-<n>.<ext>, thumbnails <sha>-<n>.thumb.jpg: the stem finds both.
    stem = wanted.name.split(".")[0]
    with kb.database.session() as session:
        rows = session.execute(
            select(Chunk.image_path, Chunk.collection_id)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.image_path.contains(stem, autoescape=True), Document.status == DocumentStatus.ready)
        ).all()
    holders = {
        collection_id
        for image_path, collection_id in rows
        # The query's LIKE never matches a NULL image_path; the check only tells mypy so.
        if image_path is not None and wanted in (Path(image_path).resolve(), thumbnail_path(Path(image_path)).resolve())
    }
    return bool(holders) and any(c.id in holders for c in kb.readable_collections(user))
