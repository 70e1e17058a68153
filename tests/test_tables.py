"""PDF tables become their own chunks that read row by row: every value with its column's
name ("State: Texas | Totals: 146,982"), forms as "label: value" lines; what the table
detector finds on running text or empty form boxes stays page text. The PDFs are real:
the bundled samples and small ones drawn here with PyMuPDF."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest
from sqlalchemy import select

from app.models import Chunk, ChunkKind, Document
from app.page_view import locate_passage
from ingest import loaders
from ingest.chunking import chunk_file, chunk_tables, table_lines
from ingest.loaders import PDF_MIME, parse_file
from ingest.types import TableText
from tests.conftest import SAMPLES

# (file, page, a body row, how that row reads in its chunk) for every table drawn by samples/make_samples.py
SAMPLE_TABLES = [
    ("solar-inverter-manual.pdf", 2, ["Maximum DC input voltage", "600 V"], "Maximum DC input voltage: 600 V"),
    (
        "solar-inverter-manual.pdf",
        4,
        ["E-214", "Insulation resistance too low", "Inspect PV cables and connectors"],
        "Code: E-214 | Meaning: Insulation resistance too low | Action: Inspect PV cables and connectors",
    ),
    ("employee-travel-policy.pdf", 3, ["Munich", "180 EUR"], "City: Munich | Nightly cap (room only): 180 EUR"),
    (
        "greenhouse-report-2025.pdf",
        4,
        ["B3", "Interlighting", "93.8 %", "8.5", "258"],
        "Bay: B3 | Treatment: Interlighting | Class I share: 93.8 % | Brix: 8.5 | Lighting kWh/m2: 258",
    ),
]


def words_count(texts):
    return [len(text.split()) for text in texts]


def table_chunks(parsed, table_tokens: int = 200) -> list[str]:
    return [c.text for c in chunk_file(parsed, words_count, 100, 10, table_tokens) if c.char_start is None]


@pytest.mark.parametrize("filename, page, row, line", SAMPLE_TABLES)
def test_sample_pdf_tables_are_found_with_their_cells_and_leave_the_page_text(filename, page, row, line):
    parsed = parse_file(SAMPLES / filename, PDF_MIME)
    tables = [t for t in parsed.tables if t.page == page]
    assert len(tables) == 1
    assert row in tables[0].rows
    # The table is indexed once, as a table: its rows are not also run-on page text.
    page_text = next(p.text for p in parsed.pages if p.page == page)
    assert not any(all(cell in text_line for cell in row) for text_line in page_text.splitlines())
    assert any(line in chunk.split("\n") for chunk in table_chunks(parsed))


@pytest.mark.parametrize("filename, page", sorted({(t[0], t[1]) for t in SAMPLE_TABLES}))
def test_tables_ruled_in_bands_are_read_as_the_layout_model_reads_them_without_it(monkeypatch, filename, page):
    """The sample tables are ruled only horizontally: their rules mark them out, so the page
    skips PyMuPDF's layout model (~0.3 s a page) and still gets exactly the model's tables
    (area, rows, header, context). Guards the stand-in for the model's table areas
    (loaders._tables_in) against a PyMuPDF upgrade that reads them differently."""
    with pymupdf.open(SAMPLES / filename) as pdf:
        words = pdf[page - 1].get_text("words", sort=True)
        with_model = loaders._read_tables(pdf[page - 1], page, pdf[page - 1].find_tables().tables, words)
    calls = []
    monkeypatch.setattr(pymupdf, "_get_layout", lambda *args, **kwargs: calls.append(args))
    with pymupdf.open(SAMPLES / filename) as pdf:
        without = loaders._page_tables(pdf[page - 1], page)
    assert calls == []
    assert len(with_model) == 1
    assert [(tuple(box), table) for box, table in without] == [(tuple(box), table) for box, table in with_model]


# --- drawing small PDFs -------------------------------------------------------------------------


def cell(page, rect, lines, align="left", size=8, font="helv"):
    """A ruled cell with one text line per entry of `lines` ("" leaves a line empty)."""
    rect = pymupdf.Rect(rect)
    page.draw_rect(rect, color=(0, 0, 0), width=0.5)
    y = rect.y0 + 9
    for text in lines:
        if text:
            width = pymupdf.get_text_length(text, fontname=font, fontsize=size)
            x = {"left": rect.x0 + 3, "right": rect.x1 - 3 - width, "center": (rect.x0 + rect.x1 - width) / 2}[align]
            page.insert_text((x, y), text, fontname=font, fontsize=size)
        y += 11


def grid(page, xs, ys, texts: dict, size=9, font="helv"):
    """A fully ruled grid; texts[(row, col)] is one line, or a paragraph wrapped in its cell."""
    for r, (y0, y1) in enumerate(zip(ys, ys[1:])):
        for c, (x0, x1) in enumerate(zip(xs, xs[1:])):
            page.draw_rect(pymupdf.Rect(x0, y0, x1, y1), color=(0, 0, 0), width=0.5)
            text = texts.get((r, c))
            if text and pymupdf.get_text_length(text, fontname=font, fontsize=size) < x1 - x0 - 6:
                page.insert_text((x0 + 3, min(y0 + 13, y1 - 4)), text, fontsize=size, fontname=font)
            elif text:
                assert page.insert_textbox(pymupdf.Rect(x0 + 3, y0 + 3, x1 - 3, y1 - 2), text, fontsize=size, fontname=font) >= 0


COLUMNS = [(40, 120), (120, 180), (180, 240), (240, 300), (300, 370)]
BANDS = [
    [("Alabama", "18,870", "14", "15", "71,137"), ("Alaska", "209", "9", "3", "7,095"), ("Arizona", "2,303", "5", "3", "27,087")],
    [
        ("Arkansas", "3,298", "12", "6", "25,048"),
        ("California", "98,452", "0", "0", "180,116"),
        ("Texas", "1,234,567,890", "29", "20", "146,982"),
    ],
]
NOTE = [
    "*These statistics count background checks initiated through the registry;",
    "they do not represent the number of firearms sold in any state.",
]


def wide_table_pdf(path: Path) -> Path:
    """A statistics sheet like the FBI's NICS table: a title row, a two-level header set in
    one merged cell ("Pre-Pawn" over "Handgun" and "Long Gun"), rows shaded in bands of
    three (one ruled cell per band and column), right-aligned numbers (one so long that it
    reaches into the column on its left), a totals row and a footnote row."""
    document = pymupdf.open()
    page = document.new_page(width=595, height=842)
    cell(page, (40, 80, 370, 100), ["Firearm checks by state - November"], "center", size=10)
    cell(page, (40, 100, 120, 130), ["", "State"])
    cell(page, (120, 100, 180, 130), ["", "Permit"], "center")
    page.draw_rect(pymupdf.Rect(180, 100, 300, 130), color=(0, 0, 0), width=0.5)
    page.insert_text((225, 109), "Pre-Pawn", fontsize=8)
    page.insert_text((190, 120), "Handgun", fontsize=8)
    page.insert_text((250, 120), "Long Gun", fontsize=8)
    cell(page, (300, 100, 370, 130), ["", "Totals"], "center")
    y = 130
    for band in BANDS:
        height = 11 * len(band) + 4
        for (x0, x1), values in zip(COLUMNS, zip(*band)):
            cell(page, (x0, y, x1, y + height), list(values), "left" if x0 == 40 else "right")
        y += height
    for (x0, x1), value in zip(COLUMNS, ("Totals", "1,239,478,052", "69", "47", "455,467")):
        cell(page, (x0, y, x1, y + 15), [value], "left" if x0 == 40 else "right")
    cell(page, (40, y + 15, 370, y + 55), NOTE)
    document.save(path)
    return path


def test_a_wide_table_names_every_value_and_splits_rows_banded_together(tmp_path):
    parsed = parse_file(wide_table_pdf(tmp_path / "checks.pdf"), PDF_MIME)
    (table,) = parsed.tables
    assert table.header and table.rows[0] == ["State", "Permit", "Pre-Pawn Handgun", "Pre-Pawn Long Gun", "Totals"]
    # One row per state, each number in its own column (the long one by its centre).
    assert table.rows[1:] == [list(row) for band in BANDS for row in band] + [["Totals", "1,239,478,052", "69", "47", "455,467"]]
    assert table.context == "Firearm checks by state - November"  # the title row
    # Title and footnote stay page text: the note answers questions too.
    page_text = " ".join(parsed.pages[0].text.split())
    assert "do not represent the number of firearms sold" in page_text and "Firearm checks by state" in page_text
    assert "71,137" not in page_text
    (chunk,) = table_chunks(parsed)
    lines = chunk.split("\n")
    assert lines[:2] == [
        "Firearm checks by state - November",
        "| State | Permit | Pre-Pawn Handgun | Pre-Pawn Long Gun | Totals |",
    ]
    assert "State: Texas | Permit: 1,234,567,890 | Pre-Pawn Handgun: 29 | Pre-Pawn Long Gun: 20 | Totals: 146,982" in lines
    assert "State: Totals | Permit: 1,239,478,052 | Pre-Pawn Handgun: 69 | Pre-Pawn Long Gun: 47 | Totals: 455,467" in lines


def test_cells_wrapped_side_by_side_stay_one_row(tmp_path):
    """Lines of one ruled row are records only where a column holds a number on each; cells
    wrapped over two lines (here with numbers in them) continue their row."""
    document = pymupdf.open()
    page = document.new_page(width=595, height=842)
    rows = [
        (["Code"], ["Meaning"], ["Action"]),
        (
            ["E-101"],
            ["Grid voltage out of range,", "above 253 V for 10 minutes"],
            ["Check grid connection, wait", "5 minutes for reconnect"],
        ),
        (["E-214"], ["Insulation resistance too low"], ["Inspect PV cables and connectors"]),
        (
            ["E-305", "(old E-35)"],
            ["Over-temperature above 75 °C"],
            ["Improve ventilation, clean the", "air filter every 6 months"],
        ),
    ]
    y = 80
    for r, row in enumerate(rows):  # ruled only horizontally, as the samples' tables
        page.draw_line((50, y), (545, y), width=0.5)
        for x, lines in zip((50, 120, 300), row):
            for k, text in enumerate(lines):
                page.insert_text((x + 3, y + 11 + 11 * k), text, fontsize=9, fontname="hebo" if r == 0 else "helv")
        y += 11 * max(len(cell) for cell in row) + 6
    page.draw_line((50, y), (545, y), width=0.5)
    page.draw_line((50, y + 1), (545, y + 1), width=0.5)
    path = tmp_path / "codes.pdf"
    document.save(path)
    (table,) = parse_file(path, PDF_MIME).tables
    assert table.rows == [
        ["Code", "Meaning", "Action"],
        ["E-101", "Grid voltage out of range, above 253 V for 10 minutes", "Check grid connection, wait 5 minutes for reconnect"],
        ["E-214", "Insulation resistance too low", "Inspect PV cables and connectors"],
        ["E-305 (old E-35)", "Over-temperature above 75 °C", "Improve ventilation, clean the air filter every 6 months"],
    ]


FILLER = (
    "The committee met on Tuesday to review the draft budget for the coming year. Members agreed that the "
    "maintenance reserve should grow by a tenth, and asked the treasurer to prepare a revised plan before the "
    "next meeting, with the costs of the roof repair shown separately from the routine upkeep of the hall."
)
OTHER = (
    "Volunteers are still needed for the spring fair. Anyone who can help with the stalls, the raffle or the "
    "tea tent should add their name to the list at the reception desk, where the rota for each day is also posted."
)


def test_detected_tables_that_are_text_stay_page_text(tmp_path):
    document = pymupdf.open()
    # A bulletin's form boxes, nearly all empty.
    page = document.new_page(width=595, height=842)
    page.insert_text((50, 60), "Election bulletin", fontsize=12)
    grid(page, [50, 200, 300, 400, 545], [80, 110, 140, 170, 200], {(0, 0): "Precinct RUN 12/3/2014", (2, 1): "Ward 7"})
    # Two columns of running text in ruled boxes.
    page = document.new_page(width=595, height=842)
    grid(page, [50, 295, 545], [80, 220, 360], {(0, 0): FILLER, (0, 1): OTHER, (1, 0): OTHER, (1, 1): FILLER})
    # One giant cell: a long remark beside a short field.
    page = document.new_page(width=595, height=842)
    grid(
        page, [50, 150, 545], [80, 100, 260], {(0, 0): "Date", (0, 1): "12 May", (1, 0): "Remarks", (1, 1): FILLER + " " + OTHER}
    )
    path = tmp_path / "bulletin.pdf"
    document.save(path)
    for page in pymupdf.open(path):
        assert page.find_tables().tables, "the detector must fire for this test to mean anything"

    parsed = parse_file(path, PDF_MIME)
    assert parsed.tables == []
    texts = [" ".join(p.text.split()) for p in parsed.pages]
    assert "Precinct RUN 12/3/2014" in texts[0] and "Ward 7" in texts[0]
    assert texts[1].count("Volunteers are still needed") == 2 and texts[1].count("The committee met") == 2
    assert "12 May" in texts[2] and "routine upkeep of the hall" in texts[2]


def test_forms_become_label_value_lines(tmp_path):
    document = pymupdf.open()
    page = document.new_page(width=595, height=842)
    page.insert_text((50, 60), "Application for a parking permit", fontsize=12)
    grid(
        page,
        [50, 200, 545],
        [80, 100, 120, 140, 160],
        {
            (0, 0): "Applicant",
            (0, 1): "Jane Doe",
            (1, 0): "Date of birth",
            (1, 1): "02/01/1980",
            (2, 0): "Licence plate",
            (2, 1): "B-XY 123",
            (3, 0): "Garage",
            (3, 1): "North, level -2",
        },
    )
    page = document.new_page(width=595, height=842)
    grid(
        page,
        [50, 150, 300, 400, 545],
        [80, 100, 120],
        {
            (0, 0): "Name:",
            (0, 1): "Jane Doe",
            (0, 2): "Badge:",
            (0, 3): "Green",
            (1, 0): "Phone:",
            (1, 1): "555-0100",
            (1, 2): "Floor:",
            (1, 3): "3",
        },
    )
    path = tmp_path / "form.pdf"
    document.save(path)
    parsed = parse_file(path, PDF_MIME)
    assert [t.header for t in parsed.tables] == [False, False]  # no header row: the first row is a pair too
    pairs, labelled = table_chunks(parsed)
    assert pairs.split("\n") == [
        "Application for a parking permit",
        "Applicant: Jane Doe",
        "Date of birth: 02/01/1980",
        "Licence plate: B-XY 123",
        "Garage: North, level -2",
    ]
    assert labelled.split("\n") == ["Name: Jane Doe | Badge: Green", "Phone: 555-0100 | Floor: 3"]


SENATE_ROWS = [
    ["DOCUMENT NO.", "PAYEE NAME", "DESCRIPTION", "AMOUNT"],
    ["DHAW20190031", "CITIBANK - SENATOR IBA CARD", "TRAIN FARE WASHINGTON DC TO NEW YORK NY AND RETURN", "618.00"],
    ["DHAW20190001", "CITIBANK - TRAVEL CBA CARD", "AIRFARE KANSAS CITY TO WASHINGTON DC AND RETURN", "920.68"],
]


def test_a_table_on_a_turned_page_reads_as_shown(tmp_path):
    """A landscape report stored as a portrait page turned by /Rotate (as the Senate's
    expenditure reports are): its words come in the unturned page's coordinates."""
    source = pymupdf.open()
    landscape = source.new_page(width=792, height=612)
    grid(
        landscape,
        [50, 160, 300, 620, 720],
        [80, 94, 108, 122],
        {(r, c): text for r, row in enumerate(SENATE_ROWS) for c, text in enumerate(row)},
        size=8,
    )
    landscape.insert_text((50, 60), "Expenditures of the office, first quarter", fontsize=11)
    document = pymupdf.open()
    page = document.new_page(width=612, height=792)
    page.show_pdf_page(page.rect, source, 0, rotate=90)
    page.set_rotation(90)
    path = tmp_path / "turned.pdf"
    document.save(path)
    assert pymupdf.open(path)[0].rotation == 90

    parsed = parse_file(path, PDF_MIME)
    (table,) = parsed.tables
    assert table.rows == SENATE_ROWS
    assert " ".join(parsed.pages[0].text.split()) == "Expenditures of the office, first quarter"
    (chunk,) = table_chunks(parsed)
    assert (
        "DOCUMENT NO.: DHAW20190031 | PAYEE NAME: CITIBANK - SENATOR IBA CARD | DESCRIPTION: TRAIN FARE WASHINGTON DC"
        " TO NEW YORK NY AND RETURN | AMOUNT: 618.00"
    ) in chunk.split("\n")


def test_a_chinese_table_keeps_row_labels_with_their_values(tmp_path):
    """Like table 7.5 of a land-use standard: a header cell wrapped over two lines, a group
    header over two columns, and a row label merged down two rows."""

    def box(page, rect, lines):
        rect = pymupdf.Rect(rect)
        page.draw_rect(rect, color=(0, 0, 0), width=0.5)
        y = (rect.y0 + rect.y1) / 2 - (len(lines) - 1) * 6 + 3
        for text in lines:
            page.insert_text((rect.x0 + 4, y), text, fontname="china-s", fontsize=9)
            y += 12

    document = pymupdf.open()
    page = document.new_page(width=595, height=842)
    page.insert_text((150, 90), "表7.5 停车区用地指标基准值（公顷/处）", fontname="china-s", fontsize=10)
    x = [60, 130, 180, 280, 400, 520]
    box(page, (x[0], 100, x[1], 140), ["公路技术", "等级"])
    box(page, (x[1], 100, x[2], 140), ["车道数"])
    box(page, (x[2], 100, x[3], 140), ["用地指标基准值"])
    box(page, (x[3], 100, x[5], 120), ["编制条件"])
    box(page, (x[3], 120, x[4], 140), ["路段交通量Q"])
    box(page, (x[4], 120, x[5], 140), ["大型车比例u（%）"])
    box(page, (x[0], 140, x[1], 180), ["高速公路"])
    for r, (lanes, value, volume) in enumerate([("八", "2.5000", "60000≤Q＜80000"), ("六", "2.1333", "45000≤Q＜60000")]):
        y = 140 + 20 * r
        for c, text in enumerate([lanes, value, volume, "20＜u≤30"], start=1):
            box(page, (x[c], y, x[c + 1], y + 20), [text])
    for c, text in enumerate(["一级公路", "四", "0.6667", "15000≤Q＜30000", "20＜u≤30"]):
        box(page, (x[c], 180, x[c + 1], 200), [text])
    path = tmp_path / "standard.pdf"
    document.save(path)

    parsed = parse_file(path, PDF_MIME)
    (table,) = parsed.tables
    assert table.context == "表7.5 停车区用地指标基准值（公顷/处）"
    assert table.rows == [
        ["公路技术等级", "车道数", "用地指标基准值", "编制条件 路段交通量Q", "编制条件 大型车比例u（%）"],
        ["高速公路", "八", "2.5000", "60000≤Q＜80000", "20＜u≤30"],
        ["高速公路", "六", "2.1333", "45000≤Q＜60000", "20＜u≤30"],  # the merged label on each of its rows
        ["一级公路", "四", "0.6667", "15000≤Q＜30000", "20＜u≤30"],
    ]
    (chunk,) = table_chunks(parsed)
    assert (
        "公路技术等级: 高速公路 | 车道数: 六 | 用地指标基准值: 2.1333 | 编制条件 路段交通量Q: 45000≤Q＜60000 | "
        "编制条件 大型车比例u（%）: 20＜u≤30"
    ) in chunk.split("\n")


def test_a_table_continued_on_the_next_page_gets_its_header(tmp_path):
    header = ["Notice Date", "Company", "City", "Employees"]
    rows = [[f"07/{day:02d}/2015", f"Company {day}", "San Jose", str(10 * day)] for day in range(1, 9)]
    document = pymupdf.open()
    for part, bold_header in ((rows[:4], True), (rows[4:], False)):
        page = document.new_page(width=595, height=842)
        body = ([header] if bold_header else []) + part
        grid(
            page,
            [50, 150, 300, 420, 545],
            [80 + 20 * i for i in range(len(body) + 1)],
            {(r, c): text for r, row in enumerate(body) for c, text in enumerate(row)},
        )
    path = tmp_path / "warn.pdf"
    document.save(path)
    parsed = parse_file(path, PDF_MIME)
    assert [t.page for t in parsed.tables] == [1, 2]
    assert [t.rows[0] for t in parsed.tables] == [header, header]
    assert parsed.tables[1].rows[1:] == rows[4:]
    assert "Notice Date: 07/05/2015 | Company: Company 5 | City: San Jose | Employees: 50" in table_chunks(parsed)[1]


# --- rendering ----------------------------------------------------------------------------------


def test_a_short_table_is_one_chunk():
    (piece,) = chunk_tables([TableText(page=1, rows=[["City", "Cap"], ["Munich", "180 EUR"], ["Paris | Lyon", "200 EUR"]])])
    assert piece.text == "| City | Cap |\nCity: Munich | Cap: 180 EUR\nCity: Paris \\| Lyon | Cap: 200 EUR"


def test_rows_name_their_values_and_leave_empty_cells_out():
    table = TableText(
        page=1,
        context="Estimated costs",
        rows=[
            ["Action", "Labor cost", "Parts cost", "Cost on U.S. operators:"],
            ["AFM revisions", "1 work-hour × $85 per hour = $85", "", "$6,205"],
            ["Phase 2", "", "", ""],  # a row across the table: a section label
        ],
    )
    head, body = table_lines(table)
    assert head == ["| Action | Labor cost | Parts cost | Cost on U.S. operators |"]
    assert body == [
        "Action: AFM revisions | Labor cost: 1 work-hour × $85 per hour = $85 | Cost on U.S. operators: $6,205",
        "Phase 2",
    ]


def test_two_column_tables_without_telling_names_are_pairs():
    parameters = TableText(page=1, rows=[["Parameter", "Value"], ["Weight", "17.5 kg"], ["Rating", "IP65"]])
    assert table_lines(parameters) == ([], ["Weight: 17.5 kg", "Rating: IP65"])
    form = TableText(page=1, header=False, rows=[["Name:", "Jane Doe"], ["Garage", "North"], ["Remarks", ""]])
    assert table_lines(form) == ([], ["Name: Jane Doe", "Garage: North", "Remarks"])
    named = TableText(page=1, rows=[["City", "Nightly cap"], ["Munich", "180 EUR"]])
    assert table_lines(named) == (["| City | Nightly cap |"], ["City: Munich | Nightly cap: 180 EUR"])
    lone = TableText(page=1, rows=[["Badge", "Garage"]])  # one row names nothing: it is the content
    assert table_lines(lone) == ([], ["Badge: Garage"])


def test_a_long_table_is_cut_between_rows_and_every_piece_has_the_header():
    rows = [["Item", "Owner", "Due"]] + [
        [f"Task number {i} of the migration plan", f"Person {i}", f"2026-{i % 12 + 1:02d}-01"] for i in range(60)
    ]
    table = TableText(page=7, rows=rows, context="Migration tasks")
    pieces = chunk_tables([table], max_tokens=80, first_ordinal=5)
    head, body = table_lines(table)
    assert head == ["| Item | Owner | Due |"]
    assert body[0] == "Item: Task number 0 of the migration plan | Owner: Person 0 | Due: 2026-01-01"
    assert len(pieces) > 3
    assert [p.ordinal for p in pieces] == list(range(5, 5 + len(pieces)))
    body_seen = []
    for piece in pieces:
        lines = piece.text.split("\n")
        assert lines[:2] == ["Migration tasks", head[0]] and piece.page == 7
        assert all(line in body for line in lines[2:])  # only whole rows
        body_seen += lines[2:]
    assert body_seen == body  # every row once, in order


def test_a_table_too_wide_for_its_head_keeps_the_names_in_every_row():
    names = ["State"] + [f"Column {i}" for i in range(20)]
    rows = [names] + [[state] + [str(i * 100) for i in range(20)] for state in ("Texas", "Utah")]
    pieces = chunk_tables([TableText(page=1, rows=rows, context="Checks")], count_tokens=words_count, max_tokens=60)
    assert [p.text.split("\n") for p in pieces] == [
        ["Checks", "State: Texas | " + " | ".join(f"Column {i}: {i * 100}" for i in range(20))],
        ["Checks", "State: Utah | " + " | ".join(f"Column {i}: {i * 100}" for i in range(20))],
    ]


def test_a_table_chunk_is_highlighted_on_its_page():
    """The source view finds a cited table chunk's passage on the page by aligning words."""
    parsed = parse_file(SAMPLES / "solar-inverter-manual.pdf", PDF_MIME)
    chunks = [c for c in chunk_file(parsed, words_count, 100, 10, 200) if c.char_start is None]
    with pymupdf.open(SAMPLES / "solar-inverter-manual.pdf") as pdf:
        for chunk, label in ((chunks[0], "Maximum DC input voltage"), (chunks[1], "Insulation resistance too low")):
            page = pdf[chunk.page - 1]
            boxes = locate_passage(page, chunk.text)
            # The row in the table (the label is in the running text too).
            (table,) = page.find_tables().tables
            (target,) = [t for t in page.search_for(label) if t in pymupdf.Rect(table.bbox) + (-1, -1, 1, 1)]
            assert any(box.intersects(target) for box in boxes), label


def test_ingested_tables_are_stored_whole_and_retrieved(kb):
    report = kb.ingest(kb.system_user(), "docs", paths=[SAMPLES / name for name in {t[0] for t in SAMPLE_TABLES}])
    assert not report.failed
    with kb.database.session() as session:
        table_chunks_stored = [
            (filename, chunk.page, chunk.text)
            for chunk, filename in session.execute(
                select(Chunk, Document.filename).join(Document).where(Chunk.kind == ChunkKind.text, Chunk.char_start.is_(None))
            )
        ]
    assert sorted((f, p) for f, p, _ in table_chunks_stored) == sorted((f, p) for f, p, _, _ in SAMPLE_TABLES)
    for filename, page, _, line in SAMPLE_TABLES:
        text = next(t for f, p, t in table_chunks_stored if (f, p) == (filename, page))
        assert line in text.split("\n")
    sources, _ = kb._answerer().retrieve(
        "What is the nightly hotel cap in Munich?", kb.readable_collections(kb.system_user(), ["docs"])
    )
    assert any("City: Munich | Nightly cap (room only): 180 EUR" in s.text for s in sources[:3])
    sources, _ = kb._answerer().retrieve("What does error code E-214 mean?", kb.readable_collections(kb.system_user(), ["docs"]))
    assert any("Code: E-214 | Meaning: Insulation resistance too low" in s.text for s in sources[:3])
