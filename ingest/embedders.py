"""Embedding models: sentence-transformers for text, a CLIP model for images (and their text tower)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_threads(configured: int | None) -> int:
    """Threads per model call: MMKB_MODEL_THREADS, else half the cores (at least 1).

    Not all of them: torch's threads meet at a barrier after every operator, so when any one
    is descheduled (by the generator's threads, an ingest, another process) all wait. On the
    2-core VM under load, one query embedding took 1005 ms p50 with 2 threads and 95 ms with
    1 (interleaved A/B, benchmarks/RESULTS.md); half the cores leaves room for the rest.
    """
    import os

    if configured is not None and configured > 0:
        return configured
    return max(1, (os.cpu_count() or 1) // 2)


def configure_torch_threads(configured: int | None) -> int:
    import torch

    threads = torch_threads(configured)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def native_bf16(device: str) -> bool:
    """Whether this device computes in bfloat16 natively (AVX512-BF16/AMX CPUs, recent GPUs);
    elsewhere bf16 is emulated and slower than float32."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def use_bf16(precision: str, device: str) -> bool:
    """MMKB_EMBED_PRECISION: float32, bfloat16, or auto (bfloat16 where it is native).

    bfloat16 halves the embedder's time on this repository's CPU (AMX) and changes the
    vectors by a cosine of 1e-4 at most (benchmarks/RESULTS.md), far below what separates
    two passages."""
    if precision == "bfloat16":
        return True
    return precision == "auto" and native_bf16(device)


class TextEmbedder:
    def __init__(self, model_dir: Path, device: str | None = None, batch_size: int = 32, precision: str = "auto") -> None:
        from sentence_transformers import SentenceTransformer

        device = device or best_device()
        self.model = SentenceTransformer(str(model_dir), device=device)
        self.batch_size = batch_size
        self.bf16 = use_bf16(precision, device)
        self._device_type = "cuda" if device.startswith("cuda") else "cpu"
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else self.model.get_sentence_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        # Autocast keeps the weights in float32 and runs the matrix products in bfloat16.
        with torch.autocast(self._device_type, dtype=torch.bfloat16, enabled=self.bf16):
            vectors = self.model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return vectors.astype(np.float32, copy=False)


class ClipEmbedder:
    """A CLIP model folder (transformers format) for image vectors and text-to-image queries.

    Loaded through transformers rather than open_clip: open_clip imports torchvision, and
    no torchvision build matches the CPU torch pinned here. transformers' PIL image
    processor needs no torchvision.
    """

    def __init__(self, model_dir: Path, device: str | None = None, batch_size: int = 16) -> None:
        from transformers import CLIPModel, CLIPProcessor

        self.device = device or best_device()
        self.model = CLIPModel.from_pretrained(model_dir).to(self.device).eval()
        self.processor = CLIPProcessor.from_pretrained(model_dir)
        self.dim = int(self.model.config.projection_dim)
        self.batch_size = batch_size
        self.name = f"clip:{Path(model_dir).name}"

    @staticmethod
    def _normalised(features) -> np.ndarray:
        if not hasattr(features, "norm"):  # some transformers versions return a model output
            features = features.pooler_output
        features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return features.float().cpu().numpy().astype(np.float32)

    def embed_images(self, images: Sequence[bytes]) -> np.ndarray:
        import io

        import torch
        from PIL import Image

        out = []
        for start in range(0, len(images), self.batch_size):
            batch = [Image.open(io.BytesIO(data)).convert("RGB") for data in images[start : start + self.batch_size]]
            inputs = self.processor(images=batch, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                out.append(self._normalised(self.model.get_image_features(**inputs)))
        return np.vstack(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        inputs = self.processor(text=list(texts), return_tensors="pt", padding=True, truncation=True).to(self.device)
        with torch.inference_mode():
            return self._normalised(self.model.get_text_features(**inputs))
