"""Offline OCR with RapidOCR: PP-OCRv4 detection + recognition (Chinese and English) as ONNX
models that ship inside the rapidocr-onnxruntime wheel, so nothing is downloaded."""

from __future__ import annotations

import io
import threading

import numpy as np


class RapidOcr:
    def __init__(self, threads: int = 0) -> None:
        from rapidocr_onnxruntime import RapidOCR

        # threads=0: onnxruntime's default (every core); see MMKB_MODEL_THREADS for why 1 is the default.
        limits = {"intra_op_num_threads": threads, "inter_op_num_threads": 1} if threads > 0 else {}
        self.engine = RapidOCR(**limits)
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
