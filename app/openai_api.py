"""The knowledge base as an OpenAI-compatible chat model: `POST /v1/chat/completions` and
`GET /v1/models` on the API's own app, for Open WebUI, LibreChat or any OpenAI client.

Each collection the caller may read is a model (its name is the model id), and
`mmkb-all` searches all of them; the caller is the owner of the API token sent as
`Authorization: Bearer` (the tokens of POST /api/tokens). A question goes through
KnowledgeBase.ask_stream like the chat's: the same permissions, retrieval, evidence check,
follow-up rewriting (earlier turns of `messages`) and admission queue.

The streamed `content` is only ever the checked answer. An OpenAI stream cannot take text
back, and the evidence check may drop or replace what the model wrote, so the verified
quote, the queue position and the model's draft stream as `reasoning_content` (shown live,
as "thinking", by clients that know the field) and the checked answer follows as `content`,
the same text a non-streaming call returns. Its `[n]` marks stay in the text; the cited
passages come as a top-level `sources` list (app.passages.Passage), with `quote`,
`extractive` and `supported` beside it, on the completion and on a stream's last chunk.
"""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations, some of
# them local to openai_router.

import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import aclosing
from datetime import UTC
from typing import Annotated, Any, cast

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from app.accounts import AuthError
from app.admission import Busy
from app.answering import AnswerEvent
from app.generation.followup import Turn
from app.models import User
from app.passages import MAX_QUESTION_CHARS, cited_passages, quote_line
from app.registry import ModelNotAvailable
from app.schemas import Answer
from app.service import AccessDenied, EmptyCollection, KnowledgeBase, NotFound
from app.threaded import iterate_in_thread

logger = logging.getLogger(__name__)

# The model that searches every collection the caller may read (POST /api/ask without
# `collections`). A collection of that name wins: its name is its model id.
ALL_COLLECTIONS_MODEL = "mmkb-all"


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; sampling fields (temperature, max_tokens, ...) are accepted and
    ignored: the server's generator settings and answering rules apply."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    n: int = Field(default=1, ge=1, le=1, description="one answer per question")


class OpenAIError(Exception):
    """An error in OpenAI's shape, which OpenAI clients turn into their own exceptions."""

    def __init__(
        self, status: int, message: str, kind: str, code: str, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.code, self.param, self.headers = status, kind, code, param, headers

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _model_not_found(model: str) -> OpenAIError:
    # One wording whether the collection is missing or someone else's: a model id reveals nothing.
    return OpenAIError(
        404,
        f"The model '{model}' does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
        "model",
    )


def _busy(exc: Busy) -> OpenAIError:
    # 429: this caller is over their share; 503: the server is; either way, when to retry.
    return OpenAIError(
        429 if exc.per_asker else 503,
        str(exc),
        "rate_limit_error" if exc.per_asker else "server_error",
        "asker_busy" if exc.per_asker else "server_busy",
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def _refusal(exc: Exception, model: str) -> OpenAIError:
    """What KnowledgeBase.ask_stream raised before answering, as OpenAI's error."""
    if isinstance(exc, Busy):
        return _busy(exc)
    if isinstance(exc, (NotFound, AccessDenied)):  # the collection went, or the caller's access, since the lookup
        return _model_not_found(model)
    if isinstance(exc, ModelNotAvailable):
        return OpenAIError(503, str(exc), "server_error", "model_not_available")
    return OpenAIError(
        400,
        str(exc),
        "invalid_request_error",
        "empty_collection" if isinstance(exc, EmptyCollection) else "invalid_request",
        "messages",
    )


class OpenAIRoute(APIRoute):
    """Answers this router's errors, request validation included, in OpenAI's shape (the rest
    of the API keeps FastAPI's `detail`)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def with_openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except OpenAIError as exc:
                return exc.response()
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(part) for part in first.get("loc", ())[1:])
                return OpenAIError(
                    400,
                    f"{where or 'request'}: {first.get('msg', 'invalid request')}",
                    "invalid_request_error",
                    "invalid_request",
                    where or None,
                ).response()

        return with_openai_errors


def _text(message: ChatMessage) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    texts = []
    for part in message.content:
        if part.get("type") != "text":
            raise OpenAIError(
                400,
                f"only text is read: a message part of type {part.get('type')!r} cannot be asked",
                "invalid_request_error",
                "invalid_request",
                "messages",
            )
        texts.append(str(part.get("text", "")))
    return "\n".join(texts)


def conversation(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The question (the last message, the user's) and the earlier (question, answer) turns.
    System and tool messages are left out: the answering rules are the server's, and a
    client's system prompt must not loosen them."""
    if messages[-1].role != "user":
        raise OpenAIError(
            400, "the last message must be the user's question", "invalid_request_error", "invalid_request", "messages"
        )
    question = _text(messages[-1]).strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise OpenAIError(
            400,
            f"the question is longer than {MAX_QUESTION_CHARS} characters",
            "invalid_request_error",
            "invalid_request",
            "messages",
        )
    turns: list[Turn] = []
    asked: str | None = None
    for message in messages[:-1]:
        if message.role == "user":
            if asked is not None:
                turns.append((asked, ""))  # a question the conversation left unanswered
            asked = _text(message)
        elif message.role == "assistant" and asked is not None:
            turns.append((asked, _text(message)))
            asked = None
    if asked is not None:
        turns.append((asked, ""))
    return question, turns


def _models(kb: KnowledgeBase, user: User) -> dict[str, tuple[list[str] | None, int]]:
    """Model id -> (the collections it searches, None for all readable; created, Unix time)."""
    readable = kb.readable_collections(user)

    def created(collection) -> int:
        stamp = collection.created_at
        return int((stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp())

    models: dict[str, tuple[list[str] | None, int]] = {c.name: ([c.name], created(c)) for c in readable}
    if readable and ALL_COLLECTIONS_MODEL not in models:
        models[ALL_COLLECTIONS_MODEL] = (None, min(created(c) for c in readable))
    return models


def _model_card(model_id: str, created: int) -> dict:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "mmkb"}


def _mmkb_fields(answer: Answer) -> dict:
    """The structured citations and checks, beside OpenAI's own fields (clients ignore unknown ones)."""
    return {
        "sources": [p.model_dump() for p in cited_passages(answer)],
        "quote": answer.quote.model_dump() if answer.quote is not None else None,
        "extractive": answer.extractive,
        "supported": answer.supported,
        "standalone_question": answer.standalone_question,
    }


class _ClosingStream(StreamingResponse):
    """Closes its body however the response ends. Starlette leaves the body of a client that
    went away suspended, to be closed whenever the garbage collector gets to it; closed here,
    the answer stops its generation (or leaves the generator's queue) at once."""

    # Starlette types the body as any async iterable; this response only ever streams
    # _chunks(...), an async generator, which is what has aclose().
    body_iterator: AsyncGenerator[str, None]

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


def _continued(first: AnswerEvent, events: Generator[AnswerEvent, None, None]) -> Generator[AnswerEvent, None, None]:
    try:
        yield first
        yield from events
    finally:
        events.close()  # also when closed before reaching `events`: the admission place is given back


def openai_router(kb: KnowledgeBase) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], route_class=OpenAIRoute)
    bearer = HTTPBearer(auto_error=False)

    def caller(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
        try:
            return kb.accounts.authenticate(credentials.credentials if credentials else None)
        except AuthError as exc:
            raise OpenAIError(
                401,
                f"{exc}: send your mmkb API token as 'Authorization: Bearer <token>' (POST /api/tokens or `kb admin token NAME`)",
                "invalid_request_error",
                "invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None

    Caller = Annotated[User, Depends(caller)]

    @router.get("/models")
    def list_models(user: Caller) -> dict:
        """The caller's readable collections as models, and `mmkb-all` for all of them."""
        return {"object": "list", "data": [_model_card(name, created) for name, (_, created) in _models(kb, user).items()]}

    @router.get("/models/{model:path}")
    def get_model(model: str, user: Caller) -> dict:
        models = _models(kb, user)
        if model not in models:
            raise _model_not_found(model)
        return _model_card(model, models[model][1])

    @router.post("/chat/completions")
    def chat_completions(body: ChatCompletionRequest, user: Caller) -> Response:
        """Answers the last user message from the model's collection(s); see the module's
        docstring for what a stream carries."""
        models = _models(kb, user)
        if body.model not in models:
            raise _model_not_found(body.model)
        question, history = conversation(body.messages)
        try:
            # ask_stream is a generator function (annotated as an Iterator); it is closed below.
            events = cast(
                Generator[AnswerEvent, None, None], kb.ask_stream(user, question, models[body.model][0], history=history)
            )
            first = next(events)  # permission, input and admission errors surface here, before any output
        except (Busy, NotFound, AccessDenied, ValueError, ModelNotAvailable) as exc:
            raise _refusal(exc, body.model) from None
        completion = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": body.model}
        events = _continued(first, events)
        if body.stream:
            return _ClosingStream(
                _chunks(completion, events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        try:
            answer = next(event.answer for event in events if event.done)
        except Busy as exc:  # waited its whole allowance for the generator
            raise _busy(exc) from None
        finally:
            events.close()
        return JSONResponse(
            {
                **completion,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer.text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                **_mmkb_fields(answer),
            }
        )

    return router


async def _chunks(completion: dict, events: Generator[AnswerEvent, None, None]) -> AsyncGenerator[str, None]:
    """`chat.completion.chunk` events, then `data: [DONE]`."""

    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> str:
        body = {
            **completion,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    quoted, ahead, written = False, None, ""
    # iterate_in_thread is an async generator function (annotated as an AsyncIterator).
    async with aclosing(cast(AsyncGenerator[AnswerEvent, None], iterate_in_thread(events))) as stream:
        try:
            async for event in stream:
                answer = event.answer
                if not quoted and answer.quote is not None:
                    # Once, right after retrieval, before the model writes (as the chat shows it).
                    quoted = True
                    yield chunk(
                        {"reasoning_content": f"Verified quote: {quote_line(answer.quote)}\n\n"}, quote=answer.quote.model_dump()
                    )
                if event.ahead is not None:
                    if event.ahead != ahead:
                        ahead = event.ahead
                        yield chunk(
                            {"reasoning_content": f"Waiting for the model: {ahead} answer(s) ahead of yours\n"},
                            queue={"ahead": ahead},
                        )
                    continue
                if event.done:
                    yield chunk({"content": answer.text})
                    yield chunk({}, "stop", **_mmkb_fields(answer))
                    break
                piece, written = answer.text[len(written) :], answer.text
                if piece:
                    yield chunk({"reasoning_content": piece})
        except Busy as exc:  # waited its whole allowance for the generator
            yield f"data: {json.dumps(_busy(exc).body())}\n\n"
            return
        except Exception as exc:  # the headers are sent: say so in the stream rather than cut it
            logger.exception("answering a streamed chat completion failed")
            error = OpenAIError(500, f"the answer failed: {exc}", "server_error", "internal_error")
            yield f"data: {json.dumps(error.body())}\n\n"
            return
    yield "data: [DONE]\n\n"
