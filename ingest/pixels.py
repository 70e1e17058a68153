"""Decoding an image within a bounded memory and time.

Every later step scales with the pixels it is handed: PNG-encoding the figure, OCR (which
re-decodes it and Tesseract re-reads it), the thumbnail, the CLIP embedding. A
100-megapixel PNG just under the refusal limit cost 23 s and +820 MB when each step got
the full image. So an image is decoded once and scaled down to WORKING_MAX_PIXELS
straight away; the stored original keeps the full resolution.

- JPEG decodes at 1/2, 1/4 or 1/8 scale directly (draft), never at full size;
- non-interlaced PNG (bit depth 8, or 1-bit grey as scans are) is decoded a strip of rows at
  a time, each strip scaled down before the next is read (ingest.png_strips);
- anything else is decoded whole: at most 4 bytes a pixel, bounded by MAX_IMAGE_PIXELS,
  which is checked from the header before decoding.
"""

from __future__ import annotations

import math

from PIL import Image

from ingest import png_strips

# Refused above this (ingest.loaders says so); Pillow reads it while opening a file.
MAX_IMAGE_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# What ingestion works on: a 300-dpi A4 scan (8.7 MP) keeps every pixel; bigger images are
# scaled to this, where 10-pt text is still as large as at 150 dpi on A2.
WORKING_MAX_PIXELS = 16_000_000


def working_size(width: int, height: int, max_pixels: int = WORKING_MAX_PIXELS) -> tuple[int, int]:
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def reduction_factor(width: int, height: int, max_pixels: int = WORKING_MAX_PIXELS) -> int:
    """The smallest whole factor that brings width x height within max_pixels."""
    return max(1, math.ceil(math.sqrt(width * height / max_pixels)))


def scaled_rgb(image: Image.Image, max_pixels: int = WORKING_MAX_PIXELS) -> Image.Image:
    """`image` (opened, its size already checked, not yet decoded) as RGB of at most
    max_pixels, aspect kept; decoded once, at a reduced scale where the format allows."""
    target = working_size(*image.size, max_pixels)
    if target == image.size:
        return image.convert("RGB")
    # fp is only declared on ImageFile, not on Image.Image
    if image.format == "PNG" and (fp := getattr(image, "fp", None)) is not None:
        strips = png_strips.decode_scaled(fp, reduction_factor(*image.size, max_pixels))
        if strips is not None:
            return strips.convert("RGB")
    image.draft(None, target)  # JPEG: the decoder scales; other formats ignore it
    if image.mode in ("1", "P", "I;16", "I;16B", "I", "F"):
        # Pillow resizes these with nearest-neighbour only, which breaks thin strokes of text.
        image = image.convert(
            "RGBA" if image.mode == "P" and "transparency" in image.info else ("RGB" if image.mode == "P" else "L")
        )
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0).convert("RGB")
