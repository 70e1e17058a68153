"""Questions: POST /api/ask (the checked answer), POST /api/ask/stream (the same as
Server-Sent Events while the model writes) and POST /api/search (the passages alone)."""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations, and
# CurrentUser is local to the router factory.

import json
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app.admission import Busy
from app.answering import AnswerEvent
from app.api.auth import UserDependency
from app.api.bodies import AskRequest, SearchRequest
from app.api.common import as_coded_error
from app.models import User
from app.schemas import Answer, Source
from app.service import KnowledgeBase


def router(kb: KnowledgeBase, current_user: UserDependency) -> APIRouter:
    routes = APIRouter()
    CurrentUser = Annotated[User, Depends(current_user)]

    @routes.post("/api/ask", response_model=Answer)
    def ask(body: AskRequest, user: CurrentUser) -> Answer:
        """The checked answer with its sources; `quote` is the verbatim supporting sentence(s)
        of a source (null when none supports an answer), `extractive` is true when the answer
        text is that quote (the model gave no supported answer)."""
        try:
            return kb.ask(user, body.question, body.collections, body.conversation_id, body.hyde, mmr_lambda=body.mmr_lambda)
        except ValueError as exc:
            raise as_coded_error(exc) from None

    @routes.post("/api/ask/stream")
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
            raise as_coded_error(exc) from None
        return StreamingResponse(_server_sent_events(first, events), media_type="text/event-stream")

    @routes.post("/api/search", response_model=list[Source])
    def search(body: SearchRequest, user: CurrentUser) -> list[Source]:
        """Retrieval without generation: the best passages (file, page, score, text) from the
        collections the caller may read, best first."""
        try:
            return kb.search(user, body.question, body.collections, body.hyde, body.limit)
        except ValueError as exc:
            raise as_coded_error(exc) from None

    return routes


async def _server_sent_events(first: AnswerEvent, events: Iterator[AnswerEvent]) -> AsyncIterator[str]:
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


def _chain(first: AnswerEvent, rest: Iterator[AnswerEvent]) -> Generator[AnswerEvent, None, None]:
    # A generator (not itertools.chain): its close() closes `rest`, which ends the generation.
    yield first
    yield from rest
