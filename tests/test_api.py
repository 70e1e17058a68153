"""The REST API with real accounts, a real database and real models."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.models import Role
from app.service import KnowledgeBase
from tests.conftest import SAMPLES, make_settings

PROTECTED = [
    ("get", "/api/me", None),
    ("get", "/api/collections", None),
    ("post", "/api/collections", {"name": "x"}),
    ("put", "/api/collections/docs/members", {"username": "bob", "role": "reader"}),
    ("get", "/api/collections/docs/documents", None),
    ("delete", "/api/collections/docs/documents/1", None),
    ("post", "/api/ask", {"question": "hi"}),
    ("post", "/api/ask/stream", {"question": "hi"}),
    ("get", "/api/conversations", None),
    ("post", "/api/conversations", {"title": "t"}),
    ("get", "/api/conversations/1", None),
    ("post", "/api/messages/1/feedback", {"rating": 1}),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory, models):
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("api-data")), models=models)
    kb.accounts.create_user("alice", "alice-password", is_admin=True)
    kb.accounts.create_user("bob", "bob-password")
    kb.accounts.create_user("eve", "eve-password")
    client = TestClient(create_app(kb, mount_ui=False))

    def token(name):
        response = client.post("/api/tokens", json={"username": name, "password": f"{name}-password"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    alice, bob, eve = token("alice"), token("bob"), token("eve")
    assert client.post("/api/collections", json={"name": "docs"}, headers=alice).status_code == 201
    with (SAMPLES / "solar-inverter-manual.pdf").open("rb") as pdf, (SAMPLES / "danger-high-voltage-sign.jpg").open("rb") as jpg:
        upload = client.post(
            "/api/collections/docs/documents", headers=alice,
            files=[("files", ("../../manual.pdf", pdf, "application/pdf")), ("files", ("sign.jpg", jpg, "image/jpeg"))],
        )
    assert upload.status_code == 200, upload.text
    assert [f["outcome"] for f in upload.json()["files"]] == ["ingested", "ingested"]
    assert client.put("/api/collections/docs/members", json={"username": "bob", "role": "reader"}, headers=alice).status_code == 200
    yield {"client": client, "kb": kb, "alice": alice, "bob": bob, "eve": eve}
    kb.close()


@pytest.mark.parametrize("method, path, body", PROTECTED)
def test_every_protected_route_needs_a_valid_token(site, method, path, body):
    client = site["client"]
    kwargs = {"json": body} if body is not None else {}
    assert getattr(client, method)(path, **kwargs).status_code == 401
    assert getattr(client, method)(path, headers={"Authorization": "Bearer mmkb_forged"}, **kwargs).status_code == 401


def test_wrong_passwords_are_refused_and_then_rate_limited(site):
    client = site["client"]
    codes = [client.post("/api/tokens", json={"username": "eve", "password": "guess-guess"}).status_code for _ in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429


def test_tokens_are_stored_hashed(site):
    from sqlalchemy import select

    from app.models import ApiToken

    token = site["alice"]["Authorization"].split()[1]
    with site["kb"].database.session() as session:
        digests = list(session.scalars(select(ApiToken.token_sha256)))
    assert token not in digests and all(len(d) == 64 for d in digests)


def test_members_see_their_collections_and_others_get_403(site):
    client = site["client"]
    assert [c["name"] for c in client.get("/api/collections", headers=site["bob"]).json()] == ["docs"]
    assert client.get("/api/collections", headers=site["eve"]).json() == []
    assert client.get("/api/collections/docs/documents", headers=site["eve"]).status_code == 403
    assert client.post("/api/ask", json={"question": "What is the fan part number?", "collections": ["docs"]}, headers=site["eve"]).status_code == 403
    assert client.post("/api/ask", json={"question": "anything"}, headers=site["eve"]).status_code == 403
    assert client.post("/api/collections", json={"name": "mine"}, headers=site["bob"]).status_code == 403
    assert client.put("/api/collections/docs/members", json={"username": "eve", "role": "reader"}, headers=site["bob"]).status_code == 403
    with (SAMPLES / "employee-travel-policy.pdf").open("rb") as pdf:
        assert client.post("/api/collections/docs/documents", headers=site["bob"], files=[("files", ("p.pdf", pdf))]).status_code == 403


def test_uploaded_names_are_cleaned_and_listed_with_status(site):
    documents = site["client"].get("/api/collections/docs/documents", headers=site["bob"]).json()
    assert {d["filename"] for d in documents} == {"manual.pdf", "sign.jpg"}
    assert all(d["status"] == "ready" for d in documents)


def test_asking_streams_tokens_then_a_cited_answer_stored_in_a_conversation(site):
    client = site["client"]
    conversation = client.post("/api/conversations", json={"title": "fans"}, headers=site["bob"]).json()
    body = {"question": "What is the part number of the replacement cooling fan for the SX-400?", "collections": ["docs"], "conversation_id": conversation["id"]}
    with client.stream("POST", "/api/ask/stream", json=body, headers=site["bob"]) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("event:")]
        response.close()
    assert events.count("event: answer") == 1 and events.count("event: token") >= 2
    stored = client.get(f"/api/conversations/{conversation['id']}", headers=site["bob"]).json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
    answer = stored["messages"][1]
    assert "HX-FAN-77" in answer["content"]
    assert any(s["filename"] == "manual.pdf" and s["page"] == 5 for s in answer["sources"])
    # feedback on one's own answer is stored; other users cannot see or rate it
    assert client.post(f"/api/messages/{answer['id']}/feedback", json={"rating": 1, "comment": "right"}, headers=site["bob"]).status_code == 204
    assert client.post(f"/api/messages/{answer['id']}/feedback", json={"rating": -1}, headers=site["eve"]).status_code == 404
    assert client.get(f"/api/conversations/{conversation['id']}", headers=site["eve"]).status_code == 404


def test_metrics_count_requests_and_ingested_pages(site):
    assert site["client"].get("/api/collections", headers=site["bob"]).status_code == 200
    text = site["client"].get("/metrics").text
    assert 'mmkb_http_requests_total{method="GET",route="/api/collections",status="200"}' in text
    pages = [line for line in text.splitlines() if line.startswith("mmkb_ingested_pages_total")]
    assert pages and float(pages[0].split()[-1]) >= 5


def test_openapi_docs_are_served(site):
    assert site["client"].get("/docs").status_code == 200
    assert "/api/ask/stream" in site["client"].get("/openapi.json").json()["paths"]


def test_documents_are_deleted_by_editors_only(site):
    client, kb = site["client"], site["kb"]
    with (SAMPLES / "monthly-pv-yield-bar-chart.png").open("rb") as png:
        upload = client.post("/api/collections/docs/documents", headers=site["alice"], files=[("files", ("chart.png", png))])
    chart_id = upload.json()["files"][0]["document_id"]
    assert client.delete(f"/api/collections/docs/documents/{chart_id}", headers=site["bob"]).status_code == 403
    assert client.delete(f"/api/collections/docs/documents/{chart_id}", headers=site["eve"]).status_code == 403
    deleted = client.delete(f"/api/collections/docs/documents/{chart_id}", headers=site["alice"])
    assert deleted.status_code == 200 and deleted.json()["deleted_documents"] == [chart_id]
    names = {d["filename"] for d in client.get("/api/collections/docs/documents", headers=site["bob"]).json()}
    assert "chart.png" not in names
    assert client.delete(f"/api/collections/docs/documents/{chart_id}", headers=site["alice"]).status_code == 404


def test_an_upload_over_the_size_cap_is_refused_not_truncated(site):
    client, kb = site["client"], site["kb"]
    original = kb.settings.max_upload_mb
    kb.settings.max_upload_mb = 1.0  # the staged copy is cut just past the cap; it must still read as too big
    try:
        big = b"plain text line for the size cap test\n" * 60_000  # ~2.3 MB of valid UTF-8 text
        response = client.post("/api/collections/docs/documents", headers=site["alice"], files=[("files", ("big.txt", big))])
    finally:
        kb.settings.max_upload_mb = original
    (result,) = response.json()["files"]
    assert result["outcome"] == "failed" and "limit" in result["error"]


def test_ask_takes_hyde_and_mmr_per_request_and_checks_them(site):
    client = site["client"]
    body = {"question": "Which fan does the SX-400 use?", "collections": ["docs"]}
    bad = client.post("/api/ask", json={**body, "mmr_lambda": 1.5}, headers=site["bob"])
    assert bad.status_code == 422 and "mmr_lambda" in bad.text
    assert client.post("/api/ask", json={**body, "hyde": "sometimes"}, headers=site["bob"]).status_code == 422
