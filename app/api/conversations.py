"""Conversations (list, start, read one) and feedback on an answer (POST /api/messages/{id}/feedback)."""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations, and
# CurrentUser is local to the router factory.

from typing import Annotated

from fastapi import APIRouter, Depends

from app.api.auth import UserDependency
from app.api.bodies import FeedbackRequest, NewConversation
from app.api.common import as_coded_error
from app.conversations import ConversationView
from app.models import User
from app.service import KnowledgeBase


def router(kb: KnowledgeBase, current_user: UserDependency) -> APIRouter:
    routes = APIRouter()
    CurrentUser = Annotated[User, Depends(current_user)]

    @routes.get("/api/conversations", response_model=list[ConversationView])
    def list_conversations(user: CurrentUser) -> list[ConversationView]:
        return kb.conversations.list(user)

    @routes.post("/api/conversations", response_model=ConversationView, status_code=201)
    def start_conversation(body: NewConversation, user: CurrentUser) -> ConversationView:
        return kb.conversations.get(user, kb.conversations.start(user, body.title))

    @routes.get("/api/conversations/{conversation_id}", response_model=ConversationView)
    def get_conversation(conversation_id: int, user: CurrentUser) -> ConversationView:
        return kb.conversations.get(user, conversation_id)

    @routes.post("/api/messages/{message_id}/feedback", status_code=204)
    def feedback(message_id: int, body: FeedbackRequest, user: CurrentUser) -> None:
        try:
            kb.conversations.feedback(user, message_id, body.rating, body.comment)
        except ValueError as exc:
            raise as_coded_error(exc) from None

    return routes
