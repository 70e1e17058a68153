"""Numbers for the admin dashboard and the job list: read-only queries, no permission logic.

The service layer (app.service.KnowledgeBase) decides which collections a caller may see
and passes them in; everything here only counts what it is given.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from app import registry
from app.db import Database
from app.models import Chunk, ChunkKind, Collection, Document, DocumentStatus, IngestJob, JobStatus
from app.schemas import CollectionStats, JobInfo, ModelInUse


def directory_bytes(path: Path) -> int:
    if not path.is_dir():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def collection_stats(
    database: Database, index_dir: Path, collections: list[Collection], default_embedder: str
) -> list[CollectionStats]:
    """default_embedder: MMKB_TEXT_EMBEDDER, which collections without their own choice follow."""
    ids = [c.id for c in collections]
    with database.session() as session:
        by_status: dict[int, dict[DocumentStatus, int]] = {}
        for collection_id, status, count in session.execute(
            select(Document.collection_id, Document.status, func.count())
            .where(Document.collection_id.in_(ids))
            .group_by(Document.collection_id, Document.status)
        ):
            by_status.setdefault(collection_id, {})[status] = count
        chunks = dict(
            session.execute(
                select(Chunk.collection_id, func.count()).where(Chunk.collection_id.in_(ids)).group_by(Chunk.collection_id)
            ).all()
        )
        # One figure can have a text-space and an image-space row: count the images, not the rows.
        figures = dict(
            session.execute(
                select(Chunk.collection_id, func.count(func.distinct(Chunk.image_path)))
                .where(Chunk.collection_id.in_(ids), Chunk.kind == ChunkKind.image)
                .group_by(Chunk.collection_id)
            ).all()
        )
    stats = []
    for collection in collections:
        counts = by_status.get(collection.id, {})
        stats.append(
            CollectionStats(
                name=collection.name,
                documents=sum(counts.values()),
                ready_documents=counts.get(DocumentStatus.ready, 0),
                failed_documents=counts.get(DocumentStatus.failed, 0),
                chunks=chunks.get(collection.id, 0),
                figures=figures.get(collection.id, 0),
                index_bytes=directory_bytes(index_dir / f"collection-{collection.id}"),
                text_embedder=collection.text_embedder or default_embedder,
            )
        )
    return stats


def job_infos(database: Database, collection_ids: list[int] | None, limit: int = 20, job_id: int | None = None) -> list[JobInfo]:
    """Newest first. collection_ids None: every job, including those of no collection."""
    query = select(IngestJob, Collection.name).outerjoin(Collection, Collection.id == IngestJob.collection_id)
    if collection_ids is not None:
        query = query.where(IngestJob.collection_id.in_(collection_ids))
    if job_id is not None:
        query = query.where(IngestJob.id == job_id)
    query = query.order_by(IngestJob.id.desc()).limit(limit)
    with database.session() as session:
        return [
            JobInfo(
                id=job.id,
                collection=name,
                kind=job.kind,
                status=job.status.value,
                total_files=job.total_files,
                done_files=job.done_files,
                failed_files=job.failed_files,
                message=job.message,
                created_at=job.created_at,
                finished_at=job.finished_at,
            )
            for job, name in session.execute(query)
        ]


def job_collection_id(database: Database, job_id: int) -> tuple[bool, int | None]:
    """(exists, collection id) of one job."""
    with database.session() as session:
        row = session.execute(select(IngestJob.collection_id).where(IngestJob.id == job_id)).first()
    return (row is not None, row[0] if row else None)


def active_jobs(database: Database) -> dict[str, int]:
    """Jobs waiting or in progress, by status (all collections: /metrics is about the server)."""
    with database.session() as session:
        rows = session.execute(
            select(IngestJob.status, func.count())
            .where(IngestJob.status.in_([JobStatus.queued, JobStatus.running]))
            .group_by(IngestJob.status)
        ).all()
    return {status.value: count for status, count in rows}


def models_in_use(settings, models) -> list[ModelInUse]:
    """What each model role is configured to, and whether this process has loaded it.

    Deliberately not registry.resolve(): resolving a split generator joins its parts into
    the data directory (hundreds of MB), which a dashboard view must never trigger.
    """
    rows = []
    for role, (name_field, path_field) in registry.ROLE_FIELDS.items():
        name = getattr(settings, name_field)
        configured_path = getattr(settings, path_field)
        packaged = registry.PACKAGED_MODELS.get((role, name))
        if configured_path is not None:
            name, package = str(configured_path), "local path"
        elif (role, name) in registry.BUILTIN_CHOICES:
            package = "built in (no weights)"
        else:
            pins = packaged.pip_packages if packaged else ()
            package = (pins[0] if len(pins) == 1 else f"{pins[0]} and {len(pins) - 1} more parts") if pins else "not packaged"
        if role == "generator" and settings.generator_backend == "openai":
            name, package = f"{settings.openai_model} at {settings.openai_base_url}", "OpenAI-compatible server"
        rows.append(ModelInUse(role=role, name=name, package=package, loaded=role in vars(models)))
    return rows
