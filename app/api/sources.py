"""Cited sources: a chunk's page, figure or passage (GET /api/chunks/{id}/view) and a figure's
thumbnail; only for chunks of collections the caller may read (app.service decides)."""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations, and
# CurrentUser is local to the router factory.

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, Response

from app.api.auth import UserDependency
from app.models import User
from app.service import KnowledgeBase
from ingest.thumbnails import MAX_SIDE_PX as THUMBNAIL_MAX_SIDE_PX
from ingest.thumbnails import MEDIA_TYPE as THUMBNAIL_MEDIA_TYPE


def router(kb: KnowledgeBase, current_user: UserDependency) -> APIRouter:
    routes = APIRouter()
    CurrentUser = Annotated[User, Depends(current_user)]

    @routes.get(
        "/api/chunks/{chunk_id}/view",
        response_class=Response,
        responses={
            200: {
                "content": {"image/png": {}, "text/plain": {}},
                "description": "PNG of the cited page (passage highlighted) or figure; the passage as text for DOCX/PPTX/HTML/text files",
            }
        },
    )
    def view_source(
        chunk_id: int,
        user: CurrentUser,
        highlight: Annotated[
            str | None,
            Query(
                max_length=4000,
                description=(
                    "highlight only this text of the passage (e.g. an answer's quote); ignored unless it is part of the passage"
                ),
            ),
        ] = None,
    ) -> Response:
        """X-Mmkb-Highlight says what is highlighted: `quote` (only the `highlight` text) or
        `passage` (the whole passage: no highlight asked for, or not part of the passage)."""
        shown = kb.source_view(user, chunk_id, highlight)
        headers = {
            "X-Mmkb-File": quote(shown.filename),
            "X-Mmkb-Page": str(shown.page or ""),
            "X-Mmkb-View": shown.kind,
            "X-Mmkb-Highlight": "quote" if shown.highlight else "passage",
        }
        if shown.png is not None:
            return Response(shown.png, media_type="image/png", headers=headers)
        return PlainTextResponse(shown.passage, headers=headers)

    @routes.get(
        "/api/chunks/{chunk_id}/thumbnail",
        response_class=Response,
        responses={
            200: {
                "content": {THUMBNAIL_MEDIA_TYPE: {}},
                "description": f"JPEG thumbnail of a figure (longest side at most {THUMBNAIL_MAX_SIDE_PX} px); "
                "404 for a text chunk",
            }
        },
    )
    def source_thumbnail(chunk_id: int, user: CurrentUser) -> Response:
        path = kb.thumbnail(user, chunk_id)
        return Response(path.read_bytes(), media_type=THUMBNAIL_MEDIA_TYPE)

    return routes
