"""REST API (FastAPI); ui.server.create_app mounts the Gradio UI on it.

Authentication: `Authorization: Bearer <token>` with per-user API tokens (POST /api/tokens
exchanges a user name and password for one). Authorisation is not decided here: every
call goes to app.service.KnowledgeBase, which applies the same permission rules as the UI.

This module builds the app (middleware, metrics, exception handlers); the routes are one
router per resource, each made by its module's `router(kb, current_user, ...)`:
auth (tokens, me), collections (with members, directory groups, evaluation), documents,
asking, conversations, sources (cited chunks), ops (health, metrics, jobs), and the
OpenAI-compatible /v1 (app.openai_api).
"""

import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.admission import Busy
from app.api import asking, auth, collections, conversations, documents, ops, sources
from app.api.common import CodedError, as_coded_error
from app.api.metrics import Metrics
from app.conversations import ConversationNotFound
from app.csp import ContentSecurityPolicy
from app.openai_api import openai_router
from app.service import AccessDenied, AlreadyRunning, EmptyCollection, Hidden, KnowledgeBase, NotFound

__all__ = ["CodedError", "create_api"]


def create_api(kb: KnowledgeBase) -> FastAPI:
    """The REST API, the OpenAI-compatible /v1 and /metrics; ui.server.create_app mounts the
    Gradio apps on it (this module knows nothing of the UI)."""
    api = FastAPI(title="mmkb", version="0.1.0", description="Multimodal knowledge base API")
    metrics = Metrics(kb)
    api.add_middleware(ContentSecurityPolicy)

    @api.middleware("http")
    async def record_metrics(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "other")
        metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.latency.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    _add_error_handlers(api)

    current_user = auth.current_user_dependency(kb)
    api.include_router(ops.router(kb, current_user, metrics.registry))
    api.include_router(auth.router(kb, current_user))
    api.include_router(collections.router(kb, current_user))
    api.include_router(documents.router(kb, current_user))
    api.include_router(asking.router(kb, current_user))
    api.include_router(conversations.router(kb, current_user))
    api.include_router(sources.router(kb, current_user))
    api.include_router(openai_router(kb))  # /v1/chat/completions, /v1/models (app/openai_api.py)
    return api


def _add_error_handlers(api: FastAPI) -> None:
    # The service's refusals, raised from any route: one answer each, instead of a try/except
    # in every route. Starlette picks the handler of the first class in the exception's MRO,
    # and Hidden is an AccessDenied before it is a NotFound, so it has its own (a 404).
    for refusal in (Hidden, ConversationNotFound, NotFound, AccessDenied, EmptyCollection, AlreadyRunning):

        @api.exception_handler(refusal)
        def refused(request: Request, exc: Exception) -> JSONResponse:
            return coded_error(request, as_coded_error(exc))

    @api.exception_handler(CodedError)
    def coded_error(request: Request, exc: CodedError) -> JSONResponse:
        # `detail` stays the English sentence; clients (and translated UIs) branch on `code`.
        return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=exc.status_code, headers=exc.headers)

    @api.exception_handler(Busy)
    def busy(request: Request, exc: Busy) -> JSONResponse:
        # 429: this caller is over their share; 503: the server is; either way, when to retry.
        return JSONResponse(
            {"detail": str(exc), "code": "asker_busy" if exc.per_asker else "server_busy"},
            status_code=429 if exc.per_asker else 503,
            headers={"Retry-After": str(exc.retry_after_s)},
        )
