"""Figure thumbnails with real PDFs (PyMuPDF), real SQLite, the real models and the real
REST API: made at ingest and re-index, made on first request for older figures, served
with the same permissions as the figure, and removed with the figure."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from app.models import Chunk, ChunkKind, Document
from app.service import KnowledgeBase, NotFound
from ingest.thumbnails import MAX_SIDE_PX, ThumbnailError, make_thumbnail, thumbnail_path
from tests.conftest import make_settings
from ui.server import create_app

LARGE = (1400, 1000)  # a photo-like figure, far over the thumbnail size
SMALL = (180, 120)  # under the thumbnail size: must not be enlarged


def _photo(size: tuple[int, int], seed: int) -> bytes:
    """A PNG with gradients and grain, compressing about as badly as a photo does."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    pixels = np.clip(pixels + rng.integers(-40, 40, pixels.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


def make_figure_pdf(path: Path, seed: int = 1) -> Path:
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_textbox(
        pymupdf.Rect(72, 60, 520, 200),
        "The settling basin of the Kestrel plant is inspected every spring by the water board. " * 3,
        fontsize=11,
    )
    page.insert_image(pymupdf.Rect(72, 210, 520, 530), stream=_photo(LARGE, seed))
    page.insert_text((72, 550), "Figure 1: Aerial photo of the settling basin.", fontsize=10)
    page.insert_image(pymupdf.Rect(72, 600, 252, 720), stream=_photo(SMALL, seed + 1))
    page.insert_text((72, 740), "Figure 2: The inlet valve.", fontsize=10)
    pdf.save(path)
    return path


def figure_chunks(kb: KnowledgeBase, filename: str | None = None) -> list[Chunk]:
    with kb.database.session() as session:
        query = select(Chunk).join(Document).where(Chunk.kind == ChunkKind.image).order_by(Chunk.id)
        if filename:
            query = query.where(Document.filename == filename)
        return list(session.scalars(query))


def text_chunk_id(kb: KnowledgeBase) -> int:
    with kb.database.session() as session:
        return session.scalar(select(Chunk.id).where(Chunk.kind == ChunkKind.text).limit(1))


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.size


@pytest.fixture(scope="module")
def site(tmp_path_factory, models):
    folder = tmp_path_factory.mktemp("thumb-files")
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("thumb-data")), models=models)
    report = kb.ingest(kb.system_user(), "plant", paths=[make_figure_pdf(folder / "basin-report.pdf")])
    assert not report.failed, report.failed
    kb.get_or_create_collection("other")
    kb.accounts.create_user("reader", "reader-password")
    kb.accounts.create_user("outsider", "outsider-password")
    kb.grant("reader", "plant")
    kb.grant("outsider", "other")
    client = TestClient(create_app(kb, mount_ui=False))

    def token(name: str) -> dict:
        response = client.post("/api/tokens", json={"username": name, "password": f"{name}-password"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    yield {"kb": kb, "client": client, "reader": token("reader"), "outsider": token("outsider")}
    client.close()
    kb.close()


def test_ingest_writes_a_small_thumbnail_beside_each_figure(site):
    kb = site["kb"]
    figures = {Path(c.image_path) for c in figure_chunks(kb)}
    assert len(figures) == 2
    sizes = {}
    for figure in figures:
        thumb = thumbnail_path(figure)
        assert thumb.is_file() and thumb.parent == figure.parent == kb.settings.figures_dir
        with Image.open(figure) as full:
            full_size = full.size
        sizes[full_size] = (_size(thumb.read_bytes()), thumb.stat().st_size, figure.stat().st_size)
    (large_thumb, large_thumb_bytes, large_bytes) = sizes[LARGE]
    assert max(large_thumb) == MAX_SIDE_PX
    assert abs(large_thumb[0] / large_thumb[1] - LARGE[0] / LARGE[1]) < 0.01  # the aspect is kept
    assert large_thumb_bytes * 20 < large_bytes  # what the gallery loads is a small fraction of the figure
    small_thumb, _, _ = sizes[SMALL]
    assert small_thumb == SMALL  # never enlarged


def test_the_api_serves_thumbnails_to_readers_of_the_collection_only(site):
    client, kb = site["client"], site["kb"]
    figure = next(c for c in figure_chunks(kb) if max(Image.open(c.image_path).size) > MAX_SIDE_PX)
    url = f"/api/chunks/{figure.id}/thumbnail"
    shown = client.get(url, headers=site["reader"])
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert shown.content == thumbnail_path(Path(figure.image_path)).read_bytes()
    assert max(_size(shown.content)) == MAX_SIDE_PX
    full = client.get(f"/api/chunks/{figure.id}/view", headers=site["reader"])
    assert full.status_code == 200 and len(shown.content) * 20 < len(full.content)
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer mmkb_forged"}).status_code == 401
    assert client.get(url, headers=site["outsider"]).status_code == 404  # to a non-member it does not exist
    text = client.get(f"/api/chunks/{text_chunk_id(kb)}/thumbnail", headers=site["reader"])
    assert text.status_code == 404 and "not a figure" in text.json()["detail"]
    assert client.get("/api/chunks/999999/thumbnail", headers=site["reader"]).status_code == 404


def test_a_figure_stored_before_thumbnails_existed_gets_one_on_first_request(site):
    client, kb = site["client"], site["kb"]
    figure = figure_chunks(kb)[0]
    thumb = thumbnail_path(Path(figure.image_path))
    expected = thumb.read_bytes()
    thumb.unlink()  # as after an upgrade: the figure is stored, its thumbnail never was

    shown = client.get(f"/api/chunks/{figure.id}/thumbnail", headers=site["reader"])

    assert shown.status_code == 200 and shown.content == expected
    assert thumb.read_bytes() == expected  # stored now, for the next request
    assert not list(kb.settings.figures_dir.glob("*.part"))  # the temporary file was renamed into place


def test_reindex_writes_thumbnails_missing_since_an_older_version(kb, tmp_path):
    kb.ingest(kb.system_user(), "plant", paths=[make_figure_pdf(tmp_path / "basin-report.pdf")])
    thumbs = [thumbnail_path(Path(c.image_path)) for c in figure_chunks(kb)]
    for thumb in thumbs:
        thumb.unlink()
    report = kb.reindex(kb.system_user(), "plant")
    assert report.rebuilt
    assert all(t.is_file() for t in thumbs)


def test_deleting_removes_thumbnails_unless_another_document_uses_the_figure(kb, tmp_path):
    admin = kb.system_user()
    pdf = make_figure_pdf(tmp_path / "basin-report.pdf")
    kb.ingest(admin, "a", paths=[pdf])
    kb.ingest(admin, "b", paths=[pdf])
    in_a, in_b = (next(iter(kb.documents(admin, name))) for name in ("a", "b"))
    figures = {Path(c.image_path) for c in figure_chunks(kb)}
    thumbs = {thumbnail_path(f) for f in figures}
    assert len(thumbs) == 2 and all(t.is_file() for t in thumbs)

    kb.delete_document(admin, "a", in_a.id)
    assert all(t.is_file() for t in thumbs)  # b still shows these figures
    b_figure = figure_chunks(kb)[0]
    assert kb.thumbnail(admin, b_figure.id) in thumbs

    result = kb.delete_document(admin, "b", in_b.id)
    assert not any(t.exists() for t in thumbs) and not any(f.exists() for f in figures)
    assert thumbs <= set(result.files_deleted)
    assert list(kb.settings.figures_dir.iterdir()) == []  # nothing left behind
    with pytest.raises(NotFound):
        kb.thumbnail(admin, b_figure.id)


def test_deleting_a_collection_removes_its_thumbnails(kb, tmp_path):
    admin = kb.system_user()
    kb.ingest(admin, "a", paths=[make_figure_pdf(tmp_path / "basin-report.pdf", seed=1)])
    kb.ingest(admin, "b", paths=[make_figure_pdf(tmp_path / "other-report.pdf", seed=7)])
    a_thumbs = {thumbnail_path(Path(c.image_path)) for c in figure_chunks(kb, "basin-report.pdf")}
    b_thumbs = {thumbnail_path(Path(c.image_path)) for c in figure_chunks(kb, "other-report.pdf")}
    assert len(a_thumbs) == len(b_thumbs) == 2 and not a_thumbs & b_thumbs

    kb.delete_collection(admin, "a")

    assert not any(t.exists() for t in a_thumbs)
    assert all(t.is_file() for t in b_thumbs)


def test_transparency_is_flattened_onto_white():
    image = Image.new("RGBA", (800, 400), (0, 0, 0, 0))  # transparent black, as many PNG exports are
    image.paste((200, 0, 0, 255), (300, 100, 500, 300))
    png = io.BytesIO()
    image.save(png, format="PNG")
    with Image.open(io.BytesIO(make_thumbnail(png.getvalue()))) as thumb:
        assert thumb.size == (MAX_SIDE_PX, MAX_SIDE_PX // 2) and thumb.mode == "RGB"
        corner, centre = thumb.getpixel((2, 2)), thumb.getpixel((MAX_SIDE_PX // 2, MAX_SIDE_PX // 4))
    assert min(corner) > 245  # white, not black
    assert centre[0] > 180 and centre[1] < 40 and centre[2] < 40


def test_unreadable_bytes_are_refused_with_the_figure_named():
    with pytest.raises(ThumbnailError, match="abc-0.png"):
        make_thumbnail(b"not an image at all", source="abc-0.png")
