from pathlib import Path

import pytest

from ingest.loaders import JPEG_MIME, PDF_MIME, PNG_MIME, parse_file, safe_filename, sniff_mime
from ingest.types import IngestError

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "collection"


def test_type_is_sniffed_from_content_not_name(tmp_path):
    png = (SAMPLES / "monthly-pv-yield-bar-chart.png").read_bytes()
    assert sniff_mime(png[:16]) == PNG_MIME
    assert sniff_mime((SAMPLES / "danger-high-voltage-sign.jpg").read_bytes()[:16]) == JPEG_MIME
    assert sniff_mime((SAMPLES / "solar-inverter-manual.pdf").read_bytes()[:16]) == PDF_MIME
    assert sniff_mime(b"MZ\x90\x00 this is a windows executable") is None
    assert sniff_mime(b"\x7fELF\x02\x01\x01") is None


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("../../x.pdf", "x.pdf"),
        ("C:\\Users\\a\\report.pdf", "report.pdf"),
        ("...hidden.pdf", "hidden.pdf"),
        ("bad\x00name.pdf", "badname.pdf"),
        ("", "unnamed"),
        ("Ünïcödé 报告.pdf", "Ünïcödé 报告.pdf"),
    ],
)
def test_filenames_lose_directories_and_control_characters(raw, expected):
    assert safe_filename(raw) == expected


def test_pdf_pages_are_numbered_and_figures_keep_captions():
    parsed = parse_file(SAMPLES / "solar-inverter-manual.pdf", PDF_MIME)
    assert parsed.page_count == 5
    assert [p.page for p in parsed.pages] == [1, 2, 3, 4, 5]
    assert "600 V" in parsed.pages[1].text
    figures = [img for img in parsed.images if img.page == 3]
    assert figures and figures[0].caption.startswith("Figure 1: Connection overview")


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.9])
def test_truncated_pdf_is_a_clear_error(tmp_path, keep):
    whole = (SAMPLES / "solar-inverter-manual.pdf").read_bytes()
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(whole[: int(len(whole) * keep)])
    with pytest.raises(IngestError, match="PDF"):
        parse_file(broken, PDF_MIME)


def test_encrypted_pdf_is_refused_with_reason(tmp_path):
    import pymupdf

    source = pymupdf.open(SAMPLES / "employee-travel-policy.pdf")
    locked = tmp_path / "locked.pdf"
    source.save(locked, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")
    with pytest.raises(IngestError, match="encrypted"):
        parse_file(locked, PDF_MIME)
