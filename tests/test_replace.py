"""A changed file (same name, new bytes) replaces its old version; a broken new version does not."""

from __future__ import annotations

from pathlib import Path

import pymupdf
from sqlalchemy import func, select

from app.indexes import TEXT_SPACE
from app.models import Chunk, DocumentStatus


def _pdf(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = pymupdf.open()
    page = document.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 520, 400), text, fontsize=11)
    document.save(path)
    return path


def _top_texts(kb, question: str) -> list[str]:
    sources, _ = kb._answerer().retrieve(question, kb.readable_collections(kb.system_user(), ["docs"]))
    return [s.text for s in sources]


QUESTION = "When does the staff cafeteria open in the morning?"


def test_a_changed_file_replaces_the_old_version(kb, tmp_path):
    admin = kb.system_user()
    old = _pdf(tmp_path / "v1" / "cafeteria.pdf", "Cafeteria rules. The staff cafeteria opens at 07:30 every weekday morning.")
    first = kb.ingest(admin, "docs", paths=[old])
    assert "07:30" in _top_texts(kb, QUESTION)[0]

    new = _pdf(tmp_path / "v2" / "cafeteria.pdf", "Cafeteria rules. The staff cafeteria opens at 09:15 every weekday morning.")
    second = kb.ingest(admin, "docs", paths=[new])

    assert second.files[0].outcome.value == "ingested"
    assert second.files[0].replaced_document_ids == [first.files[0].document_id]
    documents = kb.documents(admin, "docs")
    assert [(d.filename, d.id) for d in documents] == [("cafeteria.pdf", second.files[0].document_id)]
    texts = _top_texts(kb, QUESTION)
    assert "09:15" in texts[0] and not any("07:30" in t for t in texts)
    with kb.database.session() as session:
        chunks = session.scalar(select(func.count()).select_from(Chunk))
    assert len(kb.indexes.store(documents[0].collection_id, TEXT_SPACE)) == chunks


def test_a_broken_new_version_leaves_the_old_one_in_place(kb, tmp_path):
    admin = kb.system_user()
    good = _pdf(tmp_path / "v1" / "cafeteria.pdf", "Cafeteria rules. The staff cafeteria opens at 07:30 every weekday morning.")
    kb.ingest(admin, "docs", paths=[good])
    newer = _pdf(tmp_path / "v2" / "cafeteria.pdf", "Cafeteria rules. The staff cafeteria opens at 09:15 every weekday morning.")
    broken = tmp_path / "v3" / "cafeteria.pdf"
    broken.parent.mkdir()
    broken.write_bytes(newer.read_bytes()[:300])

    report = kb.ingest(admin, "docs", paths=[broken])

    assert report.files[0].outcome.value == "failed"
    statuses = sorted(d.status.value for d in kb.documents(admin, "docs"))
    assert statuses == ["failed", "ready"]
    assert "07:30" in _top_texts(kb, QUESTION)[0]


def test_two_different_files_with_one_name_in_one_batch_are_both_kept(kb, tmp_path):
    a = _pdf(tmp_path / "site-a" / "report.pdf", "Site A report. The roof of building A was repaired in March.")
    b = _pdf(tmp_path / "site-b" / "report.pdf", "Site B report. The parking lot of building B was repainted in June.")
    report = kb.ingest(kb.system_user(), "docs", paths=[tmp_path / "site-a", tmp_path / "site-b"])
    assert [f.outcome.value for f in report.files] == ["ingested", "ingested"]
    assert all(not f.replaced_document_ids for f in report.files)
    assert [d.status for d in kb.documents(kb.system_user(), "docs")] == [DocumentStatus.ready] * 2
    assert a.exists() and b.exists()
