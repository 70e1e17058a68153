"""What the re-index guard adds to `kb reindex`: the collection's evaluation set run against the
live index and against a candidate copy, at collection sizes where the copy costs something.

    python benchmarks/reindex_guard.py [--chunks 10000,50000] [--questions 20]

The collection is benchmarks/query.py's synthetic one (Zipf-drawn words from the samples plus a
part code per chunk; random unit vectors, since latency does not depend on their values). Each
question is four words and the part code of one chunk, expecting that chunk's file and page.
The candidate is the live collection staged again unchanged, so both sides search the same
chunks; the time is what a real re-index pays after its build and before its swap.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import registry  # noqa: E402,F401 - hub libraries offline before any model import
from app.answering import Answerer  # noqa: E402
from app.collection_eval import evaluate  # noqa: E402
from app.indexes import TEXT_SPACE, KeywordIndexManager  # noqa: E402
from app.model_set import ModelSet  # noqa: E402
from app.models import Chunk, Document  # noqa: E402
from app.reindex_build import StagedChunk, StagedDocument  # noqa: E402
from app.reindex_guard import RegressionGuard  # noqa: E402
from app.schemas import NewEvalQuestion  # noqa: E402
from app.service import KnowledgeBase  # noqa: E402
from app.settings import get_settings  # noqa: E402
from benchmarks.query import populate, synthetic_corpus  # noqa: E402


def staged_copy(kb: KnowledgeBase) -> list[StagedDocument]:
    """Every document's current chunks as a re-index would stage them."""
    staged: dict[int, StagedDocument] = {}
    with kb.database.session() as session:
        for document in session.scalars(select(Document)):
            staged[document.id] = StagedDocument(document.id, document.sha256, document.filename, document.page_count)
        for c in session.scalars(select(Chunk).order_by(Chunk.id)):
            staged[c.document_id].chunks.append(
                StagedChunk(
                    c.page,
                    c.kind.value,
                    c.ordinal,
                    c.text,
                    c.char_start,
                    c.char_end,
                    c.image_path,
                    c.heading_path or "",
                    c.vector_space,
                    c.embedding,
                )
            )
    return list(staged.values())


def measure(models: ModelSet, chunks: int, questions: int, tmp: Path) -> dict:
    rng = np.random.default_rng(chunks)
    texts, codes = synthetic_corpus(chunks, rng)
    vectors = rng.normal(size=(chunks, models.text_embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    settings = models.settings.model_copy(update={"data_dir": tmp / str(chunks), "database_url": None})
    kb = KnowledgeBase(settings, models=models)
    populate(kb, texts, vectors)
    (collection,) = kb.readable_collections(kb.system_user(), ["bench"])
    kb.indexes.sync(collection.id, TEXT_SPACE)
    with kb.database.session() as session:
        # populate() writes chunk i of the corpus as the i-th row.
        place = session.execute(select(Document.filename, Chunk.page).join(Document).order_by(Chunk.id)).all()
    picks = rng.choice(chunks, size=questions, replace=False)
    kb.add_eval_questions(
        kb.system_user(),
        "bench",
        [
            NewEvalQuestion(question=f"{' '.join(texts[i].split()[:4])} {codes[i]}", file=place[i][0], page=place[i][1])
            for i in picks
        ],
    )
    staged = staged_copy(kb)
    guard = RegressionGuard(kb.settings, kb.database, kb.indexes, kb.models)
    asked = guard.sets.questions(collection.id)
    started = time.perf_counter()
    live = evaluate(
        Answerer(kb.settings, kb.database, kb.indexes, kb.models, KeywordIndexManager(kb.database)), collection, asked
    )
    live_s = time.perf_counter() - started
    started = time.perf_counter()
    report = guard.judge(collection, 0, tmp / f"job-{chunks}", lambda: staged, collection.text_embedder)
    judge_s = time.perf_counter() - started
    kb.close()
    return {
        "chunks": chunks,
        "questions": questions,
        "live_s": live_s,
        "judge_s": judge_s,
        "live": live.recall_at_5,
        "candidate": report.candidate.recall_at_5,
        "verdict": report.verdict,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", default="10000,50000", help="collection sizes, comma-separated")
    parser.add_argument("--questions", type=int, default=20)
    args = parser.parse_args()
    models = ModelSet(get_settings())
    models.text_embedder  # loaded before any timing
    load = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="mmkb-guard-bench-") as tmp:
        for chunks in (int(n) for n in args.chunks.split(",")):
            results.append(measure(models, chunks, args.questions, Path(tmp)))
            print(f"measured {chunks} chunks", file=sys.stderr, flush=True)
    print(f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end\n")
    print(
        "| chunks | questions | live set alone (s) | whole guard: live + candidate copy, index, set (s) | recall@5 live / candidate | verdict |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['chunks']:,} | {r['questions']} | {r['live_s']:.1f} | {r['judge_s']:.1f} | {r['live']:.2f} / {r['candidate']:.2f} | {r['verdict']} |"
        )


if __name__ == "__main__":
    main()
