"""`kb mcp`: the knowledge base as an MCP server, on the official MCP Python SDK.

Tools: `collections` (what the caller may read), `search` (passages with file, page, score
and text, no generation) and `ask` (the checked, cited answer, as the chat gives it). Every
call goes through KnowledgeBase with the caller's permissions, so a collection the caller
may not read is "no readable collection named ..." exactly like one that does not exist.

Who the caller is: over stdio, the user `kb mcp --user` names (a local command, like the
rest of `kb`); over streamable HTTP, the owner of the API token each request carries as
`Authorization: Bearer` (checked per request by TokenGate, so a revoked token stops at once),
or the local administrator while no account exists on a server open without accounts
(loopback, or --insecure-no-auth: app.exposure), as the chat does.
"""

# No `from __future__ import annotations`: the SDK reads the tools' annotations to build
# their schemas and to find the Context parameter.

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Annotated, cast

from anyio.to_thread import run_sync
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.accounts import AuthError
from app.admission import Busy
from app.answering import AnswerEvent
from app.models import User
from app.passages import MAX_QUESTION_CHARS, Passage, cited_passages, passage
from app.registry import ModelNotAvailable
from app.schemas import Quote
from app.service import AccessDenied, KnowledgeBase
from app.threaded import iterate_in_thread

# Where TokenGate leaves the caller of an HTTP request for the tools (the SDK hands them the request).
USER_KEY = "mmkb.user"
MCP_PATH = "/mcp"

INSTRUCTIONS = (
    "A knowledge base of documents (PDFs, images, Office and text files) in collections. `search` finds passages; "
    "`ask` answers a question from the documents only, citing sources as [n], or says the documents do not contain "
    "an answer. `collections` lists what you may read."
)


class CollectionList(BaseModel):
    collections: list[str] = Field(description="the collections you may read, by name")


class SearchResult(BaseModel):
    passages: list[Passage] = Field(description="best first")


class AskResult(BaseModel):
    answer: str = Field(description="the checked answer; its [n] marks cite `sources` by number")
    supported: bool = Field(description="false when the documents do not contain an answer (the answer says so)")
    extractive: bool = Field(description="true when the answer is the quote itself, verbatim from a source")
    sources: list[Passage] = Field(description="the cited passages")
    quote: Quote | None = Field(description="the verified sentence(s) of a source that support the answer")


def _tool_error(exc: Exception) -> ToolError:
    if isinstance(exc, Busy):
        return ToolError(f"{exc}; try again in {exc.retry_after_s} s")
    return ToolError(str(exc))


# What the service refuses with a message for the caller (missing or forbidden collection,
# empty question or collection, a busy server, a model that is not installed).
_REFUSALS = (AccessDenied, LookupError, ValueError, Busy, ModelNotAvailable)


def build_server(kb: KnowledgeBase, caller: Callable[[Context], User]) -> MCPServer:
    """The MCP server; `caller(ctx)` names the user a tool call acts for."""
    server = MCPServer("mmkb", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(description="The collections you may read; pass one as `collection` to `search` or `ask`.")
    async def collections(ctx: Context) -> CollectionList:
        user = caller(ctx)
        return CollectionList(collections=[c.name for c in await run_sync(kb.readable_collections, user)])

    @server.tool(
        description="Passages of your collections that match a query, best first, with file, page, score and "
        "text. Retrieval only: fast, no generated text."
    )
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="what to look for")],
        ctx: Context,
        collection: Annotated[str | None, Field(description="one collection to search; default every one you may read")] = None,
        k: Annotated[int, Field(ge=1, le=50, description="how many passages")] = 5,
    ) -> SearchResult:
        user = caller(ctx)
        try:
            sources = await run_sync(lambda: kb.search(user, query, [collection] if collection else None, limit=k))
        except _REFUSALS as exc:
            raise _tool_error(exc) from None
        return SearchResult(passages=[passage(source) for source in sources])

    @server.tool(
        description="Answers a question from your collections' documents only, citing file and page as [n] "
        "(`sources`), or says that the documents do not contain an answer. Takes a while: the "
        "model writes one answer at a time."
    )
    async def ask(
        question: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the question")],
        ctx: Context,
        collection: Annotated[
            str | None, Field(description="one collection to answer from; default every one you may read")
        ] = None,
    ) -> AskResult:
        user = caller(ctx)
        answer = None
        try:
            # Step by step in worker threads: a cancelled call (the client gave up) closes the
            # answer, which stops its generation or leaves the generator's queue. iterate_in_thread
            # is an async generator function (annotated as an AsyncIterator).
            stream = iterate_in_thread(kb.ask_stream(user, question, [collection] if collection else None))
            async with aclosing(cast(AsyncGenerator[AnswerEvent, None], stream)) as events:
                async for event in events:
                    if event.done:
                        answer = event.answer
                        break
        except _REFUSALS as exc:
            raise _tool_error(exc) from None
        if answer is None:
            raise ToolError("the answer ended before it was complete")
        return AskResult(
            answer=answer.text,
            supported=answer.supported,
            extractive=answer.extractive,
            sources=cited_passages(answer),
            quote=answer.quote,
        )

    return server


def serve_stdio(kb: KnowledgeBase, user: User) -> None:
    """Serves one MCP client on stdin/stdout as `user` (the SDK keeps stray prints off stdout)."""
    build_server(kb, lambda _ctx: user).run("stdio")


def _http_caller(ctx: Context) -> User:
    request = ctx.request_context.request
    user = request.scope.get(USER_KEY) if request is not None else None
    if user is None:  # TokenGate stands in front of every request; this is a wiring error
        raise ToolError("no authenticated caller")
    return user


class TokenGate:
    """Answers 401 to an HTTP request that does not name its caller, and leaves the caller in the
    request's scope for the tools. A request without a token acts as the local administrator
    only while `open_without_accounts` and no account exists (checked per request, so the first
    account switches this off at once, as it does for the chat)."""

    def __init__(self, app: ASGIApp, kb: KnowledgeBase, open_without_accounts: bool) -> None:
        self.app, self.kb, self.open_without_accounts = app, kb, open_without_accounts

    def _caller(self, authorization: str | None) -> User:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self.kb.accounts.authenticate(token.strip())
        if self.open_without_accounts and not self.kb.login_required():
            return self.kb.system_user()
        raise AuthError("missing API token")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: starts the SDK's session manager
            await self.app(scope, receive, send)
            return
        try:
            scope[USER_KEY] = await run_sync(self._caller, Headers(scope=scope).get("authorization"))
        except AuthError as exc:
            refusal = JSONResponse(
                {
                    "error": "invalid_token",
                    "error_description": f"{exc}: send your mmkb API token as 'Authorization: Bearer "
                    "<token>' (POST /api/tokens or `kb admin token NAME`)",
                },
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def http_app(kb: KnowledgeBase, host: str, open_without_accounts: bool) -> ASGIApp:
    """The streamable-HTTP MCP endpoint at /mcp behind TokenGate. On a loopback `host` the SDK
    also refuses requests whose Host or Origin header is not loopback (DNS rebinding)."""
    server = build_server(kb, _http_caller)
    return TokenGate(server.streamable_http_app(streamable_http_path=MCP_PATH, host=host), kb, open_without_accounts)


def serve_http(kb: KnowledgeBase, host: str, port: int, open_without_accounts: bool) -> None:
    import uvicorn

    uvicorn.run(http_app(kb, host, open_without_accounts), host=host, port=port, log_level="warning")
