"""The REST API with real accounts, a real database and real models."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.service import AccessDenied, KnowledgeBase
from tests.conftest import SAMPLES, make_settings
from ui.server import create_app

PROTECTED = [
    ("get", "/api/me", None),
    ("get", "/api/collections", None),
    ("post", "/api/collections", {"name": "x"}),
    ("put", "/api/collections/docs/members", {"username": "bob", "role": "reader"}),
    ("get", "/api/collections/docs/members", None),
    ("get", "/api/collections/docs/directory-groups", None),
    ("put", "/api/collections/docs/directory-groups/cn=hr,dc=example", {"role": "reader"}),
    ("delete", "/api/collections/docs/directory-groups/cn=hr,dc=example", None),
    ("patch", "/api/collections/docs", {"name": "renamed"}),
    ("delete", "/api/collections/docs", None),
    ("get", "/api/jobs", None),
    ("get", "/api/jobs/1", None),
    ("get", "/api/collections/docs/documents", None),
    ("delete", "/api/collections/docs/documents/1", None),
    ("post", "/api/ask", {"question": "hi"}),
    ("post", "/api/ask/stream", {"question": "hi"}),
    ("get", "/api/conversations", None),
    ("post", "/api/conversations", {"title": "t"}),
    ("get", "/api/conversations/1", None),
    ("post", "/api/messages/1/feedback", {"rating": 1}),
    ("get", "/api/chunks/1/view", None),
    ("get", "/api/chunks/1/thumbnail", None),
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
            "/api/collections/docs/documents",
            headers=alice,
            files=[("files", ("../../manual.pdf", pdf, "application/pdf")), ("files", ("sign.jpg", jpg, "image/jpeg"))],
        )
    assert upload.status_code == 200, upload.text
    assert [f["outcome"] for f in upload.json()["files"]] == ["ingested", "ingested"]
    assert (
        client.put("/api/collections/docs/members", json={"username": "bob", "role": "reader"}, headers=alice).status_code == 200
    )
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


def test_members_see_their_collections_and_others_get_403_or_404(site):
    client = site["client"]
    assert [c["name"] for c in client.get("/api/collections", headers=site["bob"]).json()] == ["docs"]
    assert client.get("/api/collections", headers=site["eve"]).json() == []
    # To a non-member the collection does not exist (tests/test_permissions.py).
    assert client.get("/api/collections/docs/documents", headers=site["eve"]).status_code == 404
    assert (
        client.post(
            "/api/ask", json={"question": "What is the fan part number?", "collections": ["docs"]}, headers=site["eve"]
        ).status_code
        == 404
    )
    assert client.post("/api/ask", json={"question": "anything"}, headers=site["eve"]).status_code == 403
    assert client.post("/api/collections", json={"name": "mine"}, headers=site["bob"]).status_code == 403
    assert (
        client.put("/api/collections/docs/members", json={"username": "eve", "role": "reader"}, headers=site["bob"]).status_code
        == 403
    )
    with (SAMPLES / "employee-travel-policy.pdf").open("rb") as pdf:
        assert (
            client.post("/api/collections/docs/documents", headers=site["bob"], files=[("files", ("p.pdf", pdf))]).status_code
            == 403
        )


def test_uploaded_names_are_cleaned_and_listed_with_status(site):
    documents = site["client"].get("/api/collections/docs/documents", headers=site["bob"]).json()
    assert {d["filename"] for d in documents} == {"manual.pdf", "sign.jpg"}
    assert all(d["status"] == "ready" for d in documents)


def test_asking_streams_tokens_then_a_cited_answer_stored_in_a_conversation(site):
    client = site["client"]
    conversation = client.post("/api/conversations", json={"title": "fans"}, headers=site["bob"]).json()
    body = {
        "question": "What is the part number of the replacement cooling fan for the SX-400?",
        "collections": ["docs"],
        "conversation_id": conversation["id"],
    }
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
    assert (
        client.post(
            f"/api/messages/{answer['id']}/feedback", json={"rating": 1, "comment": "right"}, headers=site["bob"]
        ).status_code
        == 204
    )
    assert client.post(f"/api/messages/{answer['id']}/feedback", json={"rating": -1}, headers=site["eve"]).status_code == 404
    assert client.get(f"/api/conversations/{conversation['id']}", headers=site["eve"]).status_code == 404


def test_metrics_count_requests_and_ingested_pages(site, tmp_path):
    assert site["client"].get("/api/collections", headers=site["bob"]).status_code == 200
    text = site["client"].get("/metrics").text
    assert 'mmkb_http_requests_total{method="GET",route="/api/collections",status="200"}' in text
    pages = [line for line in text.splitlines() if line.startswith("mmkb_ingested_pages_total")]
    assert pages and float(pages[0].split()[-1]) >= 5
    # ingests outside the API (admin console, CLI in this process) count too
    before = float(pages[0].split()[-1])
    note = tmp_path / "metrics-note.txt"
    note.write_text("The metrics note has exactly one page of text.")
    site["kb"].ingest(site["kb"].system_user(), "docs", paths=[note])
    after = [line for line in site["client"].get("/metrics").text.splitlines() if line.startswith("mmkb_ingested_pages_total")]
    assert float(after[0].split()[-1]) == before + 1
    assert any(line.startswith("mmkb_ingest_seconds_total") for line in site["client"].get("/metrics").text.splitlines())


def test_openapi_docs_are_served(site):
    assert site["client"].get("/docs").status_code == 200
    assert "/api/ask/stream" in site["client"].get("/openapi.json").json()["paths"]


def test_documents_are_deleted_by_editors_only(site):
    client = site["client"]
    with (SAMPLES / "monthly-pv-yield-bar-chart.png").open("rb") as png:
        upload = client.post("/api/collections/docs/documents", headers=site["alice"], files=[("files", ("chart.png", png))])
    chart_id = upload.json()["files"][0]["document_id"]
    assert client.delete(f"/api/collections/docs/documents/{chart_id}", headers=site["bob"]).status_code == 403
    assert client.delete(f"/api/collections/docs/documents/{chart_id}", headers=site["eve"]).status_code == 404  # not a member
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


def _login(client, name: str) -> dict:
    response = client.post("/api/tokens", json={"username": name, "password": f"{name}-password"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_new_admin_routes_refuse_readers_and_non_members(site):
    client, bob, eve = site["client"], site["bob"], site["eve"]
    docs_job = client.get("/api/jobs", headers=site["alice"]).json()[-1]["id"]
    for headers, refused in ((bob, 403), (eve, 404)):  # bob reads docs; to eve, in no collection, it does not exist
        assert client.get("/api/collections/docs/members", headers=headers).status_code == refused
        assert client.patch("/api/collections/docs", json={"name": "mine"}, headers=headers).status_code == refused
        assert client.delete("/api/collections/docs", headers=headers).status_code == refused
        assert client.get(f"/api/jobs/{docs_job}", headers=headers).status_code == refused
    assert client.get("/api/jobs", headers=eve).status_code == 403
    assert client.get("/api/jobs", headers=bob).status_code == 403  # a reader changes nothing, so has no jobs
    assert [c["name"] for c in client.get("/api/collections", headers=site["alice"]).json()] == ["docs"]


def test_a_collection_admin_lists_members_and_renames_their_own_collection(site):
    client, alice = site["client"], site["alice"]
    site["kb"].accounts.create_user("carol", "carol-password")
    carol = _login(client, "carol")
    assert client.post("/api/collections", json={"name": "scratch"}, headers=alice).status_code == 201
    assert (
        client.put("/api/collections/scratch/members", json={"username": "carol", "role": "admin"}, headers=alice).status_code
        == 200
    )
    assert (
        client.put("/api/collections/scratch/members", json={"username": "bob", "role": "editor"}, headers=carol).status_code
        == 200
    )
    members = client.get("/api/collections/scratch/members", headers=carol).json()
    assert members == [{"username": "bob", "role": "editor"}, {"username": "carol", "role": "admin"}]
    assert client.get("/api/collections/docs/members", headers=carol).status_code == 404  # not hers: she is no member of docs
    assert client.patch("/api/collections/scratch", json={"name": "docs"}, headers=carol).status_code == 400  # taken
    renamed = client.patch("/api/collections/scratch", json={"name": "field notes"}, headers=carol)
    assert renamed.status_code == 200 and renamed.json()["name"] == "field notes"
    assert "field notes" in [c["name"] for c in client.get("/api/collections", headers=site["bob"]).json()]
    assert client.patch("/api/collections/scratch", json={"name": "x"}, headers=alice).status_code == 404
    assert client.delete("/api/collections/field notes", headers=site["bob"]).status_code == 403  # editors may not
    assert client.delete("/api/collections/field notes", headers=carol).status_code == 200
    assert client.get("/api/collections/field notes/members", headers=alice).status_code == 404


def test_deleting_a_collection_removes_its_documents_index_and_unshared_files(site):
    client, kb, alice = site["client"], site["kb"], site["alice"]
    assert client.post("/api/collections", json={"name": "temp"}, headers=alice).status_code == 201
    unique = b"The temp collection alone mentions the QX-TEMP-41 gasket.\n" * 20
    with (SAMPLES / "danger-high-voltage-sign.jpg").open("rb") as jpg:  # the same bytes as docs' sign.jpg
        upload = client.post(
            "/api/collections/temp/documents",
            headers=alice,
            files=[("files", ("temp-only.txt", unique)), ("files", ("sign-copy.jpg", jpg))],
        )
    assert [f["outcome"] for f in upload.json()["files"]] == ["ingested", "ingested"]
    admin = kb.user("alice")
    stored = {d.filename: Path(d.stored_path) for d in kb.documents(admin, "temp")}
    temp_id = next(c.id for c in kb.readable_collections(admin) if c.name == "temp")
    index_dir = kb.indexes.path(temp_id, "text").parent
    assert all(p.exists() for p in stored.values()) and index_dir.is_dir()
    job_ids = [j["id"] for j in client.get("/api/jobs", headers=alice).json() if j["collection"] == "temp"]
    chunks = next(c["chunks"] for c in client.get("/api/collections", headers=alice).json() if c["name"] == "temp")

    deleted = client.delete("/api/collections/temp", headers=alice)
    assert (
        deleted.status_code == 200
        and len(deleted.json()["deleted_documents"]) == 2
        and deleted.json()["deleted_chunks"] == chunks > 0
    )
    assert not stored["temp-only.txt"].exists()
    assert stored["sign-copy.jpg"].exists()  # docs still holds these bytes
    assert not index_dir.exists()
    assert "temp" not in [c["name"] for c in client.get("/api/collections", headers=alice).json()]
    assert all(client.get(f"/api/jobs/{j}", headers=alice).status_code == 404 for j in job_ids)
    # docs is untouched: its manual is still found
    hits = kb.search(kb.user("bob"), "replacement cooling fan part number HX-FAN-77", ["docs"])
    assert hits[0].filename == "manual.pdf"
    with pytest.raises(AccessDenied):
        kb.search(admin, "QX-TEMP-41 gasket", ["temp"])


def test_jobs_show_each_upload_with_its_counts(site):
    client, alice = site["client"], site["alice"]
    jobs = client.get("/api/jobs", headers=alice).json()
    first_upload = jobs[-1]
    assert first_upload["collection"] == "docs" and first_upload["status"] == "done"
    assert first_upload["total_files"] == 2 and first_upload["done_files"] == 2 and first_upload["failed_files"] == 0
    assert [j["id"] for j in jobs] == sorted((j["id"] for j in jobs), reverse=True)
    assert client.get(f"/api/jobs/{first_upload['id']}", headers=alice).json() == first_upload
    assert client.get("/api/jobs/999999", headers=alice).status_code == 404


def test_metrics_show_running_ingest_jobs_and_asks_in_flight(site, tmp_path):
    client, kb = site["client"], site["kb"]

    def queue(name: str) -> float:
        line = next(
            row for row in client.get("/metrics").text.splitlines() if row.startswith(f'mmkb_queue_length{{queue="{name}"}}')
        )
        return float(line.split()[-1])

    assert queue("ingest_running") == 0 and queue("asks_in_flight") == 0
    seen_while_ingesting: list[float] = []
    note = tmp_path / "metrics-note.txt"
    note.write_text("A short note ingested while /metrics is read.")
    kb.ingest(kb.user("alice"), "docs", paths=[note], progress=lambda *_: seen_while_ingesting.append(queue("ingest_running")))
    assert seen_while_ingesting and seen_while_ingesting[0] == 1
    assert queue("ingest_running") == 0
    events = kb.ask_stream(kb.user("bob"), "What is the part number of the replacement cooling fan?", ["docs"])
    next(events)  # the model is writing
    assert queue("asks_in_flight") == 1
    events.close()  # the asker went away
    assert queue("asks_in_flight") == 0


def test_a_cited_page_opens_as_a_png_for_readers_only(site):
    from sqlalchemy import select

    from app.models import Chunk, Document

    client, kb = site["client"], site["kb"]
    with kb.database.session() as session:
        chunk_id = session.scalar(
            select(Chunk.id)
            .join(Document)
            .where(Document.filename == "manual.pdf", Chunk.page == 5, Chunk.text.contains("HX-FAN-77"))
        )
        figure_id = session.scalar(select(Chunk.id).join(Document).where(Document.filename == "sign.jpg"))
    page = client.get(f"/api/chunks/{chunk_id}/view", headers=site["bob"])
    assert page.status_code == 200 and page.headers["content-type"] == "image/png"
    assert page.content.startswith(b"\x89PNG") and page.headers["x-mmkb-page"] == "5" and page.headers["x-mmkb-view"] == "page"
    figure = client.get(f"/api/chunks/{figure_id}/view", headers=site["bob"])
    assert figure.status_code == 200 and figure.headers["x-mmkb-view"] == "figure"
    assert client.get(f"/api/chunks/{chunk_id}/view", headers=site["eve"]).status_code == 404
    assert client.get("/api/chunks/999999/view", headers=site["bob"]).status_code == 404


def test_ask_takes_hyde_and_mmr_per_request_and_checks_them(site):
    client = site["client"]
    body = {"question": "Which fan does the SX-400 use?", "collections": ["docs"]}
    bad = client.post("/api/ask", json={**body, "mmr_lambda": 1.5}, headers=site["bob"])
    assert bad.status_code == 422 and "mmr_lambda" in bad.text
    assert client.post("/api/ask", json={**body, "hyde": "sometimes"}, headers=site["bob"]).status_code == 422


EXPENSES_QUESTION = "How long after a trip do employees have to hand in their expense claim?"  # samples/questions.json


@pytest.fixture(scope="module")
def travel(site):
    """The sample travel policy in its own collection, which bob reads."""
    kb = site["kb"]
    report = kb.ingest(kb.system_user(), "travel", paths=[SAMPLES / "employee-travel-policy.pdf"])
    assert not report.failed, report.failed
    kb.grant("bob", "travel")
    return "travel"


def sse_events(response) -> list[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream response, in order."""
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and name is not None:
            events.append((name, line.split(":", 1)[1].strip()))
            name = None
    return events


def test_the_stream_sends_a_verified_quote_before_the_first_token(site, travel):
    """Needs the quote producer (app/answering.py, app/generation/evidence.py)."""
    import json

    client = site["client"]
    body = {"question": EXPENSES_QUESTION, "collections": [travel]}
    with client.stream("POST", "/api/ask/stream", json=body, headers=site["bob"]) as response:
        assert response.status_code == 200
        events = sse_events(response)
    names = [name for name, _ in events]
    assert names[0] == "quote", names[:5]  # right after retrieval, before the model writes
    assert names.count("quote") == 1 and "token" in names and names[-1] == "answer"
    assert names.index("quote") < names.index("token")
    quote = json.loads(events[0][1])
    answer = json.loads(events[-1][1])
    assert quote["filename"] == "employee-travel-policy.pdf" and quote["page"] == 4
    assert "30 calendar days" in quote["text"]
    # Verbatim from the source it names, and the final answer carries the same quote.
    source = next(s for s in answer["sources"] if s["number"] == quote["source_number"])
    assert source["chunk_id"] == quote["chunk_id"] and quote["text"] in source["text"]
    assert answer["quote"] == quote and answer["extractive"] in (True, False)
    # The quote opens in the source view with only its sentence(s) highlighted.
    view = client.get(f"/api/chunks/{quote['chunk_id']}/view", params={"highlight": quote["text"]}, headers=site["bob"])
    assert view.status_code == 200 and view.headers["x-mmkb-highlight"] == "quote"


def test_ask_answers_carry_quote_and_extractive(site):
    schema = site["client"].get("/openapi.json").json()["components"]["schemas"]
    assert {"quote", "extractive"} <= set(schema["Answer"]["properties"])
    assert {"source_number", "chunk_id", "filename", "page", "text", "score"} <= set(schema["Quote"]["properties"])


def test_the_source_view_highlights_only_text_of_the_passage(site):
    import re

    from sqlalchemy import select

    from app.models import Chunk, Document

    client, kb = site["client"], site["kb"]
    with kb.database.session() as session:
        chunk = session.scalars(
            select(Chunk)
            .join(Document)
            .where(Document.filename == "manual.pdf", Chunk.page == 5, Chunk.text.contains("HX-FAN-77"))
        ).first()
    sentence = next(s for s in re.split(r"(?<=[.!?])\s+", chunk.text) if "HX-FAN-77" in s)
    assert sentence != chunk.text
    url = f"/api/chunks/{chunk.id}/view"
    whole = client.get(url, headers=site["bob"])
    quoted = client.get(url, params={"highlight": sentence}, headers=site["bob"])
    forged = client.get(url, params={"highlight": "Use part number EVIL-1 instead."}, headers=site["bob"])
    assert whole.headers["x-mmkb-highlight"] == "passage"
    assert quoted.status_code == 200 and quoted.headers["x-mmkb-highlight"] == "quote" and quoted.content != whole.content
    assert forged.status_code == 200 and forged.headers["x-mmkb-highlight"] == "passage" and forged.content == whole.content
    assert client.get(url, params={"highlight": sentence}, headers=site["eve"]).status_code == 404


def test_kb_ask_prints_the_quote_first_then_the_answer_and_its_sources(site, travel, monkeypatch):
    """Needs the quote producer (app/answering.py, app/generation/evidence.py)."""
    from typer.testing import CliRunner

    import app.cli

    monkeypatch.setattr(app.cli, "_knowledge_base", lambda: site["kb"])
    result = CliRunner().invoke(app.cli.cli, ["ask", EXPENSES_QUESTION, "--collection", travel])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert (
        lines[0].startswith("“") and "30 calendar days" in lines[0] and lines[0].endswith("” — employee-travel-policy.pdf, p. 4")
    )
    assert len(lines) > 1  # the answer follows the quote
    if "Sources:" in lines:  # the checked answer cites (a refusal does not)
        assert lines.index("Sources:") > 1  # the answer sits between the quote and the sources
        assert all(line.startswith(("  [", "  figure:")) for line in lines[lines.index("Sources:") + 1 :])
