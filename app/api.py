"""REST API (FastAPI) with the Gradio UI mounted on it.

Authentication: `Authorization: Bearer <token>` with per-user API tokens (POST /api/tokens
exchanges a user name and password for one). Authorisation is not decided here: every
call goes to app.service.KnowledgeBase, which applies the same permission rules as the UI.
"""

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

import anyio
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import BaseModel, Field

from app.accounts import AuthError, TooManyAttempts
from app.admission import Busy
from app.conversations import ConversationNotFound, ConversationView
from app.csp import ContentSecurityPolicy
from app.directory import DirectoryUnavailable
from app.ingestion import Upload
from app.leftovers import staging as staging_folder
from app.models import Role, User
from app.openai_api import openai_router
from app.schemas import Answer, CollectionInfo, EvalQuestionInfo, EvalRunInfo, IngestReport, JobInfo, MemberInfo, NewEvalQuestion
from app.service import AccessDenied, EmptyCollection, Hidden, KnowledgeBase, NotFound
from ingest.thumbnails import MAX_SIDE_PX as THUMBNAIL_MAX_SIDE_PX
from ingest.thumbnails import MEDIA_TYPE as THUMBNAIL_MEDIA_TYPE

# --- request and response bodies -----------------------------------------------------


class LoginRequest(BaseModel):
    username: str
    password: str
    token_name: str = "api"


class TokenResponse(BaseModel):
    token: str
    username: str


class UserView(BaseModel):
    id: int
    username: str
    is_admin: bool


class NewCollection(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    chunk_tokens: int | None = Field(default=None, description="chunk size in tokens; default MMKB_CHUNK_TOKENS")
    chunk_overlap_tokens: int | None = Field(default=None, description="overlap in tokens; default MMKB_CHUNK_OVERLAP_TOKENS")
    text_embedder: str | None = Field(default=None, description="text embedder (`kb models`); default MMKB_TEXT_EMBEDDER")


class CollectionUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=128, description="the new name")
    text_embedder: str | None = Field(
        default=None, description="move to this text embedder: re-indexes every document first (the old index serves until then)"
    )


class MemberChange(BaseModel):
    username: str
    role: Role | None = Field(description="admin, editor or reader; null removes the member")


class DirectoryGroupRole(BaseModel):
    role: Role = Field(description="admin, editor or reader")


class DirectoryGroupView(BaseModel):
    group: str = Field(description="the directory group's name (e.g. its cn) or DN")
    role: Role


class DocumentView(BaseModel):
    id: int
    filename: str
    status: str
    error: str | None
    page_count: int | None
    size_bytes: int


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    collections: list[str] | None = None
    conversation_id: int | None = None
    hyde: bool | None = Field(default=None, description="HyDE for this question; default MMKB_HYDE")
    mmr_lambda: float | None = Field(default=None, ge=0.0, le=1.0, description="MMR for this question; default MMKB_MMR_LAMBDA")


class EvalRunDone(EvalRunInfo):
    missed: list[str] = Field(description="questions whose file (and page) was not among the first 5 places")


class NewConversation(BaseModel):
    title: str = ""


class FeedbackRequest(BaseModel):
    rating: int = Field(description="+1 or -1")
    comment: str = ""


class KnowledgeBaseCollector:
    """Read when scraped: mmkb_queue_length{queue=...} (ingest jobs queued and running, from
    the database so jobs of every process count; asks in flight in this process) and the
    ingest totals of this process, whether the API, the admin console or a job ingested."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def collect(self):
        lengths = self.kb.queue_lengths()
        gauge = GaugeMetricFamily("mmkb_queue_length", "Work waiting or in progress", labels=["queue"])
        gauge.add_metric(["ingest_queued"], lengths.ingest_queued)
        gauge.add_metric(["ingest_running"], lengths.ingest_running)
        gauge.add_metric(["asks_in_flight"], lengths.asks_in_flight)
        queue = self.kb.admission.state()
        gauge.add_metric(["asks_waiting_for_generator"], queue.waiting)
        gauge.add_metric(["asks_writing"], queue.writing)
        yield gauge
        yield CounterMetricFamily("mmkb_ingested_pages", "Pages ingested", value=self.kb.ingest_totals.pages)
        yield CounterMetricFamily("mmkb_ingest_seconds", "Seconds spent ingesting", value=self.kb.ingest_totals.seconds)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mmkb_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram("mmkb_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry)


class CodedError(HTTPException):
    """An error response with a stable machine-readable `code` beside its English `detail`."""

    def __init__(self, status_code: int, detail: str, code: str) -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.code = code


def create_api(kb: KnowledgeBase) -> FastAPI:
    """The REST API, the OpenAI-compatible /v1 and /metrics; ui.server.create_app mounts the
    Gradio apps on it (this module knows nothing of the UI)."""
    api = FastAPI(title="mmkb", version="0.1.0", description="Multimodal knowledge base API")
    metrics = Metrics()
    metrics.registry.register(KnowledgeBaseCollector(kb))
    bearer = HTTPBearer(auto_error=False)

    def current_user(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
        try:
            return kb.accounts.authenticate(credentials.credentials if credentials else None)
        except AuthError as exc:
            raise HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    CurrentUser = Annotated[User, Depends(current_user)]
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

    def _errors(exc: Exception) -> CodedError:
        # NotFound first: a refusal to a non-member (service.Hidden) is both, and must read as missing.
        if isinstance(exc, ConversationNotFound):
            return CodedError(404, str(exc), "conversation_not_found")
        if isinstance(exc, NotFound):
            return CodedError(404, str(exc), "not_found")
        if isinstance(exc, AccessDenied):
            return CodedError(403, str(exc), "access_denied")
        if isinstance(exc, EmptyCollection):
            return CodedError(400, str(exc), "empty_collection")
        return CodedError(400, str(exc), "invalid_request")

    # The service's refusals, raised from any route: one answer each, instead of a try/except
    # in every route. Starlette picks the handler of the first class in the exception's MRO,
    # and Hidden is an AccessDenied before it is a NotFound, so it has its own (a 404).
    for refusal in (Hidden, ConversationNotFound, NotFound, AccessDenied, EmptyCollection):

        @api.exception_handler(refusal)
        def refused(request: Request, exc: Exception) -> JSONResponse:
            return coded_error(request, _errors(exc))

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

    @api.get("/healthz")
    def health() -> dict:
        return {"status": "ok"}

    @api.get("/metrics", response_class=PlainTextResponse)
    def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @api.post("/api/tokens", response_model=TokenResponse)
    def login(body: LoginRequest, request: Request) -> TokenResponse:
        """Failed logins are throttled per user name and client address (the connection's
        peer: a forwarded-for header is anyone's to write)."""
        try:
            user = kb.accounts.login(body.username, body.password, request.client.host if request.client else None)
        except TooManyAttempts as exc:
            raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
        except AuthError as exc:
            raise HTTPException(status_code=401, detail=str(exc)) from None
        except DirectoryUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc), headers={"Retry-After": "30"}) from None
        return TokenResponse(token=kb.accounts.issue_token(user, body.token_name), username=user.username)

    @api.get("/api/me", response_model=UserView)
    def me(user: CurrentUser) -> UserView:
        return UserView(id=user.id, username=user.username, is_admin=user.is_admin)

    @api.get("/api/collections", response_model=list[CollectionInfo])
    def list_collections(user: CurrentUser) -> list[CollectionInfo]:
        return kb.collection_info(user)

    @api.post("/api/collections", response_model=CollectionInfo, status_code=201)
    def create_collection(body: NewCollection, user: CurrentUser) -> CollectionInfo:
        try:
            collection = kb.create_collection(user, body.name, body.chunk_tokens, body.chunk_overlap_tokens, body.text_embedder)
        except ValueError as exc:
            raise _errors(exc) from None
        return next(info for info in kb.collection_info(user) if info.id == collection.id)

    @api.patch("/api/collections/{name}", response_model=CollectionInfo)
    def update_collection(name: str, body: CollectionUpdate, user: CurrentUser) -> CollectionInfo:
        """Rename, and/or move to another text embedder (global admins and the collection's
        admins). A new embedder is a re-index (`kb reindex --embedder`), run before this returns."""
        if body.name is None and body.text_embedder is None:
            raise CodedError(400, "nothing to change: give name and/or text_embedder", "invalid_request")
        try:
            if body.text_embedder is not None:
                report = kb.reindex(user, name, text_embedder=body.text_embedder)
                if report.failed:
                    failures = "; ".join(f"{d.filename}: {d.error}" for d in report.failed)
                    raise CodedError(
                        409,
                        f"{name} stays on its text embedder: {len(report.failed)} document(s) failed to "
                        f"re-index ({failures}); fix or delete them and try again",
                        "embedder_not_changed",
                    )
                if report.held:  # its own evaluation set did worse on the new embedder (app.reindex_guard)
                    raise CodedError(409, f"{name} stays on its text embedder: {report.guard[0].message}", "embedder_not_changed")
            if body.name is not None:
                name = kb.rename_collection(user, name, body.name).name
        except ValueError as exc:
            raise _errors(exc) from None
        return next(info for info in kb.collection_info(user) if info.name == name)

    @api.delete("/api/collections/{name}")
    def delete_collection(name: str, user: CurrentUser) -> dict:
        """Delete with every document, chunk, index file and stored file no other collection uses."""
        removed = kb.delete_collection(user, name)
        return {"collection": name, "deleted_documents": removed.document_ids, "deleted_chunks": removed.chunks}

    @api.get("/api/collections/{name}/members", response_model=list[MemberInfo])
    def list_members(name: str, user: CurrentUser) -> list[MemberInfo]:
        return kb.members(user, name)

    @api.put("/api/collections/{name}/members")
    def change_member(name: str, body: MemberChange, user: CurrentUser) -> dict:
        kb.manage_member(user, name, body.username, body.role)
        return {"collection": name, "username": body.username, "role": body.role}

    # --- directory (LDAP) groups whose members get a role at sign-in; the collection's admins.
    # `{group:path}`: a DN holds '=' and ',' (fine in a path), and may hold an escaped '/',
    # which arrives decoded; the group is the rest of the path either way.

    @api.get("/api/collections/{name}/directory-groups", response_model=list[DirectoryGroupView])
    def list_directory_groups(name: str, user: CurrentUser) -> list[DirectoryGroupView]:
        return [DirectoryGroupView(group=group, role=role) for group, role in kb.directory_groups(user, name)]

    @api.put("/api/collections/{name}/directory-groups/{group:path}")
    def map_directory_group(name: str, group: str, body: DirectoryGroupRole, user: CurrentUser) -> dict:
        """Members of `group` (URL-encoded) get `role` at their next sign-in; a mapped group's role changes."""
        try:
            kb.map_directory_group(user, name, group, body.role)
        except ValueError as exc:
            raise _errors(exc) from None
        return {"collection": name, "group": group.strip(), "role": body.role}

    @api.delete("/api/collections/{name}/directory-groups/{group:path}")
    def unmap_directory_group(name: str, group: str, user: CurrentUser) -> dict:
        try:
            kb.map_directory_group(user, name, group, None)
        except ValueError as exc:
            raise _errors(exc) from None
        return {"collection": name, "deleted_group": group.strip()}

    @api.get("/api/collections/{name}/documents", response_model=list[DocumentView])
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

    @api.post("/api/collections/{name}/documents", response_model=IngestReport)
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

    @api.delete("/api/collections/{name}/documents/{document_id}")
    def delete_document(name: str, document_id: int, user: CurrentUser) -> dict:
        removed = kb.delete_document(user, name, document_id)
        return {"deleted_documents": removed.document_ids, "deleted_chunks": removed.chunks}

    # --- a collection's own evaluation set: readers see it, editors and admins change and run it

    @api.get("/api/collections/{name}/eval/questions", response_model=list[EvalQuestionInfo])
    def list_eval_questions(name: str, user: CurrentUser) -> list[EvalQuestionInfo]:
        return kb.eval_questions(user, name)

    @api.post("/api/collections/{name}/eval/questions", response_model=EvalQuestionInfo, status_code=201)
    def add_eval_question(name: str, body: NewEvalQuestion, user: CurrentUser) -> EvalQuestionInfo:
        """The file must be a ready document of the collection, and the page one it has."""
        try:
            (added,) = kb.add_eval_questions(user, name, [body])
        except ValueError as exc:
            raise _errors(exc) from None
        return added

    @api.delete("/api/collections/{name}/eval/questions/{question_id}")
    def remove_eval_question(name: str, question_id: int, user: CurrentUser) -> dict:
        kb.remove_eval_question(user, name, question_id)
        return {"collection": name, "deleted_question": question_id}

    @api.post("/api/collections/{name}/eval/runs", response_model=EvalRunDone, status_code=201)
    def run_eval(name: str, user: CurrentUser) -> EvalRunDone:
        """Run the set against the live index now; recorded in the history."""
        try:
            run, scores = kb.run_eval(user, name)
        except ValueError as exc:
            raise _errors(exc) from None
        return EvalRunDone(**run.model_dump(), missed=scores.missed)

    @api.get("/api/collections/{name}/eval/runs", response_model=list[EvalRunInfo])
    def list_eval_runs(name: str, user: CurrentUser, limit: int = 50) -> list[EvalRunInfo]:
        """Newest first: runs on demand, and each re-index's `live` and `candidate` scores with
        its `verdict` (swapped, kept: the live index stayed, forced: swapped despite a drop)."""
        return kb.eval_runs(user, name, limit=max(1, min(limit, 500)))

    @api.get("/api/jobs", response_model=list[JobInfo])
    def list_jobs(user: CurrentUser, limit: int = 20) -> list[JobInfo]:
        """Newest ingest jobs of the collections you may change (admins and editors)."""
        return kb.jobs(user, limit=max(1, min(limit, 200)))

    @api.get("/api/jobs/{job_id}", response_model=JobInfo)
    def get_job(job_id: int, user: CurrentUser) -> JobInfo:
        return kb.job(user, job_id)

    @api.post("/api/ask", response_model=Answer)
    def ask(body: AskRequest, user: CurrentUser) -> Answer:
        """The checked answer with its sources; `quote` is the verbatim supporting sentence(s)
        of a source (null when none supports an answer), `extractive` is true when the answer
        text is that quote (the model gave no supported answer)."""
        try:
            return kb.ask(user, body.question, body.collections, body.conversation_id, body.hyde, mmr_lambda=body.mmr_lambda)
        except ValueError as exc:
            raise _errors(exc) from None

    @api.post("/api/ask/stream")
    def ask_stream(body: AskRequest, user: CurrentUser) -> StreamingResponse:
        """Server-Sent Events: first, right after retrieval, one `quote` event with the verbatim
        supporting sentence(s) and their source (none when no source supports an answer);
        then `token` events with the text as it is written; then one `answer` event."""
        try:
            events = kb.ask_stream(
                user, body.question, body.collections, body.conversation_id, body.hyde, mmr_lambda=body.mmr_lambda
            )
            first = next(events)  # permission and input errors surface here, before streaming starts
        except ValueError as exc:
            raise _errors(exc) from None

        async def sse() -> AsyncIterator[str]:
            written = ""
            quoted = False
            chained = _chain(first, events)
            try:
                while (event := await run_in_threadpool(next, chained, None)) is not None:
                    if not quoted and event.answer.quote is not None:
                        # Once, before any token (the first event carries it, before the model writes).
                        quoted = True
                        yield f"event: quote\ndata: {event.answer.quote.model_dump_json()}\n\n"
                    if event.ahead is not None:
                        yield f"event: queue\ndata: {json.dumps({'ahead': event.ahead})}\n\n"
                        continue
                    if event.done:
                        yield f"event: answer\ndata: {event.answer.model_dump_json()}\n\n"
                        return
                    piece, written = event.answer.text[len(written) :], event.answer.text
                    if piece:
                        yield f"event: token\ndata: {json.dumps(piece)}\n\n"
            except Busy as exc:  # waited its whole allowance for the generator
                yield f"event: error\ndata: {json.dumps({'detail': str(exc), 'retry_after_s': exc.retry_after_s})}\n\n"
            finally:
                # A client that has gone (the stream is cancelled here) stops its generation and
                # leaves the generator's queue now, not when the model would have finished.
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(chained.close)

        return StreamingResponse(sse(), media_type="text/event-stream")

    @api.get("/api/conversations", response_model=list[ConversationView])
    def list_conversations(user: CurrentUser) -> list[ConversationView]:
        return kb.conversations.list(user)

    @api.post("/api/conversations", response_model=ConversationView, status_code=201)
    def start_conversation(body: NewConversation, user: CurrentUser) -> ConversationView:
        return kb.conversations.get(user, kb.conversations.start(user, body.title))

    @api.get("/api/conversations/{conversation_id}", response_model=ConversationView)
    def get_conversation(conversation_id: int, user: CurrentUser) -> ConversationView:
        return kb.conversations.get(user, conversation_id)

    @api.post("/api/messages/{message_id}/feedback", status_code=204)
    def feedback(message_id: int, body: FeedbackRequest, user: CurrentUser) -> None:
        try:
            kb.conversations.feedback(user, message_id, body.rating, body.comment)
        except ValueError as exc:
            raise _errors(exc) from None

    # --- cited sources ----------------------------------------------------------------

    @api.get(
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

    @api.get(
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

    api.include_router(openai_router(kb))  # /v1/chat/completions, /v1/models (app/openai_api.py)

    return api


def _chain(first, rest):
    yield first
    yield from rest
