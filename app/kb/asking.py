"""Questions: answers (streamed or whole) and retrieval alone, over what the asker may read."""

from __future__ import annotations

from collections.abc import Callable, Generator

from app.activity import InFlight
from app.admission import Admission
from app.answering import Answerer, AnswerEvent
from app.conversations import Conversations
from app.db import Database
from app.generation.followup import Turn
from app.kb import repository
from app.kb.access import Access
from app.kb.errors import AccessDenied, EmptyCollection
from app.models import Collection, User
from app.schemas import Answer, Source
from app.settings import Settings


class Asking:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        access: Access,
        conversations: Conversations,
        admission: Admission,
        asks_in_flight: InFlight,
        answerer: Callable[[], Answerer],
    ) -> None:
        self.settings = settings
        self.database = database
        self.access = access
        self.conversations = conversations
        self.admission = admission
        self.asks_in_flight = asks_in_flight
        self.answerer = answerer

    def ask(
        self,
        user: User,
        question: str,
        collection_names: list[str] | None = None,
        conversation_id: int | None = None,
        hyde: bool | None = None,
        history: list[Turn] | None = None,
        mmr_lambda: float | None = None,
    ) -> Answer:
        events = list(self.ask_stream(user, question, collection_names, conversation_id, hyde, history, mmr_lambda))
        return events[-1].answer

    def ask_stream(
        self,
        user: User,
        question: str,
        collection_names: list[str] | None = None,
        conversation_id: int | None = None,
        hyde: bool | None = None,
        history: list[Turn] | None = None,
        mmr_lambda: float | None = None,
    ) -> Generator[AnswerEvent, None, None]:
        """See KnowledgeBase.ask_stream. Counted as in flight from its first step until it
        ends or is abandoned."""
        with self.asks_in_flight.track():
            scope = self.scope(user, question, collection_names)
            if conversation_id is not None:
                stored = self.conversations.history(user, conversation_id)  # also the ownership check, before any work
                history = stored if history is None else history
            answerer = self.answerer()
            with self.admission.admit(user.username):  # Busy: turned away before any work
                for event in answerer.stream(question, scope, answerer.default_options(hyde, mmr_lambda), history):
                    if event.done and conversation_id is not None:
                        message_id = self.conversations.record(user, conversation_id, event.answer)
                        event = AnswerEvent(done=True, answer=event.answer.model_copy(update={"message_id": message_id}))
                    yield event

    def search(
        self,
        user: User,
        question: str,
        collection_names: list[str] | None = None,
        hyde: bool | None = None,
        limit: int | None = None,
        mmr_lambda: float | None = None,
    ) -> list[Source]:
        answerer = self.answerer()
        limit = limit or self.settings.context_chunks
        scope = self.scope(user, question, collection_names)
        ranking = answerer.rank(
            question, scope, answerer.default_options(hyde, mmr_lambda), depth=max(limit, self.settings.rerank_top_n)
        )
        return ranking.sources(limit)

    def scope(self, user: User, question: str, collection_names: list[str] | None) -> list[Collection]:
        """The collections a question searches: readable, and with something ready in them."""
        if not question or not question.strip():
            raise ValueError("the question is empty")
        collections = self.access.readable_collections(user, collection_names)
        if not collections:
            raise AccessDenied("you cannot read any collection yet; ask an administrator for access")
        with self.database.session() as session:
            ready = repository.ready_document_count(session, [c.id for c in collections])
        if not ready:
            names = ", ".join(c.name for c in collections)
            raise EmptyCollection(
                f"{'the collection' if len(collections) == 1 else 'the collections'} {names} "
                f"{'has' if len(collections) == 1 else 'have'} no ready documents yet; "
                "ask an editor to upload some, or wait until their processing has finished"
            )
        return collections
