"""Caption-to-image retrieval evaluation: `kb eval images --data DIR`.

Data format (a folder):

    DIR/images/               the images (PNG or JPEG); ones no caption names are distractors
    DIR/captions.jsonl        one JSON object per line:
                              {"file": "wiring.png", "captions": ["an electrical wiring diagram", ...]}
                              ("caption": "..." for a single one; "file" is relative to images/)

Every caption is a query whose one right answer is its image. The images are ingested into a
temporary knowledge base exactly as `kb ingest` would (OCR, file-name words, and CLIP vectors
in the image space when MMKB_IMAGE_EMBEDDER_PATH is set); your knowledge base is untouched.
Each query is then ranked three ways, so the paths can be compared on the same images:

- text: the text pipeline alone (dense + BM25 fusion + rerank over each image's OCR text and
  file-name words: how images are found without CLIP);
- CLIP: the caption's CLIP text vector against the image vectors, nothing else;
- fused: the full query path, CLIP's candidates joining the text ones in the RRF fusion.

The file name is part of the text path's evidence, as in production: a set whose file names
give the answer away flatters that path, which `samples/make_image_eval.py`'s output does.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from app.answering import RetrievalOptions
from app.indexes import IMAGE_SPACE
from app.models import Chunk, Document
from app.settings import Settings
from retrieval.dense import search_stores

CUTOFFS = (1, 5, 10)
EVAL_COLLECTION = "image-eval"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


class ImageSetError(ValueError):
    """The folder is not a captioned image set; the message names the file and the reason."""


@dataclass(frozen=True)
class CaptionQuery:
    caption: str
    file: str  # the image's file name, which is its document's name once ingested


@dataclass(frozen=True)
class ImageSet:
    images: list[Path]
    queries: list[CaptionQuery]


@dataclass
class PathResult:
    name: str
    metrics: dict[str, float]
    latency_ms: list[float] = field(default_factory=list)


@dataclass
class ImageEvalReport:
    dataset: str
    images: int
    queries: int
    index_seconds: float
    clip_model: str | None
    results: list[PathResult]


def load_image_set(directory: Path) -> ImageSet:
    images_dir, captions_path = directory / "images", directory / "captions.jsonl"
    if not images_dir.is_dir():
        raise ImageSetError(f"{images_dir} is missing: a captioned image set keeps its images in images/")
    if not captions_path.is_file():
        raise ImageSetError(f'{captions_path} is missing: one JSON line per image, {{"file": ..., "captions": [...]}}')
    images = sorted(p for p in images_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    by_name: dict[str, Path] = {}
    for image in images:
        if image.name in by_name:
            raise ImageSetError(f"{image} and {by_name[image.name]} share a file name; names must be unique")
        by_name[image.name] = image
    queries: list[CaptionQuery] = []
    with captions_path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{captions_path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImageSetError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("file"), str):
                raise ImageSetError(f'{where}: needs a "file" naming an image under images/')
            captions = row.get("captions", [row["caption"]] if "caption" in row else [])
            if isinstance(captions, str) or not captions or not all(isinstance(c, str) and c.strip() for c in captions):
                raise ImageSetError(f'{where}: needs "captions" (a list of non-empty strings) or "caption"')
            path = images_dir / row["file"]
            if not path.is_file():
                raise ImageSetError(f"{where}: {path} does not exist")
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ImageSetError(f"{where}: {path.name} is not a PNG or JPEG file")
            queries.extend(CaptionQuery(caption.strip(), path.name) for caption in captions)
    if not queries:
        raise ImageSetError(f"{captions_path} holds no captions")
    return ImageSet(images, queries)


def _hits(ranked: list[str], relevant: str) -> dict[str, float]:
    metrics = {f"R@{k}": float(relevant in ranked[:k]) for k in CUTOFFS}
    metrics["MRR@10"] = next((1.0 / (i + 1) for i, name in enumerate(ranked[:10]) if name == relevant), 0.0)
    return metrics


def _dedupe(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def run_image_eval(data: Path, settings: Settings, models, limit: int | None = None) -> ImageEvalReport:
    image_set = load_image_set(data)
    queries = image_set.queries[:limit] if limit else image_set.queries
    depth = max(10, settings.rerank_top_n)
    with tempfile.TemporaryDirectory(prefix="mmkb-image-eval-") as tmp:
        from app.service import KnowledgeBase

        eval_settings = settings.model_copy(
            update={
                "data_dir": Path(tmp),
                "database_url": None,
                "dense_top_k": depth,
                "keyword_top_k": depth,
                "rerank_top_n": depth,
            }
        )
        kb = KnowledgeBase(eval_settings, models=models)
        try:
            started = time.perf_counter()
            report = kb.ingest(kb.system_user(), EVAL_COLLECTION, paths=image_set.images)
            index_seconds = time.perf_counter() - started
            if report.failed:
                failed = "; ".join(f"{f.filename}: {f.error}" for f in report.failed)
                raise ImageSetError(f"images that could not be ingested: {failed}")
            collections = kb.readable_collections(kb.system_user(), [EVAL_COLLECTION])
            answerer = kb._answerer()
            clip = models.image_embedder

            def text_path(caption: str) -> list[str]:
                options = RetrievalOptions(keyword=eval_settings.hybrid_search, hyde=False, rerank=True, image=False)
                return [c.filename for c in answerer.rank(caption, collections, options, depth=depth).chunks]

            def fused_path(caption: str) -> list[str]:
                options = RetrievalOptions(keyword=eval_settings.hybrid_search, hyde=False, rerank=True, image=True)
                return [c.filename for c in answerer.rank(caption, collections, options, depth=depth).chunks]

            def clip_path(caption: str) -> list[str]:
                stores = [kb.indexes.store(c.id, IMAGE_SPACE) for c in collections]
                hits = search_stores(stores, clip.embed_texts([caption])[0], depth)
                with kb.database.session() as session:
                    names = dict(
                        session.execute(
                            select(Chunk.id, Document.filename)
                            .join(Document, Document.id == Chunk.document_id)
                            .where(Chunk.id.in_([h.chunk_id for h in hits]))
                        ).all()
                    )
                return [names[h.chunk_id] for h in hits if h.chunk_id in names]

            paths = [("text (OCR + file name)", text_path)]
            if clip is not None:
                paths += [("CLIP text→image", clip_path), ("fused (text + CLIP, RRF)", fused_path)]
            results = []
            for name, rank in paths:
                result = PathResult(name, {})
                sums: dict[str, float] = {}
                for query in queries:
                    started = time.perf_counter()
                    ranked = _dedupe(rank(query.caption))
                    result.latency_ms.append((time.perf_counter() - started) * 1000)
                    for metric, value in _hits(ranked, query.file).items():
                        sums[metric] = sums.get(metric, 0.0) + value
                result.metrics = {metric: value / len(queries) for metric, value in sums.items()}
                results.append(result)
        finally:
            kb.close()
    clip_name = clip.name if clip is not None else None
    return ImageEvalReport(str(data), len(image_set.images), len(queries), index_seconds, clip_name, results)


def format_image_report(report: ImageEvalReport) -> str:
    names = [f"R@{k}" for k in CUTOFFS] + ["MRR@10"]
    lines = [
        f"{report.dataset}: {report.images} images, {report.queries} captions (indexed in {report.index_seconds:.1f} s); "
        + (
            f"CLIP: {report.clip_model}"
            if report.clip_model
            else "no CLIP model configured (MMKB_IMAGE_EMBEDDER_PATH): text path only"
        ),
        "",
        "| path | " + " | ".join(names) + " | p50 ms |",
        "| --- " * (len(names) + 2) + "|",
    ]
    for result in report.results:
        cells = [f"{result.metrics.get(m, 0.0):.3f}" for m in names]
        lines.append(f"| {result.name} | " + " | ".join(cells) + f" | {float(np.percentile(result.latency_ms, 50)):.0f} |")
    return "\n".join(lines)
