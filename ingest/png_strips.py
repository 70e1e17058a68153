"""Scaling a large PNG down while it is decoded, a strip of rows at a time.

Pillow decodes a PNG whole, at up to 4 bytes a pixel: 400 MB for 100 megapixels of RGB,
before any scaling. Here the zlib stream is inflated a strip at a time; each strip goes to
Pillow as a small PNG of its own (the same header but fewer rows, the same palette) and is
scaled down before the next strip is inflated. A PNG row's filter may refer to the row
above, so each strip's PNG starts with the previous strip's last row, already decoded and
stored unfiltered (filter type 0), and that row is dropped again.

Only for what that holds for: not interlaced, 8 bits a sample, or 1-bit grey (scans).
Anything else gives None, and the caller decodes the image whole.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by PNG colour type
# Decoded pixels per strip: 8 MB at 4 bytes a pixel.
STRIP_PIXELS = 2_000_000
_READ = 1 << 20


class _Unsupported(Exception):
    pass


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _exactly(fp: BinaryIO, size: int) -> bytes:
    data = fp.read(size)
    if len(data) != size:
        raise _Unsupported("truncated")
    return data


def _header(fp: BinaryIO) -> tuple[bytes, bytes, int]:
    """IHDR's data, the PLTE and tRNS chunks, and the length of the first IDAT (fp is then at its data)."""
    fp.seek(0)
    if _exactly(fp, 8) != SIGNATURE:
        raise _Unsupported("not a PNG")
    ihdr, palette = b"", b""
    while True:
        length, tag = struct.unpack(">I4s", _exactly(fp, 8))
        if tag == b"IDAT":
            return ihdr, palette, length
        if tag == b"IEND" or length > 1 << 24:
            raise _Unsupported("no image data")
        data = _exactly(fp, length)
        _exactly(fp, 4)  # CRC: Pillow checks it when it reads the file
        if tag == b"IHDR":
            ihdr = data
        elif tag in (b"PLTE", b"tRNS"):
            palette += _chunk(tag, data)


def _compressed(fp: BinaryIO, length: int) -> Iterator[bytes]:
    """The data of the consecutive IDAT chunks, the first of `length` bytes, in pieces."""
    while True:
        while length:
            piece = _exactly(fp, min(length, _READ))
            length -= len(piece)
            yield piece
        _exactly(fp, 4)
        length, tag = struct.unpack(">I4s", _exactly(fp, 8))
        if tag != b"IDAT":
            return


def decode_scaled(fp: BinaryIO, factor: int, strip_pixels: int = STRIP_PIXELS) -> Image.Image | None:
    """The PNG read from `fp`, reduced by `factor` (box filter), in L, LA, RGB or RGBA;
    None where this way does not apply."""
    try:
        return _decode(fp, factor, strip_pixels)
    except (_Unsupported, zlib.error, struct.error, OSError, ValueError, SyntaxError):
        return None


def _decode(fp: BinaryIO, factor: int, strip_pixels: int) -> Image.Image:
    ihdr, palette, first_length = _header(fp)
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", ihdr)
    if interlace or not ((depth == 8 and colour in _CHANNELS) or (depth == 1 and colour == 0)):
        raise _Unsupported("interlaced or an unusual bit depth")
    row_bytes = (width * _CHANNELS[colour] * depth + 7) // 8
    stride = 1 + row_bytes
    strip_rows = max(factor, strip_pixels // width // factor * factor)
    if strip_rows * width > 4 * strip_pixels:
        raise _Unsupported("rows too long to gain anything from strips")
    out: Image.Image | None = None
    above: bytes | None = None  # the last decoded row of the previous strip
    rows_done, top = 0, 0

    def strip(filtered: bytes, rows: int) -> None:
        nonlocal out, above, top
        lead = b"" if above is None else b"\x00" + above
        total = rows + (above is not None)
        header = struct.pack(">IIBBBBB", width, total, depth, colour, 0, 0, 0)
        png = (
            SIGNATURE
            + _chunk(b"IHDR", header)
            + palette
            + _chunk(b"IDAT", zlib.compress(lead + filtered, 0))
            + _chunk(b"IEND", b"")
        )
        with Image.open(io.BytesIO(png)) as opened:
            opened.load()
            decoded = opened.crop((0, total - rows, width, total))
            transparent = "transparency" in opened.info
        above = decoded.crop((0, rows - 1, width, rows)).tobytes()
        if len(above) != row_bytes:
            raise _Unsupported(f"mode {decoded.mode} does not keep the PNG's row layout")
        if decoded.mode == "1":
            decoded = decoded.convert("L")
        elif decoded.mode == "P":
            decoded = decoded.convert("RGBA" if transparent else "RGB")
        reduced = decoded.reduce(factor) if factor > 1 else decoded
        if out is None:
            out = Image.new(reduced.mode, (-(-width // factor), -(-height // factor)))
        out.paste(reduced, (0, top))
        top += reduced.height

    inflater = zlib.decompressobj()
    pending = bytearray()
    wanted = strip_rows * stride

    def last_strip_in() -> bool:
        return rows_done + strip_rows >= height and len(pending) >= (height - rows_done) * stride

    for piece in _compressed(fp, first_length):
        data = piece
        while data and not last_strip_in():
            pending += inflater.decompress(data, wanted)  # bounded: a small piece may inflate to gigabytes
            data = inflater.unconsumed_tail
            while len(pending) >= wanted and rows_done + strip_rows < height:
                strip(bytes(pending[:wanted]), strip_rows)
                del pending[:wanted]
                rows_done += strip_rows
        if last_strip_in():
            break
    else:
        pending += inflater.flush()  # all input consumed: only what zlib still holds
    left = height - rows_done
    if len(pending) < left * stride:
        raise _Unsupported("truncated image data")
    strip(bytes(pending[: left * stride]), left)
    assert out is not None  # strip() always sets it
    return out
