"""Operations: GET /healthz, GET /metrics (Prometheus) and the ingest and re-index jobs
(GET /api/jobs, GET /api/jobs/{job_id})."""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations, and
# CurrentUser is local to the router factory.

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.api.auth import UserDependency
from app.models import User
from app.schemas import JobInfo
from app.service import KnowledgeBase


def router(kb: KnowledgeBase, current_user: UserDependency, registry: CollectorRegistry) -> APIRouter:
    routes = APIRouter()
    CurrentUser = Annotated[User, Depends(current_user)]

    @routes.get("/healthz")
    def health() -> dict:
        return {"status": "ok"}

    @routes.get("/metrics", response_class=PlainTextResponse)
    def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @routes.get("/api/jobs", response_model=list[JobInfo])
    def list_jobs(user: CurrentUser, limit: int = 20) -> list[JobInfo]:
        """Newest jobs (kind `ingest` or `reindex`) of the collections you may change (admins and editors)."""
        return kb.jobs(user, limit=max(1, min(limit, 200)))

    @routes.get("/api/jobs/{job_id}", response_model=JobInfo)
    def get_job(job_id: int, user: CurrentUser) -> JobInfo:
        """One job, with its progress (`done_files` of `total_files`) while `running`, and how it
        ended: `done`, `failed`, `held` (a re-index its collection's evaluation set kept out) or
        `interrupted` (its process stopped; run it again to resume), with `message` saying why."""
        return kb.job(user, job_id)

    return routes
