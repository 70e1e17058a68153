"""Permissions on the query path: a forbidden collection never reaches the reranker, the
prompt or the response; the LangChain adapter applies the same rule."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Chunk
from app.service import AccessDenied, KnowledgeBase
from retrieval.langchain_adapter import KnowledgeBaseRetriever
from tests.conftest import SAMPLES, make_settings
from tests.helpers import recording_kb


@pytest.fixture(scope="module")
def two_collections(tmp_path_factory, models):
    """'manuals' (the inverter manual, forbidden to alice) and 'travel' (alice reads it)."""
    settings = make_settings(tmp_path_factory.mktemp("permissions-data"))
    admin_kb = KnowledgeBase(settings, models=models)
    admin = admin_kb.system_user()
    assert not admin_kb.ingest(admin, "manuals", paths=[SAMPLES / "solar-inverter-manual.pdf"]).failed
    assert not admin_kb.ingest(admin, "travel", paths=[SAMPLES / "employee-travel-policy.pdf"]).failed
    admin_kb.ensure_user("alice")
    admin_kb.grant("alice", "travel")
    (manuals,) = admin_kb.readable_collections(admin, ["manuals"])
    with admin_kb.database.session() as session:
        forbidden = [text for text in session.scalars(select(Chunk.text).where(Chunk.collection_id == manuals.id)) if text]
    yield settings, forbidden
    admin_kb.close()


def test_forbidden_chunks_never_reach_reranker_prompt_or_response(two_collections, models):
    settings, forbidden = two_collections
    kb = recording_kb(settings, models)
    alice = kb.ensure_user("alice")
    # The worst case: the question is a chunk of the forbidden manual, word for word, with its codes.
    question = next(text for text in forbidden if "HX-FAN-77" in text or "E-214" in text)
    answer = kb.ask(alice, question, hyde=False)

    seen = kb.models.reranker.seen_texts
    assert seen, "the reranker ran on alice's own collection"
    prompts = "\n".join(m["content"] for call in kb.models.generator.calls for m in call)
    returned = [s.text for s in answer.sources + answer.images]
    for text in forbidden:
        assert text not in seen
        assert text not in returned
        # The question itself is in the prompt; no *other* forbidden chunk may be.
        if text != question:
            assert text not in prompts
    assert {s.collection for s in answer.sources} <= {"travel"}
    assert "solar-inverter-manual.pdf" not in answer.text

    with pytest.raises(AccessDenied):
        kb.ask(alice, question, ["manuals"])
    kb.close()


def test_langchain_retriever_returns_documents_with_citations_within_permissions(two_collections, models):
    settings, forbidden = two_collections
    kb = KnowledgeBase(settings, models=models)
    alice = kb.ensure_user("alice")

    retriever = KnowledgeBaseRetriever(knowledge_base=kb, user=alice, k=3)
    documents = retriever.invoke("What is the most the company will pay per night for a hotel in Munich?")
    assert len(documents) == 3
    assert ("employee-travel-policy.pdf", 3) in [(d.metadata["file"], d.metadata["page"]) for d in documents]
    assert all(d.metadata["collection"] == "travel" for d in documents)
    assert documents[0].metadata["score"] >= documents[-1].metadata["score"]
    assert "Munich" in " ".join(d.page_content for d in documents)

    # Alice asking with the manual's own words gets nothing from the manual.
    leaked = retriever.invoke(forbidden[0])
    assert all(d.metadata["collection"] == "travel" and d.page_content not in forbidden for d in leaked)

    # The admin's retriever, same question, does reach the manual: the filter is the user, not the query.
    admin_docs = KnowledgeBaseRetriever(knowledge_base=kb, user=kb.system_user(), k=10).invoke(forbidden[0])
    assert any(d.metadata["collection"] == "manuals" for d in admin_docs)
    kb.close()
