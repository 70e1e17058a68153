"""Scanned PDF pages are OCRed into page text; TIFF (one page per frame) and WebP images are read."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf as fitz
import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from app.models import Chunk, ChunkKind
from ingest.loaders import PDF_MIME, TIFF_MIME, WEBP_MIME, parse_file, sniff_mime
from ingest.ocr import ENGINES, OcrUnavailable, TesseractOcr, load_ocr

# Loads the OCR engines' models: the full suite's, not the fast tier's.
pytestmark = pytest.mark.slow

SCANNED_FACT = "The archive room key is kept by Doctor Okonkwo in cabinet 7."


def text_image(lines: list[str], size: tuple[int, int] = (1240, 1754), font_px: int = 34, angle: float = 0.0) -> Image.Image:
    """A page-sized picture of text, as a scanner would deliver it."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_px)
    for index, line in enumerate(lines):
        draw.text((100, 150 + index * int(font_px * 1.8)), line, font=font, fill=0)
    return image.rotate(angle, fillcolor=255) if angle else image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_scanned_pdf(path: Path) -> Path:
    """Page 1 born-digital, page 2 a scan (one full-page image, no text layer), page 3 digital again."""
    document = fitz.open()
    document.new_page().insert_text((72, 72), "Facilities handbook. The canteen opens at 11:30 on weekdays.", fontsize=11)
    scan = document.new_page()
    scan.insert_image(
        scan.rect, stream=png(text_image(["Keys and access", "", SCANNED_FACT, "Spare keys are at reception."], angle=0.8))
    )
    document.new_page().insert_text((72, 72), "Parking is on level minus two of the north garage.", fontsize=11)
    document.save(path)
    return path


@pytest.mark.parametrize("engine", ENGINES)
def test_a_scanned_page_becomes_ocr_text_on_its_own_page(tmp_path, engine):
    parsed = parse_file(make_scanned_pdf(tmp_path / "handbook.pdf"), PDF_MIME, ocr=load_ocr(engine).read)
    assert [p.page for p in parsed.pages] == [1, 2, 3]
    ocr_text = " ".join(parsed.pages[1].text.split())
    assert "archive room key" in ocr_text and "cabinet 7" in ocr_text and "Okonkwo" in ocr_text
    assert not parsed.images  # the scan is the page's text now, not a figure
    assert "canteen" in parsed.pages[0].text and "Parking" in parsed.pages[2].text


def test_without_ocr_a_scanned_page_stays_a_figure(tmp_path):
    parsed = parse_file(make_scanned_pdf(tmp_path / "handbook.pdf"), PDF_MIME)
    assert not parsed.pages[1].text.strip()
    assert [image.page for image in parsed.images] == [2]


def test_a_page_with_a_text_layer_and_a_photo_is_not_treated_as_a_scan(tmp_path, models):
    document = fitz.open()
    page = document.new_page()
    page.insert_image(page.rect, stream=png(text_image(["PHOTO CAPTION WORDS"])))
    page.insert_text((72, 72), "This page has a real text layer describing the pump maintenance schedule.", fontsize=11)
    document.save(tmp_path / "photo.pdf")
    parsed = parse_file(tmp_path / "photo.pdf", PDF_MIME, ocr=models.ocr.read)
    assert "pump maintenance schedule" in parsed.pages[0].text and "PHOTO CAPTION" not in parsed.pages[0].text
    assert len(parsed.images) == 1


def make_tiff(path: Path) -> Path:
    first = text_image(["Whiteboard one", "Sprint goal: ship the billing export"], size=(900, 400)).convert("RGB")
    second = text_image(["Whiteboard two", "Retro: the staging database ran out of disk"], size=(900, 400)).convert("RGB")
    first.save(path, format="TIFF", save_all=True, append_images=[second], compression="tiff_deflate")
    return path


def make_webp(path: Path) -> Path:
    text_image(["Visitor wifi password: tulip-harbour-42"], size=(900, 300)).convert("RGB").save(path, format="WEBP", quality=90)
    return path


def test_tiff_and_webp_are_sniffed_by_content_and_tiff_pages_are_pages(tmp_path):
    tiff, webp = make_tiff(tmp_path / "board.tif"), make_webp(tmp_path / "wifi.webp")
    assert sniff_mime(tiff.read_bytes()[:2048]) == TIFF_MIME
    assert sniff_mime(webp.read_bytes()[:2048]) == WEBP_MIME
    assert sniff_mime(b"MM\x00*\x00\x00\x00\x08") == TIFF_MIME  # big-endian TIFF
    assert sniff_mime(b"RIFF\x10\x00\x00\x00WAVEfmt ") is None  # RIFF, but audio
    parsed = parse_file(tiff, TIFF_MIME)
    assert parsed.page_count == 2 and [image.page for image in parsed.images] == [1, 2]
    assert [image.standalone for image in parsed.images] == [False, False]
    assert all(Image.open(io.BytesIO(image.png_bytes)).size == (900, 400) for image in parsed.images)
    one = parse_file(webp, WEBP_MIME)
    assert one.page_count == 1 and one.images[0].standalone and one.images[0].width == 900


@pytest.fixture(scope="module")
def scans_kb(tmp_path_factory, models):
    from app.service import KnowledgeBase
    from tests.conftest import make_settings

    folder = tmp_path_factory.mktemp("scans-in")
    make_scanned_pdf(folder / "handbook.pdf")
    make_tiff(folder / "whiteboards.tiff")
    make_webp(folder / "wifi.webp")
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("scans-data")), models=models)
    report = kb.ingest(kb.system_user(), "scans", paths=[folder])
    assert [f.outcome.value for f in report.files] == ["ingested"] * 3, report.files
    yield kb
    kb.close()


@pytest.mark.parametrize(
    "question, filename, page, kind",
    [
        ("Who keeps the archive room key?", "handbook.pdf", 2, "text"),
        ("What filled up the disk of the staging database?", "whiteboards.tiff", 2, "image"),
        ("What is the visitor wifi password?", "wifi.webp", 1, "image"),
    ],
)
def test_scanned_pages_and_new_image_types_are_found_and_cited(scans_kb, question, filename, page, kind):
    sources, _ = scans_kb._answerer().retrieve(question, scans_kb.readable_collections(scans_kb.system_user(), ["scans"]))
    assert (sources[0].filename, sources[0].page, sources[0].kind) == (filename, page, kind)


def test_ocr_text_is_stored_as_the_scanned_pages_text_chunks(scans_kb):
    with scans_kb.database.session() as session:
        rows = session.execute(select(Chunk.page, Chunk.kind, Chunk.text)).all()
    assert any(page == 2 and kind == ChunkKind.text and "cabinet 7" in text for page, kind, text in rows)


def test_a_missing_tesseract_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract program on this PATH
    with pytest.raises(OcrUnavailable, match="apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim"):
        TesseractOcr()


def test_missing_tesseract_language_data_is_named():
    with pytest.raises(OcrUnavailable, match="lacks the language data xyz"):
        TesseractOcr(languages=("eng", "xyz"))


def test_a_scanned_pdf_fails_alone_with_the_reason_when_the_ocr_engine_is_missing(tmp_path, models, monkeypatch):
    from app.model_set import ModelSet
    from app.service import KnowledgeBase
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "data", ocr_engine="tesseract")
    own_models = ModelSet(settings)
    own_models.text_embedder = models.text_embedder
    kb = KnowledgeBase(settings, models=own_models)
    folder = tmp_path / "in"
    folder.mkdir()
    make_scanned_pdf(folder / "scan.pdf")
    (folder / "notes.txt").write_text("The visitor badge is green.", encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    report = kb.ingest(kb.system_user(), "c", paths=[folder])
    kb.close()
    outcomes = {f.filename: (f.outcome.value, f.error) for f in report.files}
    assert outcomes["notes.txt"] == ("ingested", None)
    assert outcomes["scan.pdf"][0] == "failed" and "tesseract program is not installed" in outcomes["scan.pdf"][1]
