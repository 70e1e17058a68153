"""Chunk size and overlap per collection (API, CLI), and the section path shown with a source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.models import Chunk, Role
from app.service import AccessDenied

ROOT = Path(__file__).resolve().parents[1]


def _handbook(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sentences = " ".join(f"Rule {i} says that travellers keep receipt number {i} for the auditors." for i in range(40))
    path = folder / "handbook.md"
    path.write_text(
        f"# Travel handbook\n\n## General rules\n\n{sentences}\n\n## Hotels\n\n"
        "The hotel cap in Munich is 180 EUR per night, breakfast included.\n",
        encoding="utf-8",
    )
    return path


def _chunks(kb, collection: str) -> list[Chunk]:
    (found,) = kb.readable_collections(kb.system_user(), [collection])
    with kb.database.session() as session:
        return list(session.scalars(select(Chunk).where(Chunk.collection_id == found.id).order_by(Chunk.ordinal)))


def test_a_collection_chunks_with_its_own_size_and_overlap(kb, tmp_path):
    handbook = _handbook(tmp_path / "in")
    admin = kb.system_user()
    kb.create_collection(admin, "fine", chunk_tokens=32, chunk_overlap_tokens=4)
    kb.ingest(admin, "fine", paths=[handbook])
    kb.ingest(admin, "default", paths=[handbook])
    fine, default = _chunks(kb, "fine"), _chunks(kb, "default")
    sizes = kb.models.text_embedder.count_tokens([c.text for c in fine])
    assert max(sizes) <= 32
    assert len(fine) > 2 * len(default)
    assert max(kb.models.text_embedder.count_tokens([c.text for c in default])) > 32
    info = {i.name: i for i in kb.collection_info(admin)}
    assert (info["fine"].chunk_tokens, info["fine"].chunk_overlap_tokens) == (32, 4)
    assert (info["default"].chunk_tokens, info["default"].chunk_overlap_tokens) == (
        kb.settings.chunk_tokens,
        kb.settings.chunk_overlap_tokens,
    )


def test_chunking_settings_are_validated_and_need_the_collection_admin(kb):
    admin = kb.system_user()
    kb.create_collection(admin, "docs")
    with pytest.raises(ValueError, match="overlap"):
        kb.configure_chunking(admin, "docs", chunk_tokens=40, chunk_overlap_tokens=40)
    with pytest.raises(ValueError, match="at least 16"):
        kb.configure_chunking(admin, "docs", chunk_tokens=8)
    editor = kb.ensure_user("eve")
    kb.manage_member(admin, "docs", "eve", Role.editor)
    with pytest.raises(AccessDenied):
        kb.configure_chunking(editor, "docs", chunk_tokens=64)
    kb.manage_member(admin, "docs", "eve", Role.admin)
    assert kb.configure_chunking(editor, "docs", chunk_tokens=64).chunk_tokens == 64


def test_sources_name_the_section_they_come_from(kb, tmp_path):
    kb.ingest(kb.system_user(), "travel", paths=[_handbook(tmp_path / "in")])
    sources, _ = kb._answerer().retrieve(
        "What is the hotel cap in Munich?", kb.readable_collections(kb.system_user(), ["travel"])
    )
    assert sources[0].heading_path == "Travel handbook > Hotels"
    assert "180 EUR" in sources[0].text
    stored = {c.heading_path for c in _chunks(kb, "travel")}
    assert stored == {"Travel handbook > General rules", "Travel handbook > Hotels"}


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_cli_creates_and_sets_collection_chunking(tmp_path):
    env = {**os.environ, "MMKB_DATA_DIR": str(tmp_path / "data")}

    def kb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    assert kb("collections", "create", "manuals", "--chunk-tokens", "64", "--chunk-overlap", "8").returncode == 0
    assert kb("collections", "set", "manuals", "--chunk-overlap", "16").returncode == 0
    listing = kb("collections")
    assert "manuals:" in listing.stdout and "chunks of 64 tokens, 16 overlap" in listing.stdout
    refused = kb("collections", "set", "manuals", "--chunk-overlap", "64")
    assert refused.returncode == 1 and "overlap must be" in refused.stderr


def test_a_passage_that_never_names_its_topic_is_found_through_its_heading(kb, tmp_path):
    filler = " ".join(f"Clause {i} of this part covers booking steps and receipts." for i in range(20))
    path = tmp_path / "in" / "limits.md"
    path.parent.mkdir()
    path.write_text(
        # Meals first: with nothing but the number to tell them apart, the earlier chunk would win.
        f"# Expense limits\n\n## Business meals\n\n{filler}\n\nThe cap is 45 EUR.\n\n"
        f"## Hotel rooms in Munich\n\n{filler}\n\nThe cap is 180 EUR.\n",
        encoding="utf-8",
    )
    kb.ingest(kb.system_user(), "limits", paths=[path])
    sources, _ = kb._answerer().retrieve(
        "How much may a hotel room in Munich cost?", kb.readable_collections(kb.system_user(), ["limits"])
    )
    # Embedded under its heading, the hotel cap is the runner-up only to its section's opening;
    # embedded bare (measured), it scored like the meals cap and fell behind the meals section.
    assert [s.heading_path for s in sources[:2]] == ["Expense limits > Hotel rooms in Munich"] * 2
    assert "The cap is 180 EUR." in sources[1].text
    assert sources[1].score > 2 * max(s.score for s in sources[2:])


def test_api_creates_a_collection_with_its_chunking_and_refuses_a_bad_one(kb):
    from fastapi.testclient import TestClient

    from ui.server import create_app

    kb.accounts.create_user("root", "root-password", is_admin=True)
    client = TestClient(create_app(kb, mount_ui=False))
    token = client.post("/api/tokens", json={"username": "root", "password": "root-password"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post(
        "/api/collections", json={"name": "tuned", "chunk_tokens": 200, "chunk_overlap_tokens": 20}, headers=headers
    )
    assert created.status_code == 201 and (created.json()["chunk_tokens"], created.json()["chunk_overlap_tokens"]) == (200, 20)
    refused = client.post(
        "/api/collections", json={"name": "bad", "chunk_tokens": 40, "chunk_overlap_tokens": 50}, headers=headers
    )
    assert refused.status_code == 400 and "overlap" in refused.json()["detail"]
    assert "bad" not in [c["name"] for c in client.get("/api/collections", headers=headers).json()]


def test_the_chat_source_list_names_the_section():
    from app.schemas import Source
    from ui.chat_format import source_choices

    source = Source(
        number=1,
        chunk_id=7,
        collection="c",
        filename="policy.pdf",
        page=3,
        kind="text",
        text="The cap is 180 EUR.",
        score=0.9,
        heading_path="Travel policy > Hotels",
    )
    ((label, key),) = source_choices([source], "The cap is 180 EUR [1].", index=1)
    assert label.startswith("[1] policy.pdf, p. 3 · Travel policy > Hotels (cited") and key == "1-1"
