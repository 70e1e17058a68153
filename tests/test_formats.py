"""Text, Markdown, HTML, DOCX and PPTX: generated here, sniffed by content, found by retrieval."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from app.models import Chunk
from ingest.loaders import DOCX_MIME, HTML_MIME, PPTX_MIME, TEXT_MIME, parse_file, sniff_mime

FILLER = "This paragraph is general background about the organisation and its many departments. "


def make_txt(path: Path) -> Path:
    # The fact sits past the first ~3,000 characters, so on the second text "page".
    path.write_text(FILLER * 40 + "\n\nThe server room door code was changed to 5812 in October.\n", encoding="utf-8")
    return path


def make_md(path: Path) -> Path:
    path.write_text("# Returns policy\n\n## Refunds\n\nRefunds are paid to the original card within 14 days.\n", encoding="utf-8")
    return path


def make_html(path: Path) -> Path:
    path.write_text(
        "<!DOCTYPE html><html><head><title>Canteen</title><style>p{color:red}</style>"
        "<script>var tracking = 'pixel-zebra-123';</script></head>"
        "<body><h1>Canteen menu</h1><p>On Fridays the canteen serves <b>grilled trout</b> with potatoes.</p>"
        "<script>document.write('zebra')</script></body></html>",
        encoding="utf-8",
    )
    return path


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Parking rules", level=1)
    document.add_paragraph("Visitors park on level minus two of the north garage.")
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Badge", "Garage"
    table.rows[1].cells[0].text, table.rows[1].cells[1].text = "Green", "North"
    document.save(path)
    return path


def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for title, body in [
        ("Kick-off", "Welcome to the project."),
        ("Budget", "The pilot budget is 48,000 euros for the first year."),
        ("Next steps", "Hire two engineers."),
    ]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.slides[2].shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1)).text_frame.text = "Owner: Priya"
    deck.save(path)
    return path


@pytest.fixture()
def files(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    return {
        "txt": make_txt(folder / "notes.txt"),
        "md": make_md(folder / "returns.md"),
        "html": make_html(folder / "canteen.html"),
        "docx": make_docx(folder / "parking.docx"),
        "pptx": make_pptx(folder / "kickoff.pptx"),
    }


def test_types_are_sniffed_by_content_not_by_name(files, tmp_path):
    expected = {"txt": TEXT_MIME, "md": TEXT_MIME, "html": HTML_MIME, "docx": DOCX_MIME, "pptx": PPTX_MIME}
    for kind, path in files.items():
        disguised = tmp_path / f"disguised-{kind}.pdf"
        disguised.write_bytes(path.read_bytes())
        assert sniff_mime(disguised.read_bytes()[:2048], disguised) == expected[kind], kind
    plain_zip = tmp_path / "archive.docx"
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("word/readme.txt", "not an Office document")
    assert sniff_mime(plain_zip.read_bytes()[:2048], plain_zip) is None
    assert sniff_mime("Grüße, 报告".encode()[:-1]) == TEXT_MIME  # a character cut by the 2 KiB head
    assert sniff_mime(b"\x7fELF\x02\x01\x01\x00") is None
    assert sniff_mime("caf\xe9 au lait".encode("latin-1")) is None


def test_each_format_is_parsed_into_clean_text_with_pages(files):
    txt = parse_file(files["txt"], TEXT_MIME)
    assert txt.page_count == 2 and all(len(p.text) <= 3000 for p in txt.pages)
    assert "5812" in txt.pages[1].text
    assert parse_file(files["md"], TEXT_MIME).pages[0].text.startswith("# Returns policy\n\n## Refunds")
    html = parse_file(files["html"], HTML_MIME).pages[0].text
    assert "grilled trout" in html and "Canteen menu" in html
    assert "zebra" not in html and "<" not in html and "color" not in html
    docx = parse_file(files["docx"], DOCX_MIME)
    assert docx.pages[0].text.startswith("# Parking rules\n\nVisitors park")
    assert [t.rows for t in docx.tables] == [[["Badge", "Garage"], ["Green", "North"]]]  # indexed as a table chunk
    pptx = parse_file(files["pptx"], PPTX_MIME)
    assert pptx.page_count == 3 and [p.page for p in pptx.pages] == [1, 2, 3]
    assert "48,000 euros" in pptx.pages[1].text and "Owner: Priya" in pptx.pages[2].text


@pytest.mark.parametrize(
    "question, filename, page",
    [
        ("What is the door code of the server room?", "notes.txt", 2),
        ("How quickly are refunds paid?", "returns.md", 1),
        ("What does the canteen serve on Fridays?", "canteen.html", 1),
        ("Where do visitors park?", "parking.docx", 1),
        ("How large is the pilot budget?", "kickoff.pptx", 2),
    ],
)
def test_every_format_is_ingested_and_found(formats_kb, question, filename, page):
    sources, _ = formats_kb._answerer().retrieve(question, formats_kb.readable_collections(formats_kb.system_user(), ["formats"]))
    assert (sources[0].filename, sources[0].page) == (filename, page)


@pytest.fixture(scope="module")
def formats_kb(tmp_path_factory, models):
    from app.service import KnowledgeBase
    from tests.conftest import make_settings

    folder = tmp_path_factory.mktemp("formats-in")
    for make, name in [
        (make_txt, "notes.txt"),
        (make_md, "returns.md"),
        (make_html, "canteen.html"),
        (make_docx, "parking.docx"),
        (make_pptx, "kickoff.pptx"),
    ]:
        make(folder / name)
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("formats-data")), models=models)
    report = kb.ingest(kb.system_user(), "formats", paths=[folder])
    assert [f.outcome.value for f in report.files] == ["ingested"] * 5, report.files
    with kb.database.session() as session:
        texts = list(session.scalars(select(Chunk.text)))
    assert not any("pixel-zebra" in t for t in texts)
    yield kb
    kb.close()
