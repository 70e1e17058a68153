"""Offline OCR engines with one interface: `read(png_bytes) -> text`.

- rapidocr: PP-OCRv4 detection + recognition (Chinese and English) as ONNX models that ship
  inside the rapidocr-onnxruntime wheel, so nothing is downloaded.
- tesseract: Debian's `tesseract-ocr` with the `eng` and `chi_sim` language packs, called
  through pytesseract (scripts/setup.sh installs them when run as root).

tesseract is the default: on rendered English text and scanned pages it keeps words apart
(RapidOCR glues them: "EURpernight"), at about a quarter of RapidOCR's time per image;
RapidOCR reads degraded Chinese far better (benchmarks/ocr.py, benchmarks/RESULTS.md).
"""

from __future__ import annotations

import io
import re
import shutil
import threading
from typing import Protocol

import numpy as np

from ingest.types import IngestError

ENGINES = ("rapidocr", "tesseract")
TESSERACT_LANGUAGES = ("eng", "chi_sim")
_INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim (scripts/setup.sh does this as root)"


class OcrEngine(Protocol):
    def read(self, png_bytes: bytes) -> str: ...


class OcrUnavailable(IngestError):
    """The configured OCR engine is not installed; the message says what to install. An
    IngestError: a file that needs OCR fails with this message, the rest of the batch goes on."""


def _rgb(png_bytes: bytes):
    from PIL import Image

    from ingest.pixels import scaled_rgb

    # Bounded like every decoded image (ingest.pixels): OCR time grows with the pixels.
    with Image.open(io.BytesIO(png_bytes)) as image:
        return scaled_rgb(image)


class RapidOcr:
    def __init__(self, threads: int = 0) -> None:
        from rapidocr_onnxruntime import RapidOCR

        # threads=0: onnxruntime's default (every core); see MMKB_MODEL_THREADS for why mmkb uses fewer.
        limits = {"intra_op_num_threads": threads, "inter_op_num_threads": 1} if threads > 0 else {}
        self.engine = RapidOCR(**limits)
        self._lock = threading.Lock()

    def read(self, png_bytes: bytes, min_confidence: float = 0.5) -> str:
        image = np.asarray(_rgb(png_bytes))
        with self._lock:
            result, _ = self.engine(image)
        if not result:
            return ""
        lines = [text for _box, text, score in result if float(score) >= min_confidence]
        return "\n".join(lines)


# Tesseract's chi_sim model puts a space between every pair of Chinese characters.
_CJK_GAP = re.compile(r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]) (?=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])")


class TesseractOcr:
    def __init__(self, languages: tuple[str, ...] = TESSERACT_LANGUAGES) -> None:
        try:
            import pytesseract
        except ImportError as exc:
            raise OcrUnavailable("MMKB_OCR_ENGINE=tesseract needs the pytesseract package (pip install pytesseract)") from exc
        if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
            raise OcrUnavailable(f"MMKB_OCR_ENGINE=tesseract but the tesseract program is not installed: {_INSTALL_HINT}")
        installed = set(pytesseract.get_languages(config=""))
        missing = [language for language in languages if language not in installed]
        if missing:
            raise OcrUnavailable(f"tesseract lacks the language data {', '.join(missing)}: {_INSTALL_HINT}")
        self._pytesseract = pytesseract
        self.languages = "+".join(languages)

    def read(self, png_bytes: bytes) -> str:
        # --psm 3: automatic page segmentation, also right for photos of a sign or a slide.
        text = self._pytesseract.image_to_string(_rgb(png_bytes), lang=self.languages, config="--psm 3")
        lines = [_CJK_GAP.sub("", " ".join(line.split())) for line in text.splitlines()]
        return "\n".join(line for line in lines if line)


def load_ocr(engine: str, threads: int = 0) -> OcrEngine:
    """`threads` bounds RapidOCR's onnxruntime threads (0 = its default); Tesseract runs as a
    separate program per image."""
    if engine == "rapidocr":
        return RapidOcr(threads=threads)
    if engine == "tesseract":
        return TesseractOcr()
    raise ValueError(f"unknown OCR engine {engine!r}; MMKB_OCR_ENGINE is one of {', '.join(ENGINES)}")
