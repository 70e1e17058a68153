"""Deleting documents with real models, SQLite and FAISS: vectors, rows and files really go."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.indexes import TEXT_SPACE
from app.models import Chunk, Role
from app.service import AccessDenied, KnowledgeBase
from ingest.thumbnails import thumbnail_path
from tests.conftest import SAMPLES, make_settings

MANUAL = SAMPLES / "solar-inverter-manual.pdf"
POLICY = SAMPLES / "employee-travel-policy.pdf"


def _retrieved_files(kb, question: str, collection: str) -> list[str]:
    sources, _images = kb._answerer().retrieve(question, kb.readable_collections(kb.system_user(), [collection]))
    return [s.filename for s in sources]


def _document(kb, collection: str, filename: str):
    return next(d for d in kb.documents(kb.system_user(), collection) if d.filename == filename)


def _figures(kb, document_id: int) -> set[Path]:
    with kb.database.session() as session:
        return {
            Path(p)
            for p in session.scalars(
                select(Chunk.image_path).where(Chunk.document_id == document_id, Chunk.image_path.is_not(None))
            )
        }


def test_deleted_document_is_no_longer_retrieved_and_its_files_go(kb):
    admin = kb.system_user()
    kb.ingest(admin, "docs", paths=[MANUAL, POLICY])
    question = "What is the nightly hotel cap in Munich?"
    assert "employee-travel-policy.pdf" in _retrieved_files(kb, question, "docs")
    policy, manual = _document(kb, "docs", "employee-travel-policy.pdf"), _document(kb, "docs", "solar-inverter-manual.pdf")
    collection_id = policy.collection_id
    before = len(kb.indexes.store(collection_id, TEXT_SPACE))
    manual_figures = _figures(kb, manual.id)
    assert manual_figures and all(p.exists() for p in manual_figures)

    result = kb.delete_document(admin, "docs", policy.id)

    assert result.chunks > 0
    assert len(kb.indexes.store(collection_id, TEXT_SPACE)) == before - result.chunks
    assert "employee-travel-policy.pdf" not in _retrieved_files(kb, question, "docs")
    assert [d.filename for d in kb.documents(admin, "docs")] == ["solar-inverter-manual.pdf"]
    assert not Path(policy.stored_path).exists()
    # The other document keeps its original and its figures, and is still found.
    assert Path(manual.stored_path).exists() and all(p.exists() for p in manual_figures)
    assert "solar-inverter-manual.pdf" in _retrieved_files(kb, "maximum DC input voltage of the inverter", "docs")
    # A fresh process sees the same index (the removal was saved, not just done in memory).
    reopened = KnowledgeBase(kb.settings, models=kb.models)
    assert len(reopened.indexes.store(collection_id, TEXT_SPACE)) == before - result.chunks
    reopened.close()


def test_shared_files_stay_until_the_last_document_using_them_goes(kb):
    admin = kb.system_user()
    kb.ingest(admin, "a", paths=[MANUAL])
    kb.ingest(admin, "b", paths=[MANUAL])
    in_a, in_b = _document(kb, "a", MANUAL.name), _document(kb, "b", MANUAL.name)
    figures = _figures(kb, in_a.id)
    assert figures and in_a.stored_path == in_b.stored_path

    kb.delete_document(admin, "a", in_a.id)
    assert Path(in_b.stored_path).exists() and all(p.exists() for p in figures)
    assert MANUAL.name in _retrieved_files(kb, "maximum DC input voltage of the inverter", "b")

    result = kb.delete_document(admin, "b", in_b.id)
    assert not Path(in_b.stored_path).exists()
    assert not any(p.exists() for p in figures)
    assert set(result.files_deleted) == figures | {thumbnail_path(p) for p in figures} | {Path(in_b.stored_path)}
    with kb.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Chunk)) == 0


def test_only_editors_and_admins_of_the_collection_may_delete(kb):
    kb.ingest(kb.system_user(), "docs", paths=[POLICY])
    document = _document(kb, "docs", POLICY.name)
    kb.grant("reader", "docs", Role.reader)
    kb.grant("editor", "docs", Role.editor)
    with pytest.raises(AccessDenied):
        kb.delete_document(kb.ensure_user("reader"), "docs", document.id)
    assert [d.id for d in kb.documents(kb.system_user(), "docs")] == [document.id]
    kb.delete_document(kb.ensure_user("editor"), "docs", document.id)
    assert kb.documents(kb.system_user(), "docs") == []


def test_cli_deletes_by_file_name(tmp_path, models, monkeypatch):
    from app import cli
    from app.settings import get_settings

    data = tmp_path / "data"
    kb = KnowledgeBase(make_settings(data), models=models)
    kb.ingest(kb.system_user(), "docs", paths=[POLICY, MANUAL])
    kb.close()
    monkeypatch.setenv("MMKB_DATA_DIR", str(data))
    get_settings.cache_clear()
    monkeypatch.setattr(cli, "_knowledge_base", lambda: KnowledgeBase(get_settings(), models=models))
    try:
        runner = CliRunner()
        result = runner.invoke(cli.cli, ["delete", "--collection", "docs", POLICY.name])
        assert result.exit_code == 0, result.output
        assert f"deleted {POLICY.name}" in result.output
        missing = runner.invoke(cli.cli, ["delete", "--collection", "docs", "no-such.pdf"])
        assert missing.exit_code == 1 and "no document" in missing.output
    finally:
        get_settings.cache_clear()
    kb = KnowledgeBase(make_settings(data), models=models)
    assert [d.filename for d in kb.documents(kb.system_user(), "docs")] == [MANUAL.name]
    kb.close()
