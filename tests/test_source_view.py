"""Opening a cited source: the real PDF page rendered with the cited passage highlighted,
the figure for image chunks, the passage in its text for other formats, permissions."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image
from sqlalchemy import select

from app.models import Chunk, ChunkKind, Document
from app.page_view import ZOOM, page_cache_dir
from app.registry import ModelNotAvailable
from app.service import AccessDenied, EmptyCollection, KnowledgeBase, NotFound
from tests.conftest import SAMPLES, make_settings
from tests.test_formats import FILLER, make_docx

# Distinct sentences, each once on page 2: the chunk holding the fan's part number covers
# some of them, and exactly those must be highlighted.
INTRO_SENTENCES = [
    "Welcome to the maintenance handbook of the pumping station.",
    "Every operator reads this handbook before the first shift.",
    "New staff sign the training register in the control room.",
    "The station runs three pumps that lift water to the upper basin.",
    "Alarms are routed to the duty phone outside office hours.",
    "The spare parts list is reviewed by the supervisor each spring.",
    "Visitors must be accompanied at all times inside the hall.",
    "Hearing protection is required while two pumps are running.",
    "The night shift checks the oil level of every bearing.",
    "Cleaning agents are stored in the yellow locker near the exit.",
]
FAN_SENTENCES = [
    "The replacement cooling fan for the Orca pump has part number QX-FAN-311 and is kept in cabinet seven.",
    "Swap the fan only after the pump has been isolated and locked out.",
    "Log every swap in the station journal with the date and your initials.",
]
FAN_SENTENCE = FAN_SENTENCES[0]


ROOMS_TEXT = (
    "\n".join(
        [f"Room {n} on the ground floor is booked through the facilities desk and seats {n + 4} people." for n in range(1, 25)]
        + ["The server room door code was changed to 5812 in October."]
        + [f"Room {n} on the first floor has a projector and a whiteboard for {n + 2} people." for n in range(30, 50)]
    )
    + "\n"
)


def make_pdf(path: Path) -> Path:
    pdf = pymupdf.open()
    pdf.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 700), FILLER * 10, fontsize=11)
    page = pdf.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 520, 400), " ".join(INTRO_SENTENCES), fontsize=11)
    page.insert_textbox(pymupdf.Rect(72, 520, 520, 760), " ".join(FAN_SENTENCES), fontsize=11)
    pdf.save(path)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory, models):
    folder = tmp_path_factory.mktemp("view-files")
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("view-data")), models=models)
    (folder / "rooms.txt").write_text(ROOMS_TEXT, encoding="utf-8")
    files = [
        make_pdf(folder / "pump-handbook.pdf"),
        folder / "rooms.txt",
        make_docx(folder / "parking.docx"),
        SAMPLES / "danger-high-voltage-sign.jpg",
    ]
    report = kb.ingest(kb.system_user(), "handbooks", paths=files)
    assert not report.failed, report.failed
    kb.get_or_create_collection("empty")
    kb.accounts.create_user("reader", "reader-password")
    kb.accounts.create_user("outsider", "outsider-password")
    kb.grant("reader", "handbooks")
    kb.grant("reader", "empty")
    yield kb
    kb.close()


def chunk_of(kb: KnowledgeBase, filename: str, contains: str = "", kind: ChunkKind = ChunkKind.text) -> tuple[Chunk, Document]:
    with kb.database.session() as session:
        rows = session.execute(
            select(Chunk, Document).join(Document).where(Document.filename == filename, Chunk.kind == kind).order_by(Chunk.id)
        ).all()
    matches = [(c, d) for c, d in rows if contains in c.text]
    assert matches, f"no {kind.value} chunk of {filename} contains {contains!r}"
    return matches[0]


def test_the_cited_pdf_page_is_rendered_with_the_passage_highlighted(site):
    chunk, document = chunk_of(site, "pump-handbook.pdf", "QX-FAN-311")
    assert chunk.page == 2
    shown = site.source_view(site.user("reader"), chunk.id)
    assert shown.kind == "page" and shown.page == 2 and shown.filename == "pump-handbook.pdf"

    highlighted = np.asarray(Image.open(io.BytesIO(shown.png)).convert("RGB")).astype(int)
    with pymupdf.open(document.stored_path) as pdf:
        page = pdf[1]
        plain = np.asarray(
            Image.open(io.BytesIO(page.get_pixmap(matrix=pymupdf.Matrix(ZOOM, ZOOM)).tobytes("png"))).convert("RGB")
        ).astype(int)
        where = {sentence: [r * ZOOM for r in page.search_for(sentence)] for sentence in INTRO_SENTENCES + FAN_SENTENCES}
    assert highlighted.shape == plain.shape
    changed = np.abs(highlighted - plain).sum(axis=2) > 30

    def share_changed(rects) -> float:
        inside = [changed[int(r.y0) : int(r.y1), int(r.x0) : int(r.x1)] for r in rects]
        return sum(int(a.sum()) for a in inside) / sum(a.size for a in inside)

    cited = [s for s in where if s in chunk.text]
    others = [s for s in where if s not in chunk.text]
    assert FAN_SENTENCE in cited and others, (cited, others)
    # Every sentence of the cited passage is under the highlight; the rest of the page is not.
    for sentence in cited:
        assert share_changed(where[sentence]) > 0.6, sentence
    for sentence in others:
        assert share_changed(where[sentence]) < 0.1, sentence
    # The reported boxes are where the pixels changed: the API's caller can point at them.
    assert any(pymupdf.Rect(box).intersects(r) for box in shown.highlights for r in where[FAN_SENTENCE])
    Path("test-output/screenshots").mkdir(parents=True, exist_ok=True)
    Path("test-output/screenshots/source-view-page.png").write_bytes(shown.png)


def test_page_renders_are_cached_and_go_with_the_document(site, tmp_path, models):
    chunk, document = chunk_of(site, "pump-handbook.pdf", "QX-FAN-311")
    cached = page_cache_dir(Path(document.stored_path)) / "2.png"
    site.source_view(site.user("reader"), chunk.id)
    first = cached.stat().st_mtime_ns
    site.source_view(site.user("reader"), chunk.id)
    assert cached.stat().st_mtime_ns == first  # rendered once, reused

    # Deleting the document deletes its cached pages too (nothing of it stays on disk).
    kb = KnowledgeBase(make_settings(tmp_path / "data"), models=models)
    try:
        kb.ingest(kb.system_user(), "c", paths=[make_pdf(tmp_path / "h.pdf")])
        own, own_document = chunk_of(kb, "h.pdf", "QX-FAN-311")
        kb.source_view(kb.system_user(), own.id)
        pages = page_cache_dir(Path(own_document.stored_path))
        assert (pages / "2.png").is_file()
        kb.delete_document(kb.system_user(), "c", own_document.id)
        assert not pages.exists()
    finally:
        kb.close()


def test_an_image_source_opens_the_figure(site):
    chunk, _ = chunk_of(site, "danger-high-voltage-sign.jpg", kind=ChunkKind.image)
    shown = site.source_view(site.user("reader"), chunk.id)
    assert shown.kind == "figure"
    assert shown.png == Path(chunk.image_path).read_bytes()
    assert Image.open(io.BytesIO(shown.png)).size[0] >= 64


def test_a_text_file_source_shows_the_passage_in_its_text(site):
    chunk, _ = chunk_of(site, "rooms.txt", "5812")
    shown = site.source_view(site.user("reader"), chunk.id)
    assert shown.kind == "passage" and shown.png is None
    assert "5812" in shown.passage
    # The text around the passage comes with it, exactly as it stands in the file.
    flat = " ".join(ROOMS_TEXT.split())
    assert shown.before.strip() and shown.after.strip()
    assert f"{' '.join(shown.before.split())} {shown.passage} {' '.join(shown.after.split())}" in flat
    docx_chunk, _ = chunk_of(site, "parking.docx", "north garage")
    assert "north garage" in site.source_view(site.user("reader"), docx_chunk.id).passage


def test_only_readers_of_the_collection_may_open_a_source(site):
    chunk, _ = chunk_of(site, "pump-handbook.pdf", "QX-FAN-311")
    with pytest.raises(AccessDenied):
        site.source_view(site.user("outsider"), chunk.id)
    with pytest.raises(NotFound):
        site.source_view(site.user("reader"), 10**9)


def test_asking_an_empty_collection_says_it_has_no_documents(site):
    with pytest.raises(EmptyCollection, match="empty has no ready documents"):
        site.ask(site.user("reader"), "Where is the fan?", ["empty"])
    with pytest.raises(AccessDenied, match="cannot read any collection"):
        site.ask(site.user("outsider"), "Where is the fan?")


def test_a_missing_generator_is_named_in_the_chat(site, tmp_path, models):
    from app.model_set import ModelSet
    from ui.chat_format import explain

    settings = make_settings(site.settings.data_dir, generator_path=tmp_path / "missing.gguf")
    broken = ModelSet(settings)
    broken.text_embedder = models.text_embedder  # the embedder is fine; only the generator is missing
    kb = KnowledgeBase(settings, models=broken)
    try:
        with pytest.raises(ModelNotAvailable) as failure:
            kb.ask(kb.user("reader"), "What is the part number of the Orca pump fan?", ["handbooks"])
    finally:
        kb.close()
    message = explain(failure.value)
    assert "MMKB_GENERATOR_PATH" in message and "missing.gguf" in message and "not available" in message


def changed_shares(shown, document) -> dict[str, float]:
    """Per sentence of the handbook's page 2: the share of its pixels the highlight changed."""
    highlighted = np.asarray(Image.open(io.BytesIO(shown.png)).convert("RGB")).astype(int)
    with pymupdf.open(document.stored_path) as pdf:
        page = pdf[shown.page - 1]
        plain = np.asarray(
            Image.open(io.BytesIO(page.get_pixmap(matrix=pymupdf.Matrix(ZOOM, ZOOM)).tobytes("png"))).convert("RGB")
        ).astype(int)
        where = {sentence: [r * ZOOM for r in page.search_for(sentence)] for sentence in INTRO_SENTENCES + FAN_SENTENCES}
    changed = np.abs(highlighted - plain).sum(axis=2) > 30
    shares = {}
    for sentence, rects in where.items():
        inside = [changed[int(r.y0) : int(r.y1), int(r.x0) : int(r.x1)] for r in rects]
        shares[sentence] = sum(int(a.sum()) for a in inside) / sum(a.size for a in inside)
    return shares


def box_area(boxes) -> float:
    return sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes)


def test_a_quote_highlights_only_its_sentence_on_the_page(site):
    chunk, document = chunk_of(site, "pump-handbook.pdf", "QX-FAN-311")
    reader = site.user("reader")
    whole = site.source_view(reader, chunk.id)
    quoted = site.source_view(reader, chunk.id, highlight=FAN_SENTENCE)
    assert whole.highlight is None and quoted.highlight == FAN_SENTENCE
    assert quoted.kind == "page" and quoted.passage == chunk.text  # the passage is still the whole chunk

    in_chunk = [s for s in INTRO_SENTENCES + FAN_SENTENCES if s in chunk.text and s != FAN_SENTENCE]
    assert in_chunk, "the chunk must hold more than the quoted sentence for this test to mean anything"
    shares = changed_shares(quoted, document)
    assert shares[FAN_SENTENCE] > 0.6
    for sentence in INTRO_SENTENCES + FAN_SENTENCES:
        if sentence != FAN_SENTENCE:
            assert shares[sentence] < 0.1, sentence  # the rest of the chunk too: only the quote is marked
    whole_shares = changed_shares(whole, document)
    assert all(whole_shares[s] > 0.6 for s in in_chunk)  # ...where the whole-chunk view marks them
    # The quote's highlight is a part of the chunk's.
    assert 0 < box_area(quoted.highlights) < box_area(whole.highlights)
    assert all(any(pymupdf.Rect(box).intersects(pymupdf.Rect(w)) for w in whole.highlights) for box in quoted.highlights)
    Path("test-output/screenshots").mkdir(parents=True, exist_ok=True)
    Path("test-output/screenshots/source-view-quote.png").write_bytes(quoted.png)

    # A quote taken across a line wrap (other whitespace) is still the chunk's text.
    rewrapped = FAN_SENTENCE.replace(" ", "\n", 2).replace(" ", "  ", 3)
    assert site.source_view(reader, chunk.id, highlight=rewrapped).highlight == FAN_SENTENCE


def test_a_highlight_that_is_not_in_the_chunk_is_ignored(site):
    chunk, _ = chunk_of(site, "pump-handbook.pdf", "QX-FAN-311")
    reader = site.user("reader")
    whole = site.source_view(reader, chunk.id)
    elsewhere = next(s for s in INTRO_SENTENCES if s not in chunk.text)  # on the same page, not in this chunk
    for highlight in ("The replacement cooling fan for the Orca pump has part number QX-FAN-999.", elsewhere, "   ", ""):
        shown = site.source_view(reader, chunk.id, highlight=highlight)
        assert shown.highlight is None, highlight
        assert shown.highlights == whole.highlights and shown.png == whole.png  # the whole chunk, as without one

    figure, _ = chunk_of(site, "danger-high-voltage-sign.jpg", kind=ChunkKind.image)
    assert site.source_view(reader, figure.id, highlight="DANGER").kind == "figure"


def test_a_quote_in_a_text_file_marks_only_its_sentence(site):
    chunk, _ = chunk_of(site, "rooms.txt", "5812")
    reader = site.user("reader")
    sentence = "The server room door code was changed to 5812 in October."
    shown = site.source_view(reader, chunk.id, highlight=sentence)
    assert shown.kind == "passage" and shown.highlight == sentence
    lead, marked, trail = shown.marked()
    assert marked == sentence and lead + marked + trail == shown.passage and (lead or trail)
    ignored = site.source_view(reader, chunk.id, highlight="The server room door code was changed to 9999 in October.")
    assert ignored.highlight is None and ignored.marked() == ("", ignored.passage, "")
