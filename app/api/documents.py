"""A collection's documents: list, upload (ingested before the response), delete."""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations, and
# CurrentUser is local to the router factory.

from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile

from app.api.auth import UserDependency
from app.api.bodies import DocumentView
from app.ingestion import Upload
from app.leftovers import staging as staging_folder
from app.models import User
from app.schemas import IngestReport
from app.service import KnowledgeBase


def router(kb: KnowledgeBase, current_user: UserDependency) -> APIRouter:
    routes = APIRouter()
    CurrentUser = Annotated[User, Depends(current_user)]

    @routes.get("/api/collections/{name}/documents", response_model=list[DocumentView])
    def list_documents(name: str, user: CurrentUser) -> list[DocumentView]:
        documents = kb.documents(user, name)
        return [
            DocumentView(
                id=d.id,
                filename=d.filename,
                status=d.status.value,
                error=d.error,
                page_count=d.page_count,
                size_bytes=d.size_bytes,
            )
            for d in documents
        ]

    @routes.post("/api/collections/{name}/documents", response_model=IngestReport)
    def upload_documents(name: str, user: CurrentUser, files: Annotated[list[UploadFile], File()]) -> IngestReport:
        cap = kb.settings.max_upload_bytes
        # Named after this process, so a start after a kill -9 mid-upload removes it (app.leftovers).
        with staging_folder(kb.settings.data_dir, "upload") as staging:
            uploads = []
            for index, upload in enumerate(files):
                # Numbered staging names: the client's file name never becomes a path.
                target = staging / f"{index:05d}"
                written = 0
                with target.open("wb") as out:
                    while block := upload.file.read(1 << 20):
                        out.write(block)
                        written += len(block)
                        if written > cap:
                            break  # already over the limit: ingestion refuses it; the rest is never stored
                uploads.append(Upload(target, upload.filename or f"upload-{index}"))
            return kb.ingest(user, name, uploads=uploads)

    @routes.delete("/api/collections/{name}/documents/{document_id}")
    def delete_document(name: str, document_id: int, user: CurrentUser) -> dict:
        removed = kb.delete_document(user, name, document_id)
        return {"deleted_documents": removed.document_ids, "deleted_chunks": removed.chunks}

    return routes
