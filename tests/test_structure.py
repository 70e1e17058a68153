"""Structure-aware chunking: chunks follow headings, carry their section path, in every format."""

from __future__ import annotations

from pathlib import Path

import pymupdf as fitz

from ingest.chunking import SectionMap, chunk_file, chunk_pages, embedding_text, figure_heading_paths
from ingest.loaders import DOCX_MIME, HTML_MIME, PDF_MIME, TEXT_MIME, parse_file
from ingest.types import Heading, PageText

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "collection"
BODY = "Employees book rooms through the travel portal. " * 3


def _handbook_pages() -> list[PageText]:
    page1 = f"Travel policy\n\nIntro to travel. {BODY}\n\nHotels\n\nThe hotel cap in Munich is 180 EUR per night. {BODY}"
    page2 = f"Rooms are single rooms. {BODY}\n\nMeals\n\nLunch is paid up to 20 EUR."
    return [
        PageText(1, page1, (Heading(0, 1, "Travel policy"), Heading(page1.index("Hotels"), 2, "Hotels"))),
        PageText(2, page2, (Heading(page2.index("Meals"), 2, "Meals"),)),
    ]


def test_chunks_never_cross_a_heading_and_carry_the_section_path_across_pages():
    pages = _handbook_pages()
    # A budget that would happily merge two sections into one chunk without headings.
    chunks = chunk_pages(pages, max_tokens=120, overlap_tokens=10)
    by_text = {c.text: c for c in chunks}
    hotel = next(c for c in chunks if "180 EUR" in c.text)
    assert hotel.heading_path == "Travel policy > Hotels"
    assert "Intro to travel" not in hotel.text and hotel.text.startswith("Hotels")
    # Page 2 starts inside the Hotels section: its first text still belongs there.
    rooms = next(c for c in chunks if "single rooms" in c.text)
    assert rooms.page == 2 and rooms.heading_path == "Travel policy > Hotels"
    meals = next(c for c in chunks if "Lunch" in c.text)
    assert meals.heading_path == "Travel policy > Meals" and "single rooms" not in meals.text
    intro = next(c for c in chunks if "Intro to travel" in c.text)
    assert intro.heading_path == "Travel policy"
    for chunk in by_text.values():
        assert " ".join(pages[chunk.page - 1].text[chunk.char_start : chunk.char_end].split()) == chunk.text
    assert embedding_text(hotel) == hotel.text  # it starts with its heading already
    assert embedding_text(rooms) == "Hotels\n" + rooms.text  # the embedder knows what these rooms are


def test_without_headings_chunking_is_unchanged():
    page = PageText(1, " ".join(f"Sentence number {i} talks about topic {i}." for i in range(40)))
    chunks = chunk_pages([page], max_tokens=40, overlap_tokens=8)
    assert len(chunks) > 3 and all(c.heading_path == "" for c in chunks)
    assert embedding_text(chunks[0]) == chunks[0].text


def test_a_heading_directly_above_a_subheading_is_not_a_chunk_of_its_own():
    text = "# Returns policy\n\n## Refunds\n\nRefunds are paid within 14 days."
    page = PageText(1, text, (Heading(0, 1, "Returns policy"), Heading(text.index("## Refunds"), 2, "Refunds")))
    (chunk,) = chunk_pages([page], max_tokens=100, overlap_tokens=10)
    assert chunk.text.startswith("# Returns policy ## Refunds Refunds are paid")
    assert chunk.heading_path == "Returns policy > Refunds"


def test_section_map_pops_to_the_right_level():
    pages = [
        PageText(
            1,
            "x" * 100,
            (Heading(0, 1, "A"), Heading(10, 2, "A1"), Heading(20, 3, "A1a"), Heading(30, 2, "A2"), Heading(40, 1, "B")),
        )
    ]
    sections = SectionMap(pages)
    assert [sections.path_at(1, offset) for offset in (-1, 5, 15, 25, 35, 45, None)] == [
        "",
        "A",
        "A > A1",
        "A > A1 > A1a",
        "A > A2",
        "B",
        "B",
    ]


def test_markdown_headings_outside_code_fences(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(
        "# Guide\n\nIntro.\n\n```bash\n# not a heading\necho hi\n```\n\nSetup\n-----\n\nRun the installer twice.\n",
        encoding="utf-8",
    )
    parsed = parse_file(path, TEXT_MIME)
    assert [(h.level, h.title) for h in parsed.pages[0].headings] == [(1, "Guide"), (2, "Setup")]
    installer = next(c for c in chunk_pages(parsed.pages, max_tokens=100, overlap_tokens=0) if "installer" in c.text)
    assert installer.heading_path == "Guide > Setup"


def test_html_headings_give_paths(tmp_path):
    path = tmp_path / "handbook.html"
    path.write_text(
        "<html><head><title>Handbook</title></head><body><h1>Travel</h1><p>General rules apply.</p>"
        "<h2>Hotels</h2><p>The cap is <b>180 EUR</b> a night.</p><h3>Exceptions</h3><p>Trade fairs allow 250 EUR.</p>"
        "<h1>IT</h1><p>Laptops last three years.</p></body></html>",
        encoding="utf-8",
    )
    parsed = parse_file(path, HTML_MIME)
    paths = {c.text: c.heading_path for c in chunk_pages(parsed.pages, max_tokens=100, overlap_tokens=0)}
    assert paths["Hotels The cap is 180 EUR a night."] == "Handbook > Travel > Hotels"
    assert paths["Exceptions Trade fairs allow 250 EUR."] == "Handbook > Travel > Hotels > Exceptions"
    assert paths["IT Laptops last three years."] == "Handbook > IT"
    assert not any(text == "Handbook" for text in paths)  # the bare title joins the next section


def test_docx_heading_styles_give_paths_to_text_and_tables(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("Facilities", level=0)
    document.add_heading("Parking", level=1)
    document.add_paragraph("Visitors park on level minus two of the north garage.")
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Badge", "Garage"
    table.rows[1].cells[0].text, table.rows[1].cells[1].text = "Green", "North"
    document.add_heading("Canteen", level=1)
    document.add_paragraph("The canteen opens at 11:30.")
    path = tmp_path / "facilities.docx"
    document.save(path)
    chunks = chunk_file(
        parse_file(path, DOCX_MIME),
        max_tokens=100,
        overlap_tokens=0,
        table_max_tokens=200,
        count_tokens=lambda texts: [len(t.split()) for t in texts],
    )
    paths = {c.text.split("\n")[0][:20]: c.heading_path for c in chunks}
    assert next(c for c in chunks if "Visitors park" in c.text).heading_path == "Facilities > Parking"
    assert next(c for c in chunks if "| Badge" in c.text).heading_path == "Facilities > Parking"
    assert next(c for c in chunks if "11:30" in c.text).heading_path == "Facilities > Canteen", paths


def _styled_pdf(path: Path, outline: bool = False) -> Path:
    document = fitz.open()
    for number, (section, sentence) in enumerate(
        [("Hotels", "The hotel cap in Munich is 180 EUR per night."), ("Meals", "Lunch is reimbursed up to 20 EUR.")], start=1
    ):
        page = document.new_page()
        y = 72
        if number == 1:
            page.insert_text((72, y), "Travel policy", fontsize=22, fontname="hebo")
            y += 40
            page.insert_text((72, y), "This policy applies to every employee who travels.", fontsize=11)
            y += 30
        page.insert_text((72, y), section, fontsize=15, fontname="hebo")
        y += 26
        for _ in range(4):
            page.insert_text((72, y), sentence, fontsize=11)
            y += 16
        page.insert_text((72, y + 10), "Approval", fontsize=11, fontname="hebo")  # bold at body size: lowest level
        page.insert_text((72, y + 28), "Your manager approves the costs before the trip.", fontsize=11)
    if outline:
        document.set_toc([[1, "Travel policy", 1], [2, "Hotels", 1], [2, "Meals", 2]])
    document.save(path)
    return path


def test_pdf_headings_from_font_size_and_weight(tmp_path):
    parsed = parse_file(_styled_pdf(tmp_path / "policy.pdf"), PDF_MIME)
    assert [(h.level, h.title) for h in parsed.pages[0].headings] == [(1, "Travel policy"), (2, "Hotels"), (3, "Approval")]
    chunks = chunk_pages(parsed.pages, max_tokens=200, overlap_tokens=0)
    assert next(c for c in chunks if "180 EUR" in c.text).heading_path == "Travel policy > Hotels"
    lunch = next(c for c in chunks if "20 EUR" in c.text)
    assert lunch.page == 2 and lunch.heading_path == "Travel policy > Meals"
    approvals = [c for c in chunks if "manager approves" in c.text]
    assert [c.heading_path for c in approvals] == ["Travel policy > Hotels > Approval", "Travel policy > Meals > Approval"]


def test_pdf_outline_wins_over_font_styles(tmp_path):
    parsed = parse_file(_styled_pdf(tmp_path / "policy.pdf", outline=True), PDF_MIME)
    chunks = chunk_pages(parsed.pages, max_tokens=200, overlap_tokens=0)
    # The outline names no "Approval" section, so the bold line is plain text there.
    assert next(c for c in chunks if "manager approves" in c.text and c.page == 1).heading_path == "Travel policy > Hotels"
    assert next(c for c in chunks if "20 EUR" in c.text).heading_path == "Travel policy > Meals"


def test_sample_pdfs_get_their_numbered_sections():
    parsed = parse_file(SAMPLES / "employee-travel-policy.pdf", PDF_MIME)
    titles = [h.title for page in parsed.pages for h in page.headings]
    assert titles[0] == "Employee Travel and Expense Policy (HR-07)"
    assert "1. Purpose, Scope and Approval" in titles
    assert "Northwind Logistics GmbH" not in titles  # a running header, stripped from the text
    chunks = chunk_file(
        parsed,
        count_tokens=lambda texts: [len(t.split()) for t in texts],
        max_tokens=100,
        overlap_tokens=10,
        table_max_tokens=200,
    )
    assert all(c.heading_path.startswith("Employee Travel and Expense Policy (HR-07)") for c in chunks if c.page > 1)
    tables = [c for c in chunks if c.char_start is None]
    assert tables and all(" > " in c.heading_path for c in tables)


def test_pptx_slide_titles_head_their_slides(tmp_path):
    from ingest.loaders import PPTX_MIME
    from tests.test_formats import make_pptx

    parsed = parse_file(make_pptx(tmp_path / "kickoff.pptx"), PPTX_MIME)
    chunks = chunk_pages(parsed.pages, max_tokens=100, overlap_tokens=0)
    assert [(c.page, c.heading_path) for c in chunks] == [(1, "Kick-off"), (2, "Budget"), (3, "Next steps")]
    assert "48,000 euros" in chunks[1].text


def _chart_png(shade: int) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (240, 160), "white")
    ImageDraw.Draw(image).rectangle((20, 40, 220, 140), fill=(shade, 90, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_pdf_figures_carry_the_heading_path_of_the_section_they_sit_in(tmp_path):
    document = fitz.open()
    page = document.new_page()
    page.insert_text((72, 72), "Travel policy", fontsize=22, fontname="hebo")
    page.insert_text((72, 112), "Hotels", fontsize=15, fontname="hebo")
    page.insert_text((72, 138), "The hotel cap in Munich is 180 EUR per night.", fontsize=11)
    page.insert_image(fitz.Rect(72, 150, 312, 310), stream=_chart_png(40))
    page.insert_text((72, 340), "Meals", fontsize=15, fontname="hebo")
    page.insert_text((72, 366), "Lunch is reimbursed up to 20 EUR.", fontsize=11)
    page.insert_image(fitz.Rect(72, 380, 312, 540), stream=_chart_png(200))
    document.save(tmp_path / "policy.pdf")

    parsed = parse_file(tmp_path / "policy.pdf", PDF_MIME)
    assert len(parsed.images) == 2
    # The first figure is under "Hotels", the second under "Meals", though both are on page 1.
    assert figure_heading_paths(parsed) == ["Travel policy > Hotels", "Travel policy > Meals"]
    # Each keeps the text just above it: what the document says about the figure.
    assert [image.context for image in parsed.images] == [
        "The hotel cap in Munich is 180 EUR per night.",
        "Lunch is reimbursed up to 20 EUR.",
    ]
