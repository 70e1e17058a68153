"""An OpenAI-compatible chat-completions endpoint over any mmkb generator.

It lets other tools on the network use the packaged local model, and it is what the tests
run the `openai` backend against: a real HTTP server on loopback, not a stand-in.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.llm import Generator


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict]


class ChatRequest(BaseModel):
    model: str = "default"
    messages: list[ChatMessage]
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    stream: bool = False
    temperature: float | None = None


def _text_only(messages: list[ChatMessage]) -> list[dict[str, str]]:
    """Flatten OpenAI content parts to text; images are dropped because the packaged model reads text only."""
    flat = []
    for message in messages:
        content = message.content
        if isinstance(content, list):
            content = "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
        flat.append({"role": message.role, "content": content})
    return flat


def build_openai_app(generator: Generator, model_name: str, default_max_tokens: int = 256) -> FastAPI:
    api = FastAPI(title="mmkb OpenAI-compatible generator")

    @api.get("/v1/models")
    def list_models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "mmkb"}]}

    @api.post("/v1/chat/completions")
    def chat_completions(request: ChatRequest):
        if not request.messages:
            raise HTTPException(status_code=400, detail="messages must not be empty")
        messages = _text_only(request.messages)
        max_tokens = request.max_tokens or default_max_tokens
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not request.stream:
            text = "".join(generator.stream(messages, max_tokens))
            return {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            }

        def events() -> Iterator[str]:
            for piece in generator.stream(messages, max_tokens):
                chunk = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model_name,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            done = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model_name,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return api
