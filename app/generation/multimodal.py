"""Images inside chat messages, in the OpenAI format every backend speaks.

A message's ``content`` is either a string or a list of parts: ``{"type": "text", "text":
...}`` and ``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}``.
Figures travel as ``data:`` URIs so that a remote server needs no access to our files and
a local model gets the exact bytes that were stored at ingestion.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Message = dict[str, Any]

_DATA_URI_RE = re.compile(r"^data:(image/[\w.+-]+);base64,(.*)$", re.DOTALL)
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"), (b"RIFF", "image/webp"))


class BadImagePart(ValueError):
    """An image part that is not a decodable ``data:image/...;base64`` URI."""


@dataclass(frozen=True)
class DecodedImage:
    data: bytes
    mime: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def to_pil(self):
        from PIL import Image

        with Image.open(io.BytesIO(self.data)) as image:
            return image.convert("RGB")


def _mime_of(data: bytes) -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    raise BadImagePart("the figure file is not a PNG, JPEG, GIF or WebP image")


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_part(path: Path | str) -> dict[str, Any]:
    data = Path(path).read_bytes()
    url = f"data:{_mime_of(data)};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": url}}


def decode_image_part(part: dict[str, Any]) -> DecodedImage:
    url = part.get("image_url")
    url = url.get("url") if isinstance(url, dict) else url
    match = _DATA_URI_RE.match(url or "")
    if not match:
        # Only inline images: fetching a URL would let a prompt make this host reach the network.
        raise BadImagePart("image_url must be a data:image/...;base64 URI")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except binascii.Error as exc:
        raise BadImagePart(f"image_url holds invalid base64: {exc}") from exc
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError) as exc:
        raise BadImagePart(f"image_url does not decode as an image: {exc}") from exc
    return DecodedImage(data, match.group(1))


def image_parts(messages: list[Message]) -> list[dict[str, Any]]:
    return [
        part
        for message in messages
        if isinstance(message["content"], list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


def text_only(messages: list[Message]) -> list[dict[str, str]]:
    """Content parts flattened to text, images left out: for models that read text only."""
    flat = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
        flat.append({"role": message["role"], "content": content})
    return flat
