"""Conversation history per user and per chat, and feedback on answers."""

from __future__ import annotations

import json

from pydantic import BaseModel
from sqlalchemy import select

from app.db import Database
from app.models import Conversation, Feedback, Message, User
from app.schemas import Answer, Source


class StoredMessage(BaseModel):
    id: int
    role: str
    content: str
    sources: list[Source] = []
    rating: int | None = None  # the viewer's own feedback on an answer: +1, -1 or none yet


class ConversationView(BaseModel):
    id: int
    title: str
    messages: list[StoredMessage] = []


class ConversationNotFound(LookupError):
    pass


class Conversations:
    def __init__(self, database: Database) -> None:
        self.database = database

    def start(self, user: User, title: str) -> int:
        with self.database.session() as session:
            conversation = Conversation(user_id=user.id, title=title.strip()[:256] or "New chat")
            session.add(conversation)
            session.flush()
            return conversation.id

    def _owned(self, session, user: User, conversation_id: int) -> Conversation:
        conversation = session.get(Conversation, conversation_id)
        # Someone else's conversation is reported as missing, not forbidden: ids reveal nothing.
        if conversation is None or conversation.user_id != user.id:
            raise ConversationNotFound(f"no conversation {conversation_id}")
        return conversation

    def history(self, user: User, conversation_id: int) -> list[tuple[str, str]]:
        """(question, answer) pairs so far, oldest first."""
        view = self.get(user, conversation_id)
        pairs, question = [], None
        for message in view.messages:
            if message.role == "user":
                question = message.content
            elif question is not None:
                pairs.append((question, message.content))
                question = None
        return pairs

    def record(self, user: User, conversation_id: int, answer: Answer) -> int:
        """Store a question and its answer; returns the answer's message id (for feedback)."""
        with self.database.session() as session:
            self._owned(session, user, conversation_id)
            session.add(Message(conversation_id=conversation_id, role="user", content=answer.question))
            reply = Message(
                conversation_id=conversation_id,
                role="assistant",
                content=answer.text,
                sources_json=json.dumps(
                    [s.model_dump() for s in answer.sources + [i for i in answer.images if i not in answer.sources]]
                ),
            )
            session.add(reply)
            session.flush()
            return reply.id

    def list(self, user: User) -> list[ConversationView]:
        with self.database.session() as session:
            rows = session.scalars(select(Conversation).where(Conversation.user_id == user.id).order_by(Conversation.id.desc()))
            return [ConversationView(id=c.id, title=c.title) for c in rows]

    def get(self, user: User, conversation_id: int) -> ConversationView:
        with self.database.session() as session:
            conversation = self._owned(session, user, conversation_id)
            ratings = dict(
                session.execute(
                    select(Feedback.message_id, Feedback.rating).where(
                        Feedback.user_id == user.id, Feedback.message_id.in_([m.id for m in conversation.messages])
                    )
                ).all()
            )
            messages = [
                StoredMessage(
                    id=m.id,
                    role=m.role,
                    content=m.content,
                    sources=[Source(**s) for s in json.loads(m.sources_json)] if m.sources_json else [],
                    rating=ratings.get(m.id),
                )
                for m in conversation.messages
            ]
            return ConversationView(id=conversation.id, title=conversation.title, messages=messages)

    def delete(self, user: User, conversation_id: int) -> None:
        """Remove one of the user's conversations with its messages and their feedback."""
        with self.database.session() as session:
            session.delete(self._owned(session, user, conversation_id))

    def feedback(self, user: User, message_id: int, rating: int, comment: str = "") -> None:
        if rating not in (1, -1):
            raise ValueError("rating is +1 (helpful) or -1 (not helpful)")
        with self.database.session() as session:
            message = session.get(Message, message_id)
            owner = session.get(Conversation, message.conversation_id) if message is not None else None
            # Worded like a missing answer: "no conversation N" would say that answer exists.
            if message is None or message.role != "assistant" or owner is None or owner.user_id != user.id:
                raise ConversationNotFound(f"no answer {message_id}")
            existing = session.scalar(select(Feedback).where(Feedback.message_id == message_id, Feedback.user_id == user.id))
            if existing is None:
                session.add(Feedback(message_id=message_id, user_id=user.id, rating=rating, comment=comment[:4000]))
            else:
                existing.rating, existing.comment = rating, comment[:4000]
