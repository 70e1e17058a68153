"""PDF tables become whole Markdown chunks; long tables are cut between rows with the header repeated."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Chunk, Document
from ingest.chunking import chunk_tables, table_markdown
from ingest.loaders import PDF_MIME, parse_file
from ingest.types import TableText
from tests.conftest import SAMPLES

# (file, page, a body row) for every table drawn by samples/make_samples.py
SAMPLE_TABLES = [
    ("solar-inverter-manual.pdf", 2, ["Maximum DC input voltage", "600 V"]),
    ("solar-inverter-manual.pdf", 4, ["E-214", "Insulation resistance too low", "Inspect PV cables and connectors"]),
    ("employee-travel-policy.pdf", 3, ["Munich", "180 EUR"]),
    ("greenhouse-report-2025.pdf", 4, ["B3", "Interlighting", "93.8 %", "8.5", "258"]),
]


@pytest.mark.parametrize("filename, page, row", SAMPLE_TABLES)
def test_sample_pdf_tables_are_found_with_their_cells_and_leave_the_page_text(filename, page, row):
    parsed = parse_file(SAMPLES / filename, PDF_MIME)
    tables = [t for t in parsed.tables if t.page == page]
    assert len(tables) == 1
    assert row in tables[0].rows
    # The table is indexed once, as a table: its rows are not also run-on page text.
    page_text = next(p.text for p in parsed.pages if p.page == page)
    assert not any(all(cell in line for cell in row) for line in page_text.splitlines())


def test_a_long_table_is_cut_between_rows_and_every_piece_has_the_header():
    rows = [["Item", "Owner", "Due"]] + [[f"Task number {i} of the migration plan", f"Person {i}", f"2026-{i % 12 + 1:02d}-01"] for i in range(60)]
    pieces = chunk_tables([TableText(page=7, rows=rows)], max_tokens=80, first_ordinal=5)
    rendered = table_markdown(rows)
    assert len(pieces) > 3
    assert [p.ordinal for p in pieces] == list(range(5, 5 + len(pieces)))
    body_seen = []
    for piece in pieces:
        lines = piece.text.split("\n")
        assert lines[:2] == rendered[:2] and piece.page == 7
        assert all(line in rendered[2:] for line in lines[2:])  # only whole rows
        body_seen += lines[2:]
    assert body_seen == rendered[2:]  # every row once, in order


def test_a_short_table_is_one_chunk():
    (piece,) = chunk_tables([TableText(page=1, rows=[["City", "Cap"], ["Munich", "180 EUR"], ["Paris | Lyon", "200 EUR"]])])
    assert piece.text == "| City | Cap |\n| --- | --- |\n| Munich | 180 EUR |\n| Paris \\| Lyon | 200 EUR |"


def test_ingested_tables_are_stored_whole_and_retrieved(kb):
    report = kb.ingest(kb.system_user(), "docs", paths=[SAMPLES / name for name in {t[0] for t in SAMPLE_TABLES}])
    assert not report.failed
    with kb.database.session() as session:
        table_chunks = [(filename, chunk.page, chunk.text) for chunk, filename in session.execute(
            select(Chunk, Document.filename).join(Document).where(Chunk.text.contains("| --- |"))
        )]
    assert sorted((f, p) for f, p, _ in table_chunks) == sorted((f, p) for f, p, _ in SAMPLE_TABLES)
    for filename, page, row in SAMPLE_TABLES:
        text = next(t for f, p, t in table_chunks if (f, p) == (filename, page))
        assert "| " + " | ".join(row) + " |" in text.split("\n")
    sources, _ = kb._answerer().retrieve("What is the nightly hotel cap in Munich?", kb.readable_collections(kb.system_user(), ["docs"]))
    assert any("| Munich | 180 EUR |" in s.text for s in sources[:3])
    sources, _ = kb._answerer().retrieve("What does error code E-214 mean?", kb.readable_collections(kb.system_user(), ["docs"]))
    assert any("| E-214 | Insulation resistance too low" in s.text for s in sources[:3])
