"""Thumbnails of stored figures, for galleries that show many figures at once.

A figure ``figures/<sha>-<n>.png`` has its thumbnail beside it at
``figures/<sha>-<n>.thumb.jpg`` (``thumbnail_path`` is the one place that says so). The
name is derived, not stored, so no database column records it: whatever has the figure's
path finds its thumbnail, whatever deletes the figure deletes the thumbnail too
(app.removal), and a figure stored before thumbnails existed gets one on first request
(``ensure_thumbnail``).
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ingest import pixels  # noqa: F401 - Pillow's pixel limit, as everywhere else in ingestion

# Longest side in pixels: two columns of a side-panel gallery stay sharp on a HiDPI screen,
# and a photo-like figure comes out at roughly 10-30 KB.
MAX_SIDE_PX = 320
JPEG_QUALITY = 85
SUFFIX = ".thumb.jpg"
MEDIA_TYPE = "image/jpeg"


class ThumbnailError(ValueError):
    """The figure's bytes are not an image Pillow can read."""


def thumbnail_path(figure: Path) -> Path:
    """Where the thumbnail of `figure` lives (``<sha>-<n>.png`` -> ``<sha>-<n>.thumb.jpg``)."""
    return figure.with_name(figure.name.split(".")[0] + SUFFIX)


def make_thumbnail(image_bytes: bytes, max_side: int = MAX_SIDE_PX, source: str = "figure") -> bytes:
    """JPEG bytes of the image scaled to fit `max_side` (aspect kept, never enlarged);
    transparency is flattened onto white, as the figure would look on a page."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as opened:
            opened.draft(None, (max_side, max_side))  # a JPEG decodes at up to 1/8 scale: less memory
            opened.load()
            image = opened.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ThumbnailError(f"cannot make a thumbnail of {source}: not a readable image ({exc})") from exc
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # only ever shrinks
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    else:
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def write_thumbnail(figure: Path, image_bytes: bytes | None = None) -> Path:
    """Write the thumbnail of `figure` (from `image_bytes` when the caller has them already).

    Written under a unique temporary name and renamed into place, so two writers may race
    and a reader never sees half a JPEG."""
    target = thumbnail_path(figure)
    data = make_thumbnail(figure.read_bytes() if image_bytes is None else image_bytes, source=figure.name)
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def ensure_thumbnail(figure: Path, image_bytes: bytes | None = None) -> Path:
    """The thumbnail of `figure`, made now if it has none yet (figures stored before
    thumbnails existed, or whose thumbnail was lost); from `image_bytes` when the caller
    has the figure's bytes at hand."""
    target = thumbnail_path(figure)
    if target.is_file():
        return target
    if image_bytes is None and not figure.is_file():
        raise FileNotFoundError(f"the figure {figure.name} is missing, so it has no thumbnail")
    return write_thumbnail(figure, image_bytes)
