"""Permissions on the query path: a forbidden collection never reaches the reranker, the
prompt or the response; the LangChain adapter applies the same rule. Over the API, what a
non-member may not see answers exactly like what does not exist."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.models import Chunk
from app.schemas import Answer
from app.service import AccessDenied, KnowledgeBase
from retrieval.langchain_adapter import KnowledgeBaseRetriever
from tests.conftest import SAMPLES, make_settings
from tests.helpers import recording_kb
from ui.server import create_app


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


MISSING = 999_999


@pytest.fixture(scope="module")
def api_site(tmp_path_factory, models):
    """'private' holds a figure (alice is admin, bob reads it); eve is in no collection."""
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("hidden-data")), models=models)
    for name in ("alice", "bob", "eve"):
        kb.accounts.create_user(name, f"{name}-password", is_admin=name == "alice")
    alice = kb.user("alice")
    report = kb.ingest(alice, "private", paths=[SAMPLES / "danger-high-voltage-sign.jpg"])
    assert not report.failed, report.failed
    kb.grant("bob", "private")
    (document,) = kb.documents(alice, "private")
    with kb.database.session() as session:
        chunk_id = session.scalar(select(Chunk.id).where(Chunk.document_id == document.id, Chunk.image_path.is_not(None)))
    conversation = kb.conversations.start(alice, "badges")
    message = kb.conversations.record(alice, conversation, Answer(question="q", text="a"))
    client = TestClient(create_app(kb, mount_ui=False))
    headers = {}
    for name in ("alice", "bob", "eve"):
        token = client.post("/api/tokens", json={"username": name, "password": f"{name}-password"}).json()["token"]
        headers[name] = {"Authorization": f"Bearer {token}"}
    ids = {"chunk": chunk_id, "document": document.id, "job": report.job_id, "conversation": conversation, "message": message}
    yield client, headers, ids
    kb.close()


def _routes(ids: dict, collection: str, missing: bool) -> list[tuple[str, str, dict]]:
    """(method, path, request keywords) for one existing or missing thing of each kind."""

    def n(kind: str) -> int:
        return MISSING if missing else ids[kind]

    return [
        ("get", f"/api/chunks/{n('chunk')}/view", {}),
        ("get", f"/api/chunks/{n('chunk')}/thumbnail", {}),
        ("get", f"/api/conversations/{n('conversation')}", {}),
        ("post", f"/api/messages/{n('message')}/feedback", {"json": {"rating": 1}}),
        ("get", f"/api/jobs/{n('job')}", {}),
        ("get", f"/api/collections/{collection}/documents", {}),
        ("post", f"/api/collections/{collection}/documents", {"files": [("files", ("n.txt", b"a note about badges"))]}),
        ("delete", f"/api/collections/{collection}/documents/{n('document')}", {}),
        ("get", f"/api/collections/{collection}/members", {}),
        ("put", f"/api/collections/{collection}/members", {"json": {"username": "eve", "role": "reader"}}),
        ("patch", f"/api/collections/{collection}", {"json": {"name": "mine"}}),
        ("delete", f"/api/collections/{collection}", {}),
        ("post", "/api/ask", {"json": {"question": "What does the sign say?", "collections": [collection]}}),
    ]


def _answer(client, method: str, path: str, headers: dict, **kwargs) -> tuple[int, str]:
    """Status and detail, with the id or collection name asked for made generic."""
    response = getattr(client, method)(path, headers=headers, **kwargs)
    detail = response.json().get("detail", "") if response.content else ""
    return response.status_code, re.sub(rf"\b(?:{MISSING}|\d+)\b|private|nowhere", "X", str(detail))


def test_a_non_member_cannot_tell_an_existing_thing_from_a_missing_one(api_site):
    client, headers, ids = api_site
    for (method, path, kwargs), (_, missing_path, missing_kwargs) in zip(
        _routes(ids, "private", missing=False), _routes(ids, "nowhere", missing=True)
    ):
        existing = _answer(client, method, path, headers["eve"], **kwargs)
        absent = _answer(client, method, missing_path, headers["eve"], **missing_kwargs)
        assert existing == absent and existing[0] == 404, (path, existing, absent)
    # They do exist: their owner reads them.
    for path in (
        f"/api/chunks/{ids['chunk']}/view",
        f"/api/conversations/{ids['conversation']}",
        f"/api/jobs/{ids['job']}",
        "/api/collections/private/documents",
    ):
        assert client.get(path, headers=headers["alice"]).status_code == 200, path


def test_a_member_without_the_role_is_still_told_no(api_site):
    """403 stays where the caller sees the collection: bob reads 'private', may not change it."""
    client, headers, ids = api_site
    bob = headers["bob"]
    assert client.get(f"/api/chunks/{ids['chunk']}/view", headers=bob).status_code == 200
    assert client.get(f"/api/jobs/{ids['job']}", headers=bob).status_code == 403
    assert client.get("/api/collections/private/members", headers=bob).status_code == 403
    assert client.delete(f"/api/collections/private/documents/{ids['document']}", headers=bob).status_code == 403
    upload = client.post("/api/collections/private/documents", headers=bob, files=[("files", ("n.txt", b"a note about badges"))])
    assert upload.status_code == 403
    # Someone else's conversation is not bob's to see, whatever he reads.
    assert client.get(f"/api/conversations/{ids['conversation']}", headers=bob).status_code == 404
