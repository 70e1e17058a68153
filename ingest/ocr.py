"""Offline OCR with RapidOCR: PP-OCRv4 detection + recognition (Chinese and English) as ONNX
models that ship inside the rapidocr-onnxruntime wheel, so nothing is downloaded."""

from __future__ import annotations

import io
import threading

import numpy as np


class RapidOcr:
    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.engine = RapidOCR()
        self._lock = threading.Lock()

    def read(self, png_bytes: bytes, min_confidence: float = 0.5) -> str:
        from PIL import Image

        image = np.asarray(Image.open(io.BytesIO(png_bytes)).convert("RGB"))
        with self._lock:
            result, _ = self.engine(image)
        if not result:
            return ""
        lines = [text for _box, text, score in result if float(score) >= min_confidence]
        return "\n".join(lines)
