"""mmkb as a LangChain retriever, for chains and agents built on LangChain.

Every call goes through `KnowledgeBase.search` with the user given here, so the same
permission rule applies as in the chat: only collections that user may read are searched.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever


class KnowledgeBaseRetriever(BaseRetriever):
    """Returns reranked chunks as Documents, metadata: file, page, score, collection, kind, chunk_id."""

    knowledge_base: Any  # app.service.KnowledgeBase (Any: pydantic need not validate it)
    user: Any  # app.models.User whose permissions apply
    collections: list[str] | None = None  # None: every collection the user may read
    k: int = 5
    hyde: bool | None = None  # None: MMKB_HYDE
    mmr_lambda: float | None = None  # None: MMKB_MMR_LAMBDA

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        sources = self.knowledge_base.search(
            self.user, query, self.collections, hyde=self.hyde, limit=self.k, mmr_lambda=self.mmr_lambda
        )
        return [
            Document(
                page_content=source.text,
                metadata={
                    "file": source.filename,
                    "page": source.page,
                    "score": source.score,
                    "collection": source.collection,
                    "kind": source.kind,
                    "chunk_id": source.chunk_id,
                    "section": source.heading_path,
                },
            )
            for source in sources
        ]
